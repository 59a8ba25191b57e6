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
  std::string type = "hnsw";  ///< "hnsw", "flat", "rl" (a pruned graph, graph_index.h) or "lsh"
  Metric metric = Metric::kL2;
  HnswParams hnsw;         ///< used when type is "hnsw" or "rl"
  GraphBuildSpec graph;    ///< used when type == "rl" (its hnsw field is taken from `hnsw`)
  LshParams lsh;           ///< used when type == "lsh"
  std::string hash_model;  ///< "lsh": a HashModel file (learned planes); empty: random planes

  /// Throws UserError for an unknown type or invalid parameters.
  void validate() const;
};

/// A new empty index of dimension `dim`.
std::unique_ptr<Index> make_index(const IndexSpec& spec, size_t dim);

}  // namespace wp::index
