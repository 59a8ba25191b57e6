#include "index/vamana.h"

#include <omp.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <unordered_map>

#include "index/error.h"
#include "index/neighbor_selection.h"
#include "index/visited_set.h"

namespace wp::index {

double average_degree(const std::vector<std::vector<uint32_t>>& lists) {
  size_t edges = 0, vertices = 0;
  for (const auto& l : lists) {
    edges += l.size();
    vertices += !l.empty();
  }
  return vertices ? static_cast<double>(edges) / vertices : 0.0;
}

std::vector<std::vector<uint32_t>> knn_lists(const HnswIndex& index, size_t K, size_t ef) {
  const Level0Graph g = index.export_level0();
  const size_t n = g.num_vertices();
  std::vector<std::vector<uint32_t>> lists(n);
  // Label -> slot for the results (search returns labels).
  std::unordered_map<label_t, uint32_t> slot_of;
  for (uint32_t s = 0; s < n; ++s) {
    if (g.labels[s] != kNoLabel) slot_of[g.labels[s]] = s;
  }
  SearchParams p;
  p.ef = std::max(ef, K + 1);
#pragma omp parallel
  {
    std::vector<label_t> labels(K + 1);
    std::vector<float> dist(K + 1);
    std::vector<float> q(index.dim());
#pragma omp for schedule(dynamic, 64)
    for (int64_t s = 0; s < static_cast<int64_t>(n); ++s) {
      if (g.labels[s] == kNoLabel) continue;
      // Stored vectors are already normalised for cosine; normalising again changes nothing.
      std::copy(index.slot_vector(s), index.slot_vector(s) + index.dim(), q.begin());
      index.search_one(q.data(), K + 1, p, labels.data(), dist.data());
      for (label_t l : labels) {
        if (l == kNoLabel) break;
        const uint32_t v = slot_of.at(l);
        if (v != s && lists[s].size() < K) lists[s].push_back(v);
      }
    }
  }
  return lists;
}

void check_prune_alpha(Metric metric, float alpha) {
  WP_THROW_IF_NOT(alpha == 1.0f || metric != Metric::kInnerProduct, "alpha ", alpha,
                  ": a slack above 1 is defined for l2 and cosine distances, not inner product "
                  "(alpha 1 is the HNSW heuristic)");
}

std::vector<std::vector<uint32_t>> prune_lists(const HnswIndex& index,
                                               const std::vector<std::vector<uint32_t>>& lists,
                                               size_t R, float alpha) {
  check_prune_alpha(index.metric(), alpha);
  const PruneRule rule = prune_rule(index.metric(), alpha);
  std::vector<std::vector<uint32_t>> out(lists.size());
#pragma omp parallel
  {
    std::vector<Candidate> cands, kept;
#pragma omp for schedule(dynamic, 64)
    for (int64_t s = 0; s < static_cast<int64_t>(lists.size()); ++s) {
      cands.clear();
      for (uint32_t v : lists[s]) cands.push_back({index.distance_between(s, v), v});
      select_neighbors_robust(
          cands, R, rule.alpha,
          [&](uint32_t x, uint32_t y) { return index.distance_between(x, y); }, kept, rule.shift);
      for (const Candidate& c : kept) out[s].push_back(c.id);
    }
  }
  return out;
}

std::vector<std::vector<uint32_t>> add_reverse_edges(
    const HnswIndex& index, const std::vector<std::vector<uint32_t>>& lists, size_t R, float alpha,
    bool prune) {
  // Vamana's second half: for every edge s -> v add v -> s, then bring lists above R back down,
  // by the alpha rule (prune) or by keeping the nearest.
  std::vector<std::vector<uint32_t>> out = lists;
  for (uint32_t s = 0; s < lists.size(); ++s) {
    for (uint32_t v : lists[s]) out[v].push_back(s);
  }
  check_prune_alpha(index.metric(), alpha);
  const PruneRule rule = prune_rule(index.metric(), alpha);
#pragma omp parallel
  {
    std::vector<Candidate> cands, kept;
#pragma omp for schedule(dynamic, 64)
    for (int64_t s = 0; s < static_cast<int64_t>(out.size()); ++s) {
      std::vector<uint32_t>& l = out[s];
      std::sort(l.begin(), l.end());
      l.erase(std::unique(l.begin(), l.end()), l.end());
      if (l.size() <= R) continue;
      cands.clear();
      for (uint32_t v : l) cands.push_back({index.distance_between(s, v), v});
      if (prune) {
        select_neighbors_robust(
            cands, R, rule.alpha,
            [&](uint32_t x, uint32_t y) { return index.distance_between(x, y); }, kept, rule.shift);
      } else {
        // Forward edges first (the list's own choice), then the nearest reverse edges.
        std::vector<Candidate> reverse;
        kept.clear();
        for (const Candidate& c : cands) {
          const bool forward = std::find(lists[s].begin(), lists[s].end(), c.id) != lists[s].end();
          (forward ? kept : reverse).push_back(c);
        }
        std::sort(reverse.begin(), reverse.end());
        for (const Candidate& c : reverse) {
          if (kept.size() >= R) break;
          kept.push_back(c);
        }
        if (kept.size() > R) kept.resize(R);
      }
      l.clear();
      for (const Candidate& c : kept) l.push_back(c.id);
    }
  }
  return out;
}

namespace {

/// DiskANN's GreedySearch (Alg. 1) over mutable lists: a sorted pool of at most L candidates,
/// expanded nearest first; returns (in `expanded`) every vertex it expanded, with its distance.
class GreedySearch {
 public:
  void run(const HnswIndex& index, const std::vector<std::vector<uint32_t>>& lists, uint32_t q,
           uint32_t start, size_t L, std::vector<Candidate>& expanded) {
    visited_.start(lists.size());
    expanded.clear();
    pool_.clear();
    visited_.insert(start);
    pool_.push_back({{index.distance_between(q, start), start}, false});
    for (size_t i = 0; i < pool_.size();) {
      if (pool_[i].done) {
        ++i;
        continue;
      }
      pool_[i].done = true;
      const Candidate u = pool_[i].c;
      expanded.push_back(u);
      size_t first_new = pool_.size();
      for (uint32_t v : lists[u.id]) {
        if (visited_.test_and_set(v)) continue;
        const float d = index.distance_between(q, v);
        if (pool_.size() >= L && d >= pool_.back().c.distance) continue;
        Entry e{{d, v}, false};
        auto at = std::upper_bound(pool_.begin(), pool_.end(), e,
                                   [](const Entry& a, const Entry& b) { return a.c < b.c; });
        first_new = std::min(first_new, static_cast<size_t>(at - pool_.begin()));
        pool_.insert(at, e);
        if (pool_.size() > L) pool_.pop_back();
      }
      i = std::min(i + 1, first_new);  // a nearer unexpanded candidate may have arrived
    }
  }

