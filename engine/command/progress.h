#pragma once
/**
 * @file progress.h
 * A progress bar with rate and ETA for long CLI work, drawn on stderr only when stderr is a
 * terminal and --quiet was not given; redrawn at most ten times a second.
 */
#include <chrono>
#include <cstddef>
#include <string>

namespace wp::cli {

class Progress {
 public:
  Progress(std::string label, size_t total, bool quiet);
  ~Progress();
  /// Reports that `done` of `total` units are complete.
  void update(size_t done);
  /// Draws the final state and ends the line.
  void finish();

 private:
  void draw(size_t done, bool final);
  std::string label_;
  size_t total_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace wp::cli
