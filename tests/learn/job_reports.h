#pragma once
// What a learn/ training job told its observer, recorded for the tests of train_pruner and
// train_hash.
#include <gtest/gtest.h>

#include <vector>

#include "learn/job_observer.h"

namespace wp::test {

template <typename Setup, typename StepRecord, typename Checkpoint>
struct JobReports {
  size_t started = 0;
  Setup setup;
  std::vector<StepRecord> steps;
  std::vector<Checkpoint> checkpoints;
  size_t done = 0, total = 0, progress_calls = 0;

  /// An observer that records into this (which must outlive the job).
  learn::JobObserver<Setup, StepRecord, Checkpoint> observer() {
    learn::JobObserver<Setup, StepRecord, Checkpoint> o;
    o.started = [this](const Setup& s) {
      EXPECT_TRUE(steps.empty()) << "started before the first step";
      setup = s;
      ++started;
    };
    o.step = [this](const StepRecord& r) { steps.push_back(r); };
    o.checkpoint = [this](const Checkpoint& c) { checkpoints.push_back(c); };
    o.progress = [this](size_t d, size_t t) {
      done = d;
      total = t;
      ++progress_calls;
    };
    return o;
  }
};

}  // namespace wp::test
