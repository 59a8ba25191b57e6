#pragma once
/**
 * @file index_factory.h
 * Builds an empty index from a type name and parameters (CLI, bench, engine).
 */
#include <memory>
#include <string>

#include "index/graph_index.h"
#include "index/hnsw_index.h"
#include "index/index.h"
#include "index/lsh_index.h"

namespace wp::index {

/// What to build.
struct IndexSpec {
  /// "hnsw", "flat", "rl" (a pruned graph as `graph` says, graph_index.h), "graph" (robust_graph
  /// with graph.alpha) or "lsh"
  std::string type = "hnsw";
  Metric metric = Metric::kL2;
  HnswParams hnsw;         ///< used when type is "hnsw", "rl" or "graph"
  GraphBuildSpec graph;    ///< "rl" (its hnsw field is taken from `hnsw`); "graph": its alpha
  LshParams lsh;           ///< used when type == "lsh"
  std::string hash_model;  ///< "lsh": a HashModel file (learned planes); empty: random planes

  /// Throws UserError for an unknown type or invalid parameters.
  void validate() const;
};

/// A new empty index of dimension `dim`.
std::unique_ptr<Index> make_index(const IndexSpec& spec, size_t dim);

}  // namespace wp::index
