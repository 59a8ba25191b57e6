#pragma once
/**
 * @file percentile.h
 * The p-quantile of a sample, linear between the two nearest ranks (numpy's default), for every
 * figure the bench reports as a percentile: latencies (waypoint bench, waypoint_load) and the
 * spread of distance counts (recall_targets).
 */
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace wp::bench {

/// p in [0, 1]; 0 for an empty sample. A value beside an infinite one is the infinite one.
inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double at = std::clamp(p, 0.0, 1.0) * static_cast<double>(v.size() - 1);
  const size_t i = static_cast<size_t>(at);
  const double f = at - static_cast<double>(i);
  if (f == 0 || i + 1 == v.size()) return v[i];
  if (std::isinf(v[i + 1])) return v[i + 1];
  return v[i] * (1 - f) + v[i + 1] * f;
}

}  // namespace wp::bench
