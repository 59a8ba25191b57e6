#pragma once
/**
 * @file hnsw_index.h
 * HnswIndex: Hierarchical Navigable Small World graph (Malkov & Yashunin, TPAMI 2018), our own
 * implementation in the class of hnswlib:
 *  - level 0 is one contiguous block of fixed-stride records [count | links[2M] | vector | id];
 *  - upper levels are per-vertex arrays of [count | links[M]] per level;
 *  - searches use pooled per-thread contexts (epoch-tagged visited list, reused heaps), prefetch
 *    the next neighbour's vector and visited slot, and pick a fast-path variant by template flags
 *    (no filter, no tombstones) instead of runtime branches;
 *  - neighbours are chosen by the HNSW heuristic (neighbor_selection.h);
 *  - add() inserts in parallel with OpenMP (one spin lock per vertex);
 *  - remove() tombstones at once (the vertex still routes, never returns) and, when tombstones pass
 *    HnswParams::consolidate_fraction of the live points, consolidate() reconnects every vertex
 * that pointed at a removed one through the removed vertex's own neighbours and recycles its slot;
 *  - filtered search walks the graph through vertices that fail the filter, and switches to an
 *    exact scan of the matching ids when the filter is selective enough that the walk would cost
 *    more, so that k results come back whenever k ids match.
 */
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/distance.h"
#include "index/index.h"
#include "index/search_context.h"
#include "index/sq8.h"

namespace wp::index {

class BinaryReader;
class BinaryWriter;

/// Level 0 of an HNSW graph by slot, in CSR form (learn/ trains on it, pruning rewrites it).
struct Level0Graph {
  std::vector<label_t> labels;      ///< label of each slot (kNoLabel for removed slots)
  std::vector<uint64_t> offsets;    ///< slots + 1 entries; slot s links to neighbors[offsets[s] ..
                                    ///< offsets[s + 1])
  std::vector<uint32_t> neighbors;  ///< slot ids
  size_t num_vertices() const { return labels.size(); }
  size_t num_edges() const { return neighbors.size(); }
};

/// How HNSW stores the vectors its searches walk through.
enum class Quantization : uint32_t {
  kNone = 0,  ///< float vectors in the level-0 records
  kSq8 = 1,   ///< also 8-bit codes (sq8.h) for the traversal; the final ef candidates are re-ranked
              ///< with the float vectors, so returned distances are exact
};

/// Parses "none" or "sq8"; throws UserError naming `field` otherwise.
Quantization parse_quantization(const std::string& name, const std::string& field);
const char* quantization_name(Quantization q);

/// Construction and search parameters of HnswIndex.
struct HnswParams {
  /// Links per vertex on levels >= 1; level 0 keeps up to 2*M. Memory grows with M, recall too.
  size_t M = 16;
  /// Beam width while inserting; larger builds slower and better graphs.
  size_t ef_construction = 200;
  /// Default beam width of searches that do not set SearchParams::ef.
  size_t ef_search = 64;
  /// Seed of the level generator.
  uint64_t seed = 100;
  /// remove() repairs the graph once tombstones exceed this fraction of the live points.
  double consolidate_fraction = 0.1;
  /// Vector representation walked by searches. kSq8 costs d bytes per vector more memory and
  /// reads a quarter of the bytes per distance. The code range is learnt once 1000 vectors exist
  /// and re-learnt each time the index doubles; smaller indexes walk the float vectors.
  Quantization quantization = Quantization::kNone;

  /// Throws UserError with a message that names the field and the accepted range.
  void validate() const;
};

class HnswIndex : public Index {
 public:
  HnswIndex(size_t dim, Metric metric, const HnswParams& params = {});
  ~HnswIndex() override;

  const char* type_name() const override { return "hnsw"; }
  size_t size() const override { return live_count_; }
  bool contains(label_t id) const override { return label_to_slot_.count(id) != 0; }
  bool get_vector(label_t id, float* out) const override;
  void add(MatrixView x, const label_t* ids) override;
  bool remove(label_t id) override;
  SearchStats search_one(const float* q, size_t k, const SearchParams& params, label_t* labels,
                         float* distances) const override;
  void save(const std::string& path) const override;
  size_t memory_bytes() const override;

