#pragma once
/**
 * @file hnsw_index.h
 * HnswIndex: Hierarchical Navigable Small World graph (Malkov & Yashunin, TPAMI 2018), our own
 * implementation in the class of hnswlib. This is the facade over its parts:
 *  - hnsw_params.h: the parameters and their ranges;
 *  - hnsw_graph.h: storage (contiguous level-0 records), insertion, repair and consolidation;
 *  - hnsw_search.h: the greedy descent and the beam search, fast paths chosen by template flags;
 *  - search_context.h / visited_set.h: pooled per-thread state, so a query allocates nothing;
 *  - hnsw_io.cpp: the file payload.
 * The facade adds what users see: cosine normalisation, add() in parallel with OpenMP (the last
 * vector of an id wins; in two steps, place() and link(), so that searches can run while
 * vertices are linked in), remove() that tombstones at once and consolidates the graph when
 * tombstones pass HnswParams::consolidate_fraction of the live points, optional 8-bit codes
 * walked instead of the floats (re-ranked exactly), and filtered search, which walks the graph
 * through vertices that fail the filter and switches to an exact scan of the matching ids when
 * the filter is selective enough that the walk would cost more, so that k results come back
 * whenever k ids match. The hooks learn/ and GraphIndex use (level 0 export and replacement, a
 * fixed entry vertex) are here too.
 */
#include <memory>
#include <string>
#include <vector>

#include "index/distance.h"
#include "index/hnsw_graph.h"
#include "index/hnsw_params.h"
#include "index/index.h"
#include "index/level0_graph.h"
#include "index/page_block.h"
#include "index/search_context.h"
#include "index/sq8.h"

namespace wp::index {

class BinaryReader;
class BinaryWriter;

class HnswIndex : public Index {
 public:
  HnswIndex(size_t dim, Metric metric, const HnswParams& params = {});
  ~HnswIndex() override;

  const char* type_name() const override { return "hnsw"; }
  size_t size() const override { return graph_->live_count(); }
  bool contains(label_t id) const override { return graph_->find(id) != HnswGraph::kNoSlot; }
  bool get_vector(label_t id, float* out) const override;
  void add(MatrixView x, const label_t* ids) override;
  /// Everything of add() but the links: normalises, tombstones replaced ids (consolidating when
  /// due), grows storage, stores the vectors and their codes, retrains the quantizer when due.
  void place(MatrixView x, const label_t* ids) override;
  /// Links the placed vertices in (on `threads` threads, 0: every core), while searches may walk
  /// the graph.
  void link(size_t threads) override;
  bool remove(label_t id) override;
  /// Tombstones every id, then consolidates once if due.
  size_t remove_batch(const label_t* ids, size_t n) override;
  SearchStats search_one(const float* q, size_t k, const SearchParams& params, label_t* labels,
                         float* distances) const override;
  void save(const std::string& path) const override;
  size_t memory_bytes() const override;
  /// Grows storage to hold `n` vertices without reallocation.
  void reserve(size_t n) override;
  void prepare_add(size_t n) override { graph_->prepare_ids(n); }

  /// Loads the payload written by save() (called through load_index).
  static std::unique_ptr<Index> load(BinaryReader& in);

  const HnswParams& params() const { return params_; }

  /// Reconnects the neighbours of every tombstoned vertex and frees their slots (rebuilds the
  /// graph from the live vectors instead when most slots are tombstones).
  void consolidate();

  /// Tombstoned vertices not yet consolidated.
  size_t num_tombstones() const { return graph_->num_tombstones(); }
  /// Consolidations (or rebuilds from the live vectors) since construction: the repair work
  /// removals have cost.
  size_t consolidations() const { return consolidations_; }

  /// Highest level of the graph (-1 when empty).
  int max_level() const { return graph_->max_level(); }

  /// A deep copy (same graph, same entry point, same vectors).
  std::unique_ptr<HnswIndex> clone() const;

