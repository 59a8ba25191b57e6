// The controller RNN of `waypoint tune`: it samples valid configurations only (never the same one
// twice), its policy-gradient updates move probability toward the rewarded choice (and, through
// the ordinal heads, toward that choice's neighbours), and as a registered strategy tuning a real
// index it learns where the reward is, which random search does not.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "engine/tune.h"
#include "index/dataset.h"
#include "learn/torch_runtime.h"
#include "learn/tune_controller.h"
#include "tune_fixture.h"

using namespace wp::engine::tune;
using wp::learn::ControllerConfig;
using wp::learn::TuneController;

TEST(TuneController, SamplesValidConfigurationsOfEveryType) {
  wp::learn::init_torch(2, 1);
  const Space s = Space::standard({"hnsw", "lsh", "rl"});
  ControllerConfig cfg;
  cfg.seed = 1;
  TuneController c(s, cfg);
  std::map<size_t, int> types;
  std::set<Config> proposed;
  for (int i = 0; i < 600; ++i) {
    const Config x = c.propose();
    ASSERT_TRUE(valid(s, x)) << i;
    EXPECT_TRUE(proposed.insert(x).second) << "proposed twice: " << describe(s, x);
    ++types[x.type];
  }
  EXPECT_EQ(types.size(), 3u);  // an untrained controller samples every type
  EXPECT_GT(types[0], 100);
  EXPECT_GT(types[1], 100);
  // rl has two choices (the degree m and ef): all of its 60 configurations, and no more, once
  // the others' turn comes.
  int rl_configs = 1;
  for (const Choice& ch : s.choices[2]) rl_configs *= static_cast<int>(ch.values.size());
  EXPECT_EQ(rl_configs, 60);
  EXPECT_EQ(types[2], rl_configs);
  // Its distributions are distributions.
  const Config any = c.propose();
  for (int choice = -1; choice < static_cast<int>(any.picks.size()); ++choice) {
    const std::vector<double> p = c.probabilities(any, choice);
    double sum = 0;
    for (double v : p) sum += v;
    EXPECT_NEAR(sum, 1.0, 1e-5);
  }
}

TEST(TuneController, ReinforceMovesProbabilityTowardTheRewardedChoice) {
  wp::learn::init_torch(2, 2);
  const Space s = Space::standard({"hnsw", "lsh"});
  ControllerConfig cfg;
  cfg.seed = 2;
  TuneController c(s, cfg);
  // Synthetic reward: 1 for lsh with 512 bits, 0.2 for any other lsh, 0 for hnsw.
  Config lsh512 = c.propose();
  lsh512.type = 1;
  lsh512.picks.assign(s.choices[1].size(), 0);
  lsh512.picks[0] = 3;  // bits 512
  ASSERT_EQ(*value(s, lsh512, "bits"), 512);
  const double type_before = c.probabilities(lsh512, -1)[1];
  const double bits_before = c.probabilities(lsh512, 0)[3];
  for (int i = 0; i < 150; ++i) {
    const Config x = c.propose();
    const double r = x.type == 1 ? (*value(s, x, "bits") == 512 ? 1.0 : 0.2) : 0.0;
    c.observe(x, r, r > 0);
  }
  const double type_after = c.probabilities(lsh512, -1)[1];
  const double bits_after = c.probabilities(lsh512, 0)[3];
  EXPECT_GT(type_after, 0.9) << "P(lsh) " << type_before << " -> " << type_after;
  EXPECT_GT(bits_after, bits_before + 0.4) << "P(512 bits) " << bits_before << " -> " << bits_after;
  EXPECT_LT(c.exploration(), cfg.explore);  // exploration decays
}

