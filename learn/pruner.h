#pragma once
/**
 * @file pruner.h
 * The pruning agent of Baranchuk & Babenko (2019) trained with TRPO, behind a plain header (no
 * LibTorch here: the policy, the optimiser and their tensors live in pruner.cpp).
 *
 * Policy: p(u, v) = sigmoid(MLP(x_u, x_v, f_uv)) with x the standardised vectors and f_uv the
 * edge features of edge_features() (distance, rank, occlusion by u's nearer neighbours, reverse
 * edge, in-degree), query-independent, so the final graph is static: the edges with p > 0.5.
 * The first layer is split as W_u x_u + W_v x_v + W_f f_uv, the vertex parts computed once per
 * vertex and gathered per edge.
 *
 * TRPO (Schulman et al. 2015): the surrogate sum_e A1_e p_e/p_old_e + A0_e (1-p_e)/(1-p_old_e)
 * over the edges sampled in the step's episodes, with A1/A0 the summed advantages of keeping and
 * dropping e (identical samples aggregated), plus an entropy bonus; the natural gradient by
 * conjugate gradient on Fisher-vector products (Hessian of the mean Bernoulli KL), a step scaled
 * to the KL limit, and a backtracking line search that accepts only KL <= limit and an improved
 * surrogate. Edges whose probability stays below eps or above 1 - eps for `freeze_after` steps
 * are frozen at 0 or 1: no longer sampled nor learnt.
 */
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "learn/pruning_env.h"

namespace wp::learn {

struct PrunerConfig {
  int hidden = 32;                 ///< MLP width (the paper's GPU setup used far more)
  std::string encoder = "mlp";     ///< vertex input: "mlp" (the vectors) or "sage" (GraphSAGE)
  size_t episodes_per_step = 256;  ///< training queries per TRPO step
  double max_kl = 0.01;
  int cg_iters = 10;
  double cg_damping = 0.1;
  double entropy_coef = 1e-3;
  int line_search_steps = 10;
  double freeze_eps = 0.02;
  int freeze_after = 5;
  double initial_keep = 0.9;  ///< p of every edge before training
  uint64_t seed = 0;

  void validate() const;
};

/// What one TRPO step did.
struct StepStats {
  int step = 0;
  double reward = 0, recall = 0, dcs = 0;  ///< means over the step's sampled episodes
  double kl = 0;                           ///< KL of the accepted update (0 if rejected)
  double entropy = 0;                      ///< mean entropy of the sampled edges' Bernoullis
  double surrogate_gain = 0;
  size_t kept_edges = 0;  ///< edges with p > 0.5
  size_t frozen_edges = 0;
  bool accepted = false;
};

/**
 * Solves A x = b by conjugate gradient for symmetric positive definite A given as a product.
 * Exposed for tests; the trainer uses it on Fisher-vector products.
 */
std::vector<double> conjugate_gradient(
    const std::function<std::vector<double>(const std::vector<double>&)>& A,
    const std::vector<double>& b, int iters, double tol = 1e-10);

class PruningTrainer {
 public:
  PruningTrainer(const PruningEnv& env, QuerySet train, PrunerConfig cfg);
  ~PruningTrainer();

  /// One TRPO iteration on `episodes_per_step` training queries.
  StepStats step();

  /// Current keep probabilities per edge (frozen edges exactly 0 or 1).
  std::vector<float> probabilities() const;
  /// The learnt graph: 1 where p > 0.5.
  std::vector<uint8_t> mask() const;

  /// The training state (policy, step count, frozen edges) as bytes.
  std::string state() const;
  /// Takes a state() of a trainer of the same graph and configuration; throws UserError
  /// otherwise, leaving this trainer as it was.
  void restore(const std::string& state);
  /// state() written to, or restored from, a file (learn/checkpoint.h's write_file_atomically).
  void save_checkpoint(const std::string& path) const;
  void load_checkpoint(const std::string& path);
  int steps_done() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace wp::learn
