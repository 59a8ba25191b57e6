#pragma once
/**
 * @file pruning_env.h
 * The environment of the pruning agent (Baranchuk & Babenko, "Towards Similarity Graphs
 * Constructed by Deep Reinforcement Learning", 2019): an initial graph and a beam search that, on
 * expanding a vertex u, keeps each not-yet-visited edge u->v with probability p(u, v) and logs the
 * action. A dropped edge costs no distance computation; v may still be reached through another
 * edge. One episode = one search for one training query.
 *
 * Plain header, no LibTorch: the policy (learn/, torch) turns its outputs into keep_prob, the
 * environment runs episodes in parallel with OpenMP and hands back the logs.
 */
#include <cstdint>
#include <random>
#include <unordered_map>
#include <vector>

#include "index/hnsw_index.h"
#include "index/matrix.h"

namespace wp::learn {

struct EnvConfig {
  size_t ef = 10;           ///< beam width (the paper: 5..12); at least k
  size_t k = 10;            ///< recall@k of the episode
  size_t max_hops = 10000;  ///< cap on expanded vertices
  uint64_t max_dcs = 0;     ///< reward budget; 0: the initial graph's mean DCS at this ef

  void validate() const;
};

/// One sampled decision: edge index into Level0Graph::neighbors, and whether it was kept.
struct EdgeAction {
  uint32_t edge;
  uint8_t kept;
};

struct Episode {
  std::vector<uint32_t> result;     ///< slots, nearest first (at most k)
  uint64_t dcs = 0;                 ///< distance computations
  uint32_t hops = 0;                ///< vertices expanded
  double recall = 0;                ///< recall@k against the query's true neighbours
  double reward = 0;                ///< recall * max(max_dcs - dcs, 1)
  std::vector<EdgeAction> actions;  ///< every sampled edge, in order (frozen edges are not logged)
};

/// reward = recall@k x max(max_dcs - DCS, 1) (the paper's reward).
double episode_reward(double recall, uint64_t dcs, uint64_t max_dcs);

class PruningEnv {
 public:
  /**
   * @param index   owns the vectors and the distance (its level 0 is not used)
   * @param graph   the initial graph to prune, by slot (index.export_level0() or a kNN graph)
   * @param entry   slot where every search starts
   */
  PruningEnv(const index::HnswIndex& index, index::Level0Graph graph, uint32_t entry,
             EnvConfig cfg);

  const index::Level0Graph& graph() const { return graph_; }
  const index::HnswIndex& index() const { return index_; }
  const EnvConfig& config() const { return cfg_; }
  uint32_t entry() const { return entry_; }

  /**
   * One episode for `query`.
   * @param true_knn   the query's k nearest neighbours as slots (for recall)
   * @param keep_prob  one probability per edge of graph(); 0 or 1 means frozen: applied without
   *                   sampling and not logged
   * @param sample     false: keep exactly the edges with keep_prob > 0.5 (the final graph)
   * @param seed       seeds this episode's generator (same seed, same episode)
   */
  Episode run(const float* query, const uint32_t* true_knn, const std::vector<float>& keep_prob,
              bool sample, uint64_t seed) const;

  /// Episodes for every row of `queries` (OpenMP), query i seeded with seed + i.
  std::vector<Episode> run_batch(const index::Matrix& queries, const std::vector<uint32_t>& knn,
                                 const std::vector<float>& keep_prob, bool sample,
                                 uint64_t seed) const;

  /// Sets cfg.max_dcs to the mean DCS of greedy episodes on the full initial graph when it is 0.
  void calibrate_max_dcs(const index::Matrix& queries, const std::vector<uint32_t>& knn);

 private:
  const index::HnswIndex& index_;
  index::Level0Graph graph_;
  uint32_t entry_;
  EnvConfig cfg_;
  index::DistanceFn dist_;
};

/// Per-query moving average of the reward, the baseline of the policy gradient.
class RewardBaseline {
 public:
  explicit RewardBaseline(double momentum = 0.9) : momentum_(momentum) {}
  /// Returns reward - baseline(query) and then moves the baseline toward `reward`
  /// (the first reward of a query sets it, advantage 0).
  double advantage(size_t query, double reward);
  double value(size_t query) const;

 private:
  double momentum_;
  std::unordered_map<size_t, double> value_;
};

/**
 * Training queries that are not base points, for datasets without a learn set (SIFT10K): each is
 * a convex mix t*a + (1-t)*b of a random base vector a and one of its 10 nearest neighbours b,
 * t ~ U(0.25, 0.75), plus Gaussian noise of 5% of |a - b| per dimension.
 */
index::Matrix make_training_queries(const index::Matrix& base, size_t n, uint64_t seed);

/// Exact k nearest neighbours (slots of `index`) of each query, flattened n * k.
std::vector<uint32_t> true_neighbours(const index::HnswIndex& index, const index::Matrix& queries,
                                      size_t k);

}  // namespace wp::learn
