#pragma once
/**
 * @file dataset.h
 * A benchmark dataset: a folder holding `base.fvecs`, `query.fvecs`, `groundtruth.ivecs` and
 * optionally `learn.fvecs` (training queries) and labels (`labels.ivecs` or `base_labels.ivecs`),
 * or an ann-benchmarks `.hdf5` file. Also the tie-aware recall of ann-benchmarks.
 */
#include <string>
#include <vector>

#include "index/index.h"
#include "index/matrix.h"
#include "index/metric.h"

namespace wp::index {

struct Dataset {
  std::string name;
  Metric metric = Metric::kL2;
  Matrix base;
  Matrix query;
  IntMatrix groundtruth;  ///< exact neighbour ids (rows of base), nearest first
  Matrix learn;           ///< training queries (may be empty)
  IntMatrix labels;       ///< class label per base vector (may be empty)
};

/**
 * Loads a dataset folder or an ann-benchmarks .hdf5 file.
 * @param max_queries keep at most this many queries (and ground-truth rows)
 * A folder's metric is read from an optional file `metric` ("l2", "ip" or "cosine"), default l2;
 * an .hdf5 file's from its `distance` attribute (euclidean -> l2, angular -> cosine, dot -> ip).
 * The ground truth must cover every query; ids must be rows of base.
 */
Dataset load_dataset(const std::string& path, size_t max_queries = static_cast<size_t>(-1));

/// The distance ann-benchmarks reports: Euclidean (not squared) for l2, 1 - cos for cosine,
/// minus the inner product for ip.
float reported_distance(Metric metric, const float* a, const float* b, size_t d);

/**
 * Recall@k as ann-benchmarks computes it: a returned id counts when its distance to the query is
 * at most the true k-th neighbour's distance + epsilon, so ties count.
 * @param results nq * k returned ids (kNoLabel counts as a miss), row i for query i
 * @return mean over queries of (count / k)
 */
double recall_at_k(const Matrix& base, const Matrix& queries, const IntMatrix& groundtruth,
                   const std::vector<label_t>& results, size_t k, Metric metric,
                   float epsilon = 1e-3f);
/// recall_at_k() of each query (count / k), in query order.
std::vector<double> recall_per_query(const Matrix& base, const Matrix& queries,
                                     const IntMatrix& groundtruth,
                                     const std::vector<label_t>& results, size_t k, Metric metric,
                                     float epsilon = 1e-3f);

/// `count` rows of `x` drawn by `seed` (`drawn`, in the order drawn) and the others (`rest`, in
/// their order; `rest_rows` their row numbers in `x`).
struct RowSplit {
  Matrix rest, drawn;
  std::vector<size_t> rest_rows;
};
RowSplit split_rows(const Matrix& x, size_t count, uint64_t seed);

/**
 * A held-out split of `ds` (evaluation queries that no index or training ever saw as base
 * points): `n` base rows drawn by `seed` become the queries, the base keeps the others in order
 * (their labels alike), the ground truth is exact over the new base (depth min(100, base rows));
 * the dataset's own queries are dropped, its learn set kept. The same (n, seed) gives the same
 * split.
 */
Dataset hold_out(const Dataset& ds, size_t n, uint64_t seed);

/// Exact k nearest neighbours of every query (FAISS flat search), as row ids of base.
IntMatrix exact_knn(const Matrix& base, const Matrix& queries, size_t k, Metric metric);

}  // namespace wp::index
