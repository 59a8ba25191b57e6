#pragma once
/**
 * @file neighbor_selection.h
 * Neighbour selection strategies shared by HNSW and the pruned graph (docs/architecture.md,
 * "Conventions").
 *
 * The HNSW heuristic (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search
 * using Hierarchical Navigable Small World graphs", TPAMI 2018, Algorithm 4) keeps a candidate c
 * only when it is closer to the base vertex than to every neighbour kept so far. Vamana's
 * RobustPrune (Subramanya et al., "DiskANN", NeurIPS 2019) is the same rule with a slack alpha >=
 * 1: c is pruned when alpha * d(c, r) <= d(c, base) for a kept r. alpha = 1 is the HNSW heuristic.
 */
#include <algorithm>
#include <cstdint>
#include <vector>

namespace wp::index {

/// A vertex and its distance to some reference (the query, or the vertex being linked).
struct Candidate {
  float distance;
  uint32_t id;
};

inline bool operator<(const Candidate& a, const Candidate& b) {
  return a.distance < b.distance;
}
/// Orders a std heap as a min-heap by distance (front is the nearest).
struct FartherFirst {
  bool operator()(const Candidate& a, const Candidate& b) const { return a.distance > b.distance; }
};

/**
 * Selects at most max_degree neighbours from `candidates` by the alpha-pruning rule.
 * @param candidates     distances to the base vertex; sorted in place, nearest first
 * @param max_degree     how many to keep at most
 * @param alpha          slack (1 = HNSW heuristic); compared against the metric's own distances
 * @param dist_between   float(uint32_t a, uint32_t b): distance between two stored vertices
 * @param out            cleared, then filled with the kept candidates, nearest first
 */
template <typename DistBetween>
void select_neighbors_heuristic(std::vector<Candidate>& candidates, size_t max_degree, float alpha,
                                DistBetween&& dist_between, std::vector<Candidate>& out) {
  out.clear();
  std::sort(candidates.begin(), candidates.end());
  for (const Candidate& c : candidates) {
    if (out.size() >= max_degree) break;
    bool keep = true;
    for (const Candidate& r : out) {
      if (alpha * dist_between(c.id, r.id) <= c.distance) {
        keep = false;
        break;
      }
    }
    if (keep) out.push_back(c);
  }
}

/**
 * RobustPrune as DiskANN runs it: a first pass at alpha = 1 (the HNSW heuristic: the diverse,
 * long-range edges), then, while fewer than max_degree are kept, a pass at `alpha` over the
 * remaining candidates, checked against everything kept so far. Without the first pass a small
 * max_degree fills up with near neighbours only and the graph falls apart into clusters.
 * Arguments as select_neighbors_heuristic; `out` ends nearest first. The alpha pass compares
 * distances shifted by `shift` (vamana.h's prune_rule: 1 for cosine's -cos distances).
 */
template <typename DistBetween>
void select_neighbors_robust(std::vector<Candidate>& candidates, size_t max_degree, float alpha,
                             DistBetween&& dist_between, std::vector<Candidate>& out,
                             float shift = 0.0f) {
  select_neighbors_heuristic(candidates, max_degree, 1.0f, dist_between, out);
  if (alpha <= 1.0f || out.size() >= max_degree) return;
  const size_t first = out.size();
  for (const Candidate& c : candidates) {  // sorted nearest first by the call above
    if (out.size() >= max_degree) break;
    bool keep = true;
    for (const Candidate& r : out) {
      if (r.id == c.id || alpha * (dist_between(c.id, r.id) + shift) <= c.distance + shift) {
        keep = false;
        break;
      }
    }
    if (keep) out.push_back(c);
  }
  if (out.size() > first) std::sort(out.begin(), out.end());
}

}  // namespace wp::index
