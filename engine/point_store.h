#pragma once
/**
 * @file point_store.h
 * PointStore: the durable copy of one collection, a RocksDB database in the collection's folder.
 *
 *   "m:<name>"        metadata (the collection config)
 *   "p:<PointId key>" a point: uint64 internal id | vectors | payload (MessagePack), where the
 *                     vectors are, for the unnamed vector alone, uint32 dim | dim floats, and
 *                     otherwise uint32 0xFFFFFFFF | uint32 count | count times (uint32 name
 *                     length | name | uint32 dim | dim floats; a multivector's rows are there
 *                     flat, dim their count times its space's dimension), then, for a point
 *                     with sparse vectors, the byte 0xC1 (never a MessagePack value's first
 *                     byte) | uint32 count | count times (uint32 name length | name | uint32 n |
 *                     n uint32 indices | n floats)
 *
 * Writes go through RocksDB's write-ahead log as one atomic WriteBatch; with `sync` the WAL is
 * fsynced before apply() returns (Qdrant's wait=true). Without sync the write has reached the
 * operating system, so it survives the death of the process (kill -9) but not of the machine.
 */
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/point_id.h"
#include "engine/sparse_vector.h"
#include "index/error.h"

namespace rocksdb {
class DB;
}

namespace wp::engine {

/// The vectors of a point by name; "" is the unnamed vector of a collection without named ones.
using NamedVectors = std::map<std::string, std::vector<float>>;

class PointStore {
 public:
  /// A stored point.
  struct Record {
    PointId id;
    uint64_t internal = 0;  ///< the label of the point in the collection's index
    NamedVectors vectors;
    nlohmann::json payload = nlohmann::json::object();
    SparseVectors sparse = {};
  };

  /// Opens (creating when missing) the database in `dir`.
  explicit PointStore(const std::string& dir);
  ~PointStore();
  PointStore(const PointStore&) = delete;
  PointStore& operator=(const PointStore&) = delete;

  std::optional<std::string> get_meta(const std::string& name) const;
  /// Writes metadata and syncs the write-ahead log.
  void put_meta(const std::string& name, const std::string& value);

  /// Atomically writes `upserts`, removes `deletes` and, when given, sets the metadata `meta`
  /// (name, value) in the same write.
  void apply(const std::vector<Record>& upserts, const std::vector<PointId>& deletes, bool sync,
             const std::pair<std::string, std::string>* meta = nullptr);

  std::optional<Record> get(const PointId& id) const;

  /// Calls fn on every point in id order from `from` (inclusive; all when null) until it returns
  /// false. Reads one consistent snapshot. A `whole` scan (every point once, as opening the
  /// collection reads them) keeps none of its blocks in RocksDB's block cache, where they would
  /// push out those that reads of single points and pages want (and copying each block in was
  /// a sixth of that scan's time at 1M points).
  void scan(const std::optional<PointId>& from, const std::function<bool(Record&&)>& fn,
            bool whole = false) const;

  /// A stored point read in place, as scan_in_place hands it: views of RocksDB's buffers, valid
  /// only during the callback. Its key and the layout of its value are checked as decode checks
  /// them, and its payload is one MessagePack value that decode would read (nested no deeper than
  /// kMaxJsonDepth); the names of its vectors are not checked against each other.
  struct RecordView {
    std::string_view key;  ///< the point id's key (PointId::from_key)
    uint64_t internal = 0;
    std::string_view value;    ///< the whole stored value
    std::string_view payload;  ///< its MessagePack payload
    PointId id() const { return PointId::from_key(key); }
    /// fn(name, dim, floats) for each stored vector in order; see each_vector.
    template <class Fn>
    void vectors(Fn&& fn) const {
      each_vector(value, fn);
    }
    /// fn(name, n, indices, values) for each stored sparse vector in order; see each_sparse.
    template <class Fn>
    void sparse(Fn&& fn) const {
      walk(
          value, [](std::string_view, uint32_t, const char*) {}, fn);
    }
    /// Both in one reading of the record: dense(name, dim, floats), then sparse(name, n,
    /// indices, values).
    template <class Dense, class Sparse>
    void vectors(Dense&& dense, Sparse&& sparse) const {
      walk(value, dense, sparse);
    }
  };

  /// Calls fn on every point, as a whole scan() does, without copying it out of RocksDB's
  /// buffers or reading its payload into a tree: what opening a collection reads
  /// (Collection::load says what that saved).
  void scan_in_place(const std::function<void(const RecordView&)>& fn) const;

  /// RocksDB's latest sequence number: changes with every write.
  uint64_t sequence() const;

  /// A consistent copy of the database in `dir` (which must not exist): RocksDB's checkpoint,
  /// hard links where it can. Returns the sequence number the copy holds.
  uint64_t checkpoint(const std::string& dir) const;

