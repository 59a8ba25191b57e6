#pragma once
/**
 * @file checkpoint.h
 * learn's checkpoint format and the file helpers its trainers and commands share. Plain header
 * (no LibTorch): a training job hands its state to its observer as a struct of named fields,
 * the command encodes it with these functions and decides where the bytes go.
 *
 * Format: the line "waypoint-checkpoint 1", then per field its name, a space, the length of its
 * value in bytes, a newline and the value's bytes; the field "kind" names the job that wrote it.
 * Values are opaque bytes (trainer states, masks) or numbers written as decimal text that reads
 * back to the same double.
 */
#include <map>
#include <string>

namespace wp::learn {

/// A checkpoint's fields by name, and their encoding in learn's checkpoint format.
class CheckpointFields {
 public:
  /// Fields of a checkpoint of job `kind` ("pruner", "matching").
  explicit CheckpointFields(const std::string& kind);

  /// Sets field `name` (no spaces nor newlines) to `bytes`.
  void set(const std::string& name, std::string bytes);
  /// Sets field `name` to `value` as text that reads back exactly.
  void set_number(const std::string& name, double value);
  /// Field `name`; throws UserError naming it when the checkpoint lacks it.
  const std::string& get(const std::string& name) const;
  /// Field `name` read as a number; throws UserError naming it when absent or not a number.
  double number(const std::string& name) const;

  /// The fields in learn's checkpoint format.
  std::string encode() const;
  /// Reads encode()'s output; throws UserError when `bytes` is not a checkpoint of job `kind`.
  static CheckpointFields decode(const std::string& bytes, const std::string& kind);

 private:
  CheckpointFields() = default;
  std::map<std::string, std::string> fields_;
};

/// Writes `bytes` to `path` through a temporary file renamed into place: a kill mid-write
/// leaves the previous file whole. Throws UserError when the file cannot be written.
void write_file_atomically(const std::string& path, const std::string& bytes);

/// The whole content of `path`; throws UserError when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace wp::learn
