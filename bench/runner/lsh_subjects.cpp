// LSH contenders of `waypoint bench`: our LshIndex (scan, multi-probe tables, learned planes) and
// FAISS IndexLSH at the same number of bits, both re-ranking `ef` candidates by exact distance.
#include <faiss/IndexLSH.h>
#include <faiss/IndexRefine.h>

#include "bench/runner/bench_subject.h"
#include "bench/runner/faiss_search.h"
#include "index/error.h"
#include "index/lsh_index.h"
#include "index/omp_team.h"

namespace wp::bench {

namespace {

using index::label_t;

class LshSubject : public BenchSubject {
 public:
  LshSubject(std::string name, index::Metric metric, const LshBenchParams& p, uint64_t seed)
      : name_(std::move(name)), metric_(metric), p_(p) {
    params_.bits = p.bits;
    params_.tables = name_ == "lsh-mp" ? p.tables : 0;
    params_.key_bits = p.key_bits;
    params_.probes = p.probes;
    params_.seed = seed;
    params_.validate();
    WP_THROW_IF_NOT(name_ != "lsh-learned" || !p.hash_model.empty(),
                    "index lsh-learned needs --hash-model FILE");
  }
  std::string name() const override { return name_; }
  void build(const index::Matrix& base, int threads) override {
    if (name_ == "lsh-learned") {
      index_ = std::make_unique<index::LshIndex>(base.d, metric_, params_,
                                                 index::HashModel::load(p_.hash_model));
    } else {
      index_ = std::make_unique<index::LshIndex>(base.d, metric_, params_);
    }
    add_rows(*index_, base, threads);
  }
  void set_ef(size_t ef) override { search_.ef = ef; }
  index::SearchStats search(const float* q, size_t k, label_t* out) const override {
    thread_local std::vector<float> dist;
    dist.resize(k);
    return index_->search_one(q, k, search_, out, dist.data());
  }
  bool counts_work() const override { return true; }
  size_t memory_bytes() const override { return index_->memory_bytes(); }
  nlohmann::json build_params() const override {
    const auto& ip = index_->params();
    nlohmann::json j{{"bits", ip.bits}, {"planes", index_->model().kind}};
    if (ip.tables) {
      j["tables"] = ip.tables;
      j["key_bits"] = index_->key_bits();
      j["probes"] = ip.probes;
    }
    if (name_ == "lsh-learned") j["model"] = p_.hash_model;
    return j;
  }

 private:
  std::string name_;
  index::Metric metric_;
  LshBenchParams p_;
  index::LshParams params_;
  index::SearchParams search_;
  std::unique_ptr<index::LshIndex> index_;
};

class FaissLshSubject : public BenchSubject {
 public:
  // The candidates are re-ranked by exact l2 or inner product (the refine index takes the LSH
  // index's metric); cosine: l2 on vectors normalised to unit length, base rows and queries.
  FaissLshSubject(index::Metric metric, const LshBenchParams& p, size_t k)
      : metric_(metric), p_(p), k_(k) {}
  std::string name() const override { return "faiss-lsh"; }
  void build(const index::Matrix& base, int threads) override {
    const auto d = static_cast<faiss::Index::idx_t>(base.d);
    lsh_ = std::make_unique<faiss::IndexLSH>(d, static_cast<int>(p_.bits), true, true);
    if (metric_ == index::Metric::kInnerProduct) lsh_->metric_type = faiss::METRIC_INNER_PRODUCT;
    refine_ = std::make_unique<faiss::IndexRefineFlat>(lsh_.get());
    std::vector<float> unit;
    const float* rows = as_baseline_rows(metric_, base, unit);
    const index::OmpTeamScope team(threads);
    const auto n = static_cast<faiss::Index::idx_t>(base.n);
    refine_->train(n, rows);
    refine_->add(n, rows);
  }
  // FAISS 1.7.3 has no per-search refine parameters: k_factor is set on the index (set_ef is
  // never called while searches run). IndexRefine re-ranks k * k_factor candidates.
  void set_ef(size_t ef) override {
    refine_->k_factor = std::max(1.0f, static_cast<float>(ef) / static_cast<float>(k_));
  }
  index::SearchStats search(const float* q, size_t k, label_t* out) const override {
    faiss_search_one(*refine_, as_baseline_vector(metric_, q, static_cast<size_t>(lsh_->d)), k,
                     out);
    index::SearchStats st;
    st.distance_computations = static_cast<uint64_t>(refine_->k_factor * static_cast<float>(k));
    return st;
  }
  bool counts_work() const override { return true; }
  size_t memory_bytes() const override {
    return lsh_->codes.capacity() + refine_->refine_index->ntotal * lsh_->d * sizeof(float);
  }
  nlohmann::json build_params() const override {
    return {{"bits", p_.bits}, {"rotate_data", true}, {"train_thresholds", true}};
  }

 private:
  index::Metric metric_;
  LshBenchParams p_;
  size_t k_;
  std::unique_ptr<faiss::IndexLSH> lsh_;
  std::unique_ptr<faiss::IndexRefineFlat> refine_;
};

}  // namespace

std::unique_ptr<BenchSubject> make_lsh_subject(const std::string& name, index::Metric metric,
                                               const LshBenchParams& p, uint64_t seed, size_t k) {
  if (name == "faiss-lsh") return std::make_unique<FaissLshSubject>(metric, p, k);
  return std::make_unique<LshSubject>(name, metric, p, seed);
}

}  // namespace wp::bench
