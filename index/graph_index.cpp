#include "index/graph_index.h"

#include <omp.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "index/error.h"
#include "index/index_file.h"
#include "index/neighbor_selection.h"

namespace wp::index {

void GraphBuildSpec::validate() const {
  hnsw.validate();
  WP_THROW_IF_NOT(
      initial == "knn" || initial == "hnsw" || initial == "complete" || initial == "random",
      "initial must be knn, hnsw, complete or random, got '", initial, "'");
  WP_THROW_IF_NOT(pruning == "none" || pruning == "hnsw" || pruning == "robust" ||
                      pruning == "vamana" || pruning == "learned",
                  "pruning must be none, hnsw, robust, vamana or learned, got '", pruning, "'");
  WP_THROW_IF_NOT(L <= 4096, "L must be at most 4096, got ", L);
  WP_THROW_IF_NOT(alpha >= 1.0f && alpha <= 10.0f, "alpha must be in [1, 10], got ", alpha);
  WP_THROW_IF_NOT(R <= 2 * hnsw.M, "R must be at most 2M = ", 2 * hnsw.M, ", got ", R);
  WP_THROW_IF_NOT(K <= 1024, "K must be at most 1024, got ", K);
  WP_THROW_IF_NOT(entry == "medoid" || entry == "hnsw", "entry must be medoid or hnsw, got '",
                  entry, "'");
}

GraphBuildSpec robust_graph(const HnswParams& hnsw, float alpha) {
  GraphBuildSpec g;
  g.hnsw = hnsw;
  g.initial = "hnsw";
  g.pruning = "robust";
  g.alpha = alpha;
  g.entry = "hnsw";
  return g;
}

GraphIndex::GraphIndex(size_t dim, Metric metric, const GraphBuildSpec& spec)
    : Index(dim, metric), graph_(std::make_unique<HnswIndex>(dim, metric, spec.hnsw)) {
  spec.validate();
  info_.spec = spec;
}

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

std::vector<std::vector<uint32_t>> prune_lists(const HnswIndex& index,
                                               const std::vector<std::vector<uint32_t>>& lists,
                                               size_t R, float alpha) {
  // RobustPrune's alpha is stated for true distances; our L2 distances are squared.
  const float a = index.metric() == Metric::kL2 ? alpha * alpha : alpha;
  WP_THROW_IF_NOT(alpha == 1.0f || index.metric() == Metric::kL2,
                  "alpha > 1 is defined for l2 distances only");
  std::vector<std::vector<uint32_t>> out(lists.size());
#pragma omp parallel
  {
    std::vector<Candidate> cands, kept;
#pragma omp for schedule(dynamic, 64)
    for (int64_t s = 0; s < static_cast<int64_t>(lists.size()); ++s) {
      cands.clear();
      for (uint32_t v : lists[s]) cands.push_back({index.distance_between(s, v), v});
      select_neighbors_robust(
          cands, R, a, [&](uint32_t x, uint32_t y) { return index.distance_between(x, y); }, kept);
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
  const float a = index.metric() == Metric::kL2 ? alpha * alpha : alpha;
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
            cands, R, a, [&](uint32_t x, uint32_t y) { return index.distance_between(x, y); },
            kept);
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
  explicit GreedySearch(size_t n) : mark_(n, 0) {}

  void run(const HnswIndex& index, const std::vector<std::vector<uint32_t>>& lists, uint32_t q,
           uint32_t start, size_t L, std::vector<Candidate>& expanded) {
    if (++epoch_ == 0) {  // wrapped: clear the marks once every 2^32 searches
      std::fill(mark_.begin(), mark_.end(), 0);
      epoch_ = 1;
    }
    expanded.clear();
    pool_.clear();
    mark_[start] = epoch_;
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
        if (mark_[v] == epoch_) continue;
        mark_[v] = epoch_;
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
  std::vector<uint32_t> mark_;
  uint32_t epoch_ = 0;
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

std::vector<std::vector<uint32_t>> vamana_lists(const HnswIndex& index,
                                                std::vector<std::vector<uint32_t>> lists,
                                                uint32_t start, size_t R, size_t L, float alpha,
                                                uint64_t seed) {
  WP_THROW_IF_NOT(alpha == 1.0f || index.metric() == Metric::kL2,
                  "alpha > 1 is defined for l2 distances only");
  const size_t n = lists.size();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(seed));
  // Batches of vertices search the same snapshot in parallel, then their lists are written in
  // order (as ParlayANN builds Vamana): the result depends on the seed only, not on threads.
  const size_t batch = std::clamp<size_t>(n / 100, 32, 1024);
  auto between = [&](uint32_t x, uint32_t y) { return index.distance_between(x, y); };
  std::vector<std::vector<uint32_t>> fresh(batch);
  std::vector<std::vector<uint32_t>> incoming(n);
  std::vector<uint32_t> touched;
  for (const float pass_alpha : {1.0f, alpha}) {
    const float a = index.metric() == Metric::kL2 ? pass_alpha * pass_alpha : pass_alpha;
    for (size_t b0 = 0; b0 < n; b0 += batch) {
      const size_t b1 = std::min(n, b0 + batch);
#pragma omp parallel
      {
        GreedySearch search(n);
        std::vector<Candidate> visited, kept;
#pragma omp for schedule(dynamic, 4)
        for (int64_t i = static_cast<int64_t>(b0); i < static_cast<int64_t>(b1); ++i) {
          const uint32_t p = order[i];
          search.run(index, lists, p, start, L, visited);
          // RobustPrune(p, V u N_out(p), alpha, R), p itself excluded.
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
          cands.erase(
              std::unique(cands.begin(), cands.end(),
                          [](const Candidate& x, const Candidate& y) { return x.id == y.id; }),
              cands.end());
          select_neighbors_robust(cands, R, a, between, kept);
          auto& out = fresh[i - b0];
          out.clear();
          for (const Candidate& c : kept) out.push_back(c.id);
        }
      }
      touched.clear();
      for (size_t i = b0; i < b1; ++i) {
        const uint32_t p = order[i];
        lists[p] = fresh[i - b0];
        for (uint32_t j : lists[p]) {
          if (incoming[j].empty()) touched.push_back(j);
          incoming[j].push_back(p);
        }
      }
      // Reverse edges j -> p; a list over R is cut back by RobustPrune.
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
          select_neighbors_robust(cands, R, a, between, kept);
          l.clear();
          for (const Candidate& c : kept) l.push_back(c.id);
        }
      }
    }
  }
  return lists;
}

void GraphIndex::add(MatrixView x, const label_t* ids) {
  if (graph_->size() == 0 && graph_->max_level() < 0) {
    build(x, ids);
  } else {
    graph_->add(x, ids);
  }
}

void GraphIndex::build(MatrixView x, const label_t* ids) {
  graph_->add(x, ids);
  const GraphBuildSpec& spec = info_.spec;
  const size_t R = spec.R ? spec.R : 2 * spec.hnsw.M;
  std::vector<std::vector<uint32_t>> initial;
  if (spec.initial == "knn") {
    // A directed kNN graph navigates poorly (nothing points back out of a dense cluster), so the
    // initial graph is the kNN graph (K = M by default) with its reverse edges, at most 2M.
    const size_t K = spec.K ? spec.K : spec.hnsw.M;
    initial = add_reverse_edges(*graph_, knn_lists(*graph_, K, std::max<size_t>(2 * K, 128)),
                                2 * spec.hnsw.M, 1.0f, false);
  } else if (spec.initial == "complete") {
    // Every other vertex, nearest first: the toy setting of the paper (100 points).
    const Level0Graph g = graph_->export_level0();
    WP_THROW_IF_NOT(graph_->size() <= 2 * spec.hnsw.M + 1,
                    "initial 'complete' needs at most 2M + 1 = ", 2 * spec.hnsw.M + 1,
                    " points, got ", graph_->size(), " (raise M)");
    initial.resize(g.num_vertices());
    for (uint32_t s = 0; s < g.num_vertices(); ++s) {
      if (g.labels[s] == kNoLabel) continue;
      std::vector<Candidate> all;
      for (uint32_t v = 0; v < g.num_vertices(); ++v) {
        if (v != s && g.labels[v] != kNoLabel) all.push_back({graph_->distance_between(s, v), v});
      }
      std::sort(all.begin(), all.end());
      for (const Candidate& c : all) initial[s].push_back(c.id);
    }
  } else if (spec.initial == "random") {
    WP_THROW_IF_NOT(graph_->num_tombstones() == 0, "initial 'random' needs a fresh build");
    initial = random_lists(graph_->export_level0().num_vertices(), R, spec.hnsw.seed);
  } else {
    const Level0Graph g = graph_->export_level0();
    initial.resize(g.num_vertices());
    for (size_t s = 0; s < g.num_vertices(); ++s) {
      initial[s].assign(g.neighbors.begin() + g.offsets[s], g.neighbors.begin() + g.offsets[s + 1]);
    }
  }
  std::vector<std::vector<uint32_t>> lists;
  if (spec.pruning == "none" || spec.pruning == "learned") {  // learned: a mask comes later
    lists = std::move(initial);
    for (auto& l : lists) {
      if (l.size() > R) l.resize(R);
    }
  } else if (spec.pruning == "vamana") {
    // Vamana itself: the initial lists are only a starting point that two passes rewrite.
    graph_->set_fixed_entry(medoid());
    const uint32_t start = graph_->fixed_entry_slot();
    const size_t L = spec.L ? spec.L : std::max<size_t>(100, R);
    lists = vamana_lists(*graph_, std::move(initial), start, R, L, spec.alpha, spec.hnsw.seed);
  } else {
    // Candidates: the initial lists, and for HNSW's level 0 also the 2M nearest neighbours, so
    // that the rule chooses from diverse edges and near ones (Vamana takes the vertices visited by
    // a greedy search; this is cheaper and close).
    if (spec.initial == "hnsw") {
      const auto near = knn_lists(*graph_, 2 * spec.hnsw.M, std::max<size_t>(4 * spec.hnsw.M, 128));
      for (size_t v = 0; v < initial.size(); ++v) {
        initial[v].insert(initial[v].end(), near[v].begin(), near[v].end());
        std::sort(initial[v].begin(), initial[v].end());
        initial[v].erase(std::unique(initial[v].begin(), initial[v].end()), initial[v].end());
      }
    }
    const float alpha = spec.pruning == "hnsw" ? 1.0f : spec.alpha;
    lists = add_reverse_edges(*graph_, prune_lists(*graph_, initial, R, alpha), R, alpha, true);
  }
  finish(std::move(lists));
}

label_t GraphIndex::medoid() const {
  // The vertex nearest to the mean of the data: one fixed entry for every strategy.
  const Level0Graph g = graph_->export_level0();
  std::vector<double> mean(dim_, 0.0);
  size_t n = 0;
  for (uint32_t s = 0; s < g.num_vertices(); ++s) {
    if (g.labels[s] == kNoLabel) continue;
    const float* v = graph_->slot_vector(s);
    for (size_t j = 0; j < dim_; ++j) mean[j] += v[j];
    ++n;
  }
  std::vector<float> m(dim_);
  for (size_t j = 0; j < dim_; ++j) m[j] = static_cast<float>(mean[j] / std::max<size_t>(n, 1));
  SearchParams exact;
  exact.exact = true;
  label_t best = kNoLabel;
  float d;
  graph_->search_one(m.data(), 1, exact, &best, &d);
  return best;
}

void GraphIndex::finish(std::vector<std::vector<uint32_t>> lists) {
  info_.average_degree = average_degree(lists);
  graph_->replace_level0(lists);
  graph_->set_fixed_entry(info_.spec.entry == "medoid" ? medoid() : kNoLabel);
}

void GraphIndex::apply_mask(const Level0Graph& initial, const std::vector<uint8_t>& mask) {
  WP_THROW_IF_NOT(mask.size() == initial.num_edges(), "mask has ", mask.size(), " entries for ",
                  initial.num_edges(), " edges");
  std::vector<std::vector<uint32_t>> lists(initial.num_vertices());
  for (size_t s = 0; s < initial.num_vertices(); ++s) {
    for (uint64_t e = initial.offsets[s]; e < initial.offsets[s + 1]; ++e) {
      if (mask[e]) lists[s].push_back(initial.neighbors[e]);
    }
  }
  info_.spec.pruning = "learned";
  finish(std::move(lists));
}

void GraphIndex::save(const std::string& path) const {
  BinaryWriter out(path, IndexType::kGraph);
  write_dim_metric(out);
  const GraphBuildSpec& s = info_.spec;
  out.write_string(s.initial);
  out.write<uint64_t>(s.K);
  out.write_string(s.pruning);
  out.write<float>(s.alpha);
  out.write<uint64_t>(s.R);
  out.write_string(s.entry);
  out.write<double>(info_.average_degree);
  graph_->write_payload(out);
  out.finish();
}

std::unique_ptr<Index> GraphIndex::load(BinaryReader& in) {
  const auto [dim, metric] = read_dim_metric(in);
  GraphBuildSpec s;
  s.initial = in.read_string(16);
  s.K = in.read<uint64_t>();
  s.pruning = in.read_string(16);
  s.alpha = in.read<float>();
  s.R = in.read<uint64_t>();
  s.entry = in.read_string(16);
  const double degree = in.read<double>();
  auto graph = HnswIndex::read_payload(in);
  in.expect_end();
  in.check(graph->dim() == dim && graph->metric() == metric, "graph does not match its header");
  s.hnsw = graph->params();
  try {
    s.validate();
  } catch (const UserError& e) {
    in.check(false, e.what());
  }
  auto idx = std::make_unique<GraphIndex>(dim, metric, s);
  idx->graph_ = std::move(graph);
  idx->info_.average_degree = degree;
  return idx;
}

}  // namespace wp::index
