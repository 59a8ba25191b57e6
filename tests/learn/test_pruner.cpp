// TRPO pruning agent: CG, KL limit, learning on a tiny seeded set, checkpoints, the saved graph.
#include <gtest/gtest.h>
#include <omp.h>

#include <numeric>
#include <random>

#include "index/error.h"
#include "index/graph_index.h"
#include "index/vamana.h"
#include "learn/pruner.h"
#include "learn/torch_runtime.h"
#include "test_util.h"

using namespace wp::learn;
using wp::index::label_t;

namespace {

struct TrainingSetup {
  wp::index::Dataset ds = wp::test::load_test_data("digits");
  std::unique_ptr<wp::index::GraphIndex> graph;
  wp::index::Level0Graph initial;
  QuerySet train, val;
  std::unique_ptr<PruningEnv> env;

  TrainingSetup() {
    init_torch(2, 1);
    wp::index::HnswParams hnsw;
    hnsw.M = 8;
    hnsw.ef_construction = 100;
    wp::index::GraphParams spec;
    spec.initial = wp::index::InitialGraph::kHnsw;
    spec.pruning = wp::index::Pruning::kNone;
    graph = std::make_unique<wp::index::GraphIndex>(ds.base.d, wp::index::Metric::kL2, hnsw, spec);
    std::vector<label_t> ids(ds.base.n);
    std::iota(ids.begin(), ids.end(), 0);
    // One build thread: the parallel build differs from run to run, and so would the rewards.
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    graph->add(wp::index::view(ds.base), ids.data());
    omp_set_num_threads(threads);
    initial = graph->graph().export_level0();
    EnvConfig cfg;
    cfg.ef = 8;
    cfg.k = 5;
    const uint32_t entry = graph->graph().fixed_entry_slot();
    const QuerySet all = leave_one_out_queries(graph->graph(), 800, cfg.k, 5, entry);
    train = all.slice(0, 600);
    val = all.slice(600, 200);
    PruningEnv probe(graph->graph(), initial, entry, cfg);
    const std::vector<float> all_edges(initial.num_edges(), 1.0f);
    cfg.max_dcs = static_cast<uint64_t>(1.1 * probe.curve(val, all_edges, {cfg.ef})[0].dcs);
    env = std::make_unique<PruningEnv>(graph->graph(), initial, graph->graph().fixed_entry_slot(),
                                       cfg);
  }
};

TrainingSetup& setup() {
  static TrainingSetup s;
  return s;
}

PrunerConfig small_config() {
  PrunerConfig c;
  c.hidden = 16;
  c.episodes_per_step = 128;
  c.seed = 3;
  return c;
}

/// Mean reward of sampled episodes on fixed queries and seeds (common random numbers).
double expected_reward(const PruningTrainer& t, const TrainingSetup& s) {
  double total = 0;
  for (uint64_t seed : {11, 12, 13}) {
    for (const Episode& e : s.env->run_batch(s.val, t.probabilities(), true, seed * 1000)) {
      total += e.reward;
    }
  }
  return total / (3.0 * s.val.size());
}

}  // namespace

TEST(Trpo, ConjugateGradientSolvesAKnownSystem) {
  // A = B^T B + I (symmetric positive definite), b = A x*.
  std::mt19937 rng(1);
  std::normal_distribution<double> g;
  const size_t n = 12;
  std::vector<double> B(n * n), A(n * n, 0.0), x_star(n), b(n, 0.0);
  for (double& v : B) v = g(rng);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      for (size_t k = 0; k < n; ++k) A[i * n + j] += B[k * n + i] * B[k * n + j];
    }
    A[i * n + i] += 1.0;
    x_star[i] = g(rng);
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) b[i] += A[i * n + j] * x_star[j];
  }
  auto matvec = [&](const std::vector<double>& v) {
    std::vector<double> out(n, 0.0);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < n; ++j) out[i] += A[i * n + j] * v[j];
    }
    return out;
  };
  const std::vector<double> x = conjugate_gradient(matvec, b, 50);
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(x[i], x_star[i], 1e-6);
  // With 10 iterations on this 12-dim system the residual already falls well below |b|.
  const std::vector<double> x10 = conjugate_gradient(matvec, b, 10);
  const std::vector<double> r10 = matvec(x10);
  double res = 0, nb = 0;
  for (size_t i = 0; i < n; ++i) {
    res += (r10[i] - b[i]) * (r10[i] - b[i]);
    nb += b[i] * b[i];
  }
  EXPECT_LT(std::sqrt(res / nb), 0.1);
}

