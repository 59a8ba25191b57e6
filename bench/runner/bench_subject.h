#pragma once
/**
 * @file bench_subject.h
 * One index under test in `waypoint bench`: ours (hnsw, flat) or a third-party baseline (FAISS
 * IndexHNSWFlat, hnswlib), all driven through the same calls so that the sweep, the timing and
 * the recall computation are identical for every contender.
 */
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/graph_params.h"
#include "index/index.h"
#include "index/matrix.h"

namespace wp::bench {

/// Parameters shared by every graph index of a run, so that ratios are fair.
struct GraphBuildParams {
  size_t M = 16;
  size_t ef_construction = 200;
  uint64_t seed = 100;
  index::Metric metric = index::Metric::kL2;
  size_t R = 0;  ///< maximum degree of knn-hnsw, robust-<alpha>, vamana-<alpha> (0: 2M); for
                 ///< equal-degree runs
  /// How the single-layer graphs (hnsw-l0, knn, knn-hnsw, robust-*, vamana-*, and rl when
  /// `entry_given`) are entered: at the medoid, or through HNSW's upper levels as `hnsw` is.
  index::GraphEntry entry = index::GraphEntry::kMedoid;
  bool entry_given = false;
};

/// The LSH indexes of a run: ours (scan, tables, learned planes) and FAISS IndexLSH, same bits.
struct LshBenchParams {
  size_t bits = 256;
  size_t tables = 8;       ///< lsh-mp: hash tables
  size_t key_bits = 0;     ///< lsh-mp: bits per table key (0: auto)
  size_t probes = 16;      ///< lsh-mp: buckets probed per table
  std::string hash_model;  ///< lsh-learned: a HashModel file (its own bit count)
};

// How the baselines, which have no cosine space, run on cosine: inner product of unit vectors,
// base rows and queries alike. Inline and self-contained (not index::normalize) because the
// hnswlib module links nothing of index/.

/// `v` scaled to unit length into `out` (a zero vector stays zero).
inline void normalise_into(const float* v, size_t d, float* out) {
  double sq = 0;
  for (size_t j = 0; j < d; ++j) sq += static_cast<double>(v[j]) * v[j];
  const float inv = sq > 0 ? static_cast<float>(1 / std::sqrt(sq)) : 0.0f;
  for (size_t j = 0; j < d; ++j) out[j] = v[j] * inv;
}

/// One vector as a baseline takes it: `v` itself, or for cosine its unit copy in a per-thread
/// buffer (valid until this thread's next call).
inline const float* as_baseline_vector(index::Metric metric, const float* v, size_t d) {
  if (metric != index::Metric::kCosine) return v;
  thread_local std::vector<float> unit;
  unit.resize(d);
  normalise_into(v, d, unit.data());
  return unit.data();
}

/// Every row of `base` as a baseline takes them: the matrix itself, or for cosine unit copies
/// held in `store`.
inline const float* as_baseline_rows(index::Metric metric, const index::Matrix& base,
                                     std::vector<float>& store) {
  if (metric != index::Metric::kCosine) return base.data.data();
  store.resize(base.data.size());
  for (size_t i = 0; i < base.n; ++i) normalise_into(base.row(i), base.d, &store[i * base.d]);
  return store.data();
}

class BenchSubject {
 public:
  virtual ~BenchSubject() = default;
  /// Name in the bench output ("hnsw", "faiss-hnsw", "hnswlib", "flat").
  virtual std::string name() const = 0;
  /// Builds over `base` (ids = row numbers) with `threads` OpenMP threads.
  virtual void build(const index::Matrix& base, int threads) = 0;
  /// True when the subject has a search-time beam width to sweep.
  virtual bool sweeps_ef() const { return true; }
  /// Sets the beam width for the following searches.
  virtual void set_ef(size_t ef) = 0;
  /**
   * Searches one query; writes k ids (kNoLabel padding) to `out`. Thread-safe.
   * @return the work done; distance_computations is meaningful only when counts_work()
   */
  virtual index::SearchStats search(const float* q, size_t k, index::label_t* out) const = 0;
  /// True when search() reports distance computations and hops.
  virtual bool counts_work() const { return false; }
  virtual size_t memory_bytes() const = 0;
  /// Build parameters as reported in each JSON line.
  virtual nlohmann::json build_params() const = 0;
};

/// Adds every row of `base` to `idx` (ids = row numbers) with `threads` OpenMP threads.
void add_rows(index::Index& idx, const index::Matrix& base, int threads);

/// waypoint's own index: "hnsw", "hnsw-sq8" (8-bit codes for the walk) or "flat".
std::unique_ptr<BenchSubject> make_waypoint_subject(const std::string& type,
                                                    const GraphBuildParams& p);
/// A pruned graph saved by `waypoint build --index rl` or learn/ (`--rl-graph FILE`), entered as
/// `p.entry` says when `p.entry_given`, else as it was saved.
std::unique_ptr<BenchSubject> make_graph_file_subject(const std::string& path,
                                                      const GraphBuildParams& p);
/// FAISS IndexHNSWFlat with the same M and ef_construction.
std::unique_ptr<BenchSubject> make_faiss_hnsw_subject(const GraphBuildParams& p);
/**
 * LSH, ef = candidates re-ranked by exact distance: "lsh" (random planes, Hamming scan), "lsh-mp"
 * (random planes, hash tables with multi-probe), "lsh-learned" (planes of `hash_model`, scan),
 * "faiss-lsh" (FAISS IndexLSH with trained thresholds and a random rotation, re-ranked by
 * IndexRefineFlat with k_factor = ef / k, k the run's k).
 */
std::unique_ptr<BenchSubject> make_lsh_subject(const std::string& name, index::Metric metric,
                                               const LshBenchParams& p, uint64_t seed, size_t k);
/// hnswlib's HierarchicalNSW with the same M and ef_construction, from the baseline module
/// (bench/baselines/hnswlib_subject.cpp, loaded on first use; UserError when it is missing).
std::unique_ptr<BenchSubject> make_hnswlib_subject(const GraphBuildParams& p);

}  // namespace wp::bench
