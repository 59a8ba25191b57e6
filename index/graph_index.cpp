#include "index/graph_index.h"

#include <omp.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "index/error.h"
#include "index/index_file.h"
#include "index/neighbor_selection.h"
#include "index/omp_team.h"
#include "index/vamana.h"

namespace wp::index {

GraphIndex::GraphIndex(size_t dim, Metric metric, const HnswParams& hnsw, const GraphParams& graph)
    : Index(dim, metric), graph_(std::make_unique<HnswIndex>(dim, metric, hnsw)) {
  graph.validate(hnsw);
  info_.params = graph;
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
  const OmpTeamScope team(insert_team(0));  // the k-NN lists, Vamana's passes, the prunings
  finish(prune(initial_lists()));
}

std::vector<std::vector<uint32_t>> GraphIndex::initial_lists() const {
  const GraphParams& p = info_.params;
  const size_t M = graph_->params().M;
  const Level0Graph g = graph_->export_level0();
  std::vector<std::vector<uint32_t>> initial(g.num_vertices());
  switch (p.initial) {
    case InitialGraph::kKnn: {
      // A directed kNN graph navigates poorly (nothing points back out of a dense cluster), so
      // the initial graph is the kNN graph (K = M by default) with its reverse edges, at most 2M.
      const size_t K = p.K ? p.K : M;
      return add_reverse_edges(*graph_, knn_lists(*graph_, K, std::max<size_t>(2 * K, 128)), 2 * M,
                               1.0f, false);
    }
    case InitialGraph::kComplete:
      // Every other vertex, nearest first: the toy setting of the paper (100 points).
      WP_THROW_IF_NOT(graph_->size() <= 2 * M + 1,
                      "initial 'complete' needs at most 2M + 1 = ", 2 * M + 1, " points, got ",
                      graph_->size(), " (raise M)");
      for (uint32_t s = 0; s < g.num_vertices(); ++s) {
        if (g.labels[s] == kNoLabel) continue;
        std::vector<Candidate> all;
        for (uint32_t v = 0; v < g.num_vertices(); ++v) {
          if (v != s && g.labels[v] != kNoLabel) {
            all.push_back({graph_->distance_between(s, v), v});
          }
        }
        std::sort(all.begin(), all.end());
        for (const Candidate& c : all) initial[s].push_back(c.id);
      }
      return initial;
    case InitialGraph::kRandom:
      WP_THROW_IF_NOT(graph_->num_tombstones() == 0, "initial 'random' needs a fresh build");
      return random_lists(g.num_vertices(), max_degree(), graph_->params().seed);
    case InitialGraph::kHnsw:
      break;
  }
  for (size_t s = 0; s < g.num_vertices(); ++s) {
    initial[s].assign(g.neighbors.begin() + g.offsets[s], g.neighbors.begin() + g.offsets[s + 1]);
  }
  return initial;
}

std::vector<std::vector<uint32_t>> GraphIndex::prune(std::vector<std::vector<uint32_t>> initial) {
  const GraphParams& p = info_.params;
  const size_t M = graph_->params().M, R = max_degree();
  switch (p.pruning) {
    case Pruning::kNone:
    case Pruning::kLearned:  // learned: a mask comes later (apply_mask)
      for (auto& l : initial) {
        if (l.size() > R) l.resize(R);
      }
      return initial;
    case Pruning::kVamana: {
      // Vamana itself: the initial lists are only a starting point that two passes rewrite.
      graph_->set_fixed_entry(medoid());
      const size_t L = p.L ? p.L : std::max<size_t>(100, R);
      return vamana_lists(*graph_, std::move(initial), graph_->fixed_entry_slot(), R, L, p.alpha,
                          graph_->params().seed);
    }
    case Pruning::kHnsw:
    case Pruning::kRobust:
      break;
  }
  // Candidates: the initial lists, and for HNSW's level 0 also the 2M nearest neighbours, so that
  // the rule chooses from diverse edges and near ones (Vamana takes the vertices visited by a
  // greedy search; this is cheaper and close).
  if (p.initial == InitialGraph::kHnsw) {
    const auto near = knn_lists(*graph_, 2 * M, std::max<size_t>(4 * M, 128));
    for (size_t v = 0; v < initial.size(); ++v) {
      initial[v].insert(initial[v].end(), near[v].begin(), near[v].end());
      std::sort(initial[v].begin(), initial[v].end());
      initial[v].erase(std::unique(initial[v].begin(), initial[v].end()), initial[v].end());
    }
  }
  const float alpha = p.pruning == Pruning::kHnsw ? 1.0f : p.alpha;
  return add_reverse_edges(*graph_, prune_lists(*graph_, initial, R, alpha), R, alpha, true);
}

void GraphIndex::set_entry(GraphEntry entry) {
  info_.params.entry = entry;
  graph_->set_fixed_entry(entry == GraphEntry::kMedoid ? medoid() : kNoLabel);
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
  graph_->set_fixed_entry(info_.params.entry == GraphEntry::kMedoid ? medoid() : kNoLabel);
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
  info_.params.pruning = Pruning::kLearned;
  finish(std::move(lists));
}

void GraphIndex::save(const std::string& path) const {
  BinaryWriter out(path, IndexType::kGraph);
  write_dim_metric(out);
  const GraphParams& p = info_.params;
  out.write_string(initial_graph_name(p.initial));
  out.write<uint64_t>(p.K);
  out.write_string(pruning_name(p.pruning));
  out.write<float>(p.alpha);
  out.write<uint64_t>(p.R);
  out.write_string(graph_entry_name(p.entry));
  out.write<double>(info_.average_degree);
  graph_->write_payload(out);
  out.finish();
}

std::unique_ptr<Index> GraphIndex::load(BinaryReader& in) {
  const auto [dim, metric] = read_dim_metric(in);
  const std::string initial = in.read_string(16);
  const uint64_t K = in.read<uint64_t>();
  const std::string pruning = in.read_string(16);
  const float alpha = in.read<float>();
  const uint64_t R = in.read<uint64_t>();
  const std::string entry = in.read_string(16);
  const double degree = in.read<double>();
  auto graph = HnswIndex::read_payload(in);
  in.expect_end();
  in.check(graph->dim() == dim && graph->metric() == metric, "graph does not match its header");
  GraphParams p;
  p.K = K;
  p.alpha = alpha;
  p.R = R;
  try {
    p.initial = parse_initial_graph(initial, "initial");
    p.pruning = parse_pruning(pruning, "pruning");
    p.entry = parse_graph_entry(entry, "entry");
    p.validate(graph->params());
  } catch (const UserError& e) {
    in.check(false, e.what());
  }
  auto idx = std::make_unique<GraphIndex>(dim, metric, graph->params(), p);
  idx->graph_ = std::move(graph);
  idx->info_.average_degree = degree;
  return idx;
}

}  // namespace wp::index
