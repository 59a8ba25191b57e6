#pragma once
/**
 * @file level0_graph.h
 * Level0Graph: the bottom level of a graph index by slot, in CSR form: what learn/ trains on and
 * what pruning rewrites (HnswIndex::export_level0 / replace_level0, GraphIndex::apply_mask).
 */
#include <cstdint>
#include <vector>

#include "index/index.h"

namespace wp::index {

struct Level0Graph {
  std::vector<label_t> labels;      ///< label of each slot (kNoLabel for removed slots)
  std::vector<uint64_t> offsets;    ///< slots + 1 entries; slot s links to neighbors[offsets[s] ..
                                    ///< offsets[s + 1])
  std::vector<uint32_t> neighbors;  ///< slot ids
  size_t num_vertices() const { return labels.size(); }
  size_t num_edges() const { return neighbors.size(); }
};

}  // namespace wp::index
