#pragma once
/**
 * @file collection.h
 * Collection: the points of one collection, durable in a PointStore (RocksDB) and searchable
 * through an in-memory index that is derived from the store.
 *
 * Concurrency: one writer at a time (write_mu_), many readers. A write validates everything
 * first (a batch with one bad point writes nothing), commits to the store (WAL, fsynced when the
 * client asked wait=true), then applies to memory under the exclusive side of mu_; searches hold
 * the shared side, so they run in parallel with each other and see a write as soon as it returns.
 *
 * Index files are derived data: on close the index is saved with the store's sequence number;
 * on open it is loaded only when that number still matches and the file passes every check,
 * otherwise rebuilt from the store.
 */
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/auto_tune.h"
#include "engine/collection_config.h"
#include "engine/filter.h"
#include "engine/index_request.h"
#include "engine/payload_index.h"
#include "engine/point_id.h"
#include "engine/point_store.h"
#include "engine/rw_mutex.h"
#include "index/index.h"

namespace wp::engine {

/// A point as written by a client.
struct PointWrite {
  PointId id;
  std::vector<float> vector;
  nlohmann::json payload = nlohmann::json::object();
};

/// A point as read back.
struct PointRead {
  PointId id;
  nlohmann::json payload;     ///< null unless asked for
  std::vector<float> vector;  ///< empty unless asked for
};

/// One operation of a write batch (Qdrant's POST points/batch; also each single write route).
struct WriteOp {
  enum class Kind { kUpsert, kUpdateVectors, kDelete, kEditPayload };
  Kind kind = Kind::kUpsert;
  std::vector<PointWrite> points;  ///< kUpsert (validated here), kUpdateVectors (payload unused)
  /// kDelete and kEditPayload: the points by id, else those `filter` matches (every point when
  /// it is null). kEditPayload needs every id to exist; kDelete ignores missing ones.
  std::optional<std::vector<PointId>> ids;
  const Filter* filter = nullptr;             ///< not owned
  std::function<void(nlohmann::json&)> edit;  ///< kEditPayload: changes a payload in place
  std::string where;  ///< prefix of this operation's fields in messages ("operations[2].upsert.")
};

struct ScoredPoint {
  PointRead point;
  float score = 0;  ///< Qdrant's score: similarity for Cosine/Dot, Euclidean distance for Euclid
};

struct SearchQuery {
  std::vector<float> vector;
  size_t limit = 10;
  size_t offset = 0;
  const Filter* filter = nullptr;  ///< not owned
  size_t ef = 0;                   ///< 0: the collection's default
  bool exact = false;
  bool with_payload = false;
  bool with_vector = false;
  std::optional<float> score_threshold;
};

/// State of the collection's index and of a background rebuild.
struct IndexStatus {
  std::string state = "ready";  ///< "ready", "building", "tuning" or "failed"
  index::IndexSpec served;      ///< kind and parameters of the index being served
  double progress = 1.0;        ///< of the running build, 0..1
  std::string error;            ///< why the last build failed
  /// What the running (or failed) build makes; none while tuning has not chosen yet.
  std::optional<index::IndexSpec> target;
  std::optional<tune::AutoTuneOutcome> tune;  ///< the last `auto` tuning's outcome
};

/// What a collection holds (http/ renders Qdrant's info object from it).
struct CollectionInfo {
  size_t points = 0;
  CollectionConfig config;
  /// Internal ids in use or free for reuse: the length of the per-point tables (the most
  /// points ever live at once, not the upserts ever made).
  size_t slots = 0;
  struct PayloadField {
    PayloadSchema schema;
    size_t points;        ///< points with an indexed value
    size_t memory_bytes;  ///< of the index
  };
  std::map<std::string, PayloadField> payload_fields;  ///< the payload indexes by key
};

class Collection {
 public:
  /// Opens (or creates, with `config`) the collection stored in `dir`.
  Collection(std::string name, std::string dir, const std::optional<CollectionConfig>& config);
  ~Collection();

  const std::string& name() const { return name_; }
  /// The configuration now (a copy: a rebuild may change its index part meanwhile).
  CollectionConfig config() const;
  /// Dimension and metric never change: readable without a lock.
  size_t dim() const { return dim_; }
  index::Metric metric() const { return metric_; }
  const std::string& dir() const { return dir_; }

