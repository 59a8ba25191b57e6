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
#include <array>
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
  uint64_t max_dcs = 0;     ///< reward budget (train_pruner derives it); 0: reward = recall

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

inline constexpr uint32_t kNoSlot = UINT32_MAX;

/// Where one episode's search starts.
struct QueryStart {
  uint32_t held_out = kNoSlot;  ///< a slot the search treats as absent (leave-one-out queries)
  uint32_t entry = kNoSlot;     ///< the level-0 slot it starts at (kNoSlot: the env's entry)
  uint32_t entry_dcs = 0;       ///< distances computed to find `entry` (counted in the episode)
};

/// Episode queries with their true neighbours.
struct QuerySet {
  index::Matrix x;                 ///< one query per row
  size_t k = 0;                    ///< true neighbours per query
  std::vector<uint32_t> knn;       ///< x.n * k slots, nearest first
  std::vector<uint32_t> held_out;  ///< per query, a slot the search treats as absent (kNoSlot:
                                   ///< none); empty: none for every query
  /// Per query, the slot its search starts at and the distances computed to find it (the
  /// descent through HNSW's upper levels: enter_through_upper_levels); empty: the env's entry.
  std::vector<uint32_t> entry;
  std::vector<uint32_t> entry_dcs;

  size_t size() const { return x.n; }
  uint32_t held_out_of(size_t i) const { return held_out.empty() ? kNoSlot : held_out[i]; }
  /// Where query i's search starts (held-out vertex, entry and its cost).
  QueryStart start_of(size_t i) const {
    return {held_out_of(i), entry.empty() ? kNoSlot : entry[i], entry.empty() ? 0 : entry_dcs[i]};
  }
  /// The queries at `rows`, in that order.
  QuerySet subset(const std::vector<size_t>& rows) const;
  /// Rows [begin, begin + n).
  QuerySet slice(size_t begin, size_t n) const;
};

/**
 * Enters every query of `qs` as a served index that descends HNSW's upper levels does: its
 * level-0 start is index.upper_entry() (never the query's held-out vertex), and the distances
 * computed on the way are counted in its episodes, as `waypoint bench` counts them.
 */
void enter_through_upper_levels(QuerySet& qs, const index::HnswIndex& index);

/// Queries `x` with their exact k nearest slots of `index`.
QuerySet query_set(const index::HnswIndex& index, index::Matrix x, size_t k);

/**
 * Leave-one-out queries: n distinct base points (never `avoid`, the entry), each searched as if it
 * were absent from the graph (the search never evaluates its vertex), with its k nearest other
 * points as true neighbours. A query drawn from the data's own distribution that is not in the
 * indexed set, without needing a learn set (SIFT10K has none).
 */
QuerySet leave_one_out_queries(const index::HnswIndex& index, size_t n, size_t k, uint64_t seed,
                               uint32_t avoid);

/// One point of a recall / distance-computations curve (greedy search at beam width ef).
struct CurvePoint {
  size_t ef = 0;
  double recall = 0, dcs = 0;
};

/// Beam widths swept to find where a graph reaches a recall: k, then 12..512 (those >= k).
std::vector<size_t> default_ef_sweep(size_t k);

/**
 * Mean DCS at which the curve reaches `target` recall, interpolated linearly between the two
 * sweep points around it (the ann-benchmarks way of reading "DCS at recall 0.95"); +inf when the
 * sweep never reaches it. Points must be in increasing ef.
 */
double dcs_at_recall(const std::vector<CurvePoint>& curve, double target);

/**
 * The reward budget that makes the paper's reward flat along the initial graph's own recall/DCS
 * curve at the training beam width: with reward = recall x (max_dcs - DCS), moving from point a
 * to point b of the same curve earns nothing when
 * max_dcs = DCS_b + recall_a x (DCS_b - DCS_a) / (recall_b - recall_a).
 * Clamped to [1.1, 100] x DCS_a (100 x when b is no better than a).
 */
double flat_reward_budget(const CurvePoint& a, const CurvePoint& b);

/**
 * The served form of a policy: the edges with keep_prob > 0.5, repaired so that search cannot get
 * stuck: every live vertex keeps at least `min_degree` out-edges (its most probable ones), and
 * every live vertex is reachable from `entry` (for an unreachable vertex, the most probable
 * initial edge into it from a reachable vertex is restored, repeatedly). Returns 0/1 per edge.
 * `restored` (optional) counts the edges the repair added.
 */
