#pragma once
/**
 * @file collection.h
 * Collection: the points of one collection, durable in a PointStore (RocksDB) and searchable
 * through an in-memory index that is derived from the store.
 *
 * Concurrency: one writer at a time (write_mu_), many readers. A write validates everything
 * first (a batch with one bad point writes nothing), commits to the store (WAL, fsynced when the
 * client asked wait=true), then applies to memory under the exclusive side of mu_, a piece at a
 * time, linking new points into the index under the shared side; searches hold the shared side,
 * so they run in parallel with each other and with the linking, and see a write as soon as it
 * returns.
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
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/auto_tune.h"
#include "engine/chunked_vector.h"
#include "engine/collection_config.h"
#include "engine/filter.h"
#include "engine/index_request.h"
#include "engine/payload_index.h"
#include "engine/point_id.h"
#include "engine/point_store.h"
#include "engine/rw_mutex.h"
#include "index/index.h"
#include "index/slot_table.h"

namespace wp::engine {

/// A point as written by a client: its vectors by name ("" alone in a collection of one unnamed
/// vector; in a collection of named vectors, any of its names).
struct PointWrite {
  PointId id;
  NamedVectors vectors;
  nlohmann::json payload = nlohmann::json::object();
  SparseVectors sparse = {};  ///< its sparse vectors by name (the collection's sparse names)
  MultiVectors multi = {};    ///< its multivectors by name ("" alone: the unnamed multivector)
};

/// Which vectors a read returns: none, all, or the named ones (Qdrant's with_vector).
struct VectorSelector {
  VectorSelector(bool all = false) : all(all) {}  // NOLINT: with_vector true or false
  explicit VectorSelector(std::vector<std::string> names) : names(std::move(names)) {}
  bool all = false;
  std::vector<std::string> names;
  bool any() const { return all || !names.empty(); }
  bool wants(const std::string& name) const;
};

/// A point as read back.
struct PointRead {
  PointId id;
  nlohmann::json payload;     ///< null unless asked for
  NamedVectors vectors;       ///< those asked for that the point has
  SparseVectors sparse = {};  ///< the sparse ones asked for that the point has
  MultiVectors multi = {};    ///< the multivectors asked for that the point has
};

/// One operation of a write batch (Qdrant's POST points/batch; also each single write route).
struct WriteOp {
  enum class Kind { kUpsert, kUpdateVectors, kDelete, kEditPayload, kDeleteVectors };
  Kind kind = Kind::kUpsert;
  /// kUpsert (validated here; a point's vectors and payload replace the old ones),
  /// kUpdateVectors (the vectors given replace those of the same name; payload unused).
  std::vector<PointWrite> points;
  /// kDelete, kEditPayload and kDeleteVectors: the points by id, else those `filter` matches
  /// (every point when it is null). kEditPayload and kDeleteVectors need every id to exist;
  /// kDelete ignores missing ones.
  std::optional<std::vector<PointId>> ids;
  std::vector<std::string> vector_names;  ///< kDeleteVectors: the vectors removed from the points
  const Filter* filter = nullptr;         ///< not owned
  std::function<void(nlohmann::json&)> edit;  ///< kEditPayload: changes a payload in place
  std::string where;  ///< prefix of this operation's fields in messages ("operations[2].upsert.")
};

struct ScoredPoint {
  PointRead point;
  float score = 0;  ///< Qdrant's score: similarity for Cosine/Dot, Euclidean distance for Euclid
};

struct SearchQuery {
  std::vector<float> vector;
  /// The query of a sparse space (vector_name names one; `vector` is then unused).
  std::optional<SparseVector> sparse;
  /// The query of a multivector space (vector_name names one; `vector` is then unused).
  std::optional<MultiVector> multi;
  std::string vector_name;  ///< the space searched (Qdrant's `using`); "" is the unnamed vector
  size_t limit = 10;
  size_t offset = 0;
  const Filter* filter = nullptr;  ///< not owned
  size_t ef = 0;                   ///< 0: the collection's default
  bool exact = false;
  bool with_payload = false;
  VectorSelector with_vector;
  std::optional<float> score_threshold;
};

/// State of the collection's index and of a background rebuild.
struct IndexStatus {
  std::string vector;           ///< the vector space ("" is the unnamed vector)
  std::string state = "ready";  ///< "ready", "building", "tuning" or "failed"
  index::IndexSpec served;      ///< kind and parameters of the index being served
  /// The most threads inserting into the served index uses (Index::max_insert_threads; 0: no
  /// limit).
  size_t max_insert_threads = 0;
  double progress = 1.0;  ///< of the running build, 0..1
  std::string error;      ///< why the last build failed
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
    TextParams text;      ///< of a text index: how it reads texts
  };
  std::map<std::string, PayloadField> payload_fields;  ///< the payload indexes by key
  std::map<std::string, size_t>
      vectors;  ///< how many points hold each vector, by name (sparse too)
};

/// Where a collection's memory goes, in bytes (estimated from the containers' layouts).
struct MemoryUse {
  std::map<std::string, size_t> vectors;  ///< each space's index: vectors, codes and graph
                                          ///< (a sparse space's: its vectors and postings)
  size_t payloads = 0;                    ///< the payloads held in memory (JSON trees) for filters
  size_t payload_indexes = 0;             ///< the payload indexes' postings
  size_t points = 0;                      ///< the per-point tables: id map, entries, free ids
  size_t total() const;
};

/// The dimension and metric of one vector space (fixed when the collection is created).
struct VectorShape {
  std::string name;
  size_t dim = 0;
  index::Metric metric{};
};

class Collection {
 public:
  /// Opens (or creates, with `config`) the collection stored in `dir`.
  Collection(std::string name, std::string dir, const std::optional<CollectionConfig>& config);
  ~Collection();

  const std::string& name() const { return name_; }
  /// The configuration now (a copy: a rebuild may change its index part meanwhile).
  CollectionConfig config() const;
  /// The vector spaces' names, dimensions and metrics never change: readable without a lock.
  /// The space `name` ("" is the unnamed vector); UserError naming `field` when there is none.
  const VectorShape& vector_shape(const std::string& name, const std::string& field) const;
  const std::vector<VectorShape>& vector_shapes() const { return shapes_; }
  /// Whether the collection's vectors are named (not the one unnamed vector).
  bool named() const { return named_; }
  /// Whether the collection has sparse vector spaces (a point's vectors are then named).
  bool has_sparse() const { return !sparse_.empty(); }
  /// Whether `name` is a sparse vector space of the collection.
  bool is_sparse(std::string_view name) const { return find_sparse(name).has_value(); }
  /// Whether `name` is a multivector space of the collection.
  bool is_multi(std::string_view name) const { return find_multi(name).has_value(); }
  /// Whether the collection has multivector spaces.
  bool has_multi() const { return !multi_.empty(); }
  /// The sum of the spaces' dimensions: the most floats a point's vectors hold.
  size_t total_dim() const { return total_dim_; }
  /// The most numbers a point's vectors may hold in an answer: total_dim() and, for each sparse
  /// space, twice (an index and a value) the most dimensions a vector there has had, and for
  /// each multivector space the most values a point's vectors there have had.
  size_t most_vector_values() const;
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
  /**
   * apply() for a shard replica of a cluster: `sequence` is the write's place in its shard's
   * order, stored in the same atomic (synced) write as the operations, also when they change
   * nothing, so that after a crash the replica knows exactly which writes it holds.
   */
  std::vector<size_t> apply_sequenced(std::vector<WriteOp> ops, uint64_t sequence, uint64_t term);
  /// The sequence of the last apply_sequenced() (0: none), read from the store at open.
  uint64_t applied_sequence() const { return applied_sequence_; }
  /// The term given with it (which primary numbered it: a sequence is one write only within a
  /// term).
  uint64_t applied_term() const { return applied_term_; }
  /// Validates every point (dimension, finite values, object payload), then writes all of them.
  void upsert(std::vector<PointWrite> points, bool wait);
  /// Qdrant's update_vectors: new vectors for existing points (payloads and the vectors of other
  /// names kept); every id must exist (NotFoundError naming it, nothing written) and every vector
  /// be valid.
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
   * candidates from it (Filter::candidates). A text index reads texts as `text` says, and
   * match.text conditions on `key` read a point's text and a query's as it does. UserError for a
   * bad key path.
   */
  void create_payload_index(const std::string& key, PayloadSchema schema, TextParams text = {});
  /// How the text index of `key` reads texts (nullptr without one: the default TextParams). The
  /// caller holds the collection's lock, shared or not, as filters are tested under it.
  const TextParams* text_params_of(std::string_view key) const;
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
  /**
   * Scores the points among `ids` exactly against `q.vector` in space `q.vector_name` (Qdrant's
   * query over prefetched candidates): those the filter holds for and that have that vector,
   * best first, from `q.offset`, at most `q.limit`, within `q.score_threshold`.
   */
  std::vector<ScoredPoint> rescore(const std::vector<PointId>& ids, const SearchQuery& q) const;
  /// Calls fn(id, payload, holds) for each live point among `ids`, once (where first named), under
  /// the collection's lock: its payload as held (read it in place), and holds(filter) whether a
  /// filter holds for it as a search's filter tests it. Qdrant's formula query reads the points
  /// it scores so.
  void visit(const std::vector<PointId>& ids,
             const std::function<void(const PointId&, const PackedPayload&,
                                      const std::function<bool(const Filter&)>&)>& fn) const;
  /// The points among `ids` that exist, in the order asked.
  std::vector<PointRead> retrieve(const std::vector<PointId>& ids, bool with_payload,
                                  const VectorSelector& with_vector) const;
  size_t count(const Filter* filter) const;
  /// Up to `n` points drawn at random, uniformly and without repeats, from the live points that
  /// pass `filter` (null or empty: every point) and, when `holding` names a vector space
  /// (UserError naming `using` if none), hold a vector in it; in random order, read with what is
  /// asked of them (Qdrant's {"sample": "random"} and the distance matrix's sample).
  std::vector<PointRead> sample(const Filter* filter, size_t n, bool with_payload,
                                const VectorSelector& with_vector,
                                const std::string* holding = nullptr) const;

  struct Page {
    std::vector<PointRead> points;
    std::optional<PointId> next;  ///< offset of the next page
  };
  /// Points in id order from `offset`, `limit` at most, filtered.
  Page scroll(const Filter* filter, size_t limit, const std::optional<PointId>& offset,
              bool with_payload, const VectorSelector& with_vector) const;

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
                               bool with_payload, const VectorSelector& with_vector) const;

  size_t size() const;
  CollectionInfo info() const;
  /// Where the collection's memory goes.
  MemoryUse memory() const;
  /// Payloads that filters have tested one by one, since the collection was opened (a point a
  /// payload index served exactly is not tested): a filter on a key without a payload index
  /// tests many (/metrics: waypoint_filter_payload_tests_total).
  uint64_t filter_payload_tests() const { return payload_tests_.load(std::memory_order_relaxed); }

  /**
   * Builds a new index of vector space `vector` as `spec` says (its metric is the space's
   * whatever it holds; kind
   * "rl" is learnt by the builder learn/ registers, learned_index.h, with the job's `learned`
   * parameters) from the current points in a background thread and swaps it in atomically when
   * done; the new configuration is stored. Searches keep using the old index meanwhile, and so do
   * writes, which the swap replays into the new index (no write is lost, none waits for the
   * build). Throws
   * ConflictError while another build runs, UserError for invalid parameters or a learned kind
   * this binary cannot build.
   */
  void rebuild_index(const index::IndexSpec& spec,
                     const nlohmann::json& learned = nlohmann::json::object(),
                     const std::string& vector = "");
  /// rebuild_index() of several spaces (by name) in one background job, one after the other.
  void rebuild_indexes(const std::map<std::string, index::IndexSpec>& specs);
  /**
   * `{"type": "auto"}`: tunes an index configuration for `req` on a snapshot of the points in a
   * background thread (tune::auto_tune; writes go on meanwhile), then builds the best
   * configuration as rebuild_index() does. Progress and the outcome are in index_status().
   * Throws ConflictError while another build runs, UserError with too few points.
   */
  void auto_index(const AutoTuneRequest& req, const std::string& vector = "");
  /// The index of space `vector` and the collection's build (one at a time for all spaces).
  IndexStatus index_status(const std::string& vector = "") const;
  /// Waits for a running build to finish (tests, shutdown).
  void wait_for_build();

  /// Saves the index files beside the store (called on shutdown), unless those there already
  /// hold its state (written or read at the store's present sequence: nothing changed since).
  void save_index() const;

  /// Sets the most threads that insert into the index of each named vector (Qdrant's
  /// hnsw_config.max_indexing_threads; 0: as the server chooses, set_link_threads), stored with
  /// the collection's config and applied from the next write on, without a rebuild. UserError
  /// naming `vectors` for a name the collection lacks.
  void set_max_indexing_threads(const std::map<std::string, size_t>& threads);

  /// Sets how the named sparse spaces weigh queries (Qdrant's collection update of a sparse
  /// vector's `modifier`), stored with the collection's config; the next queries use it, nothing
  /// is rebuilt (the postings do not depend on it). UserError naming `sparse_vectors` for a name
  /// that is not a sparse space.
  void set_sparse_modifiers(const std::map<std::string, SparseModifier>& modifiers);

  /// Threads that link a write's new points into an index, for every collection of the process
  /// (`serve --indexing-threads`). 0, the default: every core but one (at least one) while
  /// searches come in, every core while none does (link_threads).
  static void set_link_threads(size_t n);
  /// The threads that setting gives a piece of a write (0: every core), `searched` when a search
  /// came in since the last piece.
  static size_t link_threads(bool searched);
  /**
   * A consistent copy of the collection in folder `dir` (created; it must not exist): a RocksDB
   * checkpoint of the store in `dir/store` and the index saved at the checkpoint's sequence
   * number, so that opening the copy loads the index rather than rebuilding it. Writes wait
   * meanwhile; searches go on.
   */
  void checkpoint_to(const std::string& dir);
  /// True when every space's index was loaded from its file at open rather than rebuilt.
  bool index_loaded_from_file() const { return index_from_file_; }

 private:
  struct Entry {
    PointId id;
    PackedPayload payload;  ///< MessagePack: filters read it in place
    bool live = false;
  };
  void load();
  /// How ids_ reads the id of an internal id: from its entry.
  auto id_of() const {
    return [this](uint64_t internal) -> const PointId& { return entries_[internal].id; };
  }
  /// The internal id of point `id`, if it is live (the caller holds mu_ or write_mu_).
  std::optional<uint64_t> internal_of(const PointId& id) const {
    return ids_.find(id, id_of(), std::hash<PointId>());
  }
  /// The position of space `name` in shapes_ and indexes_ (UserError naming `field` if none).
  size_t space_of(const std::string& name, const std::string& field) const;
  std::optional<size_t> find_space(std::string_view name) const;
  /// The position of sparse space `name` in sparse_.
  std::optional<size_t> find_sparse(std::string_view name) const;
  /// A search or rescore of a sparse space (q.sparse): the points among `among` (all when null),
  /// highest dot product first; the caller holds mu_.
  std::vector<ScoredPoint> search_sparse(size_t space, const SearchQuery& q,
                                         const std::vector<PointId>* among) const;
  /// Checks a sparse query (its vector and limit); returns its sparse space.
  size_t check_sparse_query(const SearchQuery& q) const;
  /// The position of multivector space `name` in multi_.
  std::optional<size_t> find_multi(std::string_view name) const;
  /// A search or rescore of a multivector space (q.multi): the points among `among` (all when
  /// null), scored by MaxSim in an exact scan, highest first; ties by internal id.
  std::vector<ScoredPoint> search_multi(const SearchQuery& q,
                                        const std::vector<PointId>* among) const;
  /// A point's vectors as the store holds them (a multivector's values flat under its name)
  /// split back into `vectors` and `multi`.
  void split_multi(NamedVectors& vectors, MultiVectors& multi) const;
  /// `requested` with the metric of space `space`, validated.
  index::IndexSpec spec_for(size_t space, const index::IndexSpec& requested) const;
  /// UserError unless every name `sel` lists is a vector space (`field`: with_vector).
  void check_selector(const VectorSelector& sel, const std::string& field) const;
  /// Runs `job` in the builder thread with status `state` and `target` for space `vector`, then
  /// "ready" (or "failed").
  void start_job(const std::string& state, const std::string& vector,
                 const std::optional<index::IndexSpec>& target, std::function<void()> job);
  /// The vectors of space `space` the live points hold (from the served index), with their
  /// internal ids.
  void snapshot(size_t space, index::Matrix& vectors, std::vector<index::label_t>& labels) const;
  /// Builds `next` for space `space` from its vectors, stores it, swaps it in (writes go on
  /// and are replayed into it).
  void build_and_swap(size_t space, const index::IndexSpec& next, const nlohmann::json& learned);
  PointRead read_point(uint64_t internal, bool with_payload, const VectorSelector& sel) const;
  /// Checks a query (its space, dimension, values, limit, with_vector); returns its space.
  size_t check_query(const SearchQuery& q) const;
  /// Whether `score` passes `threshold` in `metric` (a distance for Euclid, a similarity else).
  static bool within(float score, const std::optional<float>& threshold, index::Metric metric);
  /// Writes the index files and their meta (`sequence`: the store's) into `folder`; the caller
  /// holds mu_.
  void save_index_files(const std::string& folder, uint64_t sequence) const;
  /// Calls fn(internal id) for every live point `filter` holds for: the candidates of the payload
  /// indexes when they narrow it, else every live point. The caller holds mu_ or write_mu_.
  template <typename F>
  void for_each_match(const Filter& filter, const F& fn) const;
  /// The same with the payload indexes' candidates already asked for (null: none narrow it).
  template <typename F>
  void for_each_match(const Filter& filter, const Candidates* candidates, const F& fn) const;
  /// Whether internal id `i` is a live point `filter` holds for (its payload tested).
  bool passes(const Filter& filter, uint64_t i) const;
  /// Whether `filter` holds for the point of entry `i` (live): its id, its payload and, for
  /// has_vector, the vectors its spaces' indexes hold (EntryFacts).
  bool filter_holds(const Filter& filter, uint64_t i) const;
  class EntryFacts;
  class LazyFilter;
  /**
   * What a search's index is given for `filter` (the caller holds mu_): the postings of the
   * payload indexes that list the matches exactly (tested by binary search as the walk reaches
   * points); a test of the payload of each point the index reaches when no index serves the
   * filter and probes of the points find matches (the index may then walk its graph and test
   * a few hundred); else the matches listed up front. Null when no point matches. `exact`: the
   * search scans, so the listed matches are what it needs.
   */
  std::unique_ptr<index::IdFilter> index_filter(const Filter& filter, bool exact) const;
  /// Builds the index of `key` from the live points (the caller holds write_mu_).
  std::unique_ptr<FieldIndex> build_field_index(const std::string& key, PayloadSchema schema,
                                                TextParams text) const;
  float score_of(float distance, index::Metric metric) const;
  /// Removes the points from memory and the index (the store has already); holds mu_.
  void apply_removals(const std::vector<PointId>& ids);
  /// Writes validated points and removals: the store in one batch, then memory and the indexes
  /// a piece of points at a time under mu_, new points linked into the indexes under its shared
  /// side (searches are answered between pieces and meanwhile, and find each point whole, as it
  /// was or as written); the caller holds write_mu_.
  /// A write's place in its shard's order (apply_sequenced).
  struct Sequence {
    uint64_t sequence, term;
  };
  void commit(std::vector<PointWrite> points, const std::vector<PointId>& removals, bool wait,
              const Sequence* sequence = nullptr);
  std::vector<size_t> apply_impl(std::vector<WriteOp> ops, bool wait, const Sequence* sequence);
  std::atomic<uint64_t> applied_sequence_{0}, applied_term_{0};

  std::string name_;
  std::string dir_;
  CollectionConfig config_;          ///< guarded by mu_ (its index part changes with a rebuild)
  std::vector<VectorShape> shapes_;  ///< of config_.vectors in name order, set once at open
  bool named_ = false;
  size_t total_dim_ = 0;
  std::unique_ptr<PointStore> store_;

  mutable std::mutex write_mu_;  ///< one writer at a time
  /// Searches begun (search()): a write links on fewer threads while they come in.
  mutable std::atomic<uint64_t> searches_{0};
  size_t write_piece_ = 64;  ///< points a piece of a write takes (commit); guarded by write_mu_
  /// While a rebuild runs: the labels writes have added, replaced or removed in any space since
  /// its snapshot
  /// (replayed into the new index at the swap). Guarded by write_mu_.
  std::optional<std::unordered_set<uint64_t>> touched_during_build_;
  mutable RwMutex mu_;  ///< guards everything below (writers first: rw_mutex.h)
  /// Point id -> internal id of the live points (the ids are entries_'s: id_of).
  index::SlotTable<uint64_t> ids_;
  ChunkedVector<Entry> entries_;  ///< by internal id (never moved: growing holds up no search)
  uint64_t next_internal_ = 0;
  /// Internal ids of removed points, reused (last first) by points upserted later, so that
  /// entries_, the index's label maps and filter bitsets stay as large as the most points ever
  /// live at once, not the number of upserts ever made. Changed only by the writer.
  std::vector<uint64_t> free_internal_;
  size_t live_ = 0;
  /// The index of each vector space, as shapes_; a point missing a vector is not in its index.
  std::vector<std::unique_ptr<index::Index>> indexes_;
  /// The sparse vector spaces by name (the name fixed at open; the modifier and the index
  /// guarded by mu_).
  struct SparseSpace {
    std::string name;
    SparseModifier modifier = SparseModifier::kNone;
    SparseIndex index;
  };
  std::vector<SparseSpace> sparse_;
  /// The multivector spaces (names and dimensions fixed at open; the vectors guarded by mu_).
  struct MultiSpace {
    std::string name;
    MultiVectorSpace vectors;
  };
  std::vector<MultiSpace> multi_;
  PayloadIndexes payload_indexes_;  ///< of the live points' payloads, as config_ says
  size_t payload_bytes_ = 0;        ///< heap bytes of the live points' packed payloads
  mutable std::atomic<uint64_t> payload_tests_{0};  ///< filter_payload_tests()
  bool index_from_file_ = false;
  /// The store's sequence at which the index files beside it were written or read, every space
  /// from its file (guarded by write_mu_). Every change to an index writes the store (points, or
  /// the config of a rebuilt index), so at that sequence the files hold what is served.
  mutable std::optional<uint64_t> files_at_;

  mutable std::mutex build_mu_;  ///< guards status_ and builder_
  IndexStatus status_;           ///< of the last build; status_.vector is the space it is of
  std::atomic<double> build_progress_{1.0};
  std::thread builder_;
};

}  // namespace wp::engine
