#include "index/index_factory.h"

#include "index/error.h"
#include "index/flat_index.h"

namespace wp::index {

void IndexSpec::validate() const {
  WP_THROW_IF_NOT(
      type == "hnsw" || type == "flat" || type == "rl" || type == "graph" || type == "lsh",
      "index type must be hnsw, flat, graph, rl or lsh, got '", type, "'");
  if (type == "lsh") lsh.validate();
  if (type == "hnsw") hnsw.validate();
  if (type == "graph") robust_graph(hnsw, graph.alpha).validate();
  if (type == "rl") {
    GraphBuildSpec g = graph;
    g.hnsw = hnsw;
    g.validate();
  }
}

std::unique_ptr<Index> make_index(const IndexSpec& spec, size_t dim) {
  spec.validate();
  if (spec.type == "flat") return std::make_unique<FlatIndex>(dim, spec.metric);
  if (spec.type == "rl") {
    GraphBuildSpec g = spec.graph;
    g.hnsw = spec.hnsw;
    return std::make_unique<GraphIndex>(dim, spec.metric, g);
  }
  if (spec.type == "graph") {
    return std::make_unique<GraphIndex>(dim, spec.metric,
                                        robust_graph(spec.hnsw, spec.graph.alpha));
  }
  if (spec.type == "lsh") {
    if (spec.hash_model.empty()) return std::make_unique<LshIndex>(dim, spec.metric, spec.lsh);
    return std::make_unique<LshIndex>(dim, spec.metric, spec.lsh, HashModel::load(spec.hash_model));
  }
  return std::make_unique<HnswIndex>(dim, spec.metric, spec.hnsw);
}

}  // namespace wp::index