  /// Loads the payload written by save() (called through load_index).
  static std::unique_ptr<Index> load(BinaryReader& in);

  const HnswParams& params() const { return params_; }

  /// Reconnects the neighbours of every tombstoned vertex and frees their slots.
  void consolidate();

  /// Tombstoned vertices not yet consolidated.
  size_t num_tombstones() const { return num_tombstones_; }

  /// Grows storage to hold `n` vertices without reallocation.
  void reserve(size_t n);

  /// Highest level of the graph (-1 when empty).
  int max_level() const { return max_level_; }

  /// A deep copy (same graph, same entry point, same vectors).
  std::unique_ptr<HnswIndex> clone() const;

  /// Level 0 by slot (slots are 0..num_vertices()-1; use labels to map back to ids).
  Level0Graph export_level0() const;
  /**
   * Replaces every level-0 neighbour list (pruning, learned masks). lists[s] holds slot ids; each
   * list at most 2M long, no self loops, only live vertices. Upper levels are kept for the entry.
   * Throws UserError on any violation (nothing is changed then).
   */
  void replace_level0(const std::vector<std::vector<uint32_t>>& lists);
  /// Searches start at this vertex of level 0 instead of descending the upper levels
  /// (kNoLabel restores the descent).
  void set_fixed_entry(label_t id);
  /// The fixed entry vertex (a slot), or ~0u when searches descend the upper levels.
  uint32_t fixed_entry_slot() const { return fixed_entry_; }
  /// The vector of a slot (as stored: normalised for cosine).
  const float* slot_vector(uint32_t s) const { return vec(s); }
  /// The index's distance between two stored vertices (slots).
  float distance_between(uint32_t a, uint32_t b) const;

  /// Payload I/O without the file container, for file types that embed an HNSW graph.
  void write_payload(BinaryWriter& out) const;
  static std::unique_ptr<HnswIndex> read_payload(BinaryReader& in);

 private:
  using slot_t = uint32_t;
  static constexpr slot_t kNoSlot = ~slot_t{0};
  static constexpr uint8_t kTombstone = 1;  ///< removed, still routes until consolidated
  static constexpr uint8_t kFree = 2;       ///< consolidated; slot may be reused

  // --- record accessors (level 0 block: [count | links[max_m0_] | vector | label]) ---
  char* record(slot_t s) const { return level0_.get() + static_cast<size_t>(s) * stride_; }
  uint32_t* links0(slot_t s) const { return reinterpret_cast<uint32_t*>(record(s)); }
  float* vec(slot_t s) const { return reinterpret_cast<float*>(record(s) + vector_offset_); }
  label_t label_of(slot_t s) const {
    label_t l;
    std::memcpy(&l, record(s) + label_offset_, sizeof l);
    return l;
  }
  /// [count | links...] of slot s at `level` (0 or upper).
  uint32_t* links(slot_t s, int level) const {
    return level == 0 ? links0(s) : upper_[s].get() + (level - 1) * (1 + params_.M);
  }
  size_t max_links(int level) const { return level == 0 ? max_m0_ : params_.M; }
  float dist(const float* a, const float* b) const { return dist_(a, b, dim_); }

  void lock(slot_t s) const;
  void unlock(slot_t s) const;

  int random_level();
  slot_t allocate_slot(label_t id, const float* v);
  void insert(slot_t s, SearchContext& ctx);
  void connect_reverse(slot_t from, slot_t to, int level, SearchContext& ctx);
  void repair(slot_t u, int level, SearchContext& ctx);
  void mark_removed(slot_t s);
  /// (Re)trains the sq8 quantizer when due and re-encodes every vector.
  void maybe_train_quantizer();
  /// Rebuilds the graph from the live vectors (when most slots are tombstones).
  void rebuild_live();

  uint8_t* code(slot_t s) const {
    return reinterpret_cast<uint8_t*>(codes_.get()) + static_cast<size_t>(s) * code_stride_;
  }

