// `waypoint train-pruner`'s job: its set-up, every step and a checkpoint state per validation
// reported and returned, resuming from a state, the checkpoint's bytes, and the leave-one-out job
// that the "rl" builder runs. The files the command writes from these are checked end to end in
// test_learn_cli.cpp.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>
#include <numeric>
#include <set>

#include "index/error.h"
#include "index/flat_index.h"
#include "index/graph_index.h"
#include "index/vamana.h"
#include "job_reports.h"
#include "learn/train_hash.h"
#include "learn/train_pruner.h"
#include "test_util.h"

using namespace wp::learn;

namespace {

/// The toy example of the README, short: 100 digits from the complete graph.
TrainPrunerOptions toy() {
  TrainPrunerOptions o;
  o.dataset = wp::test::data_dir() + "/digits";
  o.limit_base = 100;
  o.initial = "complete";
  o.env.max_dcs = 200;
  o.steps = 8;
  o.validate_every = 4;
  o.trainer.episodes_per_step = 64;
  o.threads = 2;
  return o;
}

using Reports = wp::test::JobReports<PrunerSetup, PrunerStepRecord, PrunerCheckpoint>;

/// `c` comes back from its bytes exactly, and damaged bytes or another job's are refused.
template <typename Checkpoint>
void expect_round_trip(const Checkpoint& c, const std::string& other_job) {
  const std::string bytes = c.encode();
  EXPECT_EQ(Checkpoint::decode(bytes).encode(), bytes);
  EXPECT_THROW(Checkpoint::decode(bytes.substr(0, bytes.size() - 2)), wp::UserError);
  EXPECT_THROW(Checkpoint::decode(""), wp::UserError);
  EXPECT_THROW(Checkpoint::decode("PK\3\4 a torch archive"), wp::UserError);
  EXPECT_THROW(Checkpoint::decode(other_job), wp::UserError);
}

}  // namespace

TEST(TrainPruner, ReportsItsSetupEveryStepAndACheckpointPerValidation) {
  Reports seen;
  const TrainedPruner t = train_pruner(toy(), seen.observer());
  const TrainPrunerResult& r = t.learnt.result;
  EXPECT_EQ(t.data.base.n, 100u);  // cut to limit_base
  ASSERT_NE(t.learnt.graph, nullptr);
  EXPECT_EQ(seen.started, 1u);
  EXPECT_EQ(seen.setup.vertices, 100u);
  EXPECT_EQ(seen.setup.edges, 9900u);  // the complete graph
  EXPECT_EQ(seen.setup.max_dcs, 200u);
  EXPECT_EQ(r.setup.query_source, seen.setup.query_source);
  // A record per step (a row of the command's log), validated every 4 steps, and returned too.
  ASSERT_EQ(seen.steps.size(), 8u);
  ASSERT_EQ(r.steps.size(), 8u);
  for (size_t i = 0; i < seen.steps.size(); ++i) {
    EXPECT_EQ(seen.steps[i].stats.step, static_cast<int>(i + 1));
    EXPECT_EQ(seen.steps[i].val_dcs_at_target > 0, (i + 1) % 4 == 0) << "step " << i + 1;
    EXPECT_EQ(r.steps[i].stats.reward, seen.steps[i].stats.reward);
  }
  EXPECT_EQ(seen.progress_calls, 8u);
  EXPECT_EQ(seen.done, 8u);
  EXPECT_EQ(seen.total, 8u);
  // A checkpoint state per validation, the last one at the result's best.
  ASSERT_EQ(seen.checkpoints.size(), 2u);
  EXPECT_EQ(seen.checkpoints[0].step, 4);
  EXPECT_EQ(seen.checkpoints[1].step, 8);
  EXPECT_EQ(seen.checkpoints[1].best_step, r.best_step);
  // The learnt graph is the best validated one: never worse than the initial graph there.
  EXPECT_LE(r.learnt_dcs_at_target, r.setup.initial_dcs_at_target);
  EXPECT_LE(r.learnt_degree, r.setup.initial_degree);
  EXPECT_EQ(t.learnt.graph->info().average_degree, r.learnt_degree);
}

