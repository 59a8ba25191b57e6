#include <faiss/IndexHNSW.h>

#include <cmath>
#include <cstdlib>
#include <numeric>

#include "bench/runner/bench_subject.h"
#include "bench/runner/faiss_search.h"
#include "index/distance.h"
#include "index/error.h"
#include "index/graph_index.h"
#include "index/index_spec.h"
#include "index/omp_team.h"

namespace wp::bench {

namespace {

using index::label_t;

/// One query on any of our indexes (distances are not needed by the bench).
index::SearchStats search_index(const index::Index& idx, const index::SearchParams& params,
                                const float* q, size_t k, label_t* out) {
  thread_local std::vector<float> dist;
  dist.resize(k);
  return idx.search_one(q, k, params, out, dist.data());
}

/// Adds a pruned graph's strategy and average degree to a params object.
void graph_params(const index::GraphIndex& g, nlohmann::json& j) {
  const index::GraphParams& s = g.info().params;
  j["pruning"] = index::pruning_name(s.pruning);
  j["initial"] = index::initial_graph_name(s.initial);
  if (s.pruning == index::Pruning::kRobust || s.pruning == index::Pruning::kVamana) {
    j["alpha"] = std::round(s.alpha * 100.0) / 100;
  }
  if (s.R) j["R"] = s.R;
  j["entry"] = index::graph_entry_name(s.entry);
  j["avg_degree"] = std::round(g.info().average_degree * 100) / 100;
}

class WaypointSubject : public BenchSubject {
 public:
  WaypointSubject(const std::string& name, const GraphBuildParams& p) : type_(name), p_(p) {
    // "hnsw-sq8" is HNSW walking 8-bit codes with exact re-ranking; the graph baselines of the
    // pruning study are "rl" indexes with a fixed strategy, all entered at the same medoid:
    // "hnsw-l0" (HNSW's level 0 alone, unpruned), "knn" (kNN graph with reverse edges), and on
    // HNSW's level 0 plus the 2M nearest as candidates: "knn-hnsw" (HNSW heuristic),
    // "robust-<alpha>" (RobustPrune); and "vamana-<alpha>", Vamana built from a random graph.
    const bool sq8 = name == "hnsw-sq8";
    const bool robust = name.rfind("robust-", 0) == 0, vamana = name.rfind("vamana-", 0) == 0;
    using index::InitialGraph;
    using index::Pruning;
    if (sq8) spec_.hnsw.quantization = index::Quantization::kSq8;
    if (name == "knn" || name == "knn-hnsw" || name == "hnsw-l0" || robust || vamana) {
      spec_.kind = index::IndexKind::kRl;
      spec_.graph.initial = name == "knn" ? InitialGraph::kKnn
                            : vamana      ? InitialGraph::kRandom
                                          : InitialGraph::kHnsw;
      spec_.graph.pruning = name == "knn-hnsw" ? Pruning::kHnsw
                            : robust           ? Pruning::kRobust
                            : vamana           ? Pruning::kVamana
                                               : Pruning::kNone;
      if (robust || vamana) {
        const std::string a = name.substr(7);
        char* end = nullptr;
        spec_.graph.alpha = std::strtof(a.c_str(), &end);
        WP_THROW_IF_NOT(!a.empty() && *end == '\0', name.substr(0, 6), "-<alpha>: '", a,
                        "' is not a number");
      }
      if (spec_.graph.pruning != Pruning::kNone) spec_.graph.R = p.R;
      spec_.graph.entry = p.entry;
    } else {
      spec_.kind = index::parse_index_kind(sq8 ? "hnsw" : name, "--indexes");
    }
    spec_.metric = p.metric;
    spec_.hnsw.M = p.M;
    spec_.hnsw.ef_construction = p.ef_construction;
    spec_.hnsw.seed = p.seed;
    spec_.validate();
  }
  std::string name() const override { return type_; }
  void build(const index::Matrix& base, int threads) override {
    index_ = index::make_index(spec_, base.d);
    add_rows(*index_, base, threads);
    // HNSW's level 0 average degree, the figure graphs are compared at.
    if (const auto* h = dynamic_cast<const index::HnswIndex*>(index_.get())) {
      const index::Level0Graph g = h->export_level0();
      size_t live = 0;
      for (const label_t l : g.labels) live += l != index::kNoLabel;
      level0_degree_ = live ? static_cast<double>(g.num_edges()) / static_cast<double>(live) : 0;
    }
  }
  bool sweeps_ef() const override { return type_ != "flat"; }
  void set_ef(size_t ef) override { params_.ef = ef; }
  index::SearchStats search(const float* q, size_t k, label_t* out) const override {
    return search_index(*index_, params_, q, k, out);
  }
  bool counts_work() const override { return true; }
  size_t memory_bytes() const override { return index_->memory_bytes(); }
  nlohmann::json build_params() const override {
    if (type_ == "flat") return nlohmann::json::object();
    nlohmann::json j{{"M", p_.M}, {"ef_construction", p_.ef_construction}};
    if (const auto* g = dynamic_cast<const index::GraphIndex*>(index_.get())) {
      graph_params(*g, j);
    } else if (level0_degree_ > 0) {
      j["avg_degree"] = std::round(level0_degree_ * 100) / 100;
    }
    return j;
  }

