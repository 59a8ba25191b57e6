#include <faiss/IndexHNSW.h>
#include <omp.h>

#include <numeric>

#include "bench/runner/bench_subject.h"
#include "index/distance.h"
#include "index/error.h"
#include "index/index_factory.h"

namespace wp::bench {

namespace {

using index::label_t;

class WaypointSubject : public BenchSubject {
 public:
  WaypointSubject(const std::string& name, const GraphBuildParams& p) : type_(name), p_(p) {
    // "hnsw-sq8" is HNSW walking 8-bit codes with exact re-ranking.
    const bool sq8 = name == "hnsw-sq8";
    spec_.type = sq8 ? "hnsw" : name;
    if (sq8) spec_.hnsw.quantization = index::Quantization::kSq8;
    spec_.metric = p.metric;
    spec_.hnsw.M = p.M;
    spec_.hnsw.ef_construction = p.ef_construction;
    spec_.hnsw.seed = p.seed;
    spec_.validate();
  }
  std::string name() const override { return type_; }
  void build(const index::Matrix& base, int threads) override {
    index_ = index::make_index(spec_, base.d);
    std::vector<label_t> ids(base.n);
    std::iota(ids.begin(), ids.end(), 0);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    index_->add(index::view(base), ids.data());
    omp_set_num_threads(saved);
  }
  bool sweeps_ef() const override { return type_ != "flat"; }
  void set_ef(size_t ef) override { params_.ef = ef; }
  index::SearchStats search(const float* q, size_t k, label_t* out) const override {
    thread_local std::vector<float> dist;
    dist.resize(k);
    return index_->search_one(q, k, params_, out, dist.data());
  }
  bool counts_work() const override { return true; }
  size_t memory_bytes() const override { return index_->memory_bytes(); }
  nlohmann::json build_params() const override {
    if (type_ == "flat") return nlohmann::json::object();
    return {{"M", p_.M}, {"ef_construction", p_.ef_construction}};
  }

 private:
  std::string type_;
  GraphBuildParams p_;
  index::IndexSpec spec_;
  std::unique_ptr<index::Index> index_;
  index::SearchParams params_;
};

class FaissHnswSubject : public BenchSubject {
 public:
  explicit FaissHnswSubject(const GraphBuildParams& p) : p_(p) {
    WP_THROW_IF_NOT(p.metric != index::Metric::kCosine,
                    "faiss-hnsw in the bench supports l2 and ip, not cosine");
  }
  std::string name() const override { return "faiss-hnsw"; }
  void build(const index::Matrix& base, int threads) override {
    const faiss::MetricType m =
        p_.metric == index::Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
    index_ =
        std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(base.d), static_cast<int>(p_.M), m);
    index_->hnsw.efConstruction = static_cast<int>(p_.ef_construction);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(threads);
    index_->add(static_cast<faiss::Index::idx_t>(base.n), base.data.data());
    omp_set_num_threads(saved);
  }
  // FAISS 1.7.3's IndexHNSW::search ignores SearchParametersHNSW, so efSearch is set on the graph
  // (set_ef is never called while searches run).
  void set_ef(size_t ef) override { index_->hnsw.efSearch = static_cast<int>(ef); }
  index::SearchStats search(const float* q, size_t k, label_t* out) const override {
    thread_local std::vector<float> dist;
    thread_local std::vector<faiss::Index::idx_t> ids;
    dist.resize(k);
    ids.resize(k);
    index_->search(1, q, static_cast<faiss::Index::idx_t>(k), dist.data(), ids.data());
    for (size_t j = 0; j < k; ++j) out[j] = ids[j] < 0 ? index::kNoLabel : ids[j];
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

std::unique_ptr<BenchSubject> make_waypoint_subject(const std::string& type,
                                                    const GraphBuildParams& p) {
  return std::make_unique<WaypointSubject>(type, p);
}

std::unique_ptr<BenchSubject> make_faiss_hnsw_subject(const GraphBuildParams& p) {
  return std::make_unique<FaissHnswSubject>(p);
}

}  // namespace wp::bench