TEST(TrainPruner, ResumesFromACheckpointStateAndKeepsTheBest) {
  Reports seen;
  const TrainedPruner first = train_pruner(toy(), seen.observer());
  ASSERT_FALSE(seen.checkpoints.empty());
  const PrunerCheckpoint ck = PrunerCheckpoint::decode(seen.checkpoints.back().encode());
  EXPECT_EQ(ck.step, 8);
  TrainPrunerOptions o = toy();
  o.steps = 12;
  Reports more;
  const TrainedPruner second = train_pruner(o, more.observer(), &ck);
  // The step count continues from the checkpoint's.
  ASSERT_EQ(more.steps.size(), 4u);
  EXPECT_EQ(more.steps.front().stats.step, 9);
  EXPECT_EQ(more.steps.back().stats.step, 12);
  EXPECT_EQ(more.done, 12u);
  // The best validated graph is kept across the resume: its DCS at the target only goes down.
  const TrainPrunerResult& a = first.learnt.result;
  const TrainPrunerResult& b = second.learnt.result;
  EXPECT_LE(b.learnt_dcs_at_target, a.learnt_dcs_at_target);
  EXPECT_GE(b.best_step, a.best_step);
  ASSERT_EQ(more.checkpoints.size(), 1u);
  EXPECT_EQ(more.checkpoints[0].step, 12);
  // A state of another graph is refused.
  PrunerCheckpoint other = ck;
  other.best_step = 4;
  other.best_mask.assign(10, 1);
  EXPECT_THROW(train_pruner(o, {}, &other), wp::UserError);
}

// Both jobs' checkpoints in learn's checkpoint format (learn/checkpoint.h).
TEST(Checkpoints, BytesRoundTripExactlyAndRejectOtherData) {
  PrunerCheckpoint p;
  p.trainer = std::string("policy\0bytes\n", 13);
  p.step = 30;
  p.best_step = 25;
  p.best_dcs_at_target = 100.0 / 3;  // not a short decimal: must come back exactly
  p.best_mask = {1, 0, 0, 1, 1};
  HashCheckpoint h;
  h.trainer = std::string("trainer\0bytes\n", 14);
  h.best = "best";
  h.step = 40;
  h.best_step = 25;
  h.best_val_accuracy = 0.1 + 0.2;
  h.best_val_loss = 1.0 / 3;
  h.bad_validations = 3;
  expect_round_trip(p, h.encode());
  expect_round_trip(h, p.encode());
  const PrunerCheckpoint p2 = PrunerCheckpoint::decode(p.encode());
  EXPECT_EQ(p2.trainer, p.trainer);
  EXPECT_EQ(p2.best_dcs_at_target, p.best_dcs_at_target);
  EXPECT_EQ(p2.best_mask, p.best_mask);
  const HashCheckpoint h2 = HashCheckpoint::decode(h.encode());
  EXPECT_EQ(h2.trainer, h.trainer);
  EXPECT_EQ(h2.best_val_accuracy, h.best_val_accuracy);
  EXPECT_EQ(h2.bad_validations, h.bad_validations);
}

// What the "rl" builder runs: leave-one-out queries from the vectors themselves, progress only.
TEST(TrainPruner, LeaveOneOutJobOnVectorsInMemoryReportsProgressToTheEnd) {
  const wp::index::Dataset ds = wp::test::load_test_data("digits");
  wp::index::Matrix base(300, ds.base.d);
  std::copy(ds.base.data.begin(), ds.base.data.begin() + base.data.size(), base.data.begin());
  std::vector<wp::index::label_t> ids(base.n);
  std::iota(ids.begin(), ids.end(), 1000);
  TrainPrunerOptions o;
  o.M = 8;
  o.steps = 3;
  o.validate_every = 2;
  o.train_queries = 200;
  o.val_queries = 60;
  o.trainer.episodes_per_step = 32;
  o.threads = 2;
  std::vector<double> fractions;
  PrunerObserver observer;
  observer.progress = [&](size_t done, size_t total) {
    fractions.push_back(static_cast<double>(done) / total);
  };
  const PrunedGraph g = learn_pruned_graph(base, ids.data(), wp::index::Metric::kL2, o, observer);
  EXPECT_EQ(fractions, (std::vector<double>{1.0 / 3, 2.0 / 3, 1.0}));
  EXPECT_EQ(g.result.setup.query_source, "leave-one-out points");
  EXPECT_EQ(g.result.steps.size(), 3u);
  ASSERT_NE(g.graph, nullptr);
  EXPECT_EQ(g.graph->size(), 300u);
  o.steps = 0;
  EXPECT_THROW(learn_pruned_graph(base, ids.data(), wp::index::Metric::kL2, o), wp::UserError);
}