  /// Level 0 by slot (slots are 0..num_vertices()-1; use labels to map back to ids).
  Level0Graph export_level0() const { return graph_->export_level0(); }
  /**
   * Replaces every level-0 neighbour list (pruning, learned masks). lists[s] holds slot ids; each
   * list at most 2M long, no self loops, only live vertices. Upper levels are kept for the entry.
   * Throws UserError on any violation (nothing is changed then).
   */
  void replace_level0(const std::vector<std::vector<uint32_t>>& lists) {
    graph_->replace_level0(lists);
  }
  /// Searches start at this vertex of level 0 instead of descending the upper levels
  /// (kNoLabel restores the descent).
  void set_fixed_entry(label_t id);
  /// The fixed entry vertex (a slot), or ~0u when searches descend the upper levels.
  uint32_t fixed_entry_slot() const { return fixed_entry_; }
  /**
   * Where a search for `q` (prepared as stored: normalised for cosine) enters level 0 when it
   * descends the upper levels, whatever the fixed entry: the greedy descent from the top entry
   * point. Slot `skip` is treated as absent (a leave-one-out query's own vertex); it is returned
   * only when nothing else was reached. Adds the distances computed to `dcs`.
   */
  uint32_t upper_entry(const float* q, uint32_t skip, uint64_t* dcs) const;
  /// The vector of a slot (as stored: normalised for cosine).
  const float* slot_vector(uint32_t s) const { return graph_->vec(s); }
  /// The index's distance between two stored vertices (slots).
  float distance_between(uint32_t a, uint32_t b) const { return graph_->distance_between(a, b); }

  /// Payload I/O without the file container, for file types that embed an HNSW graph.
  void write_payload(BinaryWriter& out) const;
  static std::unique_ptr<HnswIndex> read_payload(BinaryReader& in);

 private:
  using slot_t = HnswGraph::slot_t;

  uint8_t* code(slot_t s) const {
    return reinterpret_cast<uint8_t*>(codes_.get()) + static_cast<size_t>(s) * code_stride_;
  }
  /// Encodes slot s (quantized indexes only).
  void encode_slot(slot_t s) { quantizer_.encode(graph_->vec(s), code(s)); }
  /// Grows the code block to the graph's capacity (quantized indexes only).
  void grow_codes();
  /// (Re)trains the sq8 quantizer when due and re-encodes every vector.
  void maybe_train_quantizer();
  /// Rebuilds the graph from the live vectors (when most slots are tombstones).
  void rebuild_live();
  /// Consolidates when tombstones pass consolidate_fraction of the live points.
  void consolidate_if_due();

  /// Upper-level descent (or the fixed entry) then the level-0 search with `dist_to`, the
  /// variant chosen by filter and tombstones.
  template <typename Dist>
  void search_graph(const Dist& dist_to, size_t ef, const IdFilter* filter,
                    const WalkLimits& limits, SearchContext& ctx, SearchStats& st) const;
  /// Exact scan of all live vertices that pass `filter` (may be null) into ctx.top (best k).
  void exact_scan(const float* q, size_t k, const IdFilter* filter, SearchContext& ctx,
                  SearchStats& st) const;
  /// True when exact_scan asks `filter` to list its ids (a quarter of the slots at most, or any
  /// number for a costly filter, which tests in its own order) rather than testing every slot.
  bool lists_matches(const IdFilter* filter) const;
  /// Prefers an exact scan to the graph walk for `filter`, by the ids it estimates pass, the
  /// cost of its test and whether it lists them (filtered_search_cost).
  /// Sets *limits to where a walk chosen instead is stopped for the scan.
  bool filter_prefers_exact(const IdFilter& filter, size_t ef, WalkLimits* limits) const;

  HnswParams params_;
  DistanceFn dist_;
  const DistanceKernels* kernels_;  ///< chosen for dim_ at construction (code kernels for sq8)
  std::unique_ptr<HnswGraph> graph_;

  PageBlock codes_;            ///< kSq8: one code per slot (grows without copying)
  size_t code_stride_ = 0;     ///< bytes per code (d rounded up to a cache line)
  size_t codes_capacity_ = 0;  ///< slots the code block holds
  Sq8Quantizer quantizer_;
  size_t quantizer_trained_at_ = 0;  ///< live points when the quantizer was last trained

  slot_t fixed_entry_ = HnswGraph::kNoSlot;  ///< when set, searches start here on level 0
  std::vector<slot_t> placed_;               ///< placed, not linked yet (place / link)
  size_t consolidations_ = 0;
  mutable SearchContextPool contexts_;
};

}  // namespace wp::index
