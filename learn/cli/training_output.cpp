#include "learn/cli/training_output.h"

#include <filesystem>

#include "index/error.h"

namespace wp::cli {

TrainingOutput parse_training_output(Args& args) {
  TrainingOutput t;
  t.out = args.required("out");
  const auto beside_out = [&](const std::string& option, const std::string& suffix) {
    const std::string path = args.str(option, "");
    return path.empty() ? t.out + suffix : path;
  };
  t.log_csv = beside_out("log", ".csv");
  t.plot_png = beside_out("plot", ".png");
  t.checkpoint = beside_out("checkpoint", ".ckpt");
  t.resume = args.flag("resume");
  t.quiet = args.flag("quiet");
  return t;
}

std::optional<std::string> checkpoint_bytes_to_resume(const TrainingOutput& t) {
  if (!t.resume || !std::filesystem::exists(t.checkpoint)) return std::nullopt;
  return learn::read_file(t.checkpoint);
}

std::ofstream open_log(const std::string& path, bool append, const std::string& header) {
  std::ofstream log(path, append ? std::ios::app : std::ios::trunc);
  WP_THROW_IF_NOT(log.good(), "cannot write log '", path, "'");
  if (!append) log << header;
  return log;
}

JobProgress::JobProgress(std::string label, bool quiet) : label_(std::move(label)), quiet_(quiet) {}

void JobProgress::update(size_t done, size_t total) {
  if (!bar_) bar_ = std::make_unique<Progress>(label_, total, quiet_);
  bar_->update(done);
}

std::function<void(size_t, size_t)> JobProgress::reporter() {
  return [this](size_t done, size_t total) { update(done, total); };
}

void JobProgress::finish() {
  if (bar_) bar_->finish();
}

}  // namespace wp::cli
