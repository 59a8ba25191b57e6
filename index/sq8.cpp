#include "index/sq8.h"

#include <algorithm>
#include <cmath>

#include "index/error.h"
#include "index/index_file.h"

namespace wp::index {

void Sq8Quantizer::train(MatrixView x) {
  WP_THROW_INTERNAL_IF_NOT(x.n >= 1, "quantizer trained on no vectors");
  std::vector<float> lo(x.row(0), x.row(0) + x.d), hi = lo;
  bool integral = true;
  for (size_t i = 0; i < x.n; ++i) {
    const float* r = x.row(i);
    for (size_t j = 0; j < x.d; ++j) {
      lo[j] = std::min(lo[j], r[j]);
      hi[j] = std::max(hi[j], r[j]);
      integral = integral && r[j] == std::nearbyint(r[j]);
    }
  }
  float range = 0;
  for (size_t j = 0; j < x.d; ++j) range = std::max(range, hi[j] - lo[j]);
  // Integer data that fits in 256 levels per dimension is coded exactly with step 1.
  step_ = integral && range <= 255 ? 1.0f : std::max(range / 255.0f, 1e-30f);
  inv_step_ = 1.0f / step_;
  min_ = std::move(lo);
}

void Sq8Quantizer::encode(const float* x, uint8_t* code) const {
  for (size_t j = 0; j < min_.size(); ++j) {
    const float c = std::nearbyint((x[j] - min_[j]) * inv_step_);
    code[j] = static_cast<uint8_t>(std::clamp(c, 0.0f, 255.0f));
  }
}

float Sq8Quantizer::prepare_query(const float* q, Metric metric, float* out) const {
  if (metric == Metric::kL2) {
    for (size_t j = 0; j < min_.size(); ++j) out[j] = (q[j] - min_[j]) * inv_step_;
    return 0.0f;
  }
  float bias = 0;
  for (size_t j = 0; j < min_.size(); ++j) {
    out[j] = q[j];
    bias += q[j] * min_[j];
  }
  return bias;
}

void Sq8Quantizer::save(BinaryWriter& out) const {
  out.write<uint8_t>(trained() ? 1 : 0);
  if (!trained()) return;
  out.write<float>(step_);
  out.write_vector(min_);
}

void Sq8Quantizer::load(BinaryReader& in, size_t dim) {
  const uint8_t trained = in.read<uint8_t>();
  in.check(trained <= 1, "bad quantizer flag");
  if (!trained) {
    min_.clear();
    return;
  }
  step_ = in.read<float>();
  in.check(std::isfinite(step_) && step_ > 0, "quantizer step out of range");
  inv_step_ = 1.0f / step_;
  min_ = in.read_vector<float>(dim);
  in.check(min_.size() == dim, "quantizer dimension mismatch");
  for (float m : min_) in.check(std::isfinite(m), "non-finite quantizer offset");
}

}  // namespace wp::index