// The registered controller against random search on the same seeds and budget: 30 distinct
// configurations each, in lockstep on one environment (both see the same measurement of a
// configuration), hnsw and lsh at recall@10 >= 0.9 on 2000 SIFT rows, seeds 0-4. After its first
// updates (trials 11-30) the controller's proposals earn about twice the reward of random
// search's: it learns where the reward is. Its best configuration is not clearly better than
// random search's at this budget: best feasible reward controller / random, geometric mean 1.11 to
// 1.26 over seeds 0-4 in five runs, but 0.98 to 1.03 over seeds 0-7 in three runs (0.64 to 1.75
// per seed), so only "not worse" is asserted for it; docs/tune.md has the longer runs.
TEST(TuneController, LearnsWhereTheRewardIsWhereRandomSearchDoesNot) {
  wp::learn::init_torch(2, 3);
  wp::learn::register_tune_controller();
  ASSERT_NE(strategy("controller"), nullptr);
  const wp::test::SmallTuning small;
  const Space s = Space::standard({"hnsw", "lsh"});
  const size_t trials = 30, seeds = 5;
  double log_late = 0, log_best = 0, min_late = 1e9;
  for (uint64_t seed = 0; seed < seeds; ++seed) {
    Environment env(small.base, wp::index::Metric::kL2, small.queries, small.gt, small.options());
    const auto controller = (*strategy("controller"))(s, seed);
    const auto random = (*strategy("random"))(s, seed);
    const std::vector<StrategyResult> r = run_strategies(
        {{"controller", controller.get()}, {"random", random.get()}}, env, s,
        wp::test::SmallTuning::reward(env), wp::test::SmallTuning::tune_options(trials));
    double late[2] = {0, 0}, best[2] = {0, 0};
    for (size_t i = 0; i < 2; ++i) {
      ASSERT_EQ(r[i].trials.size(), trials) << r[i].name << " seed " << seed;
      ASSERT_TRUE(r[i].best) << r[i].name << " seed " << seed;
      EXPECT_GE(r[i].trials[*r[i].best].m.recall, 0.9);
      best[i] = r[i].trials[*r[i].best].reward;
      for (const Trial& t : r[i].trials) {
        if (t.trial > 10) late[i] += t.reward / (trials - 10);
      }
    }
    std::printf(
        "seed %d: mean reward of trials 11-30 %.2f controller, %.2f random (x%.2f); best "
        "%.2f (trial %zu) vs %.2f (trial %zu)\n",
        static_cast<int>(seed), late[0], late[1], late[0] / late[1], best[0], r[0].trials_to_best(),
        best[1], r[1].trials_to_best());
    log_late += std::log(late[0] / late[1]);
    log_best += std::log(best[0] / best[1]);
    min_late = std::min(min_late, late[0] / late[1]);
  }
  const double late_ratio = std::exp(log_late / seeds), best_ratio = std::exp(log_best / seeds);
  std::printf(
      "controller / random, geometric mean over %zu seeds: trials 11-30 x%.2f, best x%.2f\n", seeds,
      late_ratio, best_ratio);
  // QPS is measured, so runs differ: over five runs, trials 11-30 x2.08 to x2.60 (the lowest seed
  // x1.23 to x2.15), best x1.11 to x1.26.
  EXPECT_GT(late_ratio, 1.6);
  EXPECT_GT(min_late, 1.0);
  EXPECT_GT(best_ratio, 0.8);
}

TEST(TuneController, ARewardForOneValueAlsoMovesItsNeighbours) {
  wp::learn::init_torch(2, 4);
  const Space s = Space::standard({"hnsw"});
  ControllerConfig cfg;
  cfg.seed = 5;
  TuneController c(s, cfg);
  // Only ef 48 (rewarded) and ef 512 (not) are ever observed; m, ef_construct, quantization fixed.
  Config at48{0, {3, 3, 0, 4}}, at512{0, {3, 3, 0, 11}};
  ASSERT_EQ(*value(s, at48, "ef"), 48);
  ASSERT_EQ(*value(s, at512, "ef"), 512);
  const auto p = [&](size_t ef_index) { return c.probabilities(at48, 3)[ef_index]; };
  // Values never observed: ef 32 and 64 (the rewarded one's neighbours) against ef 384 (the
  // punished one's neighbour).
  const auto near_over_far = [&] { return (p(3) + p(5)) / p(10); };
  const double before = near_over_far(), rewarded_before = p(4);
  for (int i = 0; i < 8; ++i) {
    c.observe(at48, 1.0, true);
    c.observe(at512, 0.0, true);
  }
  std::printf("P(ef 48) %.3f -> %.3f; P(32, 64) / P(384) %.3f -> %.3f\n", rewarded_before, p(4),
              before, near_over_far());
  EXPECT_GT(p(4), rewarded_before + 0.1);
  EXPECT_GT(near_over_far(), 3 * before);
}
