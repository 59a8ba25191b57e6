#pragma once
/**
 * @file multi_vector.h
 * Multivectors (Qdrant's `multivector_config`: ColBERT / ColPali late interaction): a point holds
 * several vectors of one dimension in a space, and a query of several vectors scores it by
 * MaxSim: for each query vector its best similarity among the point's vectors, summed.
 */
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "index/metric.h"

namespace wp::engine {

/// Vectors of one dimension, row after row.
struct MultiVector {
  size_t dim = 0;             ///< the length of each vector (the values of a row)
  std::vector<float> values;  ///< rows() * dim values
  size_t rows() const { return dim ? values.size() / dim : 0; }
  const float* row(size_t i) const { return values.data() + i * dim; }
  bool operator==(const MultiVector& o) const { return dim == o.dim && values == o.values; }
  bool operator!=(const MultiVector& o) const { return !(*this == o); }
};

/// The multivectors of a point by name.
using MultiVectors = std::map<std::string, MultiVector>;

/// The most values (rows x dimension) one multivector may hold: 4 MiB of floats, a ColPali
/// page (1,030 x 128) thirty times over. A query's and a write's work are bounded by it.
inline constexpr size_t kMaxMultiValues = size_t{1} << 20;

/// The most values (rows x dimension) a query's multivector may hold: 2,048 rows of 128 (a
/// ColPali page, 1,030 rows, as a query by its point id, fits). A scan's work is the query's rows
/// times the rows it reaches.
inline constexpr size_t kMaxMultiQueryValues = size_t{1} << 18;

/**
 * Throws UserError naming `field` unless `v` holds 1.. rows of `dim` values (its dim), at most
 * kMaxMultiValues values, each row a vector `metric` compares (index::check_vector: finite, a
 * bounded norm, nonzero for Cosine); then normalises each row for Cosine (as a dense space
 * stores its vectors).
 */
void check_multi(MultiVector& v, size_t dim, index::Metric metric, const std::string& field);

/**
 * MaxSim (ColBERT's late interaction, Qdrant's `max_sim`): for each row of `query`, the highest
 * similarity to a row of the `rows` x `dim` values at `point`, summed. The similarity is the dot
 * product (Cosine rows are unit vectors, Dot) or the negated squared Euclidean distance (Euclid),
 * as in Qdrant, whose Euclid score here is not post-processed (higher is closer for every
 * metric). Clamped to finite floats.
 */
float max_sim(const MultiVector& query, const float* point, size_t rows, index::Metric metric);

/**
 * The multivectors of one space by internal id. Not thread-safe: the collection's lock guards it.
 */
class MultiVectorSpace {
 public:
  MultiVectorSpace(size_t dim, index::Metric metric) : dim_(dim), metric_(metric) {}
  size_t dim() const { return dim_; }
  index::Metric metric() const { return metric_; }
  /// The values of point `id` (rows x dim(), replacing those it had); `values` is not empty.
  void set(uint64_t id, std::vector<float> values);
  /// Drops the vectors of point `id`; false when it had none.
  bool remove(uint64_t id);
  /// The values of point `id`, null when it has none.
  const std::vector<float>* get(uint64_t id) const;
  bool contains(uint64_t id) const { return get(id) != nullptr; }
  /// Point `id`'s score for `query` (it must hold vectors).
  float score(const MultiVector& query, uint64_t id) const;
  /// Points holding vectors.
  size_t size() const { return count_; }
  /// The most values a point's vectors here have had (never lowered).
  size_t max_values() const { return max_values_; }
  /// Heap bytes of the vectors and their table.
  size_t memory_bytes() const;

 private:
  size_t dim_;
  index::Metric metric_;
  std::vector<std::vector<float>> values_;  ///< by internal id; empty: none
  size_t count_ = 0;
  size_t max_values_ = 0;
  size_t value_bytes_ = 0;
};

}  // namespace wp::engine