class TrpoEncoders : public ::testing::TestWithParam<std::string> {};

// Over three trainer seeds: every accepted step within the KL limit, and 25 steps raise the
// expected reward on held-out queries by well over half (the policy starts at keep 0.9 everywhere).
TEST_P(TrpoEncoders, StepsRespectTheKlLimitAndRaiseTheReward) {
  TrainingSetup& s = setup();
  double min_gain = 1e9, sum_gain = 0;
  for (const uint64_t seed : {3, 4, 5}) {
    PrunerConfig cfg = small_config();
    cfg.encoder = GetParam();
    cfg.max_kl = 0.01;
    cfg.seed = seed;
    PruningTrainer t(*s.env, s.train, cfg);
    const double before = expected_reward(t, s);
    int accepted = 0;
    for (int i = 0; i < 25; ++i) {
      const StepStats st = t.step();
      if (st.accepted) {
        ++accepted;
        EXPECT_LE(st.kl, cfg.max_kl + 1e-9) << "seed " << seed << " step " << st.step;
        EXPECT_GT(st.surrogate_gain, 0.0);
      }
    }
    EXPECT_GE(accepted, 20) << "seed " << seed;  // measured 25 of 25 (every seed, both encoders)
    const double after = expected_reward(t, s);
    std::printf(
        "%s seed %d: accepted %d, expected reward on held-out queries %.3f -> %.3f (x%.3f)\n",
        cfg.encoder.c_str(), static_cast<int>(seed), accepted, before, after, after / before);
    min_gain = std::min(min_gain, after / before);
    sum_gain += after / before;
  }
  // Measured x1.90 / 1.84 / 1.90 (mlp: mean 1.88, min 1.84) and x1.93 / 2.02 / 1.98 (sage: mean
  // 1.98, min 1.93).
  EXPECT_GT(sum_gain / 3, 1.75);
  EXPECT_GT(min_gain, 1.7);
}

// The plain MLP on the vectors, and the GraphSAGE vertex encoder (in/out aggregation, degrees).
INSTANTIATE_TEST_SUITE_P(Policy, TrpoEncoders, ::testing::Values("mlp", "sage"));

TEST(Trpo, CheckpointRoundTrip) {
  TrainingSetup& s = setup();
  PruningTrainer a(*s.env, s.train, small_config());
  for (int i = 0; i < 3; ++i) a.step();
  wp::test::TempDir tmp;
  a.save_checkpoint(tmp.file("c.ckpt"));
  PruningTrainer b(*s.env, s.train, small_config());
  EXPECT_NE(a.probabilities(), b.probabilities());
  b.load_checkpoint(tmp.file("c.ckpt"));
  EXPECT_EQ(a.probabilities(), b.probabilities());
  EXPECT_EQ(b.steps_done(), 3);
  PrunerConfig wider = small_config();
  wider.hidden = 32;
  PruningTrainer c(*s.env, s.train, wider);
  EXPECT_THROW(c.load_checkpoint(tmp.file("c.ckpt")), wp::UserError);
  EXPECT_THROW(c.load_checkpoint(tmp.file("missing.ckpt")), wp::UserError);
}

TEST(Trpo, TheSavedGraphSearchesLikeTheTrainingTimeGreedySearch) {
  TrainingSetup& s = setup();
  PruningTrainer t(*s.env, s.train, small_config());
  for (int i = 0; i < 10; ++i) t.step();
  const std::vector<float> p = t.probabilities();
  // An independent copy of the initial graph (same slots), masked, saved and loaded back.
  wp::test::TempDir tmp;
  s.graph->save(tmp.file("initial.rl"));
  auto copy = wp::index::load_index(tmp.file("initial.rl"));
  auto* g = dynamic_cast<wp::index::GraphIndex*>(copy.get());
  ASSERT_NE(g, nullptr);
  g->apply_mask(s.initial, t.mask());
  g->save(tmp.file("learnt.rl"));
  auto learnt = wp::index::load_index(tmp.file("learnt.rl"));
  const std::vector<uint8_t> mask = t.mask();
  EXPECT_EQ(dynamic_cast<const wp::index::GraphIndex&>(*learnt).graph().export_level0().num_edges(),
            static_cast<size_t>(std::count(mask.begin(), mask.end(), 1)));
  wp::index::SearchParams sp;
  sp.ef = s.env->config().ef;
  const size_t k = s.env->config().k;
  // The served index knows no held-out vertex: plain queries (the base points themselves).
  for (size_t i = 0; i < s.val.size(); ++i) {
    const Episode ep = s.env->run(s.val.x.row(i), s.val.knn.data() + i * k, p, false, 0);
    std::vector<label_t> labels(k);
    std::vector<float> dist(k);
    const auto st = learnt->search_one(s.val.x.row(i), k, sp, labels.data(), dist.data());
    ASSERT_EQ(st.distance_computations, ep.dcs) << "query " << i;
    for (size_t j = 0; j < ep.result.size(); ++j) EXPECT_EQ(labels[j], ep.result[j]);
  }
}

