#include "learn/pruning_env.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "index/dataset.h"
#include "index/distance.h"
#include "index/error.h"
#include "index/flat_index.h"
#include "index/neighbor_selection.h"
#include "index/sorted_beam.h"
#include "index/visited_set.h"

namespace wp::learn {

void EnvConfig::validate() const {
  WP_THROW_IF_NOT(ef >= 1 && ef <= 10000, "ef must be in 1..10000, got ", ef);
  WP_THROW_IF_NOT(k >= 1 && k <= ef, "k must be in 1..ef (", ef, "), got ", k);
  WP_THROW_IF_NOT(max_hops >= 1, "max_hops must be at least 1");
}

double episode_reward(double recall, uint64_t dcs, uint64_t max_dcs) {
  const double slack = static_cast<double>(max_dcs) - static_cast<double>(dcs);
  return recall * std::max(slack, 1.0);
}

PruningEnv::PruningEnv(const index::HnswIndex& index, index::Level0Graph graph, uint32_t entry,
                       EnvConfig cfg)
    : index_(index),
      graph_(std::move(graph)),
      entry_(entry),
      cfg_(cfg),
      dist_(index::distance_fn(index.metric(), index.dim())) {
  cfg_.validate();
  WP_THROW_IF_NOT(entry_ < graph_.num_vertices() && graph_.labels[entry_] != index::kNoLabel,
                  "entry vertex ", entry_, " is not a live vertex of the graph");
  WP_THROW_IF_NOT(graph_.offsets.size() == graph_.num_vertices() + 1, "graph offsets malformed");
}

Episode PruningEnv::run(const float* query, const uint32_t* true_knn,
                        const std::vector<float>& keep_prob, bool sample, uint64_t seed, size_t ef,
                        const QueryStart& start) const {
  return run_traced(query, true_knn, keep_prob, sample, seed, ef, start, nullptr);
}

Episode PruningEnv::run_traced(const float* query, const uint32_t* true_knn,
                               const std::vector<float>& keep_prob, bool sample, uint64_t seed,
                               size_t ef, const QueryStart& start, Trace* trace) const {
  if (ef == 0) ef = cfg_.ef;
  WP_THROW_IF_NOT(ef >= cfg_.k, "ef ", ef, " is below k ", cfg_.k);
  WP_THROW_IF_NOT(keep_prob.size() == graph_.num_edges(), "keep_prob has ", keep_prob.size(),
                  " entries for ", graph_.num_edges(), " edges");
  // The walker's visited set, one per thread, reused across its episodes.
  thread_local index::VisitedSet visited;
  visited.start(graph_.num_vertices());
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  // The beam and the query copy are reused across this thread's episodes. The walk is the served
  // one (index/sorted_beam.h), so that a learnt graph is served as it was trained.
  thread_local index::SortedBeam beam;
  thread_local std::vector<float> q;
  Episode ep;
  const size_t d = index_.dim();
  // Cosine indexes store unit vectors; the query is normalised the same way.
  q.assign(query, query + d);
  if (index_.metric() == index::Metric::kCosine) index::normalize(q.data(), d);

  const uint32_t held_out = start.held_out;
  const bool own_entry =
      start.entry != kNoSlot && start.entry < graph_.num_vertices() && start.entry != held_out;
  const uint32_t entry = own_entry ? start.entry : entry_;
  const float d0 = dist_(q.data(), index_.slot_vector(entry), d);
  // The descent already computed the entry's distance; the env's own entry costs one.
  ep.dcs = own_entry ? std::max<uint32_t>(start.entry_dcs, 1) : 1;
  visited.insert(entry);
  if (held_out != kNoSlot && held_out < graph_.num_vertices()) visited.insert(held_out);
  beam.start(ef, d0, entry);
  for (uint32_t c; ep.hops < cfg_.max_hops && beam.next(&c);) {
    ++ep.hops;
    for (uint64_t e = graph_.offsets[c]; e < graph_.offsets[c + 1]; ++e) {
      const uint32_t v = graph_.neighbors[e];
      if (visited.contains(v)) continue;
      const float p = keep_prob[e];
      bool keep;
      if (!sample) {
        keep = p > 0.5f;
      } else if (p <= 0.0f || p >= 1.0f) {  // frozen: applied, not sampled, not logged
        keep = p >= 1.0f;
      } else {
        keep = uniform(rng) < p;
        ep.actions.push_back({static_cast<uint32_t>(e), static_cast<uint8_t>(keep)});
      }
      if (!keep) continue;  // v stays unvisited: another edge may still reach it
      visited.insert(v);
      const float dv = dist_(q.data(), index_.slot_vector(v), d);
      ++ep.dcs;
      if (trace) trace->reached.push_back({v, static_cast<uint32_t>(e), c});
      if (beam.admits(dv)) beam.insert(dv, v);
    }
  }
  // The beam's order, as HnswIndex::search_one answers (equal distances alike).
  for (size_t j = 0; j < beam.size() && j < cfg_.k; ++j) ep.result.push_back(beam[j].id);
  size_t hits = 0;
  for (uint32_t r : ep.result) hits += std::count(true_knn, true_knn + cfg_.k, r);
  ep.recall = static_cast<double>(hits) / cfg_.k;
  ep.reward = episode_reward(ep.recall, ep.dcs, cfg_.max_dcs);
  return ep;
}

std::vector<Episode> PruningEnv::run_batch(const QuerySet& qs, const std::vector<float>& keep_prob,
                                           bool sample, uint64_t seed, size_t ef) const {
  WP_THROW_IF_NOT(qs.k == cfg_.k && qs.knn.size() >= qs.size() * cfg_.k, "need ", cfg_.k,
                  " true neighbours per query");
  std::vector<Episode> out(qs.size());
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < static_cast<int64_t>(qs.size()); ++i) {
    out[i] = run(qs.x.row(i), qs.knn.data() + i * cfg_.k, keep_prob, sample, seed + i, ef,
                 qs.start_of(i));
  }
  return out;
}

