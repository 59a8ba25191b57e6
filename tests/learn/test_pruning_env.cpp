// The pruning agent's environment: sampled beam search, logs, reward, baseline, training queries.
#include <gtest/gtest.h>
#include <omp.h>

#include <numeric>

#include "index/error.h"
#include "learn/pruning_env.h"
#include "test_util.h"

using namespace wp::learn;
using wp::index::HnswIndex;
using wp::index::label_t;

namespace {
struct Fixture {
  wp::index::Dataset ds = wp::test::load_test_data("siftsmall");
  std::unique_ptr<HnswIndex> index;
  uint32_t entry = 0;
  Fixture() {
    index = std::make_unique<HnswIndex>(ds.base.d, wp::index::Metric::kL2);
    std::vector<label_t> ids(ds.base.n);
    std::iota(ids.begin(), ids.end(), 0);
    // One build thread: the parallel build differs from run to run, and with a fixed entry and
    // ef = 10 so did the recall floors below (0.70 to 0.84 at ef 10).
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    index->add(wp::index::view(ds.base), ids.data());
    omp_set_num_threads(threads);
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
  EXPECT_DOUBLE_EQ(b.value(7), 11.0);           // moved a tenth of the way from 10 toward 20
  EXPECT_DOUBLE_EQ(b.advantage(8, 5.0), 0.0);   // baselines are per query
  EXPECT_DOUBLE_EQ(b.advantage(7, 11.0), 0.0);  // a reward at the baseline has no advantage
  // The reward rises with recall and falls with distance computations (until the budget's floor).
  for (uint64_t dcs = 0; dcs < 120; dcs += 10) {
    EXPECT_LT(episode_reward(0.6, dcs, 100), episode_reward(0.7, dcs, 100)) << dcs;
    EXPECT_GE(episode_reward(0.7, dcs, 100), episode_reward(0.7, dcs + 10, 100)) << dcs;
  }
}

TEST(PruningEnv, LeaveOneOutQueriesAndCalibration) {
  const Fixture& f = fx();
  const QuerySet qs = leave_one_out_queries(*f.index, 200, 10, 11, f.entry);
  ASSERT_EQ(qs.size(), 200u);
  ASSERT_EQ(qs.held_out.size(), 200u);
  ASSERT_EQ(qs.knn.size(), 200u * 10);
  const QuerySet again = leave_one_out_queries(*f.index, 200, 10, 11, f.entry);
  EXPECT_EQ(qs.held_out, again.held_out);  // seeded
  std::vector<uint32_t> slots = qs.held_out;
  std::sort(slots.begin(), slots.end());
  EXPECT_EQ(std::unique(slots.begin(), slots.end()), slots.end());  // distinct points
  EXPECT_EQ(std::count(slots.begin(), slots.end(), f.entry), 0);    // never the entry
  // Each query is its base point; its true neighbours are the 10 nearest *other* points.
  const wp::index::IntMatrix nn = wp::index::exact_knn(f.ds.base, qs.x, 11, wp::index::Metric::kL2);
  for (size_t i = 0; i < qs.size(); ++i) {
    const uint32_t self = qs.held_out[i];  // ids equal slots in this fixture
    EXPECT_EQ(wp::index::l2sqr(qs.x.row(i), f.ds.base.row(self), qs.x.d), 0.0f);
    const uint32_t* knn = qs.knn.data() + i * 10;
    EXPECT_EQ(std::count(knn, knn + 10, self), 0);
    // Same set as brute force minus the point itself (ties aside: compare distances).
    for (size_t j = 0; j < 10; ++j) {
      const float want = wp::index::l2sqr(qs.x.row(i), f.ds.base.row(nn.row(i)[j + 1]), qs.x.d);
      const float got = wp::index::l2sqr(qs.x.row(i), f.ds.base.row(knn[j]), qs.x.d);
      EXPECT_FLOAT_EQ(got, want) << "query " << i << " rank " << j;
    }
  }
  // The search never evaluates the held-out vertex, so it cannot return it.
  PruningEnv env(*f.index, f.index->export_level0(), f.entry, EnvConfig{});
  const std::vector<float> all(env.graph().num_edges(), 1.0f);
  const auto eps = env.run_batch(qs, all, false, 0);
  double recall = 0;
  for (size_t i = 0; i < eps.size(); ++i) {
    EXPECT_EQ(std::count(eps[i].result.begin(), eps[i].result.end(), qs.held_out[i]), 0);
    recall += eps[i].recall;
  }
  EXPECT_GE(recall / eps.size(), 0.7);  // measured 0.84 at ef 10
  const std::vector<CurvePoint> curve = env.curve(qs, all, {10, 20});
  EXPECT_GT(curve[1].dcs, curve[0].dcs);  // a wider beam computes more distances
  EXPECT_NEAR(curve[0].recall, recall / eps.size(), 1e-12);
  // Subsets keep queries, neighbours and held-out slots together.
  const QuerySet part = qs.subset({5, 2});
  EXPECT_EQ(part.held_out, (std::vector<uint32_t>{qs.held_out[5], qs.held_out[2]}));
  EXPECT_TRUE(std::equal(part.knn.begin(), part.knn.begin() + 10, qs.knn.begin() + 50));
  EXPECT_THROW(qs.slice(150, 100), wp::UserError);
}

TEST(PruningEnv, DcsAtRecallInterpolatesTheSweep) {
  const std::vector<CurvePoint> c{{10, 0.80, 200}, {16, 0.90, 260}, {24, 0.96, 340}};
  EXPECT_DOUBLE_EQ(dcs_at_recall(c, 0.80), 200);
  EXPECT_DOUBLE_EQ(dcs_at_recall(c, 0.70), 200);        // reached at the first point
  EXPECT_NEAR(dcs_at_recall(c, 0.95), 326.6667, 1e-3);  // 5/6 of the way from 260 to 340
  EXPECT_NEAR(dcs_at_recall(c, 0.85), 230.0, 1e-9);     // halfway from 200 to 260
  // A higher target never costs fewer distance computations.
  double previous = 0;
  for (double target = 0.5; target <= 0.96; target += 0.01) {
    const double d = dcs_at_recall(c, target);
    EXPECT_GE(d, previous) << target;
    previous = d;
  }
  EXPECT_TRUE(std::isinf(dcs_at_recall(c, 0.99)));
  // The budget at which recall x (max_dcs - DCS) is equal at both points of a curve.
  const CurvePoint a{16, 0.90, 300}, b{24, 0.95, 400};
  const double flat = flat_reward_budget(a, b);
  EXPECT_NEAR(flat, 2200, 1e-9);  // 0.90 x 1900 = 0.95 x 1800 = 1710
  EXPECT_NEAR(0.90 * (flat - 300), 0.95 * (flat - 400), 1e-9);
  EXPECT_NEAR(episode_reward(0.90, 300, 2200), episode_reward(0.95, 400, 2200), 1e-9);
  EXPECT_DOUBLE_EQ(flat_reward_budget(a, {24, 0.90, 400}), 30000);  // no gain: the cap, 100 x 300
  EXPECT_NEAR(flat_reward_budget(a, {24, 0.99, 301}), 330, 1e-9);   // the floor, 1.1 x 300
  EXPECT_EQ(default_ef_sweep(10).front(), 10u);
  EXPECT_EQ(default_ef_sweep(20)[1], 24u);  // only widths above k follow
}

TEST(PruningEnv, GuardedMaskKeepsDegreeAndReachability) {
  const Fixture& f = fx();
  const wp::index::Level0Graph g = f.index->export_level0();
  size_t restored = 0;
  // Every edge kept: nothing to repair.
  const auto full = guarded_mask(g, f.entry, std::vector<float>(g.num_edges(), 0.9f), 4, &restored);
  EXPECT_EQ(restored, 0u);
  EXPECT_EQ(std::count(full.begin(), full.end(), 1), static_cast<long>(g.num_edges()));
  // Every edge dropped, probabilities ranking edges by position: the repair keeps the min degree
  // with the most probable edges and makes every vertex reachable from the entry again.
  std::vector<float> p(g.num_edges());
  for (size_t u = 0; u < g.num_vertices(); ++u) {
    for (uint64_t j = g.offsets[u]; j < g.offsets[u + 1]; ++j) {
      p[j] = 0.4f - 0.01f * static_cast<float>(j - g.offsets[u]);
    }
  }
  const auto m = guarded_mask(g, f.entry, p, 2, &restored);
  EXPECT_EQ(restored, static_cast<size_t>(std::count(m.begin(), m.end(), 1)));
  for (size_t u = 0; u < g.num_vertices(); ++u) {
    const uint64_t b = g.offsets[u], e = g.offsets[u + 1];
    if (e - b >= 2) {
      EXPECT_TRUE(m[b] && m[b + 1]) << "vertex " << u << " keeps its two most probable edges";
    }
  }
  // Everything the full level-0 graph reaches from the entry is reached again.
  auto reached = [&](const std::vector<uint8_t>& mask) {
    std::vector<uint8_t> seen(g.num_vertices(), 0);
    std::vector<uint32_t> stack{f.entry};
    seen[f.entry] = 1;
    while (!stack.empty()) {
      const uint32_t u = stack.back();
      stack.pop_back();
      for (uint64_t j = g.offsets[u]; j < g.offsets[u + 1]; ++j) {
        if (mask[j] && !seen[g.neighbors[j]]) {
          seen[g.neighbors[j]] = 1;
          stack.push_back(g.neighbors[j]);
        }
      }
    }
    return seen;
  };
  EXPECT_EQ(reached(m), reached(full));
  EXPECT_LT(restored, g.num_edges() / 2);  // a repair, not the whole graph back
}

TEST(PruningEnv, EdgeFeaturesMatchADirectComputation) {
  const Fixture& f = fx();
  const wp::index::Level0Graph g = f.index->export_level0();
  const std::vector<float> x = edge_features(*f.index, g);
  ASSERT_EQ(x.size(), g.num_edges() * kEdgeFeatures);
  auto dist = [&](uint32_t a, uint32_t b) { return std::sqrt(f.index->distance_between(a, b)); };
  std::mt19937 rng(3);
  for (int t = 0; t < 200; ++t) {
    const uint32_t u = rng() % g.num_vertices();
    const uint64_t b = g.offsets[u], e = g.offsets[u + 1];
    if (b == e) continue;
    const uint64_t j = b + rng() % (e - b);
    const uint32_t v = g.neighbors[j];
    const float duv = dist(u, v);
    float occl = 2.0f;
    size_t nearer = 0, occluders = 0;
    for (uint64_t i = b; i < e; ++i) {
      const uint32_t w = g.neighbors[i];
      if (i == j || dist(u, w) >= duv) continue;
      ++nearer;
      occl = std::min(occl, dist(w, v) / duv);
      occluders += dist(w, v) < duv;
    }
    bool reverse = false;
    for (uint64_t i = g.offsets[v]; i < g.offsets[v + 1]; ++i) reverse |= g.neighbors[i] == u;
    const float* feat = x.data() + j * kEdgeFeatures;
    EXPECT_NEAR(feat[1], e - b > 1 ? static_cast<float>(nearer) / (e - b - 1) : 0.0f, 1e-6);
    EXPECT_NEAR(feat[3], occl, 1e-4) << "edge " << u << "->" << v;
    EXPECT_NEAR(feat[4], nearer ? static_cast<float>(occluders) / nearer : 0.0f, 1e-6);
    EXPECT_EQ(feat[5], reverse ? 1.0f : 0.0f);
    EXPECT_GE(feat[2], 0.0f);  // log of a ratio to the nearest listed neighbour
  }
  double mean_len = 0;
  for (size_t j = 0; j < g.num_edges(); ++j) mean_len += x[j * kEdgeFeatures];
  EXPECT_NEAR(mean_len / g.num_edges(), 1.0, 1e-3);  // lengths relative to their mean
}

// Entered through HNSW's upper levels, the environment's greedy search is the served search of
// an HNSW without a fixed entry: the same results and the same distance computations, descent
// included (so that validation reads DCS as `waypoint bench` does).
TEST(PruningEnv, UpperLevelEntriesGiveTheServedSearchWithItsDescent) {
  const Fixture& f = fx();
  const std::unique_ptr<HnswIndex> h = f.index->clone();
  h->set_fixed_entry(wp::index::kNoLabel);
  EnvConfig cfg;
  cfg.ef = 16;
  PruningEnv env(*h, h->export_level0(), f.entry, cfg);
  QuerySet qs = query_set(*h, f.ds.query, 10);
  enter_through_upper_levels(qs, *h);
  ASSERT_EQ(qs.entry.size(), qs.size());
  const std::vector<float> all(env.graph().num_edges(), 1.0f);
  wp::index::SearchParams p;
  p.ef = 16;
  size_t other_entries = 0;
  for (size_t i = 0; i < qs.size(); ++i) {
    const Episode ep =
        env.run(qs.x.row(i), qs.knn.data() + i * 10, all, false, 1, 0, qs.start_of(i));
    label_t labels[10];
    float dist[10];
    const auto st = h->search_one(qs.x.row(i), 10, p, labels, dist);
    for (size_t j = 0; j < 10; ++j) EXPECT_EQ(ep.result[j], labels[j]) << "query " << i;
    EXPECT_EQ(ep.dcs, st.distance_computations) << "query " << i;
    EXPECT_GT(qs.entry_dcs[i], 1u);
    other_entries += qs.entry[i] != f.entry;
  }
  EXPECT_GT(other_entries, qs.size() / 2);  // the descent lands near each query
  // A subset keeps each query's entry.
  const QuerySet sub = qs.subset({3, 1});
  EXPECT_EQ(sub.entry[0], qs.entry[3]);
  EXPECT_EQ(sub.entry_dcs[1], qs.entry_dcs[1]);
  // A leave-one-out query never enters at its own vertex.
  QuerySet loo = leave_one_out_queries(*h, 50, 10, 4, f.entry);
  enter_through_upper_levels(loo, *h);
  for (size_t i = 0; i < loo.size(); ++i) EXPECT_NE(loo.entry[i], loo.held_out[i]);
}

// Usage counts: every distance computed through an edge is counted on that edge (their sum is
// the searches' DCS less their entries), and the edges that first reached each true neighbour
// found, back to the entry, are counted useful.
TEST(PruningEnv, UsageCountsEvaluatedEdgesAndThePathsToFoundNeighbours) {
  const Fixture& f = fx();
  EnvConfig cfg;
  cfg.ef = 10;
  PruningEnv env(*f.index, f.index->export_level0(), f.entry, cfg);
  const wp::index::Level0Graph& g = env.graph();
  const QuerySet qs = query_set(*f.index, f.ds.query, 10);
  const std::vector<float> all(g.num_edges(), 1.0f);
  const EdgeUsage u = env.usage(qs, all);
  ASSERT_EQ(u.evaluated.size(), g.num_edges());
  uint64_t evaluated = 0, dcs = 0, found_other = 0, useful_sum = 0;
  for (size_t e = 0; e < g.num_edges(); ++e) {
    EXPECT_LE(u.useful[e], u.evaluated[e]) << "edge " << e;
    evaluated += u.evaluated[e];
    useful_sum += u.useful[e];
  }
  for (const Episode& ep : env.run_batch(qs, all, false, 0)) {
    dcs += ep.dcs - 1;
    for (uint32_t r : ep.result) found_other += r != f.entry;
  }
  EXPECT_EQ(evaluated, dcs);
  // One query alone: each true neighbour found (not the entry) has a useful in-edge.
  const QuerySet one = qs.slice(7, 1);
  const EdgeUsage u1 = env.usage(one, all);
  const Episode ep = env.run(one.x.row(0), one.knn.data(), all, false, 0);
  size_t checked = 0;
  for (uint32_t r : ep.result) {
    if (r == f.entry || std::find(one.knn.begin(), one.knn.end(), r) == one.knn.end()) continue;
    size_t into = 0;
    for (size_t e = 0; e < g.num_edges(); ++e) into += g.neighbors[e] == r && u1.useful[e] == 1;
    EXPECT_EQ(into, 1u) << "vertex " << r;
    ++checked;
  }
  EXPECT_GE(checked, 5u);
  EXPECT_GE(useful_sum, found_other / 2);  // paths of at least one edge to most results
  // The features carry the counts.
  const std::vector<float> x = edge_features(*f.index, g, &u);
  for (size_t e = 0; e < g.num_edges(); e += 97) {
    EXPECT_NEAR(x[e * kEdgeFeatures + 7], std::log1p(static_cast<double>(u.evaluated[e])), 1e-5);
    EXPECT_NEAR(x[e * kEdgeFeatures + 8], (u.useful[e] + 1.0) / (u.evaluated[e] + 2.0), 1e-6);
  }
}
