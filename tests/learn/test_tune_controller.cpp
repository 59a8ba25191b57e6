// The controller RNN of `waypoint tune`: it samples valid configurations only, REINFORCE moves
// its probability toward the rewarded choice, and as a registered strategy it tunes a real index.
#include <gtest/gtest.h>

#include <map>

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
  for (int i = 0; i < 600; ++i) {
    const Config x = c.propose();
    ASSERT_TRUE(valid(s, x)) << i;
    ++types[x.type];
  }
  EXPECT_EQ(types.size(), 3u);  // an untrained controller samples every type
  for (const auto& [t, n] : types) EXPECT_GT(n, 100) << s.types[t];
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
    c.observe(x, r);
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
