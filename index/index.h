#pragma once
/**
 * @file index.h
 * The abstract Index every index family implements (flat, hnsw, rl graph, lsh), in the manner of
 * faiss::Index: batch calls over row-major float buffers, with every search reporting its work.
 */
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "index/id_filter.h"
#include "index/matrix.h"
#include "index/metric.h"

namespace wp::index {

class BinaryReader;
class BinaryWriter;

/// External id of a vector (Qdrant's point id space: unsigned 64 bits).
using label_t = uint64_t;

/// Marks an empty result slot (fewer than k results were found).
constexpr label_t kNoLabel = std::numeric_limits<label_t>::max();

/// Work done by one or more searches (summed over queries in batch calls).
struct SearchStats {
  uint64_t distance_computations = 0;  ///< distances between the query and stored vectors
  uint64_t hops = 0;                   ///< graph vertices expanded (0 for non-graph indexes)

  SearchStats& operator+=(const SearchStats& o) {
    distance_computations += o.distance_computations;
    hops += o.hops;
    return *this;
  }
};

/// Per-search parameters. Defaults come from the index when a field is left at 0.
struct SearchParams {
  /// Beam width (HNSW's ef). 0: the index's default ef_search. Always raised to at least k.
  size_t ef = 0;
  /// Only ids the filter contains are returned; null means no filter. Not owned.
  const IdFilter* filter = nullptr;
  /// Exact scan instead of the approximate structure.
  bool exact = false;

  /// Throws UserError when a field is out of range.
  void validate() const;
};

/// Results of a batch search: row i holds the k best of query i, nearest first.
struct SearchResult {
  size_t n = 0;
  size_t k = 0;
  std::vector<label_t> labels;   ///< n * k, kNoLabel where fewer than k were found
  std::vector<float> distances;  ///< n * k, the index's distance (smaller is closer): squared L2,
                                 ///< or minus the inner product for ip and cosine
  SearchStats stats;             ///< summed over the n queries

  SearchResult() = default;
  SearchResult(size_t nq, size_t kk)
      : n(nq), k(kk), labels(nq * kk, kNoLabel), distances(nq * kk, 0.0f) {}
};

/// Upper bound on k for any search.
constexpr size_t kMaxK = 10000;

/// Abstract vector index.
class Index {
 public:
  Index(size_t dim, Metric metric);
  virtual ~Index() = default;
  Index(const Index&) = delete;
  Index& operator=(const Index&) = delete;

  size_t dim() const { return dim_; }
  Metric metric() const { return metric_; }

  /// Short type name: "flat", "hnsw", ...
  virtual const char* type_name() const = 0;

  /// Number of live (searchable) vectors.
  virtual size_t size() const = 0;

  /// True when `id` is live in the index.
  virtual bool contains(label_t id) const = 0;

  /// Copies the stored vector of `id` (dim() floats; normalised for cosine) into `out`;
  /// returns false when `id` is not live.
  virtual bool get_vector(label_t id, float* out) const = 0;

  /**
   * Adds (or replaces, when an id is already present) x.n vectors.
   * @param x   x.n vectors of dimension dim(); every value must be finite
   * @param ids x.n external ids
   * Throws UserError on a dimension mismatch or a non-finite value; nothing is added then.
   */
  virtual void add(MatrixView x, const label_t* ids) = 0;

  /**
   * add() in two steps, for a writer that lets searches run while the slow part goes on:
   * place() does all that a search must not see half done (replacing, growing, storing the
   * vectors), with no search running; link() the rest (a graph links the placed vectors in)
   * while searches of the index may run beside it, and see each placed vector whole or not at
   * all. The caller is the index's only writer and calls link() after each place(), before any
   * other change; link() uses at most `threads` threads (0: OpenMP's default, every core). The
   * default places by add() and links nothing.
   */
  virtual void place(MatrixView x, const label_t* ids) { add(x, ids); }
  virtual void link(size_t threads) {}

