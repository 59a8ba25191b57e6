#pragma once
/**
 * @file training_output.h
 * What `train-pruner` and `train-hash` share around their jobs: the output options, the CSV
 * log, the checkpoint file to resume from and a progress bar drawn from the job's reports.
 */
#include <cstddef>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "engine/command/args.h"
#include "engine/command/progress.h"
#include "learn/checkpoint.h"

namespace wp::cli {

/// --out and the files beside it (--log, --plot, --checkpoint: <out>.csv, <out>.png,
/// <out>.ckpt unless given), --resume and --quiet.
struct TrainingOutput {
  std::string out, log_csv, plot_png, checkpoint;
  bool resume = false, quiet = false;
};

/// Reads the options of TrainingOutput from `args`.
TrainingOutput parse_training_output(Args& args);

/// The checkpoint file's bytes when --resume was given and the file exists, else none.
std::optional<std::string> checkpoint_bytes_to_resume(const TrainingOutput& t);

/// The job's state to resume from (PrunerCheckpoint, HashCheckpoint), as
/// checkpoint_bytes_to_resume says.
template <typename Checkpoint>
std::optional<Checkpoint> checkpoint_to_resume(const TrainingOutput& t) {
  const std::optional<std::string> bytes = checkpoint_bytes_to_resume(t);
  if (!bytes) return std::nullopt;
  return Checkpoint::decode(*bytes);
}

/// A job observer's `checkpoint` that writes every state it is handed to --checkpoint.
template <typename Checkpoint>
std::function<void(const Checkpoint&)> checkpoint_writer(const TrainingOutput& t) {
  return [path = t.checkpoint](const Checkpoint& c) {
    learn::write_file_atomically(path, c.encode());
  };
}

/// Opens the CSV log at `path`: appends to it when `append`, else starts it with `header` (a
/// line with its newline). Throws UserError when it cannot be written.
std::ofstream open_log(const std::string& path, bool append, const std::string& header);

/// A progress bar made at the job's first report, when the job has said its total.
class JobProgress {
 public:
  JobProgress(std::string label, bool quiet);
  /// `done` of `total` units, as a job observer's `progress` reports them.
  void update(size_t done, size_t total);
  /// A job observer's `progress` that calls update() (this must outlive the job).
  std::function<void(size_t, size_t)> reporter();
  /// Draws the final state and ends the line (nothing if the job never reported).
  void finish();

 private:
  std::string label_;
  bool quiet_;
  std::unique_ptr<Progress> bar_;
};

}  // namespace wp::cli
