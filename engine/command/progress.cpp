#include "engine/command/progress.h"

#include <unistd.h>

#include <cstdio>

namespace wp::cli {

Progress::Progress(std::string label, size_t total, bool quiet)
    : label_(std::move(label)),
      total_(total),
      enabled_(!quiet && ::isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (enabled_ && !finished_) std::fputc('\n', stderr);
}

void Progress::update(size_t done) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100) && done < total_) return;
  last_draw_ = now;
  draw(done, false);
}

void Progress::finish() {
  if (!enabled_ || finished_) return;
  draw(total_, true);
  finished_ = true;
}

void Progress::draw(size_t done, bool final) {
  constexpr int kWidth = 30;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double frac = total_ ? static_cast<double>(done) / total_ : 1.0;
  const int fill = static_cast<int>(frac * kWidth);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < fill ? '#' : '.';
  bar[kWidth] = '\0';
  const double eta = frac > 0 ? secs * (1 - frac) / frac : 0;
  std::fprintf(stderr, "\r%s [%s] %zu/%zu %5.1f%%  %.1fs elapsed, ETA %.1fs   ", label_.c_str(),
               bar, done, total_, 100 * frac, secs, eta);
  if (final) std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace wp::cli