EdgeUsage PruningEnv::usage(const QuerySet& qs, const std::vector<float>& keep_prob,
                            size_t ef) const {
  WP_THROW_IF_NOT(qs.k == cfg_.k && qs.knn.size() >= qs.size() * cfg_.k, "need ", cfg_.k,
                  " true neighbours per query");
  const size_t E = graph_.num_edges();
  EdgeUsage total;
  total.evaluated.assign(E, 0);
  total.useful.assign(E, 0);
#pragma omp parallel
  {
    EdgeUsage mine;
    mine.evaluated.assign(E, 0);
    mine.useful.assign(E, 0);
    Trace trace;
    std::unordered_map<uint32_t, std::pair<uint32_t, uint32_t>> parent;  // vertex -> (edge, src)
    std::vector<uint32_t> path;
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < static_cast<int64_t>(qs.size()); ++i) {
      trace.reached.clear();
      const uint32_t* truth = qs.knn.data() + i * cfg_.k;
      const Episode ep =
          run_traced(qs.x.row(i), truth, keep_prob, false, 0, ef, qs.start_of(i), &trace);
      parent.clear();
      for (const auto& r : trace.reached) {
        ++mine.evaluated[r[1]];
        parent.emplace(r[0], std::make_pair(r[1], r[2]));
      }
      // Each true neighbour found marks the edges of the path that first reached it (an edge
      // on several such paths counts once per search).
      path.clear();
      for (uint32_t v : ep.result) {
        if (std::find(truth, truth + cfg_.k, v) == truth + cfg_.k) continue;
        for (auto it = parent.find(v); it != parent.end(); it = parent.find(it->second.second)) {
          path.push_back(it->second.first);
        }
      }
      std::sort(path.begin(), path.end());
      path.erase(std::unique(path.begin(), path.end()), path.end());
      for (uint32_t e : path) ++mine.useful[e];
    }
#pragma omp critical
    for (size_t e = 0; e < E; ++e) {
      total.evaluated[e] += mine.evaluated[e];
      total.useful[e] += mine.useful[e];
    }
  }
  return total;
}

void enter_through_upper_levels(QuerySet& qs, const index::HnswIndex& index) {
  qs.entry.assign(qs.size(), kNoSlot);
  qs.entry_dcs.assign(qs.size(), 0);
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < static_cast<int64_t>(qs.size()); ++i) {
    std::vector<float> q(qs.x.row(i), qs.x.row(i) + qs.x.d);
    if (index.metric() == index::Metric::kCosine) index::normalize(q.data(), q.size());
    uint64_t dcs = 0;
    qs.entry[i] = index.upper_entry(q.data(), qs.held_out_of(i), &dcs);
    qs.entry_dcs[i] = static_cast<uint32_t>(dcs);
  }
}

