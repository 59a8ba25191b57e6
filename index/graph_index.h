#pragma once
/**
 * @file graph_index.h
 * GraphIndex (index type "rl"): a single-layer similarity graph served by HNSW's beam search,
 * storage and file I/O (it owns an HnswIndex whose level 0 is replaced by the pruned graph).
 *
 * Construction: an initial graph over the vectors, then a pruning strategy (STYLE.md 3):
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

#include "index/hnsw_index.h"
#include "index/index.h"
#include "index/level0_graph.h"

namespace wp::index {

struct GraphBuildSpec {
  HnswParams hnsw;                 ///< the HNSW that gives storage, the upper levels and candidates
  std::string initial = "knn";     ///< "knn", "hnsw", "complete" or "random"
  size_t K = 0;                    ///< neighbours per vertex of the kNN graph (0: 4M)
  std::string pruning = "robust";  ///< "none", "hnsw", "robust", "vamana" (learned: apply_mask)
  float alpha = 1.2f;              ///< RobustPrune slack (>= 1), on true (not squared) distances
  size_t R = 0;                    ///< maximum degree after pruning (0: 2M)
  std::string entry = "medoid";    ///< "medoid" or "hnsw"
  size_t L = 0;  ///< Vamana's search pool while building (0: max(100, R)); not saved with the graph

  /// Throws UserError naming the field.
  void validate() const;
};

/// What a built graph is, saved with it.
struct GraphInfo {
  GraphBuildSpec spec;
  double average_degree = 0;
};

class GraphIndex : public Index {
 public:
  GraphIndex(size_t dim, Metric metric, const GraphBuildSpec& spec);

  const char* type_name() const override { return "rl"; }
  size_t size() const override { return graph_->size(); }
  bool contains(label_t id) const override { return graph_->contains(id); }
  bool get_vector(label_t id, float* out) const override { return graph_->get_vector(id, out); }
  /// The first batch builds the whole graph (HNSW, initial graph, pruning); later batches are
  /// linked in by the HNSW rule.
  void add(MatrixView x, const label_t* ids) override;
  bool builds_from_one_batch() const override { return true; }
  void reserve(size_t n) override { graph_->reserve(n); }
  bool remove(label_t id) override { return graph_->remove(id); }
  SearchStats search_one(const float* q, size_t k, const SearchParams& params, label_t* labels,
                         float* distances) const override {
    return graph_->search_one(q, k, params, labels, distances);
  }
  void save(const std::string& path) const override;
  size_t memory_bytes() const override { return graph_->memory_bytes(); }

  static std::unique_ptr<Index> load(BinaryReader& in);

  const GraphInfo& info() const { return info_; }
  const HnswIndex& graph() const { return *graph_; }

  /**
   * Keeps edge j of vertex s's initial list where mask[offsets[s] + j] != 0 (learned pruning).
   * @param initial the initial graph the mask refers to (as exported before pruning)
   */
  void apply_mask(const Level0Graph& initial, const std::vector<uint8_t>& mask);

 private:
  void build(MatrixView x, const label_t* ids);
  void finish(std::vector<std::vector<uint32_t>> lists);
  /// The live vertex nearest to the mean of the data.
  label_t medoid() const;

  GraphInfo info_;
  std::unique_ptr<HnswIndex> graph_;
};

/**
 * The non-learned pruned graph served as index type "graph": HNSW's level 0 with the 2M nearest
 * of every vertex, RobustPruned with slack `alpha` (reverse edges likewise) to at most 2M,
 * entered through HNSW's upper levels. Larger alpha keeps longer edges: fewer hops, more degree.
 */
GraphBuildSpec robust_graph(const HnswParams& hnsw, float alpha);

}  // namespace wp::index
