#pragma once
/**
 * @file index_file.h
 * The container every index file uses (docs/architecture.md, "Conventions"):
 *
 *   offset 0   char[8]  magic "WAYPOINT"
 *          8   uint32   format version (kIndexFormatVersion)
 *         12   uint32   type tag (IndexType)
 *         16   uint64   payload length in bytes
 *         24   uint64   XXH3-64 checksum of the payload
 *         32   payload  written by the index's save(), read back by its loader
 *
 * Files are written to "<path>.tmp" and renamed into place, so a crash never leaves a half file
 * under the real name. On load the header, the length and the checksum are verified before any
 * field is parsed, and every read inside the payload is bounds-checked: a corrupt or truncated
 * file is a UserError, never a crash.
 */
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "index/error.h"

namespace wp::index {

/// Type tags of index files. Values are part of the file format: never renumber.
/// File type tags; kHashModel is not an index but a HashModel (lsh_index.h) in the same container.
enum class IndexType : uint32_t { kFlat = 1, kHnsw = 2, kGraph = 3, kLsh = 4, kHashModel = 5 };

/// Current container format version.
constexpr uint32_t kIndexFormatVersion = 1;

/// Streams a payload into an index file; call finish() to commit it.
class BinaryWriter {
 public:
  BinaryWriter(const std::string& path, IndexType type);
  ~BinaryWriter();
  BinaryWriter(const BinaryWriter&) = delete;
  BinaryWriter& operator=(const BinaryWriter&) = delete;

  void write_bytes(const void* p, size_t n);

  template <typename T>
  void write(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    write_bytes(&v, sizeof(T));
  }

  /// Writes a uint64 count, then the elements.
  template <typename T>
  void write_vector(const std::vector<T>& v) {
    write<uint64_t>(v.size());
    write_bytes(v.data(), v.size() * sizeof(T));
  }

  void write_string(const std::string& s) {
    write<uint64_t>(s.size());
    write_bytes(s.data(), s.size());
  }

  /// Patches the header (length, checksum), fsyncs and renames the file into place.
  void finish();

 private:
  struct State;
  std::unique_ptr<State> st_;
};

/// Bounds-checked reader over a verified payload: the file is mapped read-only (no copy of it
/// in the process's own memory; read_bytes copies straight from the page cache into the index's
/// final arrays) and unmapped when the reader goes.
class BinaryReader {
 public:
  /// Opens `path`, checks magic, version, length and checksum; throws UserError on any mismatch.
  explicit BinaryReader(const std::string& path);
  BinaryReader(const BinaryReader&) = delete;
  BinaryReader& operator=(const BinaryReader&) = delete;

  IndexType type() const { return type_; }
  const std::string& path() const { return path_; }
  size_t remaining() const { return size_ - pos_; }

  void read_bytes(void* dst, size_t n);

  template <typename T>
  T read() {
    static_assert(std::is_trivially_copyable_v<T>);
    T v;
    read_bytes(&v, sizeof(T));
    return v;
  }

  /// Reads a uint64 count (at most max_count) and that many elements.
  template <typename T>
  std::vector<T> read_vector(uint64_t max_count) {
    const uint64_t n = read<uint64_t>();
    check(n <= max_count && n <= remaining() / sizeof(T), "vector length out of range");
    std::vector<T> v(n);
    read_bytes(v.data(), n * sizeof(T));
    return v;
  }

  std::string read_string(uint64_t max_len = 1 << 20);

  /// Throws UserError("<path>: corrupt index file: <what>") unless cond.
  void check(bool cond, const char* what) const;

  /// Throws unless the whole payload has been consumed.
  void expect_end() const { check(remaining() == 0, "trailing bytes after the payload"); }

 private:
  std::string path_;
  IndexType type_;
  /// The whole file, mapped read-only; unmapped with the reader (also when its constructor
  /// throws on a corrupt file).
  struct Mapping {
    void* base = nullptr;
    size_t bytes = 0;
    Mapping() = default;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();
  };
  Mapping map_;
  const char* data_ = nullptr;  ///< the payload, after the header
  size_t size_ = 0;
  size_t pos_ = 0;
};

}  // namespace wp::index