  /**
   * Applies `ops` in order, each seeing what the ones before it did, as one atomic write: every
   * operation is validated against the state the previous ones leave, then all changes go to the
   * store in one batch, then to memory and the index. A UserError (naming the operation's field)
   * or NotFoundError in any operation writes nothing. Returns per operation the points it wrote
   * or removed.
   */
  std::vector<size_t> apply(std::vector<WriteOp> ops, bool wait);
  /// apply() of one operation; returns the points it wrote or removed.
  size_t apply_one(WriteOp op, bool wait);
  /// Validates every point (dimension, finite values, object payload), then writes all of them.
  void upsert(std::vector<PointWrite> points, bool wait);
  /// Qdrant's update_vectors: new vectors for existing points (payloads kept); every id must
  /// exist (NotFoundError naming it, nothing written) and every vector be valid.
  void update_vectors(std::vector<PointWrite> points, bool wait);
  /// Removes the given ids (missing ones are ignored); returns how many existed.
  size_t remove(const std::vector<PointId>& ids, bool wait);
  /// Removes every point the filter matches; returns how many.
  size_t remove_matching(const Filter& filter, bool wait);
  /**
   * Qdrant's payload edits (set, overwrite, delete keys, clear; payload_edit.h): applies `edit`
   * to the payload of each point among `ids` (every one must exist, else NotFoundError naming
   * it and nothing is written) or, when `ids` is null, of every point `filter` matches; writes
   * the new payloads in one atomic batch (vectors and the index are untouched). An edit that
   * throws writes nothing. Returns how many points were edited.
   */
  size_t edit_payloads(const std::vector<PointId>* ids, const Filter* filter,
                       const std::function<void(nlohmann::json&)>& edit, bool wait);

  /**
   * Indexes the payload values at `key` (a key path) as `schema` says, from the live points
   * (writes wait meanwhile; searches go on); the schema is stored and the index rebuilt at every
   * open. Replaces an index of the same key. Filters with conditions on `key` then find their
   * candidates from it (Filter::candidates). UserError for a bad key path.
   */
  void create_payload_index(const std::string& key, PayloadSchema schema);
  /// Drops the payload index of `key`; NotFoundError when there is none.
  void delete_payload_index(const std::string& key);

  /// One value of a facet and the points holding it.
  struct FacetHit {
    nlohmann::json value;
    size_t count;
  };
  /**
   * Qdrant's facet: the `limit` values at `key` held by the most points (among those `filter`
   * holds for, when given), most first, ties by value; counts are exact. Needs a payload index
   * of `key` (UserError naming `key` otherwise, as Qdrant).
   */
  std::vector<FacetHit> facet(const std::string& key, const Filter* filter, size_t limit) const;

  std::vector<ScoredPoint> search(const SearchQuery& q) const;
  /// The points among `ids` that exist, in the order asked.
  std::vector<PointRead> retrieve(const std::vector<PointId>& ids, bool with_payload,
                                  bool with_vector) const;
  size_t count(const Filter* filter) const;

  struct Page {
    std::vector<PointRead> points;
    std::optional<PointId> next;  ///< offset of the next page
  };
  /// Points in id order from `offset`, `limit` at most, filtered.
  Page scroll(const Filter* filter, size_t limit, const std::optional<PointId>& offset,
              bool with_payload, bool with_vector) const;

  /// Qdrant's order_by: points by the numbers at `key` (which needs an integer or float payload
  /// index; UserError naming `key` otherwise), ascending or descending, from `start_from` on
  /// (inclusive), among those `filter` holds for; a point with several values comes once per
  /// value, as in Qdrant. At most `limit`.
  struct Ordered {
    double value;
    PointRead point;
  };
  std::vector<Ordered> ordered(const std::string& key, bool descending,
                               std::optional<double> start_from, const Filter* filter, size_t limit,
                               bool with_payload, bool with_vector) const;

  size_t size() const;
  CollectionInfo info() const;

