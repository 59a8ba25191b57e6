#pragma once
/**
 * @file pruner.h
 * The pruning agent of Baranchuk & Babenko (2019) trained with TRPO, behind a plain header (no
 * LibTorch here: the policy, the optimiser and their tensors live in pruner.cpp).
 *
 * Policy: p(u, v) = sigmoid(MLP(x_u, x_v, f_uv)) with x the standardised vectors and f_uv the
 * edge features of edge_features() (distance, rank, occlusion by u's nearer neighbours, reverse
 * edge, in-degree, how training searches used the edge), query-independent, so the final graph is
 * static: the edges with p > 0.5. The first layer is split as W_u x_u + W_v x_v + W_f f_uv, the
 * vertex parts computed once per vertex and gathered per edge.
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
  /// Budget on the learnt graph's average degree (edges with p > 0.5 per live vertex), as a
  /// Lagrangian: keeping an edge the step's episodes sampled costs lambda (in units of one
  /// sample's standardised advantage); after each step lambda rises by degree_step x the
  /// relative excess, and below the target it is scaled by degree / target. 0: no budget.
  double target_degree = 0;
  double degree_step = 0.05;
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
  double degree = 0;      ///< kept edges per live vertex
  double lambda = 0;      ///< the degree budget's multiplier after this step
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
  /// Counts how searches for the training queries use every edge (PruningEnv::usage, all edges
  /// kept) for the edge features; `sources` (EdgeSource bits per edge, or empty) says which
  /// non-learned graphs of a pool hold each edge.
  PruningTrainer(const PruningEnv& env, QuerySet train, PrunerConfig cfg,
                 const std::vector<uint8_t>& sources = {});
  ~PruningTrainer();

  /// One TRPO iteration on `episodes_per_step` training queries.
  StepStats step();

  /**
   * Warm start: fits the policy to keep the edges of `mask` (a graph one can build without
   * learning) by `iterations` Adam steps on the cross-entropy of 65,536 random edges, with the
   * targets smoothed to 1 - smoothing and smoothing: the graph of p > 0.5 is the mask, and
   * training episodes still try the other choice of every edge (a fit to 0 and 1 would freeze
   * them all). Returns the share of edges whose p > 0.5 agrees with the mask.
   */
  double imitate(const std::vector<uint8_t>& mask, int iterations, double smoothing = 0.1);

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