  /// Distance from a query to stored vertices, on the float vectors.
  struct FloatDistance {
    const HnswIndex* index;
    const float* q;
    float operator()(slot_t v) const { return index->dist(q, index->vec(v)); }
    const void* address(slot_t v) const { return index->vec(v); }
    size_t bytes() const { return index->dim_ * sizeof(float); }
  };
  /// Distance from a prepared query to stored vertices, on the 8-bit codes.
  struct CodeDistance {
    const HnswIndex* index;
    const float* q;  ///< Sq8Quantizer::prepare_query output
    CodeDistanceFn fn;
    float scale;  ///< step^2 for l2, -step for ip
    float bias;   ///< 0 for l2, -sum q_j min_j for ip
    float operator()(slot_t v) const { return bias + scale * fn(q, index->code(v), index->dim_); }
    const void* address(slot_t v) const { return index->code(v); }
    size_t bytes() const { return index->dim_; }
  };

  /// Greedy descent through levels > `stop_level`; returns the closest vertex found.
  template <bool kLocked, typename Dist>
  slot_t descend(const Dist& dist_to, slot_t ep, float& ep_dist, int top_level, int stop_level,
                 SearchStats& st) const;

  /// Beam search on one level; leaves the best `ef` admissible vertices in ctx.top.
  template <bool kLocked, bool kFiltered, bool kTombstones, typename Dist>
  void search_layer(const Dist& dist_to, slot_t ep, float ep_dist, size_t ef, int level,
                    const IdFilter* filter, SearchContext& ctx, SearchStats& st) const;

  /// Upper-level descent then level-0 search with `dist_to`, variant chosen by filter/tombstones.
  template <typename Dist>
  void search_graph(const Dist& dist_to, size_t ef, const IdFilter* filter, SearchContext& ctx,
                    SearchStats& st) const;

  /// Encodes slot s (quantized indexes only).
  void encode_slot(slot_t s) { quantizer_.encode(vec(s), code(s)); }

  /// Exact scan of all live vertices that pass `filter` (may be null) into ctx.top (best k).
  void exact_scan(const float* q, size_t k, const IdFilter* filter, SearchContext& ctx,
                  SearchStats& st) const;

  /// Prefers an exact scan to the graph walk for a filter that `matching` ids pass.
  bool filter_prefers_exact(int64_t matching, size_t ef) const;

  HnswParams params_;
  DistanceFn dist_;
  const DistanceKernels* kernels_;  ///< chosen for dim_ at construction (code kernels for sq8)
  size_t max_m0_;                   ///< 2 * M
  size_t stride_;                   ///< bytes per level-0 record
  size_t vector_offset_;            ///< offset of the vector in a record
  size_t label_offset_;             ///< offset of the label in a record
  double level_mult_;               ///< 1 / ln(M)

  struct AlignedDelete {
    void operator()(char* p) const;
  };
  std::unique_ptr<char, AlignedDelete> level0_;
  std::unique_ptr<char, AlignedDelete> codes_;  ///< kSq8: one code per slot
  size_t code_stride_ = 0;                      ///< bytes per code (d rounded up to a cache line)
  Sq8Quantizer quantizer_;
  size_t quantizer_trained_at_ = 0;  ///< live points when the quantizer was last trained
  size_t capacity_ = 0;              ///< slots allocated
  size_t slot_count_ = 0;            ///< slots in use (live, tombstoned or free)
  size_t live_count_ = 0;
  size_t num_tombstones_ = 0;

  std::vector<uint8_t> levels_;                     ///< level of each slot
  std::vector<uint8_t> flags_;                      ///< kTombstone / kFree
  std::vector<std::unique_ptr<uint32_t[]>> upper_;  ///< links of levels 1..levels_[s]
  std::unique_ptr<std::atomic<uint8_t>[]> locks_;   ///< one spin lock per slot (build time)
  std::vector<slot_t> free_slots_;
  std::unordered_map<label_t, slot_t> label_to_slot_;

  slot_t entry_point_ = kNoSlot;
  int max_level_ = -1;
  slot_t fixed_entry_ = kNoSlot;  ///< when set, searches start here on level 0
  std::mutex entry_mutex_;        ///< guards entry_point_ / max_level_ during parallel inserts
  std::mt19937_64 level_rng_;

  mutable SearchContextPool contexts_;
};

}  // namespace wp::index
