#pragma once
/**
 * @file job_observer.h
 * How learn's training jobs (train_pruner, train_hash) report while they run. A job reads its
 * data and returns its results; it writes no file and prints nothing, and tells an observer of
 * its progress instead, so that its command (learn/cli) draws the progress bar, writes the log,
 * the checkpoints and the messages, and the server's builders keep only what they need.
 */
#include <cstddef>
#include <functional>

namespace wp::learn {

/// Told of a training job as it goes; every member is optional.
template <typename Setup, typename StepRecord, typename Checkpoint>
struct JobObserver {
  /// The job's data and set-up are ready: called once, before the first step.
  std::function<void(const Setup&)> started;
  /// A step is done (one row of its command's CSV log).
  std::function<void(const StepRecord&)> step;
  /// After a validation: the state to resume from, for the caller to keep where it chooses.
  std::function<void(const Checkpoint&)> checkpoint;
  /// `done` of `total` units of work are done (for a progress bar).
  std::function<void(size_t done, size_t total)> progress;
};

}  // namespace wp::learn
