// bench/runner/recall_targets: the figures at a recall target that the RL comparison reads
// (docs/rl.md, "The comparison"): linear interpolation between the sweep points that straddle
// the target, the first point as an upper bound, and a bootstrap interval over the queries.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "bench/runner/recall_targets.h"
#include "index/error.h"

using wp::bench::AtRecall;
using wp::bench::SweepPoint;

namespace {

/// A sweep point whose every query has the same recall and DCS.
SweepPoint flat_point(size_t nq, double recall, double dcs, double qps) {
  return SweepPoint{std::vector<double>(nq, recall), std::vector<double>(nq, dcs), qps};
}

/// A sweep of `nq` noisy queries: at ef step e, recall 1 with probability p[e] (else 0.8), DCS
/// around dcs[e] (uniform +-50%).
std::vector<SweepPoint> noisy_sweep(size_t nq, uint64_t seed) {
  const double p[] = {0.5, 0.7, 0.9, 0.98};
  const double dcs[] = {100, 150, 220, 300};
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<SweepPoint> out;
  for (int e = 0; e < 4; ++e) {
    SweepPoint s;
    for (size_t q = 0; q < nq; ++q) {
      s.recall.push_back(u(rng) < p[e] ? 1.0 : 0.8);
      s.dcs.push_back(dcs[e] * (0.5 + u(rng)));
    }
    s.qps = 1000 - 200 * e;
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEST(RecallTargets, InterpolatesBetweenTheStraddlingPoints) {
  const std::vector<SweepPoint> sweep{flat_point(50, 0.8, 100, 900), flat_point(50, 0.9, 200, 600),
                                      flat_point(50, 1.0, 300, 300)};
  const auto a = wp::bench::at_recall(sweep, {0.95, 0.7, 0.9, 0.99}, 200);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0].reading, AtRecall::Reading::kReached);
  EXPECT_NEAR(a[0].dcs, 250, 1e-9);
  EXPECT_NEAR(a[0].qps, 450, 1e-9);
  // Every query alike: every resample is the curve itself.
  EXPECT_NEAR(a[0].dcs_lo, 250, 1e-9);
  EXPECT_NEAR(a[0].dcs_hi, 250, 1e-9);
  EXPECT_EQ(a[1].reading, AtRecall::Reading::kAtFirst) << "the smallest ef is already above";
  EXPECT_NEAR(a[1].dcs, 100, 1e-9);
  EXPECT_EQ(a[2].reading, AtRecall::Reading::kReached);
  EXPECT_NEAR(a[2].dcs, 200, 1e-6);
  EXPECT_NEAR(a[3].dcs, 290, 1e-6);
  const auto none = wp::bench::at_recall({flat_point(10, 0.5, 10, 1)}, {0.9});
  EXPECT_EQ(none[0].reading, AtRecall::Reading::kNotReached);
  EXPECT_STREQ(wp::bench::reading_name(none[0].reading), "not_reached");
}

TEST(RecallTargets, TheBootstrapIntervalHoldsTheEstimateAndNarrowsWithMoreQueries) {
  const auto small = wp::bench::at_recall(noisy_sweep(400, 1), {0.95}, 1000, 3);
  const auto large = wp::bench::at_recall(noisy_sweep(6400, 2), {0.95}, 1000, 3);
  for (const auto* a : {&small[0], &large[0]}) {
    ASSERT_EQ(a->reading, AtRecall::Reading::kReached);
    EXPECT_LT(a->dcs_lo, a->dcs);
    EXPECT_GT(a->dcs_hi, a->dcs);
    EXPECT_TRUE(std::isfinite(a->dcs_hi));
  }
  // 16x the queries: about a quarter of the width (the square root law), measured 0.23-0.27.
  const double ratio = (large[0].dcs_hi - large[0].dcs_lo) / (small[0].dcs_hi - small[0].dcs_lo);
  EXPECT_GT(ratio, 0.15) << ratio;
  EXPECT_LT(ratio, 0.4) << ratio;
  // The same seed, the same interval.
  const auto again = wp::bench::at_recall(noisy_sweep(400, 1), {0.95}, 1000, 3);
  EXPECT_EQ(again[0].dcs_lo, small[0].dcs_lo);
  EXPECT_EQ(again[0].dcs_hi, small[0].dcs_hi);
}

TEST(RecallTargets, ATargetManyResamplesMissHasNoUpperBound) {
  // The last point reaches 0.95 by one query in twenty: resamples often fall short.
  SweepPoint last = flat_point(20, 0.94, 300, 100);
  last.recall[0] = 1.0;  // mean 0.943
  const std::vector<SweepPoint> sweep{flat_point(20, 0.9, 100, 500), last};
  const auto a = wp::bench::at_recall(sweep, {0.942}, 1000);  // 36% of resamples miss
  ASSERT_EQ(a[0].reading, AtRecall::Reading::kReached);
  EXPECT_TRUE(std::isinf(a[0].dcs_hi));
  EXPECT_TRUE(std::isfinite(a[0].dcs_lo));
  SweepPoint fewer = flat_point(19, 0.9, 100, 500);
  EXPECT_THROW(wp::bench::at_recall({fewer, last}, {0.9}), wp::UserError);
}
