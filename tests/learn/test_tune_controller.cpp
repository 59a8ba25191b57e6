// The controller RNN of `waypoint tune`: it samples valid configurations only (never the same one
// twice), its policy-gradient updates move probability toward the rewarded choice (and, through
// the ordinal heads, toward that choice's neighbours), and as a registered strategy it tunes a
// real index.
#include <gtest/gtest.h>

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
  // rl has one choice (ef): all of its configurations, and no more, once the others' turn comes.
  EXPECT_EQ(types[2], static_cast<int>(s.choices[2][0].values.size()));
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

TEST(TuneController, TunesARealIndexAsARegisteredStrategy) {
  wp::learn::init_torch(2, 3);
  wp::learn::register_tune_controller();
  ASSERT_NE(strategy("controller"), nullptr);
  const wp::test::SmallTuning small;
  const StrategyResult r = small.run("controller", 4, 15);
  EXPECT_EQ(r.trials.size(), 15u);
  ASSERT_TRUE(r.best);
  EXPECT_GE(r.trials[*r.best].m.recall, 0.9);
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
