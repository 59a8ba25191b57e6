#pragma once
/**
 * @file itq.h
 * Iterative quantisation (Gong & Lazebnik, 2011): planes learnt without labels for retrieval.
 * The data are centred, projected on their top principal directions, and rotated by the
 * orthogonal R that minimises the quantisation loss ||sign(V R) - V R||^2, alternating the codes
 * and an orthogonal Procrustes step. The result is a plain HashModel (bits planes over the input,
 * offsets at the mean) that LshIndex loads like random planes: no embedding layers, so hashing
 * costs the same as random planes. Plain header: callers need not include <torch/torch.h>.
 */
#include <cstdint>
#include <functional>
#include <vector>

#include "index/hash_model.h"
#include "index/matrix.h"

namespace wp::learn {

struct ItqConfig {
  size_t bits = 256;        ///< at most the data's dimension
  int iterations = 50;      ///< alternations of codes and rotation
  size_t max_rows = 20000;  ///< rows sampled to fit (all when fewer)
  uint64_t seed = 1;        ///< row sample and initial random rotation
};

struct ItqResult {
  index::HashModel model;
  /// ||B - V R||^2 / rows after each iteration (non-increasing), V scaled to unit mean square.
  std::vector<double> loss;
  double explained_variance = 0;  ///< fraction of the variance the kept principal directions hold
};

/// Fits ITQ planes to the rows of `x`. `on_iteration(i, loss)` is called after each iteration.
ItqResult fit_itq(const index::Matrix& x, const ItqConfig& cfg,
                  const std::function<void(int, double)>& on_iteration = {});

}  // namespace wp::learn
