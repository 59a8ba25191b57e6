#pragma once
/**
 * @file metric.h
 * The three metrics waypoint serves, and how their scores are ordered.
 */
#include <string>

namespace wp::index {

/// Distance metric of an index.
///  - kL2: squared Euclidean distance; smaller is closer.
///  - kInnerProduct: inner product; larger is closer. Indexes store -ip internally so that every
///    search minimises a distance.
///  - kCosine: vectors are normalised to unit length on insert and at query time, then
///  kInnerProduct.
enum class Metric { kL2, kInnerProduct, kCosine };

/// Parses "l2", "ip" or "cosine" (case-sensitive); throws UserError naming `field` otherwise.
Metric parse_metric(const std::string& name, const std::string& field = "metric");

/// "l2", "ip" or "cosine".
const char* metric_name(Metric m);

/// True when the metric is computed as an inner product on (possibly normalised) vectors.
inline bool is_similarity(Metric m) {
  return m != Metric::kL2;
}

}  // namespace wp::index
