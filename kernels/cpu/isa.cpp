#include "kernels/cpu/isa.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kiln/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace kiln::kernels::cpu {

namespace {

#if defined(__x86_64__) || defined(__i386__)

bool bit(std::uint32_t word, int b) { return ((word >> b) & 1u) != 0; }

// XCR0: which register state the OS saves on a context switch. Without it, using ymm or
// zmm registers would work until the first preemption and then corrupt them.
std::uint64_t xcr0() {
  std::uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<std::uint64_t>(edx) << 32) | eax;
}

Isa detect() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return Isa::scalar;
  const bool osxsave = bit(ecx, 27), avx = bit(ecx, 28), fma = bit(ecx, 12);
  if (!osxsave || !avx) return Isa::scalar;
  const std::uint64_t xcr = xcr0();
  constexpr std::uint64_t kYmmState = 0x6;   // SSE and AVX state
  constexpr std::uint64_t kZmmState = 0xE0;  // opmask, upper halves of zmm0-15, zmm16-31
  if ((xcr & kYmmState) != kYmmState) return Isa::scalar;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return Isa::scalar;
  const bool avx2 = bit(ebx, 5);
  if (!avx2 || !fma) return Isa::scalar;
  const bool avx512 = bit(ebx, 16) && bit(ebx, 17) && bit(ebx, 30) && bit(ebx, 31);  // f, dq, bw, vl
  if (avx512 && (xcr & kZmmState) == kZmmState) return Isa::avx512;
  return Isa::avx2;
}

#else

Isa detect() { return Isa::scalar; }

#endif

[[noreturn]] void fail_setting(const std::string& message) {
  throw Error(ErrorKind::usage, "", "", std::string("KILN_ISA=").append(message));
}

}  // namespace

Isa detected_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa parse_isa_setting(const char* value, Isa detected) {
  if (value == nullptr || *value == '\0') return detected;
  const std::string_view v(value);
  Isa wanted;
  if (v == "scalar") {
    wanted = Isa::scalar;
  } else if (v == "avx2") {
    wanted = Isa::avx2;
  } else if (v == "avx512") {
    wanted = Isa::avx512;
  } else {
    fail_setting(std::string(v).append(": unknown instruction set; expected scalar, avx2 or avx512"));
  }
  if (wanted > detected) {
    fail_setting(std::string(v).append(": this CPU supports at most ").append(isa_name(detected)));
  }
  return wanted;
}

Isa active_isa() {
  static const Isa isa = parse_isa_setting(std::getenv("KILN_ISA"), detected_isa());
  return isa;
}

std::vector<Isa> available_isas() {
  std::vector<Isa> isas{Isa::scalar};
  if (detected_isa() >= Isa::avx2) isas.push_back(Isa::avx2);
  if (detected_isa() >= Isa::avx512) isas.push_back(Isa::avx512);
  return isas;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

}  // namespace kiln::kernels::cpu
