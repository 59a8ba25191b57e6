#pragma once
/**
 * @file hnsw_graph.h
 * HnswGraph: the storage of a Hierarchical Navigable Small World graph (Malkov & Yashunin, TPAMI
 * 2018) and the operations that change it: insertion (their Alg. 1, neighbours chosen by the
 * heuristic of Alg. 4, neighbor_selection.h), repair of the vertices that pointed at removed
 * ones, and consolidation, which recycles the removed vertices' slots.
 *
 * Storage, in the manner of hnswlib:
 *  - level 0 is one contiguous block of fixed-stride records [count | links[2M] | vector | id];
 *  - upper levels are per-vertex arrays of [count | links[M]] per level;
 *  - per slot: its level, its flags (tombstone, free) and a spin lock for parallel insertion.
 * Searches may walk the graph while insert() links vertices in (HnswIndex::link): the link words
 * and the entry are the only things both change and are read meanwhile, and they are read and
 * written whole (link_word / set_link_word, entry()); every other part of a vertex is written
 * before it is linked, where no search runs (allocate).
 * Slots are recycled from a free list; ids map to slots. The walks over the graph are in
 * hnsw_search.h; HnswIndex (hnsw_index.h) is the facade users see, which adds the metric's
 * normalisation, 8-bit codes, filters and file I/O.
 */
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <vector>

#include "index/distance.h"
#include "index/hnsw_params.h"
#include "index/index.h"
#include "index/level0_graph.h"
#include "index/page_block.h"
#include "index/prefetch.h"
#include "index/search_context.h"
#include "index/slot_table.h"

namespace wp::index {

class BinaryReader;
class BinaryWriter;

class HnswGraph {
 public:
  using slot_t = uint32_t;
  static constexpr slot_t kNoSlot = ~slot_t{0};
  static constexpr uint8_t kTombstone = 1;  ///< removed, still routes until consolidated
  static constexpr uint8_t kFree = 2;       ///< consolidated; the slot may be reused
  static constexpr int kMaxLevel = 31;

  /// An empty graph of `dim`-dimensional vectors compared by `dist`; params must be valid.
  HnswGraph(size_t dim, const HnswParams& params, DistanceFn dist);
  ~HnswGraph();
  HnswGraph(const HnswGraph&) = delete;
  HnswGraph& operator=(const HnswGraph&) = delete;

  // --- typed access to a slot (level 0 record: [count | links[2M] | vector | label]) ---
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
    return level == 0 ? links0(s) : upper_[s] + (level - 1) * (1 + params_.M);
  }
  /// A word of a link list (its count or a link) read where an insert may be writing the list:
  /// whole, old or new (a list read so may mix old and new links, each a vertex placed before).
  static uint32_t link_word(const uint32_t* w) { return __atomic_load_n(w, __ATOMIC_RELAXED); }
  /// Writes a word of a link list for such readers.
  static void set_link_word(uint32_t* w, uint32_t v) { __atomic_store_n(w, v, __ATOMIC_RELAXED); }
  /// Bytes of a level-0 record (links, vector, id): most of what a vertex holds.
  size_t record_bytes() const { return stride_; }
  size_t max_links(int level) const { return level == 0 ? max_m0_ : params_.M; }
  uint8_t flags(slot_t s) const { return flags_[s]; }
  int level(slot_t s) const { return levels_[s]; }

  size_t dim() const { return dim_; }
  const HnswParams& params() const { return params_; }
  size_t slot_count() const { return slot_count_; }
  size_t capacity() const { return capacity_; }
  size_t live_count() const { return live_count_; }
  size_t num_tombstones() const { return num_tombstones_; }
  /// Where searches enter the graph: the top vertex and its level, read as one (an insert may
  /// move it meanwhile; a vertex is never entered at a level it lacks).
  struct Entry {
    slot_t slot;
    int level;
  };
  Entry entry() const {
    const uint64_t e = entry_.load(std::memory_order_acquire);
    return {static_cast<slot_t>(e), static_cast<int>(e >> 32) - 1};
  }
  slot_t entry_point() const { return entry().slot; }
  int max_level() const { return entry().level; }
  /// The slot of a live id, or kNoSlot.
  slot_t find(label_t id) const {
    return label_to_slot_.find(id, LabelOf{this}, label_hash).value_or(kNoSlot);
  }

  /// Starts reading what find(id) and a distance to the vector found will read: the label and
  /// the vector's first line of the record find compares first. Rarely cached when the ids
  /// come from elsewhere (a filter's matches); a loop that asks a few ids ahead has several
  /// of those reads in flight where one by one each waits alone.
  void prefetch_find(label_t id) const {
    if (const auto s = label_to_slot_.first_probe(id, label_hash)) {
      prefetch(record(*s) + label_offset_);
      prefetch(vec(*s));
    }
  }

  float distance(const float* a, const float* b) const { return dist_(a, b, dim_); }
  float distance_between(slot_t a, slot_t b) const { return distance(vec(a), vec(b)); }

  /// Spin lock of a slot's lists while vertices are inserted in parallel.
  void lock(slot_t s) const;
  void unlock(slot_t s) const;