std::vector<CurvePoint> PruningEnv::curve(const QuerySet& queries,
                                          const std::vector<float>& keep_prob,
                                          const std::vector<size_t>& efs) const {
  std::vector<CurvePoint> out;
  for (size_t ef : efs) {
    const auto eps = run_batch(queries, keep_prob, false, 0, ef);
    CurvePoint pt;
    pt.ef = ef;
    for (const Episode& e : eps) {
      pt.recall += e.recall;
      pt.dcs += static_cast<double>(e.dcs);
    }
    pt.recall /= std::max<size_t>(1, eps.size());
    pt.dcs /= std::max<size_t>(1, eps.size());
    out.push_back(pt);
  }
  return out;
}

std::vector<size_t> default_ef_sweep(size_t k) {
  std::vector<size_t> efs{k};
  for (size_t ef : {12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512}) {
    if (ef > k) efs.push_back(ef);
  }
  return efs;
}

double dcs_at_recall(const std::vector<CurvePoint>& curve, double target) {
  for (size_t i = 0; i < curve.size(); ++i) {
    if (curve[i].recall < target) continue;
    if (i == 0) return curve[0].dcs;
    const CurvePoint& a = curve[i - 1];
    const CurvePoint& b = curve[i];
    const double t = (target - a.recall) / std::max(b.recall - a.recall, 1e-12);
    return a.dcs + t * (b.dcs - a.dcs);
  }
  return std::numeric_limits<double>::infinity();
}

double flat_reward_budget(const CurvePoint& a, const CurvePoint& b) {
  const double lo = 1.1 * a.dcs, hi = 100 * a.dcs;
  if (b.recall <= a.recall || b.dcs <= a.dcs) return hi;
  return std::clamp(b.dcs + a.recall * (b.dcs - a.dcs) / (b.recall - a.recall), lo, hi);
}

std::vector<uint8_t> guarded_mask(const index::Level0Graph& g, uint32_t entry,
                                  const std::vector<float>& keep_prob, size_t min_degree,
                                  size_t* restored) {
  WP_THROW_IF_NOT(keep_prob.size() == g.num_edges(), "keep_prob has ", keep_prob.size(),
                  " entries for ", g.num_edges(), " edges");
  const size_t n = g.num_vertices();
  std::vector<uint8_t> mask(g.num_edges());
  size_t added = 0;
  for (size_t e = 0; e < mask.size(); ++e) mask[e] = keep_prob[e] > 0.5f;
  // 1. Minimum out-degree: restore the most probable dropped edges.
  std::vector<uint64_t> order;
  for (size_t u = 0; u < n; ++u) {
    if (g.labels[u] == index::kNoLabel) continue;
    const uint64_t b = g.offsets[u], e = g.offsets[u + 1];
    size_t kept = 0;
    for (uint64_t j = b; j < e; ++j) kept += mask[j];
    if (kept >= min_degree || kept == e - b) continue;
    order.clear();
    for (uint64_t j = b; j < e; ++j) {
      if (!mask[j]) order.push_back(j);
    }
    std::sort(order.begin(), order.end(),
              [&](uint64_t x, uint64_t y) { return keep_prob[x] > keep_prob[y]; });
    for (size_t i = 0; i < order.size() && kept < min_degree; ++i, ++kept, ++added) {
      mask[order[i]] = 1;
    }
  }
  // 2. Reachability from the entry: BFS over kept edges; while some live vertex is unreached,
  //    restore, for each unreached vertex with a dropped in-edge from a reached vertex, the most
  //    probable such edge, and continue the BFS from there.
  std::vector<uint8_t> reached(n, 0);
  std::vector<uint32_t> stack{entry};
  reached[entry] = 1;
  auto bfs = [&] {
    while (!stack.empty()) {
      const uint32_t u = stack.back();
      stack.pop_back();
      for (uint64_t j = g.offsets[u]; j < g.offsets[u + 1]; ++j) {
        const uint32_t v = g.neighbors[j];
        if (mask[j] && !reached[v]) {
          reached[v] = 1;
          stack.push_back(v);
        }
      }
    }
  };
  bfs();
  for (;;) {
    std::vector<uint64_t> best(n, UINT64_MAX);
    bool any = false;
    for (size_t u = 0; u < n; ++u) {
      if (!reached[u]) continue;
      for (uint64_t j = g.offsets[u]; j < g.offsets[u + 1]; ++j) {
        const uint32_t v = g.neighbors[j];
        if (reached[v] || g.labels[v] == index::kNoLabel) continue;
        if (best[v] == UINT64_MAX || keep_prob[j] > keep_prob[best[v]]) best[v] = j;
        any = true;
      }
    }
    if (!any) break;  // the rest is unreachable in the initial graph too
    for (size_t v = 0; v < n; ++v) {
      if (best[v] == UINT64_MAX || reached[v]) continue;
      mask[best[v]] = 1;
      ++added;
      reached[v] = 1;
      stack.push_back(static_cast<uint32_t>(v));
    }
    bfs();
  }
  if (restored) *restored = added;
  return mask;
}

