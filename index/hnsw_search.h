#pragma once
/**
 * @file hnsw_search.h
 * The walks over an HnswGraph (Malkov & Yashunin, TPAMI 2018): the greedy descent through the
 * upper levels (their Alg. 2 with ef = 1) and the beam search on one level (Alg. 2), shared by
 * insertion (hnsw_graph.cpp) and queries (hnsw_index.cpp).
 *
 * Fast paths are chosen by template flags, as hnswlib does, not by runtime branches: kLocked
 * (insertion: copy each list under its slot's lock, as other inserts rewrite lists whole;
 * searches read each word whole instead, which is all they need), kFiltered (only ids the filter
 * holds are results, the others still route) and kTombstones (removed vertices route but are never
 * results). The distance is a functor `Dist` over slots: FloatDistance on the stored vectors, or
 * CodeDistance on 8-bit codes (hnsw_index.cpp); it also gives the address and size of what it
 * reads, so that the walk prefetches it.
 */
#include <algorithm>
#include <limits>

#include "index/hnsw_graph.h"
#include "index/id_filter.h"
#include "index/prefetch.h"

namespace wp::index::hnsw {

using slot_t = HnswGraph::slot_t;

/// Prefetches at most this much of each unvisited neighbour's vector (or code); the hardware
/// streams the rest.
constexpr size_t kMaxPrefetchBytes = 16 * 64;

/// Distance from a query to stored vertices, on the float vectors.
struct FloatDistance {
  const HnswGraph* graph;
  const float* q;
  float operator()(slot_t v) const { return graph->distance(q, graph->vec(v)); }
  const void* address(slot_t v) const { return graph->vec(v); }
  size_t bytes() const { return graph->dim() * sizeof(float); }
};

/// Greedy descent through levels top_level .. stop_level + 1: from `ep`, move to the nearest
/// neighbour while one is nearer. Returns the vertex reached; `ep_dist` is its distance.
template <bool kLocked, typename Dist>
slot_t descend(const HnswGraph& g, const Dist& dist_to, slot_t ep, float& ep_dist, int top_level,
               int stop_level, SearchStats& st) {
  for (int l = top_level; l > stop_level; --l) {
    bool changed = true;
    while (changed) {
      changed = false;
      const slot_t cur = ep;
      if (kLocked) g.lock(cur);
      const uint32_t* ll = g.links(cur, l);
      const size_t cnt = HnswGraph::link_word(ll);
      ++st.hops;
      for (size_t j = 1; j <= cnt; ++j) {
        const slot_t c = HnswGraph::link_word(ll + j);
        const float d = dist_to(c);
        ++st.distance_computations;
        if (d < ep_dist) {
          ep_dist = d;
          ep = c;
          changed = true;
        }
      }
      if (kLocked) g.unlock(cur);
    }
  }
  return ep;
}

/// Marks the unvisited neighbours of `ll` (a list: count, then ids) visited, copies them to
/// `fresh` and prefetches what `dist_to` will read of each, so that their cache misses overlap;
/// returns how many there are.
template <typename Dist>
size_t gather_fresh(const uint32_t* ll, const VisitedSet::Walk& visited, const Dist& dist_to,
                    size_t prefetch_bytes, uint32_t* fresh) {
  const size_t cnt = HnswGraph::link_word(ll);
  size_t n_fresh = 0;
  for (size_t j = 1; j <= cnt; ++j) {
    const slot_t v = HnswGraph::link_word(ll + j);
    if (visited.test_and_set(v)) continue;
    fresh[n_fresh++] = v;
    const char* a = static_cast<const char*>(dist_to.address(v));
    for (size_t off = 0; off < prefetch_bytes; off += 64) prefetch(a + off);
  }
  return n_fresh;
}

/// A query's beam search of width `ef` on one level from `ep` (already started: ctx.start());
/// leaves the best `ef` admissible vertices in ctx.top sorted farthest first (a max-heap by
/// distance; HnswIndex::search_one reverses it rather than sorting it again). The admissible
/// vertices found are kept on a SortedBeam (sorted_beam.h says why), those that only route (not
/// in the filter, or removed) on a min-heap (ctx.frontier); the nearer of the two's nearest not
/// yet expanded is expanded next, while it is no farther than the beam's bound. This expands
/// what hnswlib's walk expands (one frontier of both kinds, one heap of the best ef), ties in
/// distance aside. Filtered, it stops where ctx.limits say, setting ctx.cut. `Graph` is an
/// HnswGraph, or what reads as one (links, flags, label_of: tests walk graphs of their own).
template <bool kFiltered, bool kTombstones, typename Graph, typename Dist>
void query_walk(const Graph& g, const Dist& dist_to, slot_t ep, float ep_dist, size_t ef, int level,
                const IdFilter* filter, SearchContext& ctx, SearchStats& st) {
  constexpr bool kRoutes = kFiltered || kTombstones;  // some vertices only route
  SortedBeam& beam = ctx.beam;
  auto& routes = ctx.frontier;
  const VisitedSet::Walk visited = ctx.visited.walk();
  // Vertices tested by the filter and those that passed (the probe of a filtered walk).
  [[maybe_unused]] size_t tested = 0, matched = 0;
  auto admissible = [&](slot_t v) {
    if (kTombstones && g.flags(v)) return false;
    if (kFiltered) {
      ++tested;
      if (!filter->contains(g.label_of(v))) return false;
      ++matched;
    }
    return true;
  };
  auto take = [&](float d, slot_t v) {
    if (!kRoutes || admissible(v)) {
      beam.insert(d, v);
    } else {
      routes.push_back({d, v});
      std::push_heap(routes.begin(), routes.end(), FartherFirst());
    }
  };
  visited.insert(ep);
  beam.start(ef);
  take(ep_dist, ep);
  // Prefetch whole vectors (codes) up to kMaxPrefetchBytes. Measured on Fashion-MNIST (d=784,
  // ef=16): hnsw-sq8 went from ~18k QPS prefetching one line per neighbour to ~28k prefetching
  // all 13 lines of every unvisited neighbour up front.
  const size_t prefetch_bytes = std::min(dist_to.bytes(), kMaxPrefetchBytes);
  uint32_t* fresh = ctx.batch.data();
  [[maybe_unused]] size_t expanded = 0;
  [[maybe_unused]] size_t probe = ctx.limits.probe_tests;
  while (true) {
    const SortedBeam::Entry* nearest = beam.nearest_unexpanded();
    const bool route =
        kRoutes && !routes.empty() && (!nearest || routes.front().distance < nearest->distance);
    if (route) {
      // The nearest left is a routing vertex; any admissible one left is no nearer.
      if (routes.front().distance > beam.bound()) break;
    } else if (!nearest) {
      break;
    }
    if (kFiltered) {
      ++expanded;
      bool stop = expanded > ctx.limits.hop_budget;
      // Probed at probe_tests, then at twice as many tests each time, while the walk holds fewer
      // than ef matches (holding ef, it is bounded and ends as an unfiltered one does): stopped
      // where too few passed, or where the tests it still needs for ef at the rate seen cost
      // more than the scan.
      if (tested >= probe && beam.size() < ef) {
        const double t = static_cast<double>(tested), m = static_cast<double>(matched);
        const WalkLimits& l = ctx.limits;
        stop = stop || m < l.probe_rate * t ||
               static_cast<double>(ef - beam.size()) * (t + l.prior_tests) >
                   (m + l.prior_matches) * l.scan_tests;
        probe = probe <= SIZE_MAX / 2 ? 2 * probe : SIZE_MAX;
      }
      if (stop) {
        ctx.cut = true;
        break;
      }
    }
    slot_t cur;
    if (route) {
      cur = routes.front().id;
      std::pop_heap(routes.begin(), routes.end(), FartherFirst());
      routes.pop_back();
    } else {
      cur = nearest->id;
      beam.expand_nearest();
    }
    ++st.hops;
    // Two passes over the neighbours: first mark the unvisited ones and prefetch their vectors
    // all at once, so that their cache misses overlap; then compute the distances. An insert
    // may be writing the list: each word is read whole (hnsw_graph.h).
    const size_t n_fresh =
        gather_fresh(g.links(cur, level), visited, dist_to, prefetch_bytes, fresh);
    for (size_t j = 0; j < n_fresh; ++j) {
      const float d = dist_to(fresh[j]);
      ++st.distance_computations;
      if (beam.admits(d)) take(d, fresh[j]);
    }
  }
  beam.to_heap(ctx.top);
}

/// Beam search of width `ef` on one level from `ep` (already started: ctx.start()); leaves the
/// best `ef` admissible vertices in ctx.top, a max-heap by distance. Queries (kLocked false) walk
/// query_walk; inserts (kLocked: each list copied under its lock, as other inserts rewrite lists
/// whole) keep hnswlib's two heaps: on integer data (distances tie often) the beam's other choice
/// among equal distances builds another graph, and the pruning agent's headline test (digits)
/// lost its margin on it (docs/hnsw.md, "One sorted beam").
template <bool kLocked, bool kFiltered, bool kTombstones, typename Dist>
void search_layer(const HnswGraph& g, const Dist& dist_to, slot_t ep, float ep_dist, size_t ef,
                  int level, const IdFilter* filter, SearchContext& ctx, SearchStats& st) {
  if constexpr (!kLocked) {
    query_walk<kFiltered, kTombstones>(g, dist_to, ep, ep_dist, ef, level, filter, ctx, st);
  } else {
    static_assert(!kFiltered, "inserts walk without a filter");
    auto& top = ctx.top;
    auto& frontier = ctx.frontier;
    const VisitedSet::Walk visited = ctx.visited.walk();
    auto admissible = [&](slot_t v) { return !(kTombstones && g.flags(v)); };
    visited.insert(ep);
    frontier.push_back({ep_dist, ep});
    if (admissible(ep)) top.push_back({ep_dist, ep});
    float bound = top.size() >= ef ? top.front().distance : std::numeric_limits<float>::infinity();
    const size_t prefetch_bytes = std::min(dist_to.bytes(), kMaxPrefetchBytes);
    while (!frontier.empty()) {
      const Candidate c = frontier.front();
      if (c.distance > bound) break;
      std::pop_heap(frontier.begin(), frontier.end(), FartherFirst());
      frontier.pop_back();
      g.lock(c.id);
      const uint32_t* src = g.links(c.id, level);
      ctx.links.assign(src, src + 1 + src[0]);
      g.unlock(c.id);
      ++st.hops;
      uint32_t* fresh = ctx.batch.data();
      const size_t n_fresh =
          gather_fresh(ctx.links.data(), visited, dist_to, prefetch_bytes, fresh);
      for (size_t j = 0; j < n_fresh; ++j) {
        const slot_t v = fresh[j];
        const float d = dist_to(v);
        ++st.distance_computations;
        if (top.size() < ef || d < bound) {
          frontier.push_back({d, v});
          std::push_heap(frontier.begin(), frontier.end(), FartherFirst());
          if (admissible(v)) {
            top.push_back({d, v});
            std::push_heap(top.begin(), top.end());
            if (top.size() > ef) {
              std::pop_heap(top.begin(), top.end());
              top.pop_back();
            }
            if (top.size() >= ef) bound = top.front().distance;
          }
        }
      }
    }
  }
}

}  // namespace wp::index::hnsw
