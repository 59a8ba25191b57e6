#pragma once
/**
 * @file recall_targets.h
 * An index's figures at a recall target, read off its ef sweep (docs/rl.md, "The comparison"):
 * mean distance computations (DCS) and QPS interpolated linearly in recall between the two sweep
 * points that straddle the target, and a bootstrap interval of the DCS over the evaluation
 * queries (the same resamples for every sweep point, so that the curve moves as one).
 */
#include <cstdint>
#include <string>
#include <vector>

namespace wp::bench {

/// One sweep point as the reading needs it: per-query recall and DCS, and the measured QPS.
struct SweepPoint {
  std::vector<double> recall;  ///< per query
  std::vector<double> dcs;     ///< per query (empty: the index does not count its work)
  double qps = 0;
};

struct AtRecall {
  double target = 0;
  /// kReached: read between two points; kAtFirst: the first point (the smallest ef) already
  /// reaches it, so the figure is an upper bound of DCS ("<= x"); kNotReached: no point does.
  enum class Reading { kReached, kAtFirst, kNotReached } reading = Reading::kNotReached;
  double dcs = 0;                 ///< interpolated mean DCS
  double dcs_lo = 0, dcs_hi = 0;  ///< 95% bootstrap interval (hi is +inf when over 2.5% of the
                                  ///< resamples do not reach the target)
  double qps = 0;                 ///< interpolated
};

/// The name of a reading ("reached", "at_first", "not_reached").
const char* reading_name(AtRecall::Reading r);

/**
 * Reads `targets` off `points` (in sweep order: increasing ef), with `resamples` bootstrap
 * resamples of the queries drawn by `seed`. Throws UserError when the points disagree on the
 * number of queries.
 */
std::vector<AtRecall> at_recall(const std::vector<SweepPoint>& points,
                                const std::vector<double>& targets, size_t resamples = 1000,
                                uint64_t seed = 1);

}  // namespace wp::bench
