// The pruning agent's environment: sampled beam search, logs, reward, baseline, training queries.
#include <gtest/gtest.h>

#include <numeric>

#include "index/error.h"
#include "learn/pruning_env.h"
#include "test_util.h"

using namespace wp::learn;
using wp::index::HnswIndex;
using wp::index::label_t;

namespace {
struct Fixture {
  wp::index::Dataset ds = wp::test::load_shared("siftsmall");
  std::unique_ptr<HnswIndex> index;
  uint32_t entry = 0;
  Fixture() {
    index = std::make_unique<HnswIndex>(ds.base.d, wp::index::Metric::kL2);
    std::vector<label_t> ids(ds.base.n);
    std::iota(ids.begin(), ids.end(), 0);
    index->add(wp::index::view(ds.base), ids.data());
    index->set_fixed_entry(entry);  // ids equal slots here: one batch, no removals
  }
};
const Fixture& fx() {
  static const Fixture f;
  return f;
}
}  // namespace

TEST(PruningEnv, GreedyOnTheFullGraphIsTheServedSearch) {
  const Fixture& f = fx();
  EnvConfig cfg;
  cfg.ef = 10;
  PruningEnv env(*f.index, f.index->export_level0(), f.entry, cfg);
  const std::vector<float> all(env.graph().num_edges(), 1.0f);
  const auto knn = true_neighbours(*f.index, f.ds.query, 10);
  wp::index::SearchParams p;
  p.ef = 10;
  double recall = 0;
  for (size_t i = 0; i < f.ds.query.n; ++i) {
    const Episode ep = env.run(f.ds.query.row(i), knn.data() + i * 10, all, false, 1);
    label_t labels[10];
    float dist[10];
    const auto st = f.index->search_one(f.ds.query.row(i), 10, p, labels, dist);
    ASSERT_EQ(ep.result.size(), 10u);
    for (size_t j = 0; j < 10; ++j) EXPECT_EQ(ep.result[j], labels[j]) << "query " << i;
    EXPECT_EQ(ep.dcs, st.distance_computations) << "query " << i;
    EXPECT_TRUE(ep.actions.empty());  // nothing sampled in greedy mode
    recall += ep.recall;
  }
  // Level 0 alone from a fixed vertex at ef=10: measured 0.825-0.863 (parallel builds vary).
  EXPECT_GE(recall / f.ds.query.n, 0.75);
}

TEST(PruningEnv, SampledSearchLogsExactlyTheEdgesItEvaluated) {
  const Fixture& f = fx();
  PruningEnv env(*f.index, f.index->export_level0(), f.entry, EnvConfig{});
  const auto& g = env.graph();
  const std::vector<float> half(g.num_edges(), 0.5f);
  const auto knn = true_neighbours(*f.index, f.ds.query, 10);
  const Episode a = env.run(f.ds.query.row(3), knn.data() + 30, half, true, 42);
  const Episode b = env.run(f.ds.query.row(3), knn.data() + 30, half, true, 42);
  const Episode c = env.run(f.ds.query.row(3), knn.data() + 30, half, true, 43);
  ASSERT_FALSE(a.actions.empty());
  size_t kept = 0;
  for (const EdgeAction& act : a.actions) {
    ASSERT_LT(act.edge, g.num_edges());
    kept += act.kept;
  }
  EXPECT_EQ(a.dcs, 1 + kept);  // the entry, then one distance per kept edge, none per dropped one
  // A target is computed at most once: kept edges point to distinct vertices.
  std::vector<uint32_t> targets;
  for (const EdgeAction& act : a.actions) {
    if (act.kept) targets.push_back(g.neighbors[act.edge]);
  }
  std::sort(targets.begin(), targets.end());
  EXPECT_EQ(std::unique(targets.begin(), targets.end()), targets.end());
  // Same seed, same episode; another seed, another one.
  ASSERT_EQ(a.actions.size(), b.actions.size());
  for (size_t i = 0; i < a.actions.size(); ++i) {
    EXPECT_EQ(a.actions[i].edge, b.actions[i].edge);
    EXPECT_EQ(a.actions[i].kept, b.actions[i].kept);
  }
  bool differs = a.actions.size() != c.actions.size();
  for (size_t i = 0; !differs && i < a.actions.size(); ++i) {
    differs = a.actions[i].kept != c.actions[i].kept || a.actions[i].edge != c.actions[i].edge;
  }
  EXPECT_TRUE(differs);
}

TEST(PruningEnv, FrozenEdgesAreAppliedButNotLogged) {
  const Fixture& f = fx();
  PruningEnv env(*f.index, f.index->export_level0(), f.entry, EnvConfig{});
  const auto knn = true_neighbours(*f.index, f.ds.query, 10);
  std::vector<float> p(env.graph().num_edges());
  for (size_t e = 0; e < p.size(); ++e) p[e] = e % 3 ? 1.0f : 0.0f;
  const Episode ep = env.run(f.ds.query.row(0), knn.data(), p, true, 7);
  EXPECT_TRUE(ep.actions.empty());
  EXPECT_EQ(ep.dcs, env.run(f.ds.query.row(0), knn.data(), p, false, 7).dcs);
  const std::vector<float> none(env.graph().num_edges(), 0.0f);
  EXPECT_EQ(env.run(f.ds.query.row(0), knn.data(), none, true, 7).dcs, 1u);
  EXPECT_THROW(env.run(f.ds.query.row(0), knn.data(), std::vector<float>(3), true, 7),
               wp::UserError);
}

TEST(PruningEnv, RewardAndBaselineFormulas) {
  EXPECT_DOUBLE_EQ(episode_reward(0.5, 10, 100), 45.0);
  EXPECT_DOUBLE_EQ(episode_reward(1.0, 150, 100), 1.0);  // max(max_dcs - DCS, 1)
  EXPECT_DOUBLE_EQ(episode_reward(0.0, 10, 100), 0.0);
  RewardBaseline b(0.9);
  EXPECT_DOUBLE_EQ(b.advantage(7, 10.0), 0.0);  // the first reward sets the baseline
  EXPECT_DOUBLE_EQ(b.advantage(7, 20.0), 10.0);
  EXPECT_DOUBLE_EQ(b.value(7), 0.9 * 10.0 + 0.1 * 20.0);
  EXPECT_DOUBLE_EQ(b.advantage(8, 5.0), 0.0);  // baselines are per query
}

TEST(PruningEnv, CalibrationAndTrainingQueries) {
  const Fixture& f = fx();
  const auto train = make_training_queries(f.ds.base, 200, 11);
  EXPECT_EQ(train.n, 200u);
  EXPECT_EQ(train.d, f.ds.base.d);
  const auto again = make_training_queries(f.ds.base, 200, 11);
  EXPECT_EQ(train.data, again.data);
  // Not base points: none coincides with its nearest base vector.
  const auto nn = wp::index::exact_knn(f.ds.base, train, 1, wp::index::Metric::kL2);
  for (size_t i = 0; i < train.n; ++i) {
    EXPECT_GT(wp::index::l2sqr(train.row(i), f.ds.base.row(nn.row(i)[0]), train.d), 0.0f);
  }
  PruningEnv env(*f.index, f.index->export_level0(), f.entry, EnvConfig{});
  env.calibrate_max_dcs(train, true_neighbours(*f.index, train, 10));
  EXPECT_GT(env.config().max_dcs, 10u);
}
