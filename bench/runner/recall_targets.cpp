#include "bench/runner/recall_targets.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "bench/runner/percentile.h"
#include "index/error.h"

namespace wp::bench {

namespace {

/// The first crossing of `target` along the curve: where, and how it was read; y interpolated
/// linearly in recall between the points that straddle it.
AtRecall::Reading read_at(const std::vector<double>& recall, const std::vector<double>& y,
                          double target, double* out) {
  for (size_t i = 0; i < recall.size(); ++i) {
    if (recall[i] < target) continue;
    if (i == 0) {
      *out = y[0];
      return AtRecall::Reading::kAtFirst;
    }
    const double span = recall[i] - recall[i - 1];
    const double t = span > 0 ? (target - recall[i - 1]) / span : 1.0;
    *out = y[i - 1] + t * (y[i] - y[i - 1]);
    return AtRecall::Reading::kReached;
  }
  return AtRecall::Reading::kNotReached;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (const double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

}  // namespace

const char* reading_name(AtRecall::Reading r) {
  switch (r) {
    case AtRecall::Reading::kReached:
      return "reached";
    case AtRecall::Reading::kAtFirst:
      return "at_first";
    case AtRecall::Reading::kNotReached:
      break;
  }
  return "not_reached";
}

std::vector<AtRecall> at_recall(const std::vector<SweepPoint>& points,
                                const std::vector<double>& targets, size_t resamples,
                                uint64_t seed) {
  std::vector<AtRecall> out;
  if (points.empty()) return out;
  const size_t nq = points[0].recall.size();
  const bool counted = !points[0].dcs.empty();
  for (const SweepPoint& p : points) {
    WP_THROW_IF_NOT(p.recall.size() == nq && (!counted || p.dcs.size() == nq),
                    "recall targets: every sweep point needs the same ", nq, " queries");
  }
  std::vector<double> recall, dcs, qps;
  for (const SweepPoint& p : points) {
    recall.push_back(mean(p.recall));
    dcs.push_back(counted ? mean(p.dcs) : 0.0);
    qps.push_back(p.qps);
  }
  // Resampled curves, the same query draw for every point.
  std::vector<std::vector<double>> boot_recall(resamples), boot_dcs(resamples);
  if (counted && nq > 0) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<size_t> pick(0, nq - 1);
    std::vector<size_t> draw(nq);
    for (size_t b = 0; b < resamples; ++b) {
      for (size_t& q : draw) q = pick(rng);
      for (const SweepPoint& p : points) {
        double r = 0, d = 0;
        for (const size_t q : draw) {
          r += p.recall[q];
          d += p.dcs[q];
        }
        boot_recall[b].push_back(r / static_cast<double>(nq));
        boot_dcs[b].push_back(d / static_cast<double>(nq));
      }
    }
  }
  for (const double target : targets) {
    AtRecall a;
    a.target = target;
    a.reading = read_at(recall, dcs, target, &a.dcs);
    read_at(recall, qps, target, &a.qps);
    if (counted && a.reading != AtRecall::Reading::kNotReached && resamples > 0) {
      // A resample that never reaches the target counts as above every one that does.
      std::vector<double> values;
      for (size_t b = 0; b < resamples; ++b) {
        double v = std::numeric_limits<double>::infinity();
        read_at(boot_recall[b], boot_dcs[b], target, &v);
        values.push_back(v);
      }
      a.dcs_lo = percentile(values, 0.025);
      a.dcs_hi = percentile(values, 0.975);
    }
    out.push_back(a);
  }
  return out;
}

}  // namespace wp::bench