 private:
  double level0_degree_ = 0;
  std::string type_;
  GraphBuildParams p_;
  index::IndexSpec spec_;
  std::unique_ptr<index::Index> index_;
  index::SearchParams params_;
};

class FaissHnswSubject : public BenchSubject {
 public:
  // cosine: inner product on vectors normalised to unit length (base rows before they are
  // added, each query as it comes), as FAISS's documentation does it.
  explicit FaissHnswSubject(const GraphBuildParams& p) : p_(p) {}
  std::string name() const override { return "faiss-hnsw"; }
  void build(const index::Matrix& base, int threads) override {
    const faiss::MetricType m =
        p_.metric == index::Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
    index_ =
        std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(base.d), static_cast<int>(p_.M), m);
    index_->hnsw.efConstruction = static_cast<int>(p_.ef_construction);
    std::vector<float> unit;
    const float* rows = as_baseline_rows(p_.metric, base, unit);
    const index::OmpTeamScope team(threads);
    index_->add(static_cast<faiss::Index::idx_t>(base.n), rows);
  }
  // FAISS 1.7.3's IndexHNSW::search ignores SearchParametersHNSW, so efSearch is set on the graph
  // (set_ef is never called while searches run).
  void set_ef(size_t ef) override { index_->hnsw.efSearch = static_cast<int>(ef); }
  index::SearchStats search(const float* q, size_t k, label_t* out) const override {
    faiss_search_one(*index_, as_baseline_vector(p_.metric, q, static_cast<size_t>(index_->d)), k,
                     out);
    return {};
  }
  size_t memory_bytes() const override {
    const faiss::HNSW& h = index_->hnsw;
    return index_->ntotal * index_->d * sizeof(float) + h.neighbors.capacity() * sizeof(int32_t) +
           h.offsets.capacity() * sizeof(size_t) + h.levels.capacity() * sizeof(int);
  }
  nlohmann::json build_params() const override {
    return {{"M", p_.M}, {"ef_construction", p_.ef_construction}};
  }

 private:
  GraphBuildParams p_;
  std::unique_ptr<faiss::IndexHNSWFlat> index_;
};

}  // namespace

/// A pruned graph read from a file (`--rl-graph`), e.g. the one learn/ trained.
class GraphFileSubject : public BenchSubject {
 public:
  GraphFileSubject(std::string path, const GraphBuildParams& p) : path_(std::move(path)), p_(p) {}
  std::string name() const override { return "rl"; }
  void build(const index::Matrix& base, int) override {
    auto idx = index::load_index(path_);
    graph_.reset(dynamic_cast<index::GraphIndex*>(idx.get()));
    WP_THROW_IF_NOT(graph_, "--rl-graph: '", path_, "' holds a ", idx->type_name(),
                    " index, not an rl graph");
    idx.release();
    WP_THROW_IF_NOT(graph_->size() == base.n && graph_->dim() == base.d, "--rl-graph: '", path_,
                    "' indexes ", graph_->size(), " x ", graph_->dim(),
                    " vectors, the dataset has ", base.n, " x ", base.d);
    if (p_.entry_given) graph_->set_entry(p_.entry);
  }
  void set_ef(size_t ef) override { params_.ef = ef; }
  index::SearchStats search(const float* q, size_t k, label_t* out) const override {
    return search_index(*graph_, params_, q, k, out);
  }
  bool counts_work() const override { return true; }
  size_t memory_bytes() const override { return graph_->memory_bytes(); }
  nlohmann::json build_params() const override {
    nlohmann::json j{{"M", graph_->graph().params().M}, {"file", path_}};
    graph_params(*graph_, j);
    return j;
  }

 private:
  std::string path_;
  GraphBuildParams p_;
  std::unique_ptr<index::GraphIndex> graph_;
  index::SearchParams params_;
};

void add_rows(index::Index& idx, const index::Matrix& base, int threads) {
  std::vector<label_t> ids(base.n);
  std::iota(ids.begin(), ids.end(), 0);
  const index::OmpTeamScope team(threads);
  idx.add(index::view(base), ids.data());
}

std::unique_ptr<BenchSubject> make_graph_file_subject(const std::string& path,
                                                      const GraphBuildParams& p) {
  return std::make_unique<GraphFileSubject>(path, p);
}

std::unique_ptr<BenchSubject> make_waypoint_subject(const std::string& type,
                                                    const GraphBuildParams& p) {
  return std::make_unique<WaypointSubject>(type, p);
}

std::unique_ptr<BenchSubject> make_faiss_hnsw_subject(const GraphBuildParams& p) {
  return std::make_unique<FaissHnswSubject>(p);
}

}  // namespace wp::bench
