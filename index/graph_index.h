#pragma once
/**
 * @file graph_index.h
 * GraphIndex (index kinds "rl" and "graph"): a single-layer similarity graph served by HNSW's beam
 * search, storage and file I/O (it owns an HnswIndex whose level 0 is replaced by the pruned
 * graph).
 *
 * Construction (GraphParams, graph_params.h): an initial graph over the vectors, then a pruning
 * strategy, a step one can swap (docs/architecture.md, "Conventions"); the list operations are
 * vamana.h's:
 *  - initial "hnsw": HNSW's level 0 (degree <= 2M);
 *  - initial "complete": every other vertex (at most 2M + 1 points; the paper's toy example);
 *  - initial "knn":  the K nearest neighbours of every vertex (found with the HNSW at a large ef)
 *    plus their reverse edges (forward edges first, then the nearest reverse ones, at most 2M);
 *  - pruning "none":   keep the first R neighbours of the initial lists;
 *  - pruning "hnsw":   the HNSW heuristic (Malkov & Yashunin, Alg. 4) down to at most R, then the
 *    reverse edges, re-pruned by the same rule (as Vamana does);
 *  - initial "random": R random out-neighbours per vertex (Vamana's start);
 *  - pruning "robust": Vamana's RobustPrune with slack alpha (Subramanya et al., NeurIPS 2019),
 *    reverse edges likewise, on the initial lists (plus the 2M nearest for "hnsw");
 *  - pruning "vamana": Vamana itself (DiskANN Alg. 3): two passes (alpha 1, then alpha) over the
 *    vertices in random order; each searches the current graph from the medoid with a pool of L,
 *    RobustPrunes the expanded vertices and its list, and adds the reverse edges;
 *  - pruning "learned": a keep-mask over the initial edges written by learn/'s pruning agent
 *    (Baranchuk & Babenko, "Towards Similarity Graphs Constructed by Deep RL", 2019).
 * Searches enter through the HNSW upper levels ("hnsw") or at a fixed vertex near the data's mean
 * ("medoid"), so that every strategy can be compared with the same search and the same entry.
 * Points added later are linked by the HNSW rule until the graph is rebuilt.
 */
#include <memory>
#include <string>
#include <vector>

#include "index/graph_params.h"
#include "index/hnsw_index.h"
#include "index/index.h"
#include "index/level0_graph.h"

namespace wp::index {

/// What a built graph is, saved with it.
struct GraphInfo {
  GraphParams params;
  double average_degree = 0;
};

class GraphIndex : public Index {
 public:
  /// `hnsw` builds the HNSW that gives storage, the upper levels and candidates; `graph` says how
  /// its level 0 becomes the single-layer graph. Throws UserError for invalid parameters.
  GraphIndex(size_t dim, Metric metric, const HnswParams& hnsw, const GraphParams& graph);

  const char* type_name() const override { return "rl"; }
  size_t size() const override { return graph_->size(); }
  bool contains(label_t id) const override { return graph_->contains(id); }
  bool get_vector(label_t id, float* out) const override { return graph_->get_vector(id, out); }
  /// The first batch builds the whole graph (HNSW, initial graph, pruning); later batches are
  /// linked in by the HNSW rule.
  void add(MatrixView x, const label_t* ids) override;
  bool builds_from_one_batch() const override { return true; }
  void reserve(size_t n) override { graph_->reserve(n); }
  /// Bounds the build's prunings and the HNSW beneath (later inserts, repairs after removals).
  void set_max_insert_threads(size_t n) override {
    Index::set_max_insert_threads(n);
    graph_->set_max_insert_threads(n);
  }
  bool remove(label_t id) override { return graph_->remove(id); }
  size_t remove_batch(const label_t* ids, size_t n) override {
    return graph_->remove_batch(ids, n);
  }
  SearchStats search_one(const float* q, size_t k, const SearchParams& params, label_t* labels,
                         float* distances) const override {
    return graph_->search_one(q, k, params, labels, distances);
  }
  void save(const std::string& path) const override;
  size_t memory_bytes() const override { return graph_->memory_bytes(); }

  static std::unique_ptr<Index> load(BinaryReader& in);

  const GraphInfo& info() const { return info_; }
  /// Enters searches as `entry` says from now on (the graph is unchanged; its HNSW upper levels
  /// are kept either way).
  void set_entry(GraphEntry entry);
  const HnswIndex& graph() const { return *graph_; }

  /**
   * Keeps edge j of vertex s's initial list where mask[offsets[s] + j] != 0 (learned pruning).
   * @param initial the initial graph the mask refers to (as exported before pruning)
   */
  void apply_mask(const Level0Graph& initial, const std::vector<uint8_t>& mask);

 private:
  void build(MatrixView x, const label_t* ids);
  /// The initial graph's lists by slot (GraphParams::initial).
  std::vector<std::vector<uint32_t>> initial_lists() const;
  /// The pruned lists (GraphParams::pruning); Vamana also fixes the medoid entry.
  std::vector<std::vector<uint32_t>> prune(std::vector<std::vector<uint32_t>> initial);
  /// R, or 2M when R is 0.
  size_t max_degree() const { return info_.params.R ? info_.params.R : 2 * graph_->params().M; }
  void finish(std::vector<std::vector<uint32_t>> lists);
  /// The live vertex nearest to the mean of the data.
  label_t medoid() const;

  GraphInfo info_;
  std::unique_ptr<HnswIndex> graph_;
};

}  // namespace wp::index
