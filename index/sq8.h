#pragma once
/**
 * @file sq8.h
 * Sq8Quantizer: 8-bit scalar quantization used by HNSW for the graph traversal, with exact float
 * re-ranking of the final candidates.
 *
 * Codes are c_j = round((x_j - min_j) / step), clamped to 0..255, with a per-dimension offset
 * min_j and ONE step for all dimensions. One step keeps squared L2 in code space proportional to
 * the true one (||x - y||^2 ~ step^2 * ||c_x - c_y||^2) and inner products one multiply-add away
 * (q.x ~ q.min + step * q.c), so the kernels need no per-dimension weights. The query stays in
 * float (asymmetric distance): no query quantization error. Data whose values are integers with a
 * range of at most 255 per dimension (SIFT, Fashion-MNIST, digits) get step 1 and exact codes.
 */
#include <cstdint>
#include <vector>

#include "index/matrix.h"
#include "index/metric.h"

namespace wp::index {

class BinaryReader;
class BinaryWriter;

class Sq8Quantizer {
 public:
  /// Learns min_j and the step from x (x.n >= 1); values seen later outside the range clamp.
  void train(MatrixView x);
  bool trained() const { return !min_.empty(); }
  size_t dim() const { return min_.size(); }
  float step() const { return step_; }

  /// Writes dim() codes for x.
  void encode(const float* x, uint8_t* code) const;

  /**
   * Prepares query q for code distances.
   * @param out  dim() floats: (q - min) / step for kL2, q itself otherwise
   * @return     the additive term of the inner product, sum q_j min_j (0 for kL2)
   */
  float prepare_query(const float* q, Metric metric, float* out) const;

  void save(BinaryWriter& out) const;
  /// Reads what save() wrote; `dim` is the index's dimension.
  void load(BinaryReader& in, size_t dim);

 private:
  std::vector<float> min_;
  float step_ = 1.0f;
  float inv_step_ = 1.0f;
};

}  // namespace wp::index
