// Progress — a bar redrawn in place on stderr while a subcommand works through many items:
//
//   [#########.....................] 1200/5000 texts, 310/s
//
// Drawn only when the caller says the work is long enough to want one and stderr is a
// terminal, so logs and pipes never receive it; erased when the Progress goes away.
//
//   Progress progress(texts.size(), "texts", texts.size() > 2 * batch);
//   for (...) progress.update(done);
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>

namespace kiln::cli {

class Progress {
 public:
  // `total` items, counted in `unit` ("texts", "runs"; a string literal).
  Progress(std::size_t total, const char* unit, bool wanted)
      : on_(wanted && isatty(fileno(stderr)) == 1), total_(total), unit_(unit), start_(std::chrono::steady_clock::now()) {}
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  ~Progress() {
    if (drawn_) std::fputs("\r\033[K", stderr);
  }

  // `done` of the total items are finished. Redraws at most ten times a second, and always
  // at the end.
  void update(std::size_t done) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    drawn_ = true;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * std::min(done, total_) / std::max<std::size_t>(total_, 1));
    const double seconds = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "\r[%.*s%.*s] %zu/%zu %s, %.0f/s\033[K", filled, "##############################",
                 kWidth - filled, "..............................", done, total_, unit_,
                 seconds > 0 ? static_cast<double>(done) / seconds : 0.0);
    std::fflush(stderr);
  }

 private:
  bool on_;
  bool drawn_ = false;
  std::size_t total_;
  const char* unit_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace kiln::cli
