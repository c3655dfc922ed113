// The `kiln` command line: dispatches subcommands and turns errors into the documented
// messages and exit codes (0 ok, 1 bad input or model, 2 usage, 3 internal error).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/kiln.hpp"
#include "tools/kiln/bench.hpp"
#include "tools/kiln/embed.hpp"
#include "tools/kiln/inspect.hpp"
#include "tools/kiln/run.hpp"
#include "tools/kiln/text_commands.hpp"
#include "tools/kiln/tokenize.hpp"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitBadInput = 1;
constexpr int kExitUsage = 2;
constexpr int kExitInternal = 3;

const char* const kUsage =
    "usage: kiln [--version] [--help] <command> [args]\n"
    "\n"
    "Runs TorchScript models traced from Hugging Face BERT-family models, without PyTorch.\n"
    "\n"
    "options:\n"
    "  --version   print the version and how this kiln was built\n"
    "  --help      print this help\n"
    "\n"
    "commands:\n"
    "  inspect MODEL [--json] [--verify] [--graph]\n"
    "                                      what a TorchScript archive holds\n"
    "  run MODEL [INPUT.npy]... [options]  run a model on .npy inputs, write .npy outputs\n"
    "  tokenize --vocab FILE [options]     BERT WordPiece ids of stdin lines, as JSON lines\n"
    "  embed MODEL --vocab FILE [options]  sentence embeddings of stdin lines, as JSON arrays\n"
    "  fill-mask MODEL --vocab FILE [options]\n"
    "                                      the likeliest tokens for each [MASK] of stdin lines\n"
    "  classify MODEL --vocab FILE [options]\n"
    "                                      label scores of stdin lines (sequence classification)\n"
    "  qa MODEL --vocab FILE [options]     answers to questions from a context\n"
    "  bench MODEL [options]               load and run times, throughput, memory\n"
    "\n"

    "exit codes: 0 ok, 1 bad input or model, 2 usage, 3 internal error\n";

void print_version() {
  const kiln::BuildInfo b = kiln::build_info();
  std::printf("kiln %s\n", b.version.c_str());
  std::printf("build: %s, %s, C++20\n", b.build_type.c_str(), b.compiler.c_str());
  if (b.onednn) {
    std::printf("oneDNN: %s (%s threading)\n", b.onednn_version.c_str(), b.onednn_runtime.c_str());
  } else {
    std::printf("oneDNN: disabled (Eigen and kiln's own kernels)\n");
  }
  std::printf("protobuf: %s\n", b.protobuf ? "enabled" : "disabled");
  std::printf("sanitizers: %s\n", b.sanitize.c_str());
}

int run(const std::vector<std::string_view>& args) {
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }
  const std::string_view cmd = args[0];
  if (cmd == "--version" || cmd == "version") {
    print_version();
    return kExitOk;
  }
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (cmd == "inspect") return kiln::cli::run_inspect({args.begin() + 1, args.end()});
  if (cmd == "run") return kiln::cli::run_model({args.begin() + 1, args.end()});
  if (cmd == "tokenize") return kiln::cli::run_tokenize({args.begin() + 1, args.end()});
  if (cmd == "embed") return kiln::cli::run_embed({args.begin() + 1, args.end()});
  if (cmd == "fill-mask") return kiln::cli::run_fill_mask({args.begin() + 1, args.end()});
  if (cmd == "classify") return kiln::cli::run_classify({args.begin() + 1, args.end()});
  if (cmd == "qa") return kiln::cli::run_qa({args.begin() + 1, args.end()});
  if (cmd == "bench") return kiln::cli::run_bench({args.begin() + 1, args.end()});
  throw kiln::Error(kiln::ErrorKind::usage, "", "",
                    "unknown command '" + std::string(cmd) + "' (see 'kiln --help')");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  try {
    return run(args);
  } catch (const kiln::Error& e) {
    std::fprintf(stderr, "kiln: error: %s\n", e.what());
    switch (e.kind()) {
      case kiln::ErrorKind::bad_input: return kExitBadInput;
      case kiln::ErrorKind::usage: return kExitUsage;
      case kiln::ErrorKind::internal: return kExitInternal;
    }
    return kExitInternal;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "kiln: error: out of memory\n");
    return kExitInternal;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln: error: internal: %s\n", e.what());
    return kExitInternal;
  }
}
