// Which x86 vector instruction set the fast CPU kernels may use, decided once at run time.
//
// kiln is built for baseline x86-64; the AVX2 and AVX-512 kernels live in translation units
// compiled with their own flags and are only called when the CPU and the OS both support
// them. KILN_ISA=scalar|avx2|avx512 lowers the level (to test or compare paths on one
// machine); it can never raise it above what the CPU has.
#pragma once

#include <vector>

namespace kiln::kernels::cpu {

enum class Isa { scalar, avx2, avx512 };  // ordered: each level includes the ones before

// What this CPU and OS support: AVX-512 needs avx512f, bw, vl and dq and the OS saving
// opmask and zmm state (XCR0); AVX2 needs avx2, fma and ymm state.
Isa detected_isa();
// detected_isa(), capped by KILN_ISA (read on the first call only). Throws kiln::Error
// (usage) when KILN_ISA is not one of the names or asks for more than the machine has.
Isa active_isa();
// How active_isa() reads KILN_ISA: null or empty means `detected`. Exposed for tests.
Isa parse_isa_setting(const char* value, Isa detected);
// scalar up to detected_isa(), in order.
std::vector<Isa> available_isas();
// "scalar", "avx2", "avx512": the names KILN_ISA takes.
const char* isa_name(Isa isa);

}  // namespace kiln::kernels::cpu
