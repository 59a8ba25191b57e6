#include "index/hnsw_graph.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <new>

#include "index/error.h"
#include "index/hnsw_search.h"
#include "index/index_file.h"
#include "index/prefetch.h"

namespace wp::index {

HnswGraph::HnswGraph(size_t dim, const HnswParams& params, DistanceFn dist)
    : dim_(dim), params_(params), dist_(dist) {
  max_m0_ = 2 * params_.M;
  vector_offset_ = sizeof(uint32_t) * (1 + max_m0_);
  label_offset_ = vector_offset_ + dim_ * sizeof(float);
  stride_ = label_offset_ + sizeof(label_t);
  level_mult_ = 1.0 / std::log(static_cast<double>(params_.M));
  level_rng_.seed(params_.seed);
}

HnswGraph::~HnswGraph() {
  free_upper();
}

void HnswGraph::free_upper() {
  for (size_t s = 0; s < slot_count_; ++s) {
    delete[] upper_[s];
    upper_[s] = nullptr;
  }
}

// The locks are bytes of a PageArray (moved as bytes when it grows), taken with the compiler's
// atomic builtins.
void HnswGraph::lock(slot_t s) const {
  uint8_t* l = &locks_[s];
  while (__atomic_exchange_n(l, uint8_t{1}, __ATOMIC_ACQUIRE)) {
    while (__atomic_load_n(l, __ATOMIC_RELAXED)) cpu_relax();
  }
}

void HnswGraph::unlock(slot_t s) const {
  __atomic_store_n(&locks_[s], uint8_t{0}, __ATOMIC_RELEASE);
}

void HnswGraph::reserve(size_t n) {
  if (n <= capacity_) return;
  WP_THROW_IF_NOT(n < kNoSlot, "an HNSW index holds at most ", kNoSlot - 1, " vectors");
  level0_.grow(n * stride_);  // pages moved, not copied: searches wait for no copy
  levels_.grow(n);
  flags_.grow(n);
  upper_.grow(n);
  locks_.grow(n);
  capacity_ = n;
}

int HnswGraph::random_level() {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double r = -std::log(std::max(u(level_rng_), 1e-300)) * level_mult_;
  return std::min(static_cast<int>(r), kMaxLevel);
}

void HnswGraph::prepare_ids(size_t n) {
  const size_t items = label_to_slot_.size() + n;
  if (label_to_slot_.grows_for(items)) {
    prepared_ids_ = label_to_slot_.rehashed(items, LabelOf{this}, label_hash);
  }
}

void HnswGraph::take_prepared_ids() {
  if (!prepared_ids_) return;
  label_to_slot_ = std::move(*prepared_ids_);
  prepared_ids_.reset();
}

HnswGraph::slot_t HnswGraph::allocate(label_t id, const float* v) {
  slot_t s;
  if (!free_slots_.empty()) {
    s = free_slots_.back();
    free_slots_.pop_back();
  } else {
    s = static_cast<slot_t>(slot_count_++);
  }
  std::memset(record(s), 0, vector_offset_);
  std::memcpy(vec(s), v, dim_ * sizeof(float));
  std::memcpy(record(s) + label_offset_, &id, sizeof id);
  const int level = random_level();
  levels_[s] = static_cast<uint8_t>(level);
  flags_[s] = 0;
  delete[] upper_[s];
  upper_[s] = nullptr;
  if (level > 0) upper_[s] = new uint32_t[level * (1 + params_.M)]();
  prepared_ids_.reset();
  label_to_slot_.assign(s, LabelOf{this}, label_hash);
  ++live_count_;
  return s;
}

void HnswGraph::insert(slot_t s, SearchContext& ctx) {
  const float* v = vec(s);
  const int level = levels_[s];
  std::unique_lock<std::mutex> entry_lock(entry_mutex_);
  const Entry entered = entry();
  const int top_level = entered.level;
  slot_t ep = entered.slot;
  if (ep == kNoSlot) {
    set_entry(s, level);
    return;
  }
  // Keep the lock only when this vertex will become the new entry point (as hnswlib does).
  if (level <= top_level) entry_lock.unlock();

  SearchStats unused;
  const hnsw::FloatDistance dist_to{this, v};
  float ep_dist = dist_to(ep);
  ep = hnsw::descend<true>(*this, dist_to, ep, ep_dist, top_level, level, unused);
  auto between = [this](uint32_t a, uint32_t b) { return distance_between(a, b); };
  // The neighbours of every level are chosen top-down (a level's search starts from the nearest
  // found on the level above), then linked bottom-up: a search that reaches s on a level, by a
  // link made last, finds it linked on each level below, where it goes on (before, a search
  // beside this insert could descend from s into a level where s had no links yet, and answer
  // with s alone).
  const int top = std::min(level, top_level);
  size_t chosen_from[kMaxLevel + 2];  // ctx.chosen[chosen_from[l + 1], chosen_from[l]): level l
  ctx.chosen.clear();
  chosen_from[top + 1] = 0;
  for (int l = top; l >= 0; --l) {
    ctx.start(slot_count_, max_m0_);
    hnsw::search_layer<true, false, true>(*this, dist_to, ep, ep_dist, params_.ef_construction, l,
                                          nullptr, ctx, unused);
    ctx.scratch.assign(ctx.top.begin(), ctx.top.end());
    select_neighbors_heuristic(ctx.scratch, params_.M, 1.0f, between, ctx.selected);
    ctx.chosen.insert(ctx.chosen.end(), ctx.selected.begin(), ctx.selected.end());
    chosen_from[l] = ctx.chosen.size();
    if (ctx.selected.empty()) continue;  // every candidate was a tombstone
    ep = ctx.selected[0].id;
    ep_dist = ctx.selected[0].distance;
  }
  for (int l = 0; l <= top; ++l) {
    const Candidate* chosen = ctx.chosen.data() + chosen_from[l + 1];
    const size_t n = chosen_from[l] - chosen_from[l + 1];
    if (n == 0) continue;
    set_own_links(s, l, chosen, n, ctx);
    for (size_t i = 0; i < n; ++i) connect_reverse(chosen[i].id, s, l, ctx);
  }
  if (level > top_level) set_entry(s, level);  // linked below first: searches may enter here
}

namespace {
/// Writes a link list: the ids of `c`, then its count (for searches reading it meanwhile).
void write_list(uint32_t* ll, const std::vector<Candidate>& c) {
  for (size_t j = 0; j < c.size(); ++j) HnswGraph::set_link_word(ll + 1 + j, c[j].id);
  HnswGraph::set_link_word(ll, static_cast<uint32_t>(c.size()));
}
}  // namespace

void HnswGraph::set_own_links(slot_t s, int level, const Candidate* chosen, size_t n,
                              SearchContext& ctx) {
  lock(s);
  uint32_t* ll = links(s, level);
  // Another insert running beside this one may have found s and linked itself here: its link is
  // kept with the chosen ones, else that vertex could be left with no way in.
  ctx.scratch.assign(chosen, chosen + n);
  for (size_t j = 1; j <= ll[0]; ++j) {
    const uint32_t t = ll[j];
    bool known = false;
    for (size_t i = 0; i < n; ++i) known = known || chosen[i].id == t;
    if (!known) ctx.scratch.push_back({distance_between(s, t), t});
  }
  const size_t cap = max_links(level);
  if (ctx.scratch.size() > cap) {
    auto between = [this](uint32_t a, uint32_t b) { return distance_between(a, b); };
    select_neighbors_heuristic(ctx.scratch, cap, 1.0f, between, ctx.selected);
    write_list(ll, ctx.selected);
  } else {
    write_list(ll, ctx.scratch);
  }
  unlock(s);
}

void HnswGraph::connect_reverse(slot_t from, slot_t to, int level, SearchContext& ctx) {
  lock(from);
  uint32_t* ll = links(from, level);
  const size_t cnt = ll[0];
  const size_t cap = max_links(level);
  for (size_t j = 0; j < cnt; ++j) {
    if (ll[1 + j] == to) {
      unlock(from);
      return;
    }
  }
  if (cnt < cap) {
    set_link_word(ll + 1 + cnt, to);
    set_link_word(ll, static_cast<uint32_t>(cnt + 1));
    unlock(from);
    return;
  }
  // Full: re-select among the old neighbours and the new one.
  ctx.scratch.clear();
  ctx.scratch.push_back({distance_between(from, to), to});
  for (size_t j = 0; j < cnt; ++j) {
    ctx.scratch.push_back({distance_between(from, ll[1 + j]), ll[1 + j]});
  }
  auto between = [this](uint32_t a, uint32_t b) { return distance_between(a, b); };
  select_neighbors_heuristic(ctx.scratch, cap, 1.0f, between, ctx.selected);
  write_list(ll, ctx.selected);
  unlock(from);
}

void HnswGraph::mark_removed(slot_t s) {
  prepared_ids_.reset();
  label_to_slot_.erase(label_of(s), LabelOf{this}, label_hash);
  flags_[s] = kTombstone;
  --live_count_;
  ++num_tombstones_;
}

void HnswGraph::repair(slot_t u, int level, SearchContext& ctx) {
  uint32_t* ll = links(u, level);
  const size_t cnt = ll[0];
  bool touched = false;
  for (size_t j = 1; j <= cnt && !touched; ++j) touched = flags_[ll[j]] != 0;
  if (!touched) return;
  // Candidates: u's live neighbours, and the live vertices reached from its removed neighbours by
  // walking through removed vertices only (a breadth-first search with a budget), so that a chain
  // of removals does not cut u off from what lay behind it.
  ctx.start(slot_count_, max_m0_);
  ctx.visited.insert(u);
  std::vector<uint32_t>& live = ctx.links;
  std::vector<uint32_t>& removed = ctx.removed;
  live.clear();
  removed.clear();
  auto visit = [&](slot_t v) {
    if (ctx.visited.test_and_set(v)) return;
    (flags_[v] ? removed : live).push_back(v);
  };
  for (size_t j = 1; j <= cnt; ++j) visit(ll[j]);
  // u's own removed neighbours are always walked through (as DiskANN's consolidation does);
  // deeper removed vertices only while the candidates are fewer than 3 x max_links. Walking
  // further costs a distance per candidate for every repaired vertex: measured, 50k deletes from
  // 100k points in 50 batches took 77 s with the walk bounded by 4 x max_links removed vertices
  // alone.
  const size_t direct = removed.size();
  const size_t budget = 4 * max_links(level), enough = 3 * max_links(level);
  for (size_t head = 0; head < removed.size() && head < budget; ++head) {
    if (head >= direct && live.size() >= enough) break;
    const uint32_t* vl = links(removed[head], level);
    for (size_t i = 1; i <= vl[0]; ++i) visit(vl[i]);
  }
  ctx.scratch.clear();
  for (uint32_t v : live) ctx.scratch.push_back({distance_between(u, v), v});
  auto between = [this](uint32_t a, uint32_t b) { return distance_between(a, b); };
  select_neighbors_heuristic(ctx.scratch, max_links(level), 1.0f, between, ctx.selected);
  // Refill up to full degree with the nearest pruned candidates: a repaired vertex has lost edges
  // that the heuristic would have kept had the removed vertices never existed, and the vertices
  // behind a removed one may have no other way in. Measured in test_hnsw_dynamic: recall@10 at
  // ef=16 after 30% deletes 0.922 with the plain heuristic, 0.985 with the refill (fresh: 0.962).
  const size_t kept = ctx.selected.size();
  for (const Candidate& c : ctx.scratch) {  // sorted nearest first by the selection
    if (ctx.selected.size() >= max_links(level)) break;
    bool have = false;
    for (size_t j = 0; j < kept && !have; ++j) have = ctx.selected[j].id == c.id;
    if (!have) ctx.selected.push_back(c);
  }
  write_list(ll, ctx.selected);
}

void HnswGraph::consolidate(SearchContextPool& contexts, int threads) {
  if (num_tombstones_ == 0) return;
    // Each live vertex rewrites only its own lists and reads only lists of removed vertices, which
    // nobody writes in this phase: the loop needs no locks.
#pragma omp parallel num_threads(threads)
  {
    auto ctx = contexts.acquire();
#pragma omp for schedule(dynamic, 256)
    for (int64_t i = 0; i < static_cast<int64_t>(slot_count_); ++i) {
      const slot_t u = static_cast<slot_t>(i);
      if (flags_[u]) continue;
      for (int l = 0; l <= levels_[u]; ++l) repair(u, l, *ctx);
    }
  }
  for (slot_t s = 0; s < slot_count_; ++s) {
    if (flags_[s] != kTombstone) continue;
    flags_[s] = kFree;
    links0(s)[0] = 0;
    delete[] upper_[s];
    upper_[s] = nullptr;
    levels_[s] = 0;
    free_slots_.push_back(s);
  }
  num_tombstones_ = 0;
  if (entry_point() != kNoSlot && flags_[entry_point()]) {
    Entry top{kNoSlot, -1};
    for (slot_t s = 0; s < slot_count_; ++s) {
      if (!flags_[s] && static_cast<int>(levels_[s]) > top.level) top = {s, levels_[s]};
    }
    set_entry(top.slot, top.level);
  }
}

void HnswGraph::clear() {
  free_upper();
  slot_count_ = live_count_ = num_tombstones_ = 0;
  free_slots_.clear();
  label_to_slot_.clear();
  prepared_ids_.reset();
  set_entry(kNoSlot, -1);
}

Level0Graph HnswGraph::export_level0() const {
  Level0Graph g;
  g.labels.resize(slot_count_, kNoLabel);
  g.offsets.assign(1, 0);
  for (slot_t s = 0; s < slot_count_; ++s) {
    if (!flags_[s]) {
      g.labels[s] = label_of(s);
      const uint32_t* ll = links0(s);
      g.neighbors.insert(g.neighbors.end(), ll + 1, ll + 1 + ll[0]);
    }
    g.offsets.push_back(g.neighbors.size());
  }
  return g;
}

void HnswGraph::replace_level0(const std::vector<std::vector<uint32_t>>& lists) {
  WP_THROW_IF_NOT(num_tombstones_ == 0, "consolidate() before replacing the graph");
  WP_THROW_IF_NOT(lists.size() == slot_count_, "replace_level0: ", lists.size(), " lists for ",
                  slot_count_, " vertices");
  for (size_t s = 0; s < lists.size(); ++s) {
    WP_THROW_IF_NOT(lists[s].size() <= max_m0_, "replace_level0: vertex ", s, " has ",
                    lists[s].size(), " neighbours, more than 2M = ", max_m0_);
    for (uint32_t v : lists[s]) {
      WP_THROW_IF_NOT(v < slot_count_ && v != s && !flags_[v], "replace_level0: vertex ", s,
                      " links to ", v, ", which is not a live vertex");
    }
    WP_THROW_IF_NOT(flags_[s] == 0 || lists[s].empty(), "replace_level0: freed vertex ", s,
                    " must have no neighbours");
  }
  for (size_t s = 0; s < lists.size(); ++s) {
    uint32_t* ll = links0(static_cast<slot_t>(s));
    ll[0] = static_cast<uint32_t>(lists[s].size());
    std::copy(lists[s].begin(), lists[s].end(), ll + 1);
  }
}

std::unique_ptr<HnswGraph> HnswGraph::clone() const {
  auto c = std::make_unique<HnswGraph>(dim_, params_, dist_);
  c->reserve(std::max<size_t>(capacity_, 1));
  std::memcpy(c->level0_.get(), level0_.get(), slot_count_ * stride_);
  c->slot_count_ = slot_count_;
  c->live_count_ = live_count_;
  c->num_tombstones_ = num_tombstones_;
  std::memcpy(c->levels_.data(), levels_.data(), slot_count_);
  std::memcpy(c->flags_.data(), flags_.data(), slot_count_);
  for (size_t s = 0; s < slot_count_; ++s) {
    if (!upper_[s]) continue;
    const size_t n = levels_[s] * (1 + params_.M);
    c->upper_[s] = new uint32_t[n];
    std::memcpy(c->upper_[s], upper_[s], n * sizeof(uint32_t));
  }
  c->free_slots_ = free_slots_;
  c->label_to_slot_ = label_to_slot_;
  c->entry_.store(entry_.load());
  c->level_rng_ = level_rng_;
  return c;
}

size_t HnswGraph::memory_bytes() const {
  size_t b = capacity_ * (stride_ + 3 * sizeof(uint8_t) + sizeof(uint32_t*));
  for (size_t s = 0; s < slot_count_; ++s) {
    if (upper_[s]) b += levels_[s] * (1 + params_.M) * sizeof(uint32_t);
  }
  b += label_to_slot_.memory_bytes();
  return b + free_slots_.capacity() * sizeof(slot_t);
}

void HnswGraph::write(BinaryWriter& out) const {
  out.write<uint64_t>(slot_count_);
  out.write<int32_t>(max_level());
  out.write<uint32_t>(entry_point());
  out.write_bytes(level0_.get(), slot_count_ * stride_);
  out.write_bytes(levels_.data(), slot_count_);
  out.write_bytes(flags_.data(), slot_count_);
  for (size_t s = 0; s < slot_count_; ++s) {
    if (levels_[s] > 0) out.write_bytes(upper_[s], levels_[s] * (1 + params_.M) * 4);
  }
}

void HnswGraph::read(BinaryReader& in) {
  WP_THROW_INTERNAL_IF_NOT(slot_count_ == 0, "HnswGraph::read into a graph that is not empty");
  const uint64_t count = in.read<uint64_t>();
  const int32_t max_level = in.read<int32_t>();
  const uint32_t entry = in.read<uint32_t>();
  in.check(count < kNoSlot && count <= in.remaining() / stride_, "vertex count out of range");
  in.check(max_level >= -1 && max_level <= kMaxLevel, "max level out of range");
  in.check(count == 0 ? entry == kNoSlot : entry < count, "entry point out of range");
  reserve(std::max<uint64_t>(count, 1));
  slot_count_ = count;
  level0_.populate(count * stride_);  // its pages at once, not a fault each as the copy writes
  in.read_bytes(level0_.get(), count * stride_);
  in.read_bytes(levels_.data(), count);
  in.read_bytes(flags_.data(), count);
  for (size_t s = 0; s < count; ++s) {
    const int level = levels_[s];
    in.check(level <= std::max(max_level, 0), "vertex level above the graph's top");
    if (level == 0) continue;
    upper_[s] = new uint32_t[level * (1 + params_.M)];
    in.read_bytes(upper_[s], level * (1 + params_.M) * 4);
  }
  std::vector<label_t> labels(count);  // of the live slots
  std::vector<slot_t> live;
  live.reserve(count);
  for (slot_t s = 0; s < count; ++s) {
    const uint8_t f = flags_[s];
    in.check(f == 0 || f == kTombstone || f == kFree, "bad vertex flag");
    for (int l = 0; l <= levels_[s]; ++l) {
      const uint32_t* ll = links(s, l);
      in.check(ll[0] <= max_links(l), "neighbour count above the maximum");
      for (size_t j = 1; j <= ll[0]; ++j) {
        in.check(ll[j] < count, "neighbour id out of range");
        // A search at level l reads the neighbour's links at level l (found by fuzz_index_file:
        // a link to a lower vertex read past its link lists).
        in.check(levels_[ll[j]] >= l, "neighbour below its link's level");
      }
    }
    if (f == kFree) {
      free_slots_.push_back(s);
    } else if (f == kTombstone) {
      ++num_tombstones_;
    } else {
      labels[s] = label_of(s);
      live.push_back(s);
      in.check(all_finite(vec(s), dim_), "non-finite vector");
    }
  }
  // Loaded at once, sized once, the labels compared in an array read in order above rather than
  // in the records at random: each label found, then assigned (the table growing 17 times), this
  // function's own time at 1M x 128 was 0.51 s, 0.20 s so.
  in.check(!label_to_slot_.insert_distinct(
               live, [&](slot_t s) { return labels[s]; }, label_hash),
           "duplicate id");
  live_count_ = label_to_slot_.size();
  if (count) {
    in.check(levels_[entry] == max_level && flags_[entry] != kFree,
             "entry point is not a top-level vertex");
  }
  if (count) set_entry(entry, max_level);
  level_rng_.seed(params_.seed + count);
}

}  // namespace wp::index
