// The hnswlib baseline, a module of its own (libwaypoint_hnswlib.so) that `waypoint bench` loads
// when a run names hnswlib (bench/runner/baseline_module.cpp). It is compiled with hnswlib's own
// recommended flags (-O3 -march=native) so that we compare against hnswlib at its best; being a
// separate shared object with hidden symbols, none of the code those flags generate (hnswlib's,
// nor the inline functions of the standard library it instantiates) can be the copy the
// `waypoint` binary runs on a machine without the build machine's instructions
// (docs/architecture.md, "Toolchain notes"). hnswlib 0.6.2 may be included in one translation unit
// per binary only (its definitions are not inline): this one.
#include <hnswlib/hnswlib.h>
#include <omp.h>

#include <mutex>
#include <vector>

#include "bench/runner/bench_subject.h"
#include "index/error.h"

namespace wp::bench {

namespace {

class HnswlibSubject : public BenchSubject {
 public:
  // l2: hnswlib's L2Space; ip: its InnerProductSpace; cosine: the InnerProductSpace on vectors
  // normalised to unit length (base rows as they are added, each query as it comes), as
  // hnswlib's own Python binding does for space "cosine".
  explicit HnswlibSubject(const GraphBuildParams& p) : p_(p) {}
  std::string name() const override { return "hnswlib"; }
  void build(const index::Matrix& base, int threads) override {
    d_ = base.d;
    if (p_.metric == index::Metric::kL2) {
      space_ = std::make_unique<hnswlib::L2Space>(base.d);
    } else {
      space_ = std::make_unique<hnswlib::InnerProductSpace>(base.d);
    }
    index_ = std::make_unique<hnswlib::HierarchicalNSW<float>>(space_.get(), base.n, p_.M,
                                                               p_.ef_construction, p_.seed);
    auto add = [&](size_t i) {
      index_->addPoint(as_baseline_vector(p_.metric, base.row(i), base.d),
                       static_cast<hnswlib::labeltype>(i));
    };
    add(0);
#pragma omp parallel for schedule(dynamic, 32) num_threads(threads)
    for (int64_t i = 1; i < static_cast<int64_t>(base.n); ++i) add(static_cast<size_t>(i));
    n_ = base.n;
  }
  void set_ef(size_t ef) override {
    index_->setEf(ef);
  }
  index::SearchStats search(const float* q, size_t k, index::label_t* out) const override {
    auto res = index_->searchKnn(as_baseline_vector(p_.metric, q, d_), k);
    std::fill(out, out + k, index::kNoLabel);
    // searchKnn returns a max-heap: farthest on top.
    for (size_t j = res.size(); j-- > 0;) {
      out[j] = res.top().second;
      res.pop();
    }
    return {};
  }
  size_t memory_bytes() const override {
    size_t b = index_->max_elements_ * index_->size_data_per_element_;
    for (size_t i = 0; i < n_; ++i) {
      b += static_cast<size_t>(index_->element_levels_[i]) * index_->size_links_per_element_;
    }
    b += index_->max_elements_ * (sizeof(int) + sizeof(char*) + sizeof(std::mutex));
    b += index_->label_lookup_.size() *
             (sizeof(hnswlib::labeltype) + sizeof(hnswlib::tableint) + 2 * sizeof(void*)) +
         index_->label_lookup_.bucket_count() * sizeof(void*);
    b += index_->max_elements_ * sizeof(hnswlib::vl_type);  // one visited list
    return b;
  }
  nlohmann::json build_params() const override {
    return {{"M", p_.M},
            {"ef_construction", p_.ef_construction},
            {"space", p_.metric == index::Metric::kL2 ? "l2" : "ip"}};
  }

 private:
  GraphBuildParams p_;
  size_t d_ = 0;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space_;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> index_;
  size_t n_ = 0;
};

}  // namespace

}  // namespace wp::bench

/// The module's one exported symbol: a new subject (owned by the caller) for `p`.
extern "C" __attribute__((visibility("default"))) wp::bench::BenchSubject*
waypoint_make_hnswlib_subject(const wp::bench::GraphBuildParams* p) {
  return new wp::bench::HnswlibSubject(*p);
}