namespace {

/// 0/1 per edge of `initial`: whether `lists` (by slot, a subset of initial's lists) keeps it.
std::vector<uint8_t> keep_mask(const wp::index::Level0Graph& initial,
                               const std::vector<std::vector<uint32_t>>& lists) {
  std::vector<uint8_t> mask(initial.num_edges(), 0);
  for (size_t s = 0; s < initial.num_vertices(); ++s) {
    const std::set<uint32_t> kept(lists[s].begin(), lists[s].end());
    for (uint64_t e = initial.offsets[s]; e < initial.offsets[s + 1]; ++e) {
      mask[e] = kept.count(initial.neighbors[e]) ? 1 : 0;
    }
  }
  return mask;
}

std::vector<std::vector<uint32_t>> lists_of(const wp::index::Level0Graph& g) {
  std::vector<std::vector<uint32_t>> lists(g.num_vertices());
  for (size_t s = 0; s < g.num_vertices(); ++s) {
    lists[s].assign(g.neighbors.begin() + g.offsets[s], g.neighbors.begin() + g.offsets[s + 1]);
  }
  return lists;
}

double degree_of(const std::vector<uint8_t>& mask, size_t vertices) {
  return static_cast<double>(std::count(mask.begin(), mask.end(), 1)) / vertices;
}

/// The learnt pruning of HNSW level 0 (m 8, ef_construct 64, leave-one-out queries, as the "rl"
/// builder's job ran before the pool was its default) and that initial graph, rebuilt as the job
/// builds it (one thread, HNSW seed = trainer seed + 100, medoid entry), over the first `n`
/// digits.
struct LearntAndInitial {
  PrunedGraph learnt;
  std::unique_ptr<wp::index::GraphIndex> initial;
};

LearntAndInitial learn_on_digits(const wp::index::Dataset& ds, size_t n, size_t steps,
                                 uint64_t seed) {
  using namespace wp::index;
  Matrix base(n, ds.base.d);
  std::copy(ds.base.data.begin(), ds.base.data.begin() + base.data.size(), base.data.begin());
  std::vector<label_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  TrainPrunerOptions o;
  o.M = 8;
  o.ef_construction = 64;
  o.steps = steps;
  o.validate_every = 10;
  o.env.k = 10;
  o.train_queries = n * 4 / 5;
  o.val_queries = n / 5;
  o.threads = 2;
  o.trainer.seed = seed;
  o.initial = "hnsw";  // prunes HNSW level 0 (the pool is the default)
  o.entry = "medoid";  // trained, validated and compared from the medoid (see the test)
  LearntAndInitial out;
  out.learnt = learn_pruned_graph(base, ids.data(), Metric::kL2, o);
  HnswParams hnsw;
  hnsw.M = o.M;
  hnsw.ef_construction = o.ef_construction;
  hnsw.seed = seed + 100;
  out.initial = std::make_unique<GraphIndex>(base.d, Metric::kL2, hnsw, unpruned_level0());
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  out.initial->add(view(base), ids.data());
  omp_set_num_threads(threads);
  return out;
}

}  // namespace

