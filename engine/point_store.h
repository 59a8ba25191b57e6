#pragma once
/**
 * @file point_store.h
 * PointStore: the durable copy of one collection, a RocksDB database in the collection's folder.
 *
 *   "m:<name>"        metadata (the collection config)
 *   "p:<PointId key>" a point: uint64 internal id | vectors | payload (MessagePack), where the
 *                     vectors are, for the unnamed vector alone, uint32 dim | dim floats, and
 *                     otherwise uint32 0xFFFFFFFF | uint32 count | count times (uint32 name
 *                     length | name | uint32 dim | dim floats)
 *
 * Writes go through RocksDB's write-ahead log as one atomic WriteBatch; with `sync` the WAL is
 * fsynced before apply() returns (Qdrant's wait=true). Without sync the write has reached the
 * operating system, so it survives the death of the process (kill -9) but not of the machine.
 */
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/point_id.h"

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

  /// RocksDB's latest sequence number: changes with every write.
  uint64_t sequence() const;

  /// A consistent copy of the database in `dir` (which must not exist): RocksDB's checkpoint,
  /// hard links where it can. Returns the sequence number the copy holds.
  uint64_t checkpoint(const std::string& dir) const;

  /// A record as stored (value: internal id, vectors, MessagePack payload) and back;
  /// decode throws InternalError on a damaged key or value (public for its fuzz target).
  static std::string encode(const Record& r);
  static Record decode(const std::string& key, const std::string& value);

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::string dir_;
};

}  // namespace wp::engine