 private:
  struct Entry {
    Candidate c;
    bool done;
  };
  VisitedSet visited_;
  std::vector<Entry> pool_;
};

}  // namespace

std::vector<std::vector<uint32_t>> random_lists(size_t n, size_t R, uint64_t seed) {
  std::vector<std::vector<uint32_t>> lists(n);
  if (n < 2) return lists;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint32_t> pick(0, static_cast<uint32_t>(n - 1));
  const size_t degree = std::min(R, n - 1);
  for (uint32_t s = 0; s < n; ++s) {
    auto& l = lists[s];
    while (l.size() < degree) {
      const uint32_t v = pick(rng);
      if (v != s && std::find(l.begin(), l.end(), v) == l.end()) l.push_back(v);
    }
  }
  return lists;
}

namespace {

/// One batch of Vamana's pass, in parallel on the same snapshot of `lists`: for each p in
/// order[b0, b1), RobustPrune(p, V u N_out(p), alpha, R) over the vertices V its greedy search
/// expanded, p itself excluded; the new lists go to fresh[i - b0].
void prune_batch(const HnswIndex& index, const std::vector<std::vector<uint32_t>>& lists,
                 const std::vector<uint32_t>& order, size_t b0, size_t b1, uint32_t start, size_t R,
                 size_t L, PruneRule rule, std::vector<std::vector<uint32_t>>& fresh) {
  auto between = [&](uint32_t x, uint32_t y) { return index.distance_between(x, y); };
#pragma omp parallel
  {
    GreedySearch search;
    std::vector<Candidate> visited, kept;
#pragma omp for schedule(dynamic, 4)
    for (int64_t i = static_cast<int64_t>(b0); i < static_cast<int64_t>(b1); ++i) {
      const uint32_t p = order[i];
      search.run(index, lists, p, start, L, visited);
      std::vector<Candidate> cands;
      for (const Candidate& c : visited) {
        if (c.id != p) cands.push_back(c);
      }
      for (uint32_t v : lists[p]) {
        if (v != p) cands.push_back({index.distance_between(p, v), v});
      }
      std::sort(cands.begin(), cands.end(), [](const Candidate& x, const Candidate& y) {
        return x.distance < y.distance || (x.distance == y.distance && x.id < y.id);
      });
      cands.erase(std::unique(cands.begin(), cands.end(),
                              [](const Candidate& x, const Candidate& y) { return x.id == y.id; }),
                  cands.end());
      select_neighbors_robust(cands, R, rule.alpha, between, kept, rule.shift);
      auto& out = fresh[i - b0];
      out.clear();
      for (const Candidate& c : kept) out.push_back(c.id);
    }
  }
}

/// The reverse edges j -> p of the batch's new lists (`incoming[j]` holds the p, `touched` the
/// j); a list over R is cut back by RobustPrune.
void add_batch_reverse_edges(const HnswIndex& index, std::vector<std::vector<uint32_t>>& lists,
                             std::vector<std::vector<uint32_t>>& incoming,
                             const std::vector<uint32_t>& touched, size_t R, PruneRule rule) {
  auto between = [&](uint32_t x, uint32_t y) { return index.distance_between(x, y); };
#pragma omp parallel
  {
    std::vector<Candidate> cands, kept;
#pragma omp for schedule(dynamic, 16)
    for (int64_t t = 0; t < static_cast<int64_t>(touched.size()); ++t) {
      const uint32_t j = touched[t];
      auto& l = lists[j];
      for (uint32_t p : incoming[j]) {
        if (std::find(l.begin(), l.end(), p) == l.end()) l.push_back(p);
      }
      incoming[j].clear();
      if (l.size() <= R) continue;
      cands.clear();
      for (uint32_t v : l) cands.push_back({index.distance_between(j, v), v});
      select_neighbors_robust(cands, R, rule.alpha, between, kept, rule.shift);
      l.clear();
      for (const Candidate& c : kept) l.push_back(c.id);
    }
  }
}

}  // namespace

std::vector<std::vector<uint32_t>> vamana_lists(const HnswIndex& index,
                                                std::vector<std::vector<uint32_t>> lists,
                                                uint32_t start, size_t R, size_t L, float alpha,
                                                uint64_t seed) {
  check_prune_alpha(index.metric(), alpha);
  const size_t n = lists.size();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  // Batches of vertices search the same snapshot in parallel, then their lists are written in
  // order (as ParlayANN builds Vamana): the result depends on the seed only, not on threads.
  const size_t batch = std::clamp<size_t>(n / 100, 32, 1024);
  std::vector<std::vector<uint32_t>> fresh(batch);
  std::vector<std::vector<uint32_t>> incoming(n);
  std::vector<uint32_t> touched;
  for (const float pass_alpha : {1.0f, alpha}) {
    const PruneRule rule = prune_rule(index.metric(), pass_alpha);
    for (size_t b0 = 0; b0 < n; b0 += batch) {
      const size_t b1 = std::min(n, b0 + batch);
      prune_batch(index, lists, order, b0, b1, start, R, L, rule, fresh);
      touched.clear();
      for (size_t i = b0; i < b1; ++i) {
        const uint32_t p = order[i];
        lists[p] = fresh[i - b0];
        for (uint32_t j : lists[p]) {
          if (incoming[j].empty()) touched.push_back(j);
          incoming[j].push_back(p);
        }
      }
      add_batch_reverse_edges(index, lists, incoming, touched, R, rule);
    }
  }
  return lists;
}

}  // namespace wp::index