// The headline claim at test size: on the same candidate graph (HNSW level 0 of 1200 digits, m 8),
// with the same search from the same entry (the medoid), the learnt pruning needs fewer distance
// computations at recall@10 = 0.95 (the job's target) than RobustPrune (alpha 1: the HNSW
// heuristic) at equal average degree (within 0.35 edges; the best of alpha 1 to 2 and R 5 to 16),
// on 597 queries the job never saw, on average over three trainer seeds and for at least two.
// Measured with the walks on the sorted beam (index/sorted_beam.h, 2026-12-06): x0.927 / 0.936 /
// 1.014, mean 0.959 (seeds 0-7: mean 0.957, from 0.897 to 1.014). Before them, with hnswlib's
// heaps (9 edge features, usage counts among them): x1.019 / 0.895 / 0.939, mean 0.951; with
// the 7 features before them x0.927 / 0.888 / 0.946 (a seed's initialisation moved with the
// layer's size; without the usage columns, at 9 features, x1.005 / 0.957 / 1.049). Not held,
// and measured: entered through HNSW's upper levels (the served entry), the same job loses by
// 1-6% (x1.008 / 1.056 / 1.042): starting near the query leaves little for pruning to win at
// this size. At 20 steps it does not win either, nor at recall 0.98.
TEST(TrainPruner, LearntPruningBeatsRobustPruneOfTheSameCandidatesAtEqualDegree) {
  using namespace wp::index;
  const Dataset ds = wp::test::load_test_data("digits");
  const size_t n = 1200;
  Matrix q(ds.query.n + ds.base.n - n, ds.base.d);
  std::copy(ds.query.data.begin(), ds.query.data.end(), q.data.begin());
  std::copy(ds.base.data.begin() + n * ds.base.d, ds.base.data.end(),
            q.data.begin() + ds.query.data.size());
  double sum_ratio = 0;
  int wins = 0;
  for (const uint64_t seed : {0, 1, 2}) {
    const LearntAndInitial g = learn_on_digits(ds, n, 60, seed);
    const HnswIndex& h = g.initial->graph();
    const Level0Graph g0 = h.export_level0();
    const std::vector<uint8_t> learnt_mask =
        keep_mask(g0, lists_of(g.learnt.graph->graph().export_level0()));
    const double learnt_degree = degree_of(learnt_mask, g0.num_vertices());
    // The learnt graph only drops edges of the rebuilt initial graph: it is the job's.
    EXPECT_DOUBLE_EQ(learnt_degree, g.learnt.graph->info().average_degree) << "seed " << seed;
    const QuerySet qs = query_set(h, q, 10);
    const PruningEnv env(h, g0, h.fixed_entry_slot(), EnvConfig{});
    const auto dcs_at_95 = [&](const std::vector<uint8_t>& mask) {
      const std::vector<float> keep(mask.begin(), mask.end());
      return dcs_at_recall(env.curve(qs, keep, default_ef_sweep(10)), 0.95);
    };
    const double learnt = dcs_at_95(learnt_mask);
    double robust = 1e300, robust_degree = 0;
    float robust_alpha = 0;
    size_t robust_R = 0;
    for (const float alpha : {1.0f, 1.2f, 1.4f, 2.0f}) {
      for (const size_t R : {5, 6, 7, 8, 9, 10, 16}) {
        const auto mask = keep_mask(g0, prune_lists(h, lists_of(g0), R, alpha));
        const double degree = degree_of(mask, g0.num_vertices());
        if (std::abs(degree - learnt_degree) > 0.35) continue;
        const double d = dcs_at_95(mask);
        if (d < robust) {
          robust = d;
          robust_degree = degree;
          robust_alpha = alpha;
          robust_R = R;
        }
      }
    }
    ASSERT_LT(robust, 1e300) << "no RobustPrune within 0.35 of degree " << learnt_degree;
    std::printf(
        "seed %d: learnt degree %.2f, DCS at 0.95 %.1f; RobustPrune alpha %.1f R %zu, "
        "degree %.2f: %.1f (x%.3f)\n",
        static_cast<int>(seed), learnt_degree, learnt, robust_alpha, robust_R, robust_degree,
        robust, learnt / robust);
    wins += learnt < robust;
    sum_ratio += learnt / robust;
  }
  EXPECT_GE(wins, 2);
  EXPECT_LT(sum_ratio / 3, 0.97);
}

namespace {

/// Recall@10 of `index` at ef 64 for `queries` against the exact neighbours among `live` rows.
double recall_against(const wp::index::Index& index, const wp::index::Matrix& queries,
                      const wp::index::Matrix& base, const std::vector<wp::index::label_t>& live) {
  wp::index::FlatIndex flat(base.d, wp::index::Metric::kL2);
  for (const wp::index::label_t id : live) {
    flat.add(wp::index::MatrixView{base.row(id), 1, base.d}, &id);
  }
  const wp::index::SearchResult truth = flat.search(wp::index::view(queries), 10);
  wp::index::SearchParams sp;
  sp.ef = 64;
  const wp::index::SearchResult got = index.search(wp::index::view(queries), 10, sp);
  size_t hits = 0;
  for (size_t i = 0; i < queries.n; ++i) {
    for (size_t j = 0; j < 10; ++j) {
      const auto* row = truth.labels.data() + i * 10;
      hits += std::count(row, row + 10, got.labels[i * 10 + j]);
    }
  }
  return static_cast<double>(hits) / (queries.n * 10);
}

}  // namespace

