// The DQN that steers the hashing trainer: its replay ring, its target network (changed only at
// syncs), that it learns a rewarded action, and that the controller keeps the learning rate in
// bounds and records one transition per decision.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "index/error.h"
#include "learn/matching.h"
#include "learn/qan.h"
#include "learn/torch_runtime.h"
#include "test_util.h"

using namespace wp::learn;

namespace {
Transition transition(float reward, int action = 0) {
  return {{reward, 1.0f}, action, reward, {reward + 1, 1.0f}, false};
}
bool same(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}
}  // namespace

TEST(ReplayBuffer, KeepsTheLastCapacityTransitionsAndSamplesOnlyThem) {
  ReplayBuffer r(3);
  std::mt19937_64 rng(1);
  EXPECT_TRUE(r.sample(4, rng).empty());
  for (int i = 0; i < 5; ++i) r.push(transition(static_cast<float>(i)));
  ASSERT_EQ(r.size(), 3u);
  std::vector<float> held;
  for (size_t i = 0; i < r.size(); ++i) held.push_back(r.at(i).reward);
  std::sort(held.begin(), held.end());
  EXPECT_EQ(held, (std::vector<float>{2, 3, 4}));  // 0 and 1 were overwritten, oldest first
  std::set<float> drawn;
  for (const Transition* t : r.sample(200, rng)) drawn.insert(t->reward);
  EXPECT_EQ(drawn, (std::set<float>{2, 3, 4}));
  EXPECT_THROW(ReplayBuffer(0), wp::UserError);
}

TEST(DqnAgent, TargetNetworkMovesOnlyWhenSynced) {
  init_torch(1, 1);
  DqnConfig cfg;
  cfg.target_every = 5;
  cfg.batch = 4;
  cfg.q_lr = 1e-2;
  DqnAgent agent(2, 3, cfg);
  const std::vector<float> s{0.5f, 1.0f};
  EXPECT_TRUE(same(agent.q_values(s), agent.target_q_values(s)));
  const std::vector<float> target0 = agent.target_q_values(s);
  for (int i = 0; i < 8; ++i) agent.observe(transition(1.0f, i % 3));
  for (int i = 0; i < 4; ++i) agent.update();
  EXPECT_FALSE(same(agent.q_values(s), target0));        // the online network learnt
  EXPECT_TRUE(same(agent.target_q_values(s), target0));  // the target did not move
  agent.update();                                        // the 5th update syncs
  EXPECT_EQ(agent.updates(), 5u);
  EXPECT_TRUE(same(agent.target_q_values(s), agent.q_values(s)));
}

TEST(DqnAgent, LearnsWhichActionIsRewarded) {
  init_torch(1, 1);
  DqnConfig cfg;
  cfg.seed = 4;
  cfg.q_lr = 5e-3;
  DqnAgent agent(2, 4, cfg);
  const std::vector<float> s{1.0f, 0.0f};
  // A one-step bandit: action 2 pays 1, the others nothing; uniform exploration.
  for (int i = 0; i < 300; ++i) {
    const int a = agent.act(s, 1.0);
    agent.observe({s, a, a == 2 ? 1.0f : 0.0f, s, true});
    agent.update();
  }
  EXPECT_EQ(agent.act(s, 0.0), 2);
  const std::vector<float> q = agent.q_values(s);
  EXPECT_NEAR(q[2], 1.0, 0.2);
  EXPECT_NEAR(q[0], 0.0, 0.2);
}

TEST(QanController, DecidesEveryIntervalWithinTheLearningRateBounds) {
  init_torch(2, 1);
  const LabelledSet digits = load_labelled(wp::test::data_dir() + "/digits");
  MatchingConfig mc;
  mc.hidden = {32};
  mc.embed = 16;
  mc.episodes_per_step = 2;
  mc.seed = 2;
  MatchingTrainer trainer(digits.subset({0, 1, 2, 3, 4, 5}), mc);
  DqnConfig cfg;
  cfg.interval = 3;
  cfg.runs = 2;
  cfg.min_lr = 5e-4;
  cfg.max_lr = 2e-3;
  cfg.lr_factor = 4;  // every raise or cut hits a bound at once
  cfg.meta_momentum = 1e-2;
  QanController qan(cfg, 6);
  const std::vector<float> initial = trainer.flat_parameters();
  size_t decisions = 0;
  for (int run = 0; run < 2; ++run) {
    qan.begin_run(run, 30, trainer);
    double loss = 0;
    for (size_t s = 0; s < 30; ++s) {
      QanDecision d;
      if (qan.before_step(s, loss, trainer, &d)) {
        ++decisions;
        EXPECT_EQ(d.step % 3, 0u);
        EXPECT_GE(d.lr, 5e-4 * 0.999);
        EXPECT_LE(d.lr, 2e-3 * 1.001);
        EXPECT_EQ(d.run, run);
      }
      loss = trainer.step().loss;
    }
    qan.end_run(trainer);
  }
  EXPECT_EQ(decisions, 20u);
  // One transition per decision (each completed by the next decision or the run's end).
  EXPECT_EQ(qan.agent().replay().size(), 20u);
  EXPECT_GT(qan.agent().updates(), 0u);
  EXPECT_FALSE(same(trainer.flat_parameters(), initial));
}
