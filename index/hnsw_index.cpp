#include "index/hnsw_index.h"

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <new>
#include <unordered_map>

#include "index/error.h"
#include "index/filter_cost.h"
#include "index/hnsw_search.h"

namespace wp::index {

namespace {
constexpr size_t kAlign = 64;
constexpr size_t kMinQuantizerTrainingSize = 1000;
constexpr size_t kMaxQuantizerTrainingSize = 100000;

const HnswParams& validated(const HnswParams& p) {
  p.validate();
  return p;
}

/// Distance from a prepared query to stored vertices, on the 8-bit codes.
struct CodeDistance {
  const uint8_t* codes;
  size_t stride;  ///< bytes per code
  size_t dim;
  const float* q;  ///< Sq8Quantizer::prepare_query output
  CodeDistanceFn fn;
  float scale;  ///< step^2 for l2, -step for ip
  float bias;   ///< 0 for l2, -sum q_j min_j for ip
  const uint8_t* code(uint32_t v) const { return codes + static_cast<size_t>(v) * stride; }
  float operator()(uint32_t v) const { return bias + scale * fn(q, code(v), dim); }
  const void* address(uint32_t v) const { return code(v); }
  size_t bytes() const { return dim; }
};
}  // namespace

HnswIndex::HnswIndex(size_t dim, Metric metric, const HnswParams& params)
    : Index(dim, metric),
      params_(validated(params)),
      dist_(distance_fn(metric, dim)),
      kernels_(&kernels_for_dim(dim)),
      graph_(std::make_unique<HnswGraph>(dim, params_, dist_)) {
  code_stride_ =
      params_.quantization == Quantization::kSq8 ? (dim_ + kAlign - 1) / kAlign * kAlign : 0;
}

HnswIndex::~HnswIndex() = default;

void HnswIndex::reserve(size_t n) {
  graph_->reserve(n);
  grow_codes();
}

void HnswIndex::grow_codes() {
  if (!code_stride_ || codes_capacity_ >= graph_->capacity()) return;
  const size_t n = graph_->capacity();
  codes_.grow(n * code_stride_);
  codes_capacity_ = n;
}

void HnswIndex::add(MatrixView x, const label_t* ids) {
  place(x, ids);
  link(0);
}

void HnswIndex::place(MatrixView x, const label_t* ids) {
  WP_THROW_INTERNAL_IF_NOT(placed_.empty(), "HnswIndex::place before the last place was linked");
  check_vectors(x, "vectors");
  if (x.n == 0) return;
  std::vector<float> normalised;
  const float* data = x.data;
  if (metric_ == Metric::kCosine) {
    normalised.assign(x.data, x.data + x.n * x.d);
    for (size_t i = 0; i < x.n; ++i) {
      WP_THROW_IF_NOT(normalize(normalised.data() + i * dim_, dim_) > 0, "vectors[", i,
                      "] is the zero vector, which has no cosine direction");
    }
    data = normalised.data();
  }
  HnswGraph& g = *graph_;
  g.take_prepared_ids();  // before any id changes (prepare_add)
  // An id given twice in one batch: the last vector wins, as for successive upserts.
  std::unordered_map<label_t, size_t> last;
  last.reserve(x.n);
  for (size_t i = 0; i < x.n; ++i) last[ids[i]] = i;
  // Replacing an id removes the old vertex first; it is reconnected like any removal, now if
  // removals are due a consolidation (before the new vertices are placed: a rebuild from the
  // live vectors places and links anew).
  for (size_t i = 0; i < x.n; ++i) {
    const slot_t s = g.find(ids[i]);
    if (s != HnswGraph::kNoSlot) g.mark_removed(s);
  }
  consolidate_if_due();
  const size_t fresh = last.size();
  const size_t free = g.slot_count() - g.live_count() - g.num_tombstones();
  const size_t needed = g.slot_count() + fresh - std::min(free, fresh);
  if (needed > g.capacity()) reserve(std::max(needed, g.capacity() + g.capacity() / 2));
  std::vector<slot_t> slots;
  slots.reserve(fresh);
  for (size_t i = 0; i < x.n; ++i) {
    if (last[ids[i]] != i) continue;
    slots.push_back(g.allocate(ids[i], data + i * dim_));
    if (quantizer_.trained()) encode_slot(slots.back());
  }
  if (code_stride_) maybe_train_quantizer();
  placed_ = std::move(slots);
}

void HnswIndex::link(size_t threads) {
  // Searches may run meanwhile: they read the lists this changes word by word and the entry as
  // one (hnsw_graph.h); everything else of the placed vertices was written by place().
  HnswGraph& g = *graph_;
  const std::vector<slot_t> slots = std::move(placed_);
  placed_.clear();
  if (slots.empty()) return;
  size_t begin = 0;
  if (g.entry_point() == HnswGraph::kNoSlot) {  // the first vertex becomes the entry point
    auto ctx = contexts_.acquire();
    g.insert(slots[0], *ctx);
    begin = 1;
  }
#pragma omp parallel num_threads(insert_team(threads))
  {
    auto ctx = contexts_.acquire();
    // monotonic: the rows are taken in order, as one thread would insert them. A plain
    // schedule(dynamic) may be nonmonotonic (OpenMP 5), and libomp (clang) then gives each thread
    // a share to start on (its own half of the batch with two): where the order of the rows
    // matters, such a graph came out unlike a g++ build's (recall@10 0.90 against 0.84 in
    // HnswSq8.PointsAddedOneByOneGetAQuantizerThatCoversThem; 0.949 against 0.972 after
    // re-inserts in HnswDynamic.ThirtyPercentDeletesAndReinsertsKeepRecall).
#pragma omp for schedule(monotonic : dynamic, 1)
    for (int64_t i = static_cast<int64_t>(begin); i < static_cast<int64_t>(slots.size()); ++i) {
      g.insert(slots[i], *ctx);
    }
  }
}

void HnswIndex::maybe_train_quantizer() {
  // Train once there are enough vectors to know their range, and again each time the index has
  // doubled since, so that codes follow data added one point at a time. Until the first training,
  // searches walk the float vectors.
  const HnswGraph& g = *graph_;
  const size_t live = g.live_count();
  const bool due =
      quantizer_.trained() ? live >= 2 * quantizer_trained_at_ : live >= kMinQuantizerTrainingSize;
  if (!due) return;
  Matrix sample(std::min(live, kMaxQuantizerTrainingSize), dim_);
  size_t rows = 0;
  const size_t every = std::max<size_t>(1, live / sample.n);
  for (slot_t s = 0, seen = 0; s < g.slot_count() && rows < sample.n; ++s) {
    if (g.flags(s) || seen++ % every) continue;
    std::memcpy(sample.row(rows++), g.vec(s), dim_ * sizeof(float));
  }
  quantizer_.train(MatrixView{sample.data.data(), rows, dim_});
  quantizer_trained_at_ = live;
#pragma omp parallel for schedule(static, 1024) num_threads(insert_team(0))
  for (int64_t s = 0; s < static_cast<int64_t>(g.slot_count()); ++s) {
    if (g.flags(static_cast<slot_t>(s)) != HnswGraph::kFree) encode_slot(static_cast<slot_t>(s));
  }
}

bool HnswIndex::lists_matches(const IdFilter* filter) const {
  if (!filter) return false;
  // A costly test is made by the filter in its own order when it can list (a collection's
  // payloads in order of the points), not in the order of slots after reading each one's label.
  if (filter->costly()) return true;
  const int64_t matching = filter->count();
  return matching >= 0 && static_cast<size_t>(matching) * 4 < graph_->slot_count();
}

void HnswIndex::exact_scan(const float* q, size_t k, const IdFilter* filter, SearchContext& ctx,
                           SearchStats& st) const {
  const HnswGraph& g = *graph_;
  auto& top = ctx.top;
  top.clear();
  auto consider = [&](slot_t s) {
    const float d = g.distance(q, g.vec(s));
    ++st.distance_computations;
    if (top.size() < k) {
      top.push_back({d, s});
      std::push_heap(top.begin(), top.end());
    } else if (d < top.front().distance) {
      std::pop_heap(top.begin(), top.end());
      top.back() = {d, s};
      std::push_heap(top.begin(), top.end());
    }
  };
  // A selective filter that can list its ids: visit the matches alone (one lookup each) rather
  // than every slot (at 1M points, 1% matching: 20 ms a query went to testing the other 99%).
  // The ids are taken in batches and looked up in a loop of their own, each record read
  // kAhead ids before it is needed: a lookup reads the vertex's record (its label), rarely
  // cached, and a filter that lists by testing payloads runs enough code between two matches
  // that no two such reads overlapped (Fashion-MNIST, a class no payload index serves: the
  // lookups took 1.7 times the distances' samples in `perf`, 0.9 times batched).
  if (lists_matches(filter)) {
    constexpr size_t kBatch = 256, kAhead = 8;
    uint64_t ids[kBatch];
    size_t held = 0;
    auto flush = [&] {
      for (size_t j = 0; j < std::min(held, kAhead); ++j) g.prefetch_find(ids[j]);
      for (size_t j = 0; j < held; ++j) {
        if (j + kAhead < held) g.prefetch_find(ids[j + kAhead]);
        const slot_t s = g.find(ids[j]);
        if (s != HnswGraph::kNoSlot && !g.flags(s)) consider(s);
      }
      held = 0;
    };
    if (filter->for_each([&](uint64_t id) {
          ids[held++] = id;
          if (held == kBatch) flush();
        })) {
      flush();
      return;
    }
  }
  for (slot_t s = 0; s < g.slot_count(); ++s) {
    if (g.flags(s)) continue;
    if (filter && !filter->contains(g.label_of(s))) continue;
    consider(s);
  }
}

uint32_t HnswIndex::upper_entry(const float* q, uint32_t skip, uint64_t* dcs) const {
  const HnswGraph& g = *graph_;
  WP_THROW_IF_NOT(g.entry_point() != HnswGraph::kNoSlot, "upper_entry on an empty index");
  const hnsw::FloatDistance exact{&g, q};
  const auto dist_to = [&](slot_t v) {
    return v == skip ? std::numeric_limits<float>::max() : exact(v);
  };
  SearchStats st;
  const HnswGraph::Entry entry = g.entry();
  float ep_dist = dist_to(entry.slot);
  ++st.distance_computations;
  const slot_t ep = hnsw::descend<false>(g, dist_to, entry.slot, ep_dist, entry.level, 0, st);
  *dcs += st.distance_computations;
  return ep;
}

template <typename Dist>
void HnswIndex::search_graph(const Dist& dist_to, size_t ef, const IdFilter* filter,
                             const WalkLimits& limits, SearchContext& ctx, SearchStats& st) const {
  const HnswGraph& g = *graph_;
  // Entry: a fixed vertex of level 0 when set, else the greedy descent through the upper levels
  // (from the entry as it is now: an insert may move it meanwhile).
  const bool fixed = fixed_entry_ != HnswGraph::kNoSlot;
  const HnswGraph::Entry entry = g.entry();
  const slot_t start = fixed ? fixed_entry_ : entry.slot;
  float ep_dist = dist_to(start);
  ++st.distance_computations;
  const slot_t ep =
      fixed ? start : hnsw::descend<false>(g, dist_to, start, ep_dist, entry.level, 0, st);
  ctx.start(g.slot_count(), g.max_links(0));
  ctx.limits = limits;
  const bool tombstones = g.num_tombstones() > 0;
  if (filter) {
    if (tombstones) {
      hnsw::search_layer<false, true, true>(g, dist_to, ep, ep_dist, ef, 0, filter, ctx, st);
    } else {
      hnsw::search_layer<false, true, false>(g, dist_to, ep, ep_dist, ef, 0, filter, ctx, st);
    }
  } else if (tombstones) {
    hnsw::search_layer<false, false, true>(g, dist_to, ep, ep_dist, ef, 0, nullptr, ctx, st);
  } else {
    hnsw::search_layer<false, false, false>(g, dist_to, ep, ep_dist, ef, 0, nullptr, ctx, st);
  }
}

bool HnswIndex::filter_prefers_exact(const IdFilter& filter, size_t ef, WalkLimits* limits) const {
  const int64_t matching = filter.estimate();
  if (matching < 0) return false;
  // The costs of both ways as measured (index/filter_cost.cpp); the scan lists the matches when
  // exact_scan would.
  FilteredSearchShape s;
  s.live = static_cast<double>(graph_->live_count());
  s.matching = static_cast<double>(matching);
  s.ef = ef;
  s.scan_bytes = dim_ * sizeof(float);
  s.walk_bytes = quantizer_.trained() ? dim_ : s.scan_bytes;
  s.vertex_bytes = graph_->record_bytes() + code_stride_;
  s.listed = lists_matches(&filter);
  s.costly = filter.costly();
  const FilteredSearchCost c = filtered_search_cost(s);
  // A walk is stopped at its budget, or early where its first vertices hold too few matches,
  // and the scan made instead: where the matches lie away from the query (a filter that goes
  // with the vectors, as a category does) it would take in every vertex nearer than them first.
  auto count = [](double x) { return static_cast<size_t>(std::min(x, 1e18)); };
  limits->hop_budget = count(c.hop_budget);
  if (c.probe_tests > 0) {
    limits->probe_tests = count(c.probe_tests);
    limits->probe_rate = c.probe_rate;
    limits->prior_matches = c.prior_matches;
    limits->prior_tests = c.prior_tests;
    limits->scan_tests = c.scan_tests;
  }
  return c.prefers_scan();
}

SearchStats HnswIndex::search_one(const float* q, size_t k, const SearchParams& params,
                                  label_t* labels, float* distances) const {
  check_k(k);
  SearchStats st;
  std::fill(labels, labels + k, kNoLabel);
  std::fill(distances, distances + k, 0.0f);
  const HnswGraph& g = *graph_;
  if (g.live_count() == 0) return st;
  auto ctx = contexts_.acquire();
  if (metric_ == Metric::kCosine) {
    ctx->query.assign(q, q + dim_);
    normalize(ctx->query.data(), dim_);
    q = ctx->query.data();
  }
  const size_t ef = std::max(params.ef ? params.ef : params_.ef_search, k);
  const IdFilter* filter = params.filter;
  const int64_t matching = filter ? filter->count() : -1;
  // Vectors placed but not linked yet (HnswIndex::link runs) into an empty graph: only the scan
  // finds them.
  WalkLimits limits;
  bool exact = params.exact || g.entry_point() == HnswGraph::kNoSlot ||
               (filter && filter_prefers_exact(*filter, ef, &limits));
  if (!exact) {
    if (quantizer_.trained()) {
      // Walk on the codes, then re-rank the ef candidates with the float vectors.
      ctx->prepared.resize(dim_);
      const float bias = quantizer_.prepare_query(q, metric_, ctx->prepared.data());
      const float step = quantizer_.step();
      const bool l2 = metric_ == Metric::kL2;
      const DistanceKernels& k8 = *kernels_;
      const CodeDistance dist_to{reinterpret_cast<const uint8_t*>(codes_.get()),
                                 code_stride_,
                                 dim_,
                                 ctx->prepared.data(),
                                 l2 ? k8.l2sqr_u8 : k8.inner_product_u8,
                                 l2 ? step * step : -step,
                                 -bias};
      search_graph(dist_to, ef, filter, limits, *ctx, st);
      for (Candidate& c : ctx->top) c.distance = g.distance(q, g.vec(c.id));
      st.distance_computations += ctx->top.size();
      std::make_heap(ctx->top.begin(), ctx->top.end());
    } else {
      search_graph(hnsw::FloatDistance{&g, q}, ef, filter, limits, *ctx, st);
    }
    // A filtered walk can miss matches that sit behind vertices it never reached: when it found
    // fewer than k and more may exist, or was stopped (at its budget or a probe), fall back to
    // the exact scan so that k results come back.
    const size_t want = matching >= 0 ? std::min<size_t>(k, matching) : k;
    if (filter && (ctx->cut || ctx->top.size() < want)) exact = true;
  }
  if (exact) exact_scan(q, k, filter, *ctx, st);
  // The scan's and the re-ranked codes' are heaps; a walk's is its sorted beam, farthest first.
  if (exact || quantizer_.trained()) {
    std::sort_heap(ctx->top.begin(), ctx->top.end());
  } else {
    std::reverse(ctx->top.begin(), ctx->top.end());
  }
  const size_t found = std::min(k, ctx->top.size());
  for (size_t j = 0; j < found; ++j) {
    labels[j] = g.label_of(ctx->top[j].id);
    distances[j] = ctx->top[j].distance;
  }
  return st;
}

bool HnswIndex::get_vector(label_t id, float* out) const {
  const slot_t s = graph_->find(id);
  if (s == HnswGraph::kNoSlot) return false;
  std::memcpy(out, graph_->vec(s), dim_ * sizeof(float));
  return true;
}

bool HnswIndex::remove(label_t id) {
  const slot_t s = graph_->find(id);
  if (s == HnswGraph::kNoSlot) return false;
  graph_->mark_removed(s);
  consolidate_if_due();
  return true;
}

size_t HnswIndex::remove_batch(const label_t* ids, size_t n) {
  size_t removed = 0;
  for (size_t i = 0; i < n; ++i) {
    const slot_t s = graph_->find(ids[i]);
    if (s == HnswGraph::kNoSlot) continue;
    graph_->mark_removed(s);
    ++removed;
  }
  consolidate_if_due();
  return removed;
}

void HnswIndex::consolidate_if_due() {
  const HnswGraph& g = *graph_;
  if (g.num_tombstones() > params_.consolidate_fraction * std::max<size_t>(g.live_count(), 1)) {
    consolidate();
  }
}

void HnswIndex::consolidate() {
  if (graph_->num_tombstones() == 0) return;
  ++consolidations_;
  // When most of the graph is gone, patching it costs more than building it again from the
  // live vectors, and gives a worse graph.
  if (graph_->num_tombstones() > 0 && graph_->num_tombstones() >= graph_->live_count()) {
    rebuild_live();
    return;
  }
  graph_->consolidate(contexts_, insert_team(0));
}

void HnswIndex::rebuild_live() {
  HnswGraph& g = *graph_;
  Matrix live(g.live_count(), dim_);
  std::vector<label_t> ids;
  ids.reserve(g.live_count());
  for (slot_t s = 0; s < g.slot_count(); ++s) {
    if (g.flags(s)) continue;
    std::memcpy(live.row(ids.size()), g.vec(s), dim_ * sizeof(float));
    ids.push_back(g.label_of(s));
  }
  g.clear();
  // Vectors are stored normalised already, so this does not normalise twice for cosine.
  if (!ids.empty()) add(view(live), ids.data());
}

size_t HnswIndex::memory_bytes() const {
  return graph_->memory_bytes() + codes_capacity_ * code_stride_ + contexts_.memory_bytes();
}

std::unique_ptr<HnswIndex> HnswIndex::clone() const {
  auto c = std::make_unique<HnswIndex>(dim_, metric_, params_);
  c->graph_ = graph_->clone();
  c->grow_codes();
  if (code_stride_ && graph_->slot_count()) {
    std::memcpy(c->codes_.get(), codes_.get(), graph_->slot_count() * code_stride_);
  }
  c->quantizer_ = quantizer_;
  c->quantizer_trained_at_ = quantizer_trained_at_;
  c->fixed_entry_ = fixed_entry_;
  return c;
}

void HnswIndex::set_fixed_entry(label_t id) {
  if (id == kNoLabel) {
    fixed_entry_ = HnswGraph::kNoSlot;
    return;
  }
  const slot_t s = graph_->find(id);
  WP_THROW_IF_NOT(s != HnswGraph::kNoSlot, "fixed entry: id ", id, " is not in the index");
  fixed_entry_ = s;
}

}  // namespace wp::index