// initial "pool": the warm start is Vamana at the compared degree, the pool around it is richer,
// the policy imitates it, the budget holds the learnt degree near it, the best graph is never
// worse than the warm start on validation, and the graph is served through HNSW's upper levels:
// saved and loaded unchanged, it keeps its recall after 20% inserts and 20% deletes.
TEST(TrainPruner, ThePoolStartsFromVamanaAtTheComparedDegreeAndIsServedAsAnIndex) {
  using namespace wp::index;
  const Dataset ds = wp::test::load_test_data("digits");
  const size_t n = 1000, extra = 200;
  ASSERT_GE(ds.base.n, n + extra);
  Matrix base(n, ds.base.d);
  std::copy(ds.base.data.begin(), ds.base.data.begin() + base.data.size(), base.data.begin());
  std::vector<label_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  TrainPrunerOptions o;
  o.initial = "pool";
  o.M = 12;
  o.degree = 8;
  o.steps = 10;
  o.validate_every = 5;
  o.train_queries = 600;
  o.val_queries = 200;
  o.trainer.episodes_per_step = 64;
  o.trainer.seed = 1;
  o.threads = 2;
  const PrunedGraph g = learn_pruned_graph(base, ids.data(), Metric::kL2, o);
  const PrunerSetup& s = g.result.setup;
  std::printf(
      "pool: degree %.2f; warm start degree %.2f, DCS %.1f, agreement %.3f; learnt degree %.2f, "
      "DCS %.1f (step %d)\n",
      s.initial_degree, s.warm_degree, s.warm_dcs_at_target, s.imitation_agreement,
      g.result.learnt_degree, g.result.learnt_dcs_at_target, g.result.best_step);
  EXPECT_GT(s.warm_degree, 6.0);
  EXPECT_LE(s.warm_degree, 8.0);
  EXPECT_GT(s.initial_degree, s.warm_degree + 4);  // wider Vamana, nearest and navigation edges
  EXPECT_LE(s.initial_degree, 2.0 * o.M);
  EXPECT_GT(s.imitation_agreement, 0.85);
  EXPECT_GT(s.warm_dcs_at_target, 0);
  EXPECT_LE(g.result.learnt_dcs_at_target, s.warm_dcs_at_target);
  EXPECT_LE(g.result.learnt_degree, 1.5 * o.degree);
  ASSERT_NE(g.graph, nullptr);
  EXPECT_EQ(g.graph->info().params.entry, GraphEntry::kHnsw);

  // Saved and loaded: the same answers.
  wp::test::TempDir tmp;
  g.graph->save(tmp.file("pool.rl"));
  std::unique_ptr<Index> loaded = load_index(tmp.file("pool.rl"));
  SearchParams sp;
  sp.ef = 32;
  const SearchResult a = g.graph->search(view(ds.query), 10, sp);
  const SearchResult b = loaded->search(view(ds.query), 10, sp);
  EXPECT_EQ(a.labels, b.labels);

  // 20% inserts (the next rows) and 20% deletes (every fifth original point).
  Matrix all(n + extra, ds.base.d);
  std::copy(ds.base.data.begin(), ds.base.data.begin() + all.data.size(), all.data.begin());
  std::vector<label_t> live(ids);
  const double before = recall_against(*loaded, ds.query, all, live);
  std::vector<label_t> more(extra);
  std::iota(more.begin(), more.end(), n);
  loaded->add(MatrixView{all.row(n), extra, all.d}, more.data());
  std::vector<label_t> gone;
  for (label_t id = 0; id < n; id += 5) gone.push_back(id);
  EXPECT_EQ(loaded->remove_batch(gone.data(), gone.size()), gone.size());
  live.clear();
  for (label_t id = 0; id < n + extra; ++id) {
    if (id >= n || id % 5 != 0) live.push_back(id);
  }
  const double after = recall_against(*loaded, ds.query, all, live);
  std::printf("served pool graph: recall@10 at ef 64 %.3f, after 20%% inserts and deletes %.3f\n",
              before, after);
  EXPECT_GT(before, 0.95);
  EXPECT_GT(after, 0.93);
  const SearchResult r = loaded->search(view(ds.query), 10, sp);
  for (const label_t id : r.labels) EXPECT_TRUE(id >= n || id % 5 != 0) << id;
}

// Bad options name the field.
TEST(TrainPruner, BadPoolOptionsAreNamed) {
  const auto message = [](const std::function<void(TrainPrunerOptions&)>& change) {
    TrainPrunerOptions o;
    change(o);
    try {
      o.validate();
    } catch (const wp::UserError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message([](auto& o) { o.initial = "poole"; }).find("initial"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.entry = "top"; }).find("entry"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.degree = 40; }).find("degree"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.alpha = 0.5f; }).find("alpha"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.imitate_iterations = -1; }).find("imitate"), std::string::npos);
  EXPECT_NE(message([](auto& o) { o.trainer.target_degree = -2; }).find("target_degree"),
            std::string::npos);
  EXPECT_EQ(message([](auto& o) { o.initial = "pool"; }), "accepted");
}
