#include "learn/pruning_env.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "index/dataset.h"
#include "index/distance.h"
#include "index/error.h"
#include "index/flat_index.h"
#include "index/neighbor_selection.h"

namespace wp::learn {

using index::Candidate;
using index::FartherFirst;

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
                        const std::vector<float>& keep_prob, bool sample, uint64_t seed) const {
  WP_THROW_IF_NOT(keep_prob.size() == graph_.num_edges(), "keep_prob has ", keep_prob.size(),
                  " entries for ", graph_.num_edges(), " edges");
  // Per-thread visited tags, cleared only when the 32-bit tag wraps.
  thread_local std::vector<uint32_t> visited;
  thread_local uint32_t tag = 0;
  if (visited.size() < graph_.num_vertices()) {
    visited.assign(graph_.num_vertices(), 0);
    tag = 0;
  }
  if (++tag == 0) {
    std::fill(visited.begin(), visited.end(), 0);
    tag = 1;
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  // Heaps and the query copy are reused across this thread's episodes.
  thread_local std::vector<Candidate> frontier, top;
  thread_local std::vector<float> q;
  frontier.clear();
  top.clear();
  Episode ep;
  const size_t d = index_.dim();
  // Cosine indexes store unit vectors; the query is normalised the same way.
  q.assign(query, query + d);
  if (index_.metric() == index::Metric::kCosine) index::normalize(q.data(), d);

  const float d0 = dist_(q.data(), index_.slot_vector(entry_), d);
  ep.dcs = 1;
  visited[entry_] = tag;
  frontier.push_back({d0, entry_});
  top.push_back({d0, entry_});
  while (!frontier.empty()) {
    const Candidate c = frontier.front();
    if (top.size() >= cfg_.ef && c.distance > top.front().distance) break;
    if (ep.hops >= cfg_.max_hops) break;
    std::pop_heap(frontier.begin(), frontier.end(), FartherFirst());
    frontier.pop_back();
    ++ep.hops;
    for (uint64_t e = graph_.offsets[c.id]; e < graph_.offsets[c.id + 1]; ++e) {
      const uint32_t v = graph_.neighbors[e];
      if (visited[v] == tag) continue;
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
      visited[v] = tag;
      const float dv = dist_(q.data(), index_.slot_vector(v), d);
      ++ep.dcs;
      if (top.size() < cfg_.ef || dv < top.front().distance) {
        frontier.push_back({dv, v});
        std::push_heap(frontier.begin(), frontier.end(), FartherFirst());
        top.push_back({dv, v});
        std::push_heap(top.begin(), top.end());
        if (top.size() > cfg_.ef) {
          std::pop_heap(top.begin(), top.end());
          top.pop_back();
        }
      }
    }
  }
  std::sort_heap(top.begin(), top.end());
  for (size_t j = 0; j < top.size() && j < cfg_.k; ++j) ep.result.push_back(top[j].id);
  size_t hits = 0;
  for (uint32_t r : ep.result) hits += std::count(true_knn, true_knn + cfg_.k, r);
  ep.recall = static_cast<double>(hits) / cfg_.k;
  ep.reward = episode_reward(ep.recall, ep.dcs, cfg_.max_dcs);
  return ep;
}

std::vector<Episode> PruningEnv::run_batch(const index::Matrix& queries,
                                           const std::vector<uint32_t>& knn,
                                           const std::vector<float>& keep_prob, bool sample,
                                           uint64_t seed) const {
  WP_THROW_IF_NOT(knn.size() >= queries.n * cfg_.k, "need ", cfg_.k, " true neighbours per query");
  std::vector<Episode> out(queries.n);
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < static_cast<int64_t>(queries.n); ++i) {
    out[i] = run(queries.row(i), knn.data() + i * cfg_.k, keep_prob, sample, seed + i);
  }
  return out;
}

void PruningEnv::calibrate_max_dcs(const index::Matrix& queries, const std::vector<uint32_t>& knn) {
  if (cfg_.max_dcs) return;
  const std::vector<float> all(graph_.num_edges(), 1.0f);
  const auto eps = run_batch(queries, knn, all, false, 0);
  uint64_t total = 0;
  for (const Episode& e : eps) total += e.dcs;
  cfg_.max_dcs = std::max<uint64_t>(1, total / std::max<size_t>(1, eps.size()));
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

index::Matrix make_training_queries(const index::Matrix& base, size_t n, uint64_t seed) {
  WP_THROW_IF_NOT(base.n >= 12, "need at least 12 base vectors to mix training queries");
  std::mt19937_64 rng(seed);
  index::Matrix anchors(n, base.d);
  std::vector<size_t> anchor_rows(n);
  for (size_t i = 0; i < n; ++i) {
    anchor_rows[i] = rng() % base.n;
    std::copy(base.row(anchor_rows[i]), base.row(anchor_rows[i]) + base.d, anchors.row(i));
  }
  const index::IntMatrix nn = index::exact_knn(base, anchors, 11, index::Metric::kL2);
  std::uniform_real_distribution<float> mix(0.25f, 0.75f);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  index::Matrix q(n, base.d);
  for (size_t i = 0; i < n; ++i) {
    const float* a = base.row(anchor_rows[i]);
    const float* b = base.row(nn.row(i)[1 + rng() % 10]);  // skip the anchor itself
    const float t = mix(rng);
    const float sigma = 0.05f * std::sqrt(index::l2sqr(a, b, base.d) / base.d);
    for (size_t j = 0; j < base.d; ++j)
      q.row(i)[j] = t * a[j] + (1 - t) * b[j] + sigma * noise(rng);
  }
  return q;
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