  /// A record as stored (value: internal id, vectors, MessagePack payload) and back;
  /// decode throws InternalError on a damaged key or value (public for its fuzz target).
  static std::string encode(const Record& r);
  static Record decode(std::string_view key, std::string_view value);
  /// A stored value's key and layout checked, its payload not (scan_in_place and decode check it
  /// as they read it).
  static RecordView view(std::string_view key, std::string_view value);
  /// A stored sparse vector copied out (as each_sparse hands it); InternalError unless its
  /// indices increase and its values are finite.
  static SparseVector read_sparse(uint32_t n, const char* indices, const char* values);
  /// Throws InternalError unless `msgpack` is one MessagePack value that decode would read.
  static void check_payload(std::string_view msgpack);

  /// Calls fn(name, dim, floats) for each vector of a stored value in order ("" names the
  /// unnamed vector of a collection without named ones; `floats` points to dim floats, not
  /// necessarily aligned: copy them out) and returns where the payload starts. Throws
  /// InternalError where the value is cut short.
  template <class Fn>
  static size_t each_vector(std::string_view value, Fn&& fn) {
    return walk(value, fn, [](std::string_view, uint32_t, const char*, const char*) {});
  }
  /// Calls fn(name, n, indices, values) for each sparse vector of a stored value in order
  /// (`indices` points to n uint32 and `values` to n floats, not necessarily aligned).
  template <class Fn>
  static void each_sparse(std::string_view value, Fn&& fn) {
    walk(
        value, [](std::string_view, uint32_t, const char*) {}, fn);
  }

 private:
  /// each_vector and each_sparse: dense(name, dim, floats) and sparse(name, n, indices, values)
  /// in the stored order; returns where the payload starts.
  template <class Dense, class Sparse>
  static size_t walk(std::string_view value, Dense&& dense, Sparse&& sparse);
  /// The byte that begins a record's sparse vectors.
  static constexpr char kSparseMark = '\xC1';
  /// The vector count that marks named vectors in a record (an unnamed vector is never this long).
  static constexpr uint32_t kNamedMark = 0xFFFFFFFFu;

  /// Calls fn(key, value) on every stored point from `from` (all when null), in id order, until
  /// it returns false: the views are RocksDB's buffers, valid during the call. `whole`: as scan().
  void for_each_stored(
      const std::optional<PointId>& from, bool whole,
      const std::function<bool(std::string_view key, std::string_view value)>& fn) const;

  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
};

template <class Dense, class Sparse>
size_t PointStore::walk(std::string_view value, Dense&& dense, Sparse&& sparse) {
  // uint64 internal id | uint32 dim | dim floats, or uint32 kNamedMark | uint32 count | count
  // times (uint32 name length | name | uint32 dim | dim floats) | [kSparseMark | uint32 count |
  // count times (uint32 name length | name | uint32 n | n uint32 | n floats)] | payload.
  WP_THROW_INTERNAL_IF_NOT(value.size() >= 12, "point record too short");
  size_t at = 8;
  auto u32 = [&] {
    WP_THROW_INTERNAL_IF_NOT(value.size() - at >= 4, "point record truncated");
    uint32_t x = 0;
    std::memcpy(&x, value.data() + at, 4);
    at += 4;
    return x;
  };
  auto floats = [&](std::string_view name, uint32_t dim) {
    WP_THROW_INTERNAL_IF_NOT((value.size() - at) / sizeof(float) >= dim, "point record truncated");
    dense(name, dim, value.data() + at);
    at += size_t{dim} * sizeof(float);
  };
  auto read_name = [&] {
    const uint32_t len = u32();
    WP_THROW_INTERNAL_IF_NOT(len >= 1 && len <= value.size() - at, "point record truncated");
    const std::string_view n = value.substr(at, len);
    at += len;
    return n;
  };
  const uint32_t first = u32();
  if (first != kNamedMark) {
    floats(std::string_view(), first);
  } else {
    const uint32_t count = u32();
    for (uint32_t i = 0; i < count; ++i) {
      const std::string_view n = read_name();
      floats(n, u32());
    }
  }
  if (at < value.size() && value[at] == kSparseMark) {
    ++at;
    const uint32_t count = u32();
    for (uint32_t i = 0; i < count; ++i) {
      const std::string_view n = read_name();
      const uint32_t size = u32();
      WP_THROW_INTERNAL_IF_NOT((value.size() - at) / 8 >= size, "point record truncated");
      sparse(n, size, value.data() + at, value.data() + at + size_t{size} * 4);
      at += size_t{size} * 8;
    }
  }
  return at;
}

}  // namespace wp::engine