  /// The most threads that writing into this index uses, whatever link() or add() is asked
  /// (Qdrant's hnsw_config.max_indexing_threads; 0, the default: no limit): HNSW's inserts,
  /// repairs and code re-encodings, a pruned graph's build, LSH's hashing and refits. A setting
  /// of the running index, not saved with it: its owner sets it again after a load. May be
  /// changed between writes.
  virtual void set_max_insert_threads(size_t n) { max_insert_threads_ = n; }
  size_t max_insert_threads() const { return max_insert_threads_; }

  /// Removes `id`; returns false when it was not present.
  virtual bool remove(label_t id) = 0;

  /// Removes `n` ids at once (absent ones are skipped); returns how many were present. Indexes
  /// that repair their structure after removals do it once for the batch (HNSW consolidates at
  /// most once), so a large delete costs about what the same number of inserts costs.
  virtual size_t remove_batch(const label_t* ids, size_t n);

  /// Grows storage for `n` vectors in all, so that adding them reallocates nothing (a hint:
  /// indexes without preallocated storage ignore it).
  virtual void reserve(size_t n) {}

  /// Readies room for `n` more vectors while searches may run: the caller is the index's only
  /// writer, and what growing needs (a rehash of the id table) is made aside, without changing
  /// anything a search reads, for the next add() to take (if nothing changed in between). The
  /// collection calls it before taking its exclusive lock, so that searches do not wait for the
  /// rehash. A hint: the default does nothing.
  virtual void prepare_add(size_t n) {}

  /// True when the first add() builds the whole structure and later batches are only linked in
  /// (a pruned graph): such an index is built from all its vectors in one batch (add_all).
  virtual bool builds_from_one_batch() const { return false; }

  /**
   * Searches the k nearest neighbours of one query.
   * @param q         dim() floats
   * @param labels    out, k ids (kNoLabel padding)
   * @param distances out, k distances, nearest first
   * Safe to call from several threads at once, and beside link(); not while the index is
   * otherwise modified.
   */
  virtual SearchStats search_one(const float* q, size_t k, const SearchParams& params,
                                 label_t* labels, float* distances) const = 0;

  /// Batch search of q.n queries (OpenMP over queries); validates arguments first.
  SearchResult search(MatrixView q, size_t k, const SearchParams& params = {}) const;

  /// Writes the index to `path` (atomically: a temporary file renamed into place).
  virtual void save(const std::string& path) const = 0;

  /// Bytes of memory held by the index's data structures.
  virtual size_t memory_bytes() const = 0;

 protected:
  /// Throws UserError unless x.d == dim() and all values are finite.
  void check_vectors(MatrixView x, const char* what) const;
  /// Throws UserError unless 1 <= k <= kMaxK.
  static void check_k(size_t k);

  /// The threads a write runs on when asked for `threads` (0: every core OpenMP gives the
  /// calling thread), within max_insert_threads(): a num_threads clause, or an OmpTeamScope
  /// (index/omp_team.h) around code that starts its own regions.
  int insert_team(size_t threads) const;

  /// Every index payload starts with its dimension and metric.
  void write_dim_metric(BinaryWriter& out) const;
  /// Reads what write_dim_metric wrote, checking both.
  static std::pair<size_t, Metric> read_dim_metric(BinaryReader& in);

  size_t dim_;
  Metric metric_;
  size_t max_insert_threads_ = 0;
};

/**
 * Adds the rows of `x` (row i gets id ids[i]) the way `idx` builds best: storage reserved first,
 * then one batch when it builds from one batch, else batches of `chunk` rows; `progress(rows)`
 * (optional) after each batch.
 */
void add_all(Index& idx, MatrixView x, const label_t* ids, size_t chunk = 10000,
             const std::function<void(size_t rows_done)>& progress = {});

/// Loads any index written by Index::save, dispatching on the file's type tag.
std::unique_ptr<Index> load_index(const std::string& path);

}  // namespace wp::index
