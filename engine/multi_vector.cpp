#include "engine/multi_vector.h"

#include <algorithm>
#include <cfloat>

#include "index/distance.h"
#include "index/error.h"

namespace wp::engine {

void check_multi(MultiVector& v, size_t dim, index::Metric metric, const std::string& field) {
  WP_THROW_IF_NOT(v.dim == dim, field, ": expected vectors of dimension ", dim, ", got ", v.dim);
  WP_THROW_IF_NOT(!v.values.empty(), field, ": expected at least one vector");
  WP_THROW_IF_NOT(v.values.size() % dim == 0, field, ": ", v.values.size(),
                  " values are not rows of ", dim);
  WP_THROW_IF_NOT(v.values.size() <= kMaxMultiValues, field, ": ", v.rows(), " vectors of ", dim,
                  " values exceed the ", kMaxMultiValues, " values a multivector may hold");
  for (size_t r = 0; r < v.rows(); ++r) {
    index::check_vector(v.row(r), dim, metric, field + "[" + std::to_string(r) + "]");
  }
  if (metric == index::Metric::kCosine) {
    for (size_t r = 0; r < v.rows(); ++r) index::normalize(v.values.data() + r * dim, dim);
  }
}

float max_sim(const MultiVector& query, const float* point, size_t rows, index::Metric metric) {
  // One kernel call a point (index/distance.h): four of its rows against each query row at once.
  const double sum = index::kernels_for_dim(query.dim).max_sim(
      query.values.data(), query.rows(), point, rows, query.dim, metric == index::Metric::kL2);
  return static_cast<float>(std::clamp(sum, -static_cast<double>(FLT_MAX), double{FLT_MAX}));
}

void MultiVectorSpace::set(uint64_t id, std::vector<float> values) {
  WP_THROW_INTERNAL_IF_NOT(!values.empty() && values.size() % dim_ == 0,
                           "multivector of a wrong size");
  if (id >= values_.size()) values_.resize(id + 1);
  std::vector<float>& at = values_[id];
  if (at.empty()) {
    ++count_;
  } else {
    value_bytes_ -= at.capacity() * sizeof(float);
  }
  at = std::move(values);
  at.shrink_to_fit();
  value_bytes_ += at.capacity() * sizeof(float);
  max_values_ = std::max(max_values_, at.size());
}

bool MultiVectorSpace::remove(uint64_t id) {
  if (id >= values_.size() || values_[id].empty()) return false;
  value_bytes_ -= values_[id].capacity() * sizeof(float);
  std::vector<float>().swap(values_[id]);
  --count_;
  return true;
}

const std::vector<float>* MultiVectorSpace::get(uint64_t id) const {
  return id < values_.size() && !values_[id].empty() ? &values_[id] : nullptr;
}

float MultiVectorSpace::score(const MultiVector& query, uint64_t id) const {
  const std::vector<float>& v = values_[id];
  return max_sim(query, v.data(), v.size() / dim_, metric_);
}

size_t MultiVectorSpace::memory_bytes() const {
  return values_.capacity() * sizeof(std::vector<float>) + value_bytes_;
}

}  // namespace wp::engine
