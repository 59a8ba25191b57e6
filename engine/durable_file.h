#pragma once
/**
 * @file durable_file.h
 * Files that survive a crash whole: replaced by writing beside, fsync, rename, fsync of the
 * folder (the aliases file, snapshot checksums, snapshot archives).
 */
#include <string>

namespace wp::engine {

/// Replaces `path` with `content` so that a crash leaves the old file or the new one.
void write_file_durably(const std::string& path, const std::string& content);

/// fsyncs a folder, so that renames and new names in it survive a crash (best effort).
void sync_folder(const std::string& dir);

}  // namespace wp::engine
