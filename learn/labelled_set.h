#pragma once
/**
 * @file labelled_set.h
 * Labelled vectors (a class per row) and their loaders from a dataset folder. Free of LibTorch:
 * code that only reads or splits labelled data does not pay for it (the matching network,
 * learn/matching.h, trains on these sets).
 */
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "index/matrix.h"

namespace wp::learn {

/// Labelled vectors: row i of x has class y[i].
struct LabelledSet {
  index::Matrix x;
  std::vector<int> y;

  /// The rows i (in order) for which keep(i, y[i]) holds.
  LabelledSet select(const std::function<bool(size_t, int)>& keep) const;
  /// Rows whose class is in `classes`.
  LabelledSet subset(const std::vector<int>& classes) const;
  /// Rows i with i % 2 == parity (two disjoint halves of every class).
  LabelledSet half(int parity) const;
  /// The distinct classes, ascending.
  std::vector<int> classes() const;
};

/// Loads a dataset folder's base vectors and their labels (base_labels.ivecs or labels.ivecs).
LabelledSet load_labelled(const std::string& dir, size_t limit = static_cast<size_t>(-1));
/// A dataset folder's query vectors with query_labels.ivecs; empty (n = 0) when it has none.
LabelledSet load_labelled_queries(const std::string& dir);

}  // namespace wp::learn