std::vector<float> edge_features(const index::HnswIndex& index, const index::Level0Graph& g,
                                 const EdgeUsage* usage, const std::vector<uint8_t>& sources) {
  WP_THROW_IF_NOT(sources.empty() || sources.size() == g.num_edges(), "edge sources for ",
                  sources.size(), " edges, the graph has ", g.num_edges());
  WP_THROW_IF_NOT(
      !usage || (usage->evaluated.size() == g.num_edges() && usage->useful.size() == g.num_edges()),
      "edge usage counted over another graph");
  const size_t n = g.num_vertices(), E = g.num_edges(), F = kEdgeFeatures;
  std::vector<float> f(E * F, 0.0f);
  std::vector<uint32_t> indeg(n, 0);
  for (uint32_t v : g.neighbors) ++indeg[v];
  size_t live = 0;
  for (size_t u = 0; u < n; ++u) live += g.labels[u] != index::kNoLabel;
  const double mean_in = static_cast<double>(E) / std::max<size_t>(1, live);
  const bool l2 = index.metric() == index::Metric::kL2;
  auto true_dist = [&](uint32_t a, uint32_t b) {
    const float d = std::max(index.distance_between(a, b), 0.0f);
    return l2 ? std::sqrt(d) : d;
  };
  double total_len = 0;
#pragma omp parallel reduction(+ : total_len)
  {
    std::vector<std::pair<float, uint64_t>> byd;  // (d(u, v), edge)
#pragma omp for schedule(dynamic, 64)
    for (int64_t u = 0; u < static_cast<int64_t>(n); ++u) {
      const uint64_t b = g.offsets[u], e = g.offsets[u + 1];
      if (b == e) continue;
      byd.clear();
      for (uint64_t j = b; j < e; ++j) byd.push_back({true_dist(u, g.neighbors[j]), j});
      std::sort(byd.begin(), byd.end());
      const size_t deg = byd.size();
      const float nearest = std::max(byd[0].first, 1e-12f);
      for (size_t r = 0; r < deg; ++r) {
        const auto [duv, j] = byd[r];
        const uint32_t v = g.neighbors[j];
        float occl = 2.0f;
        size_t occluders = 0;
        for (size_t q = 0; q < r; ++q) {
          const float dwv = true_dist(g.neighbors[byd[q].second], v);
          occl = std::min(occl, duv > 0 ? dwv / duv : 2.0f);
          occluders += dwv < duv;
        }
        bool reverse = false;
        for (uint64_t t = g.offsets[v]; t < g.offsets[v + 1] && !reverse; ++t) {
          reverse = g.neighbors[t] == static_cast<uint32_t>(u);
        }
        float* x = f.data() + j * F;
        x[0] = duv;
        x[1] = deg > 1 ? static_cast<float>(r) / (deg - 1) : 0.0f;
        x[2] = std::log(std::max(duv, 1e-12f) / nearest);
        x[3] = occl;
        x[4] = r ? static_cast<float>(occluders) / r : 0.0f;
        x[5] = reverse ? 1.0f : 0.0f;
        x[6] = static_cast<float>(indeg[v] / std::max(mean_in, 1e-12));
        if (usage) {
          const double ev = usage->evaluated[j], ok = usage->useful[j];
          x[7] = static_cast<float>(std::log1p(ev));
          x[8] = static_cast<float>((ok + 1) / (ev + 2));
        }
        for (size_t b = 0; b < kEdgeSources && !sources.empty(); ++b) {
          x[9 + b] = (sources[j] >> b) & 1 ? 1.0f : 0.0f;
        }
        total_len += duv;
      }
    }
  }
  const float mean_len = static_cast<float>(E ? total_len / E : 1.0);
  for (size_t j = 0; j < E; ++j) f[j * F] /= std::max(mean_len, 1e-12f);
  return f;
}