// Warm start and degree budget: imitation fits a given graph (a RobustPrune of the initial
// lists to R 5), and over the same steps and seed the budget ends at a lower degree than the same
// training without it (measured 2.15 against 7.68 from 9.61, target 4.8: from a policy that keeps
// every edge alike, the shared output moves them together and overshoots; a warm-started policy
// is spread out).
TEST(Trpo, ImitationFitsAGraphAndTheDegreeBudgetHoldsTheDegreeDown) {
  TrainingSetup& s = setup();
  const wp::index::HnswIndex& h = s.graph->graph();
  std::vector<std::vector<uint32_t>> lists(s.initial.num_vertices());
  for (size_t v = 0; v < lists.size(); ++v) {
    lists[v].assign(s.initial.neighbors.begin() + s.initial.offsets[v],
                    s.initial.neighbors.begin() + s.initial.offsets[v + 1]);
  }
  const auto pruned = wp::index::prune_lists(h, lists, 5, 1.0f);
  std::vector<uint8_t> target(s.initial.num_edges(), 0);
  for (size_t v = 0; v < lists.size(); ++v) {
    for (uint64_t e = s.initial.offsets[v]; e < s.initial.offsets[v + 1]; ++e) {
      const uint32_t u = s.initial.neighbors[e];
      target[e] = std::find(pruned[v].begin(), pruned[v].end(), u) != pruned[v].end();
    }
  }
  const double kept_share =
      static_cast<double>(std::count(target.begin(), target.end(), 1)) / target.size();
  PruningTrainer t(*s.env, s.train, small_config());
  const double agreement = t.imitate(target, 300);
  std::printf("imitation: agreement %.3f (the share kept by the target: %.3f)\n", agreement,
              kept_share);
  // Measured 0.9xx; always answering the majority class would give max(kept, 1 - kept).
  EXPECT_GT(agreement, std::max(kept_share, 1 - kept_share) + 0.1);
  EXPECT_EQ(t.mask().size(), target.size());

  const double vertices = static_cast<double>(s.initial.num_vertices());
  const double initial_degree = s.initial.num_edges() / vertices;
  auto degree_after = [&](double target_degree, double* lambda) {
    PrunerConfig c = small_config();
    c.target_degree = target_degree;
    c.degree_step = 0.1;
    PruningTrainer tr(*s.env, s.train, c);
    StepStats st;
    for (int i = 0; i < 20; ++i) st = tr.step();
    *lambda = st.lambda;
    const std::vector<uint8_t> m = tr.mask();
    EXPECT_DOUBLE_EQ(st.degree, std::count(m.begin(), m.end(), 1) / vertices);
    return st.degree;
  };
  double lambda_free = 0, lambda_budget = 0;
  const double free_degree = degree_after(0, &lambda_free);
  const double budget_degree = degree_after(initial_degree / 2, &lambda_budget);
  std::printf(
      "degree after 20 steps: initial %.2f, no budget %.2f, budget %.2f: %.2f (lambda %.3f)\n",
      initial_degree, free_degree, initial_degree / 2, budget_degree, lambda_budget);
  EXPECT_EQ(lambda_free, 0.0);
  EXPECT_GT(lambda_budget, 0.0);
  EXPECT_LT(budget_degree, free_degree - 0.5);
  PrunerConfig bad = small_config();
  bad.target_degree = -1;
  EXPECT_THROW(PruningTrainer(*s.env, s.train, bad), wp::UserError);
}
