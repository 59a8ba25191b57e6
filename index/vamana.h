#pragma once
/**
 * @file vamana.h
 * Graph building blocks over per-vertex neighbour lists (slots of an HnswIndex that holds the
 * vectors), as DiskANN builds its graphs (Subramanya et al., "DiskANN", NeurIPS 2019): the kNN
 * lists, RobustPrune of each list with slack alpha (neighbor_selection.h), the reverse-edge step,
 * random initial lists and Vamana's two passes (their Alg. 3). GraphIndex (graph_index.h) composes
 * them into its pruning strategies.
 */
#include <cstdint>
#include <vector>

#include "index/hnsw_index.h"
#include "index/metric.h"

namespace wp::index {

/// The alpha rule in our distances. RobustPrune's alpha is stated for true l2 distances; ours are
/// squared for l2, so the slack is alpha^2. Cosine's are -cos of unit vectors, and 1 - cos is half
/// their squared l2 distance: the rule compares the distances shifted by 1 with slack alpha^2, and
/// alpha means on cosine what it means on l2. Inner product has no such geometry: alpha = 1 only
/// (the HNSW heuristic), which `check_prune_alpha` enforces.
struct PruneRule {
  float alpha;  ///< the slack select_neighbors_robust compares with
  float shift;  ///< added to every distance it compares
};
inline PruneRule prune_rule(Metric metric, float alpha) {
  if (metric == Metric::kInnerProduct) return {alpha, 0.0f};
  return {alpha * alpha, metric == Metric::kCosine ? 1.0f : 0.0f};
}
/// Throws UserError unless alpha is 1 or the metric is l2 or cosine.
void check_prune_alpha(Metric metric, float alpha);

/// The K nearest neighbours (slots) of every live vertex, from `index` searched at `ef`.
std::vector<std::vector<uint32_t>> knn_lists(const HnswIndex& index, size_t K, size_t ef);

/// Prunes each list to at most R neighbours with the alpha rule (alpha = 1: HNSW heuristic).
std::vector<std::vector<uint32_t>> prune_lists(const HnswIndex& index,
                                               const std::vector<std::vector<uint32_t>>& lists,
                                               size_t R, float alpha);

/// Adds the reverse of every edge, then cuts lists longer than R by the alpha rule (prune) or to
/// the R nearest (Vamana's reverse-edge step).
std::vector<std::vector<uint32_t>> add_reverse_edges(
    const HnswIndex& index, const std::vector<std::vector<uint32_t>>& lists, size_t R, float alpha,
    bool prune);

/// R distinct random out-neighbours for each of n vertices (Vamana's initial graph).
std::vector<std::vector<uint32_t>> random_lists(size_t n, size_t R, uint64_t seed);

/**
 * Vamana (Subramanya et al., NeurIPS 2019, Alg. 3) starting from `lists`: a pass at alpha = 1,
 * then one at `alpha`; vertices in a seeded random order, in batches that search one snapshot in
 * parallel and are then written in order (deterministic for a seed, whatever the threads).
 * @param start the search entry (the medoid slot); L the search pool; R the maximum degree
 */
std::vector<std::vector<uint32_t>> vamana_lists(const HnswIndex& index,
                                                std::vector<std::vector<uint32_t>> lists,
                                                uint32_t start, size_t R, size_t L, float alpha,
                                                uint64_t seed);

double average_degree(const std::vector<std::vector<uint32_t>>& lists);

}  // namespace wp::index
