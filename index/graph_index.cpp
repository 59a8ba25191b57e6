#include "index/graph_index.h"

#include <omp.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "index/error.h"
#include "index/index_file.h"
#include "index/neighbor_selection.h"
#include "index/vamana.h"

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
