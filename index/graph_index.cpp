#include "index/graph_index.h"

#include <omp.h>

#include <algorithm>
#include <numeric>

#include "index/error.h"
#include "index/index_file.h"
#include "index/neighbor_selection.h"

namespace wp::index {

void GraphBuildSpec::validate() const {
  hnsw.validate();
  WP_THROW_IF_NOT(initial == "knn" || initial == "hnsw" || initial == "complete",
                  "initial must be knn, hnsw or complete, got '", initial, "'");
  WP_THROW_IF_NOT(
      pruning == "none" || pruning == "hnsw" || pruning == "robust" || pruning == "learned",
      "pruning must be none, hnsw, robust or learned, got '", pruning, "'");
  WP_THROW_IF_NOT(alpha >= 1.0f && alpha <= 10.0f, "alpha must be in [1, 10], got ", alpha);
  WP_THROW_IF_NOT(R <= 2 * hnsw.M, "R must be at most 2M = ", 2 * hnsw.M, ", got ", R);
  WP_THROW_IF_NOT(K <= 1024, "K must be at most 1024, got ", K);
  WP_THROW_IF_NOT(entry == "medoid" || entry == "hnsw", "entry must be medoid or hnsw, got '",
                  entry, "'");
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

void GraphIndex::finish(std::vector<std::vector<uint32_t>> lists) {
  info_.average_degree = average_degree(lists);
  graph_->replace_level0(lists);
  if (info_.spec.entry == "medoid") {
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
    label_t best;
    float d;
    graph_->set_fixed_entry(kNoLabel);
    graph_->search_one(m.data(), 1, exact, &best, &d);
    graph_->set_fixed_entry(best);
  }
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