  // --- changes ---
  /// Grows storage to `n` slots without reallocation later.
  void reserve(size_t n);
  /// Makes aside, without changing what searches read, the id table that `n` more ids need when
  /// the present one would have to grow for them (see Index::prepare_add).
  void prepare_ids(size_t n);
  /// Takes the table prepare_ids made, unless an id was mapped or unmapped since.
  void take_prepared_ids();
  /// A slot for (id, v), recycled or fresh: v is copied in, a level drawn, the id mapped to it.
  /// The vertex is not linked yet (insert). Capacity must allow it (reserve).
  slot_t allocate(label_t id, const float* v);
  /// Links slot s into the graph: greedy descent, beam search of ef_construction on each of its
  /// levels, the heuristic's neighbours and their reverse edges. Safe in parallel with other
  /// insert() calls (per-slot locks; the entry point under a mutex).
  void insert(slot_t s, SearchContext& ctx);
  /// Tombstones slot s: its id is unmapped; it still routes searches until consolidated.
  void mark_removed(slot_t s);
  /// Reconnects every vertex that pointed at a tombstone through the tombstone's own neighbours
  /// (repair), then frees the tombstones' slots and moves the entry point off them.
  void consolidate(SearchContextPool& contexts, int threads);
  /// Forgets every vertex (storage is kept).
  void clear();

  /// Level 0 by slot (slots are 0..slot_count()-1; removed slots have no label and no edges).
  Level0Graph export_level0() const;
  /// Replaces every level-0 list (see HnswIndex::replace_level0 for the rules it checks).
  void replace_level0(const std::vector<std::vector<uint32_t>>& lists);

  /// A deep copy.
  std::unique_ptr<HnswGraph> clone() const;
  size_t memory_bytes() const;
  /// The graph part of an HNSW file payload (slot count, entry, records, levels, flags, upper
  /// lists), and back into an empty graph of the same dimension and parameters; read() checks
  /// every count, level, flag and link and throws a UserError naming the file otherwise.
  void write(BinaryWriter& out) const;
  void read(BinaryReader& in);

 private:
  int random_level();
  /// Frees the upper levels' lists of every slot.
  void free_upper();
  /// Writes s's list at `level` from chosen[0, n), keeping the links that concurrent inserts
  /// added to it meanwhile (heuristic selection when they do not all fit).
  void set_own_links(slot_t s, int level, const Candidate* chosen, size_t n, SearchContext& ctx);
  void connect_reverse(slot_t from, slot_t to, int level, SearchContext& ctx);
  /// Rewrites u's list at `level` when it points at a tombstone (consolidate's step).
  void repair(slot_t u, int level, SearchContext& ctx);

  size_t dim_;
  HnswParams params_;
  DistanceFn dist_;
  size_t max_m0_;         ///< 2 * M
  size_t stride_;         ///< bytes per level-0 record
  size_t vector_offset_;  ///< offset of the vector in a record
  size_t label_offset_;   ///< offset of the label in a record
  double level_mult_;     ///< 1 / ln(M)

  PageBlock level0_;       ///< grows without copying (page_block.h)
  size_t capacity_ = 0;    ///< slots allocated
  size_t slot_count_ = 0;  ///< slots in use (live, tombstoned or free)
  size_t live_count_ = 0;
  size_t num_tombstones_ = 0;

  // Per slot, each in an array that grows without copying (page_block.h): at 1.1M points the
  // copies of these into fresh memory held the collection's searches up 70 ms.
  PageArray<uint8_t> levels_{kReservedSlots};  ///< level of each slot
  PageArray<uint8_t> flags_{kReservedSlots};   ///< kTombstone / kFree
  /// Links of levels 1..levels_[s] (new[]), or null; owned: freed by consolidate, clear and the
  /// destructor.
  PageArray<uint32_t*> upper_{kReservedSlots};
  PageArray<uint8_t> locks_{kReservedSlots};  ///< one spin lock per slot (build time)
  /// Slots the per-slot arrays reserve address space for before their pages move.
  static constexpr size_t kReservedSlots = size_t{256} << 20;
  std::vector<slot_t> free_slots_;
  /// Label -> slot of the live vertices (the labels are the records': label_of).
  SlotTable<slot_t> label_to_slot_;
  /// label_to_slot_ grown by prepare_ids; dropped when an id is mapped or unmapped meanwhile.
  std::optional<SlotTable<slot_t>> prepared_ids_;
  struct LabelOf {
    const HnswGraph* graph;
    label_t operator()(slot_t s) const { return graph->label_of(s); }
  };
  static size_t label_hash(label_t l) { return mix_hash(l); }

  void set_entry(slot_t s, int level) {
    entry_.store(static_cast<uint64_t>(level + 1) << 32 | s, std::memory_order_release);
  }
  /// entry(): the slot in the low 32 bits, the level + 1 above (empty: kNoSlot, level -1).
  std::atomic<uint64_t> entry_{kNoSlot};
  std::mutex entry_mutex_;  ///< one insert at a time moves the entry (parallel inserts)
  std::mt19937_64 level_rng_;
};

}  // namespace wp::index