std::vector<uint8_t> guarded_mask(const index::Level0Graph& graph, uint32_t entry,
                                  const std::vector<float>& keep_prob, size_t min_degree,
                                  size_t* restored = nullptr);

/// How searches used each edge of a graph (PruningEnv::usage), counted over a query set.
struct EdgeUsage {
  std::vector<uint32_t> evaluated;  ///< times the edge cost a distance computation
  std::vector<uint32_t> useful;     ///< searches in which it lay on the path to a true
                                    ///< neighbour found
};

/// Where an edge of a candidate pool came from (bits of edge_features()'s `sources`).
enum EdgeSource : uint8_t {
  kFromWarmStart = 1,   ///< the non-learned graph at the compared degree (the warm start)
  kFromWide = 2,        ///< a wider non-learned graph
  kFromNearest = 4,     ///< the nearest neighbours
  kFromNavigation = 8,  ///< a navigation edge (where a training search missed a neighbour)
};
inline constexpr size_t kEdgeSources = 4;

/// Number of per-edge features edge_features() computes.
inline constexpr size_t kEdgeFeatures = 9 + kEdgeSources;

/**
 * Query-independent features of every edge u->v of `graph` (kEdgeFeatures per edge, edge-major),
 * all on true (not squared) distances:
 *  0. d(u, v) / mean edge length;
 *  1. v's rank in u's list by distance, 0..1;
 *  2. d(u, v) / d(u, u's nearest listed neighbour), log-scaled;
 *  3. occlusion: min over u's neighbours w nearer to u than v of d(w, v) / d(u, v), capped at 2
 *     (2 when there is none): RobustPrune with slack alpha drops v when this is <= 1/alpha;
 *  4. occluders: the share of those nearer w with d(w, v) < d(u, v) (the HNSW heuristic keeps v
 *     only when there is none);
 *  5. 1 when the reverse edge v->u is in the graph;
 *  6. v's in-degree / mean in-degree;
 *  7. log(1 + times training searches computed v's distance through this edge) (usage);
 *  8. the share of those on the path to a true neighbour found: (useful + 1) / (evaluated + 2);
 *  9-12. the EdgeSource bits of `sources` (one per edge): which non-learned graphs hold it.
 * These let a small MLP express the non-learned rules and what searches on the data need, and
 * the agent learn where to depart from them. Without `usage`, 7 and 8 are 0; without `sources`
 * (empty), 9-12.
 */
std::vector<float> edge_features(const index::HnswIndex& index, const index::Level0Graph& graph,
                                 const EdgeUsage* usage = nullptr,
                                 const std::vector<uint8_t>& sources = {});

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
   * @param ef         beam width of this episode (0: the configured ef)
   * @param start      where the search starts, and a vertex it treats as absent
   */
  Episode run(const float* query, const uint32_t* true_knn, const std::vector<float>& keep_prob,
              bool sample, uint64_t seed, size_t ef = 0, const QueryStart& start = {}) const;

  /// Episodes for every query (OpenMP), query i seeded with seed + i.
  std::vector<Episode> run_batch(const QuerySet& queries, const std::vector<float>& keep_prob,
                                 bool sample, uint64_t seed, size_t ef = 0) const;

  /**
   * How greedy searches (edges with keep_prob > 0.5) for `queries` at beam width `ef` (0: the
   * configured one) use each edge: an edge is evaluated when expanding its source computes its
   * target's distance, useful when it is on the path (the edges that first reached each vertex)
   * from the entry to a true neighbour the search found.
   */
  EdgeUsage usage(const QuerySet& queries, const std::vector<float>& keep_prob,
                  size_t ef = 0) const;

  /// Mean recall and DCS of greedy searches (edges with keep_prob > 0.5) at each beam width.
  std::vector<CurvePoint> curve(const QuerySet& queries, const std::vector<float>& keep_prob,
                                const std::vector<size_t>& efs) const;

 private:
  /// What a search did beyond its episode, for usage(): every edge it evaluated, which is the
  /// edge (and its source) that first reached the vertex it leads to.
  struct Trace {
    std::vector<std::array<uint32_t, 3>> reached;  ///< (vertex, edge, source)
  };
  Episode run_traced(const float* query, const uint32_t* true_knn,
                     const std::vector<float>& keep_prob, bool sample, uint64_t seed, size_t ef,
                     const QueryStart& start, Trace* trace) const;

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

/// Exact k nearest neighbours (slots of `index`) of each query, flattened n * k.
std::vector<uint32_t> true_neighbours(const index::HnswIndex& index, const index::Matrix& queries,
                                      size_t k);

}  // namespace wp::learn
