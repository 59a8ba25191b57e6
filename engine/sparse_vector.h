#pragma once
/**
 * @file sparse_vector.h
 * Sparse vectors (Qdrant's sparse_vectors: BM25, SPLADE and other term weights): a point's
 * non-zero dimensions and their values, and the inverted index that scores a query against every
 * point of a space by the dot product over the dimensions they share.
 */
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wp::engine {

/// Non-zero dimensions and their values, sorted by dimension, each dimension once.
struct SparseVector {
  std::vector<uint32_t> indices;
  std::vector<float> values;
  bool operator==(const SparseVector& o) const {
    return indices == o.indices && values == o.values;
  }
  bool operator!=(const SparseVector& o) const { return !(*this == o); }
  size_t size() const { return indices.size(); }
};

/// The sparse vectors of a point by name.
using SparseVectors = std::map<std::string, SparseVector>;

/// The most non-zero dimensions one sparse vector may have (a request's work is bounded by it).
inline constexpr size_t kMaxSparseSize = 65536;

/// Throws UserError naming `field` unless `v` has as many indices as values, each index once,
/// every value a finite float and at most kMaxSparseSize of them; then sorts it by index (as
/// Qdrant stores it).
void sort_sparse(SparseVector& v, const std::string& field);

/// The dot product over the dimensions both have (both sorted).
double sparse_dot(const SparseVector& a, const SparseVector& b);

/// How a space weighs a query's dimensions (Qdrant's `modifier`).
enum class SparseModifier {
  kNone,
  /// Each query value times the inverse document frequency of its dimension in the space:
  /// ln(1 + (N - n + 0.5) / (n + 0.5)), N the points holding a non-empty vector there, n those
  /// whose vector has the dimension (BM25's, as Qdrant computes it; its stored values are left
  /// as they are).
  kIdf,
};
const char* sparse_modifier_name(SparseModifier m);

/**
 * The sparse vectors of one space by internal id, and for each dimension the points whose vector
 * has it with their values (the postings). A query is scored by walking the postings of its own
 * dimensions only. Not thread-safe: the collection's lock guards it.
 */
class SparseIndex {
 public:
  /// The vector of point `id` (replacing one it had).
  void set(uint64_t id, SparseVector v);
  /// Drops the vector of point `id`; false when it had none.
  bool remove(uint64_t id);
  /// The vector of point `id`, null when it has none.
  const SparseVector* get(uint64_t id) const;
  bool contains(uint64_t id) const { return get(id) != nullptr; }
  /// Points holding a vector (an empty one too).
  size_t size() const { return count_; }
  /// The most dimensions a vector set here had (never lowered).
  size_t max_size() const { return max_size_; }

  /// The inverse document frequency of dimension `dim` (SparseModifier::kIdf).
  double idf(uint32_t dim) const;
  /// `query` as the space scores it: weighed by `modifier`.
  SparseVector weighed(const SparseVector& query, SparseModifier modifier) const;

  /// A point and its score.
  struct Hit {
    float score;
    uint64_t id;
  };
  /**
   * The `k` points of highest dot product with `query` (already weighed) among those sharing a
   * dimension with it and that `accept` admits (null: all), highest first, ties by id; those
   * scoring below `threshold` (when given) left out. Work: the postings of the query's
   * dimensions, and one accept() per point they reach.
   */
  std::vector<Hit> search(const SparseVector& query, size_t k,
                          const std::function<bool(uint64_t)>& accept,
                          const float* threshold = nullptr) const;

  /// Heap bytes of the vectors and postings.
  size_t memory_bytes() const;

 private:
  struct Posting {
    uint32_t id;
    float value;
  };
  void unpost(uint64_t id, const SparseVector& v);
  std::vector<SparseVector> vectors_;  ///< by internal id
  std::vector<bool> has_;              ///< by internal id
  size_t count_ = 0;
  size_t max_size_ = 0;
  size_t nonempty_ = 0;  ///< points holding a vector with a dimension: the N of idf()
  std::unordered_map<uint32_t, std::vector<Posting>> postings_;
  size_t posted_ = 0;        ///< postings in all lists
  size_t vector_bytes_ = 0;  ///< heap bytes of vectors_'s elements
};

}  // namespace wp::engine
