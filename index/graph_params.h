#pragma once
/**
 * @file graph_params.h
 * GraphParams: how GraphIndex (graph_index.h) builds a single-layer graph over the vertices of its
 * HNSW: the initial graph, the pruning strategy that thins it, and where searches enter. Each
 * choice is an enum with one table of names (enum_names.h); each numeric parameter has its one
 * range (param_range.h).
 */
#include <cstddef>
#include <cstdint>
#include <string>

#include "index/hnsw_params.h"
#include "index/param_range.h"

namespace wp::index {

/// The graph pruning starts from.
enum class InitialGraph : uint8_t {
  kKnn,       ///< "knn": the K nearest of every vertex plus their reverse edges, at most 2M
  kHnsw,      ///< "hnsw": HNSW's level 0 (degree <= 2M)
  kComplete,  ///< "complete": every other vertex (at most 2M + 1 points; the paper's toy example)
  kRandom,    ///< "random": R random out-neighbours (Vamana's start)
};

/// How the initial graph is thinned.
enum class Pruning : uint8_t {
  kNone,     ///< "none": the first R neighbours of each initial list
  kHnsw,     ///< "hnsw": the HNSW heuristic (Malkov & Yashunin, Alg. 4), reverse edges likewise
  kRobust,   ///< "robust": Vamana's RobustPrune with slack alpha, reverse edges likewise
  kVamana,   ///< "vamana": Vamana itself (DiskANN Alg. 3), two passes from the medoid
  kLearned,  ///< "learned": a keep-mask written by learn/'s pruning agent (apply_mask)
};

/// Where searches enter the single-layer graph.
enum class GraphEntry : uint8_t {
  kMedoid,  ///< "medoid": a fixed vertex, the one nearest the data's mean
  kHnsw,    ///< "hnsw": the greedy descent through HNSW's upper levels
};

/// Parse a name ("knn", ...) or name a value; parse errors name `field` and list the names.
InitialGraph parse_initial_graph(const std::string& name, const std::string& field);
const char* initial_graph_name(InitialGraph v);
Pruning parse_pruning(const std::string& name, const std::string& field);
const char* pruning_name(Pruning v);
GraphEntry parse_graph_entry(const std::string& name, const std::string& field);
const char* graph_entry_name(GraphEntry v);

struct GraphParams {
  InitialGraph initial = InitialGraph::kKnn;
  size_t K = 0;  ///< neighbours per vertex of the kNN graph (0: M)
  Pruning pruning = Pruning::kRobust;
  float alpha = 1.2f;  ///< RobustPrune slack (>= 1), on true (not squared) distances
  size_t R = 0;        ///< maximum degree after pruning (0: 2M)
  GraphEntry entry = GraphEntry::kMedoid;
  size_t L = 0;  ///< Vamana's search pool while building (0: max(100, R)); not saved with the graph

  static constexpr ParamRange kK{
      "K", "K", "K", 0, 1024, true, "neighbours per vertex of the kNN graph, 0: M"};
  static constexpr ParamRange kAlpha{
      "alpha", "alpha", "alpha", 1, 4, false, "RobustPrune's slack; larger keeps longer edges"};
  static constexpr ParamRange kR{
      "R", "R", "R", 0, 2048, true, "maximum degree after pruning, at most 2M; 0: 2M"};
  static constexpr ParamRange kL{
      "L", "L", "L", 0, 4096, true, "Vamana's search pool while building, 0: max(100, R)"};

  /// Throws UserError naming the field; `hnsw` bounds R (at most 2M).
  void validate(const HnswParams& hnsw) const;
};

/**
 * The non-learned pruned graph served as index kind "graph": HNSW's level 0 with the 2M nearest
 * of every vertex, RobustPruned with slack `alpha` (reverse edges likewise) to at most 2M,
 * entered through HNSW's upper levels. Larger alpha keeps longer edges: fewer hops, more degree.
 */
GraphParams robust_graph(float alpha);

/// The graph learn/'s pruning agent starts from, served unpruned as kind "rl" until a learnt one
/// replaces it: HNSW's level 0, entered at the medoid.
GraphParams unpruned_level0();

}  // namespace wp::index
