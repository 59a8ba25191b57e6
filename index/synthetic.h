#pragma once
/**
 * @file synthetic.h
 * A reproducible clustered synthetic dataset, for measuring at sizes the real sets do not reach
 * (`waypoint synth`; docs/benchmarks.md). Each cluster is a centre plus a random low-rank
 * Gaussian (its `local_dim` directions) plus a little isotropic noise, so that points have the
 * low intrinsic dimension of real embeddings rather than the full dimension of a Gaussian cloud,
 * which no graph index searches well. Recall measured on it is no proof for real data: the real
 * sets stay in every table beside it.
 *
 * Row i is a function of (spec, i) alone: any range of rows comes out the same whatever the
 * number of threads or the order, and the queries are rows n, n+1, ... of the same stream (drawn
 * from the same mixture, never equal to a base row).
 */
#include <cstddef>
#include <cstdint>

#include "index/matrix.h"

namespace wp::index {

struct SyntheticSpec {
  size_t d = 128;          ///< dimension
  size_t clusters = 1000;  ///< mixture components (cluster of row i drawn by row i's stream)
  size_t local_dim = 16;   ///< directions of each cluster's low-rank Gaussian
  float spread = 1.0f;     ///< standard deviation along each of them; centres ~ N(0, 1)
  float noise = 0.05f;     ///< isotropic noise per coordinate
  uint64_t seed = 1;

  /// Throws UserError naming the field when a value is out of range.
  void validate() const;
};

/// Rows [first, first + count) of the stream (`count` x d), in parallel with OpenMP.
Matrix synthetic_rows(const SyntheticSpec& spec, size_t first, size_t count);

}  // namespace wp::index