  /**
   * Builds a new index as `spec` says (its metric is the collection's whatever it holds; kind
   * "rl" is learnt by the builder learn/ registers, learned_index.h, with the job's `learned`
   * parameters) from the current points in a background thread and swaps it in atomically when
   * done; the new configuration is stored. Searches keep using the old index meanwhile, and so do
   * writes, which the swap replays into the new index (no write is lost, none waits for the
   * build). Throws
   * ConflictError while another build runs, UserError for invalid parameters or a learned kind
   * this binary cannot build.
   */
  void rebuild_index(const index::IndexSpec& spec,
                     const nlohmann::json& learned = nlohmann::json::object());
  /**
   * `{"type": "auto"}`: tunes an index configuration for `req` on a snapshot of the points in a
   * background thread (tune::auto_tune; writes go on meanwhile), then builds the best
   * configuration as rebuild_index() does. Progress and the outcome are in index_status().
   * Throws ConflictError while another build runs, UserError with too few points.
   */
  void auto_index(const AutoTuneRequest& req);
  IndexStatus index_status() const;
  /// Waits for a running build to finish (tests, shutdown).
  void wait_for_build();

  /// Saves the index file beside the store (called on shutdown).
  void save_index() const;
  /**
   * A consistent copy of the collection in folder `dir` (created; it must not exist): a RocksDB
   * checkpoint of the store in `dir/store` and the index saved at the checkpoint's sequence
   * number, so that opening the copy loads the index rather than rebuilding it. Writes wait
   * meanwhile; searches go on.
   */
  void checkpoint_to(const std::string& dir);
  /// True when the index was loaded from its file at open rather than rebuilt.
  bool index_loaded_from_file() const { return index_from_file_; }

 private:
  struct Entry {
    PointId id;
    nlohmann::json payload;
    bool live = false;
  };
  void load();
  /// Runs `job` in the builder thread with status `state` and `target`, then "ready" (or
  /// "failed").
  void start_job(const std::string& state, const std::optional<index::IndexSpec>& target,
                 std::function<void()> job);
  /// The live points' vectors (from the served index) and internal ids.
  void snapshot(index::Matrix& vectors, std::vector<index::label_t>& labels) const;
  /// With writes held back: builds `next` from the live points, stores it, swaps it in.
  void build_and_swap(const index::IndexSpec& next, const nlohmann::json& learned);
  PointRead read_point(uint64_t internal, bool with_payload, bool with_vector) const;
  /// Writes the index file and its meta (`sequence`: the store's) into `folder`; the caller
  /// holds mu_.
  void save_index_files(const std::string& folder, uint64_t sequence) const;
  /// Calls fn(internal id) for every live point `filter` holds for: the candidates of the payload
  /// indexes when they narrow it, else every live point. The caller holds mu_ or write_mu_.
  template <typename F>
  void for_each_match(const Filter& filter, const F& fn) const;
  /// Builds the index of `key` from the live points (the caller holds write_mu_).
  std::unique_ptr<FieldIndex> build_field_index(const std::string& key, PayloadSchema schema) const;
  float score_of(float distance) const;
  /// Removes the points from memory and the index (the store has already); holds mu_.
  void apply_removals(const std::vector<PointId>& ids);
  /// Writes validated points and removals (store in one batch, then memory and index); the
  /// caller holds write_mu_.
  void commit(std::vector<PointWrite> points, const std::vector<PointId>& removals, bool wait);

  std::string name_;
  std::string dir_;
  CollectionConfig config_;  ///< guarded by mu_ (its index part changes with a rebuild)
  size_t dim_ = 0;           ///< config_.dim, set once at open
  index::Metric metric_{};   ///< config_.metric(), set once at open
  std::unique_ptr<PointStore> store_;

  std::mutex write_mu_;  ///< one writer at a time
  /// While a rebuild runs: the labels writes have added, replaced or removed since its snapshot
  /// (replayed into the new index at the swap). Guarded by write_mu_.
  std::optional<std::unordered_set<uint64_t>> touched_during_build_;
  mutable RwMutex mu_;  ///< guards everything below (writers first: rw_mutex.h)
  std::unordered_map<PointId, uint64_t> internal_of_;
  std::vector<Entry> entries_;  ///< by internal id
  uint64_t next_internal_ = 0;
  /// Internal ids of removed points, reused (last first) by points upserted later, so that
  /// entries_, the index's label maps and filter bitsets stay as large as the most points ever
  /// live at once, not the number of upserts ever made. Changed only by the writer.
  std::vector<uint64_t> free_internal_;
  size_t live_ = 0;
  std::unique_ptr<index::Index> index_;
  PayloadIndexes payload_indexes_;  ///< of the live points' payloads, as config_ says
  bool index_from_file_ = false;

  mutable std::mutex build_mu_;  ///< guards status_ and builder_
  IndexStatus status_;
  std::atomic<double> build_progress_{1.0};
  std::thread builder_;
};

}  // namespace wp::engine