double RewardBaseline::advantage(size_t query, double reward) {
  auto it = value_.find(query);
  if (it == value_.end()) {
    value_[query] = reward;
    return 0.0;
  }
  const double adv = reward - it->second;
  it->second = momentum_ * it->second + (1 - momentum_) * reward;
  return adv;
}

double RewardBaseline::value(size_t query) const {
  auto it = value_.find(query);
  return it == value_.end() ? 0.0 : it->second;
}

QuerySet QuerySet::subset(const std::vector<size_t>& rows) const {
  QuerySet out;
  out.k = k;
  out.x = index::Matrix(rows.size(), x.d);
  out.knn.resize(rows.size() * k);
  if (!held_out.empty()) out.held_out.resize(rows.size());
  if (!entry.empty()) {
    out.entry.resize(rows.size());
    out.entry_dcs.resize(rows.size());
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    std::copy(x.row(rows[i]), x.row(rows[i]) + x.d, out.x.row(i));
    std::copy(knn.begin() + rows[i] * k, knn.begin() + (rows[i] + 1) * k, out.knn.begin() + i * k);
    if (!held_out.empty()) out.held_out[i] = held_out[rows[i]];
    if (!entry.empty()) {
      out.entry[i] = entry[rows[i]];
      out.entry_dcs[i] = entry_dcs[rows[i]];
    }
  }
  return out;
}

QuerySet QuerySet::slice(size_t begin, size_t n) const {
  WP_THROW_IF_NOT(begin + n <= size(), "slice ", begin, "+", n, " beyond ", size(), " queries");
  std::vector<size_t> rows(n);
  std::iota(rows.begin(), rows.end(), begin);
  return subset(rows);
}

QuerySet query_set(const index::HnswIndex& index, index::Matrix x, size_t k) {
  QuerySet qs;
  qs.k = k;
  qs.knn = true_neighbours(index, x, k);
  qs.x = std::move(x);
  return qs;
}

QuerySet leave_one_out_queries(const index::HnswIndex& index, size_t n, size_t k, uint64_t seed,
                               uint32_t avoid) {
  const index::Level0Graph g = index.export_level0();
  std::vector<uint32_t> live;
  for (uint32_t s = 0; s < g.num_vertices(); ++s) {
    if (g.labels[s] != index::kNoLabel && s != avoid) live.push_back(s);
  }
  WP_THROW_IF_NOT(live.size() > k + n / 2, "need more than ", k + n / 2,
                  " base points for leave-one-out queries, have ", live.size());
  n = std::min(n, live.size());
  std::mt19937_64 rng(seed);
  std::shuffle(live.begin(), live.end(), rng);
  QuerySet qs;
  qs.k = k;
  qs.x = index::Matrix(n, index.dim());
  qs.held_out.assign(live.begin(), live.begin() + n);
  for (size_t i = 0; i < n; ++i) {
    std::copy(index.slot_vector(live[i]), index.slot_vector(live[i]) + index.dim(), qs.x.row(i));
  }
  // k + 1 nearest, then drop the held-out point itself (or the farthest, for exact duplicates).
  const std::vector<uint32_t> nn = true_neighbours(index, qs.x, k + 1);
  qs.knn.reserve(n * k);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t* row = nn.data() + i * (k + 1);
    size_t taken = 0;
    bool skipped = false;
    for (size_t j = 0; j <= k && taken < k; ++j) {
      if (!skipped && row[j] == qs.held_out[i]) {
        skipped = true;
        continue;
      }
      qs.knn.push_back(row[j]);
      ++taken;
    }
  }
  return qs;
}

std::vector<uint32_t> true_neighbours(const index::HnswIndex& index, const index::Matrix& queries,
                                      size_t k) {
  const index::Level0Graph g = index.export_level0();
  index::FlatIndex flat(index.dim(), index.metric() == index::Metric::kL2
                                         ? index::Metric::kL2
                                         : index::Metric::kInnerProduct);
  for (uint32_t s = 0; s < g.num_vertices(); ++s) {
    if (g.labels[s] == index::kNoLabel) continue;
    const index::label_t id = s;
    flat.add(index::MatrixView{index.slot_vector(s), 1, index.dim()}, &id);
  }
  index::Matrix q = queries;
  if (index.metric() == index::Metric::kCosine) {
    for (size_t i = 0; i < q.n; ++i) index::normalize(q.row(i), q.d);
  }
  const index::SearchResult r = flat.search(index::view(q), k);
  std::vector<uint32_t> out(r.labels.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint32_t>(r.labels[i]);
  return out;
}

}  // namespace wp::learn
