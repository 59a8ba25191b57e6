// `waypoint tune`: every strategy (the controller RNN, random search, coordinate search) gets the
// same trial budget on the same environment; the best configurations are verified on the
// dataset's evaluation queries, which tuning never sees.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "engine/command/command.h"
#include "engine/command/plot.h"
#include "engine/command/progress.h"
#include "engine/tune.h"
#include "index/dataset.h"
#include "index/error.h"

namespace wp::cli {

using namespace engine::tune;

namespace {

std::string csv_quote(const std::string& s) {
  return "\"" + s + "\"";
}

/// The options of one `waypoint tune` run.
struct TuneJob {
  std::string dir, out, log_path, plot_path;
  TuneOptions to;
  EnvironmentOptions eo;
  std::vector<std::string> strategies, types;
  size_t tune_queries = 500;
  bool quiet = false;
};

TuneJob parse_options(Args& args) {
  TuneJob j;
  j.dir = args.required("dataset");
  j.out = args.required("out");
  j.to.recall = args.real(engine::AutoTuneRequest::kRecall, 0.95);
  j.eo.k = static_cast<size_t>(args.integer(engine::AutoTuneRequest::kK, 10));
  j.to.trials = static_cast<size_t>(args.integer(engine::AutoTuneRequest::kTrials, 60));
  j.to.max_minutes = args.real("max-minutes", 0, 0, 1e6);
  j.to.penalty = args.real("penalty", 30, 0, 1e4);
  j.to.latency_budget_us = args.real(engine::AutoTuneRequest::kLatencyBudget, 0);
  j.to.seed = static_cast<uint64_t>(args.integer("seed", 0, 0, 1LL << 62));
  j.strategies = args.list(
      "strategies", strategy("controller") ? "controller,random,coordinate" : "random,coordinate");
  j.types = args.list("types", "hnsw,lsh,graph");
  j.eo.rl_graph = args.str("rl-graph", "");
  j.eo.rl_minutes = args.real("rl-minutes", 1, 0.01, 24 * 60);
  j.eo.rl_target_recall = j.to.recall;
  if (!j.eo.rl_graph.empty() && std::find(j.types.begin(), j.types.end(), "rl") == j.types.end()) {
    j.types.push_back("rl");
  }
  j.tune_queries = static_cast<size_t>(args.integer("tune-queries", 500, 10, 1 << 24));
  j.eo.repeats = static_cast<int>(args.integer("repeats", 3, 1, 100));
  j.eo.min_seconds = args.real("min-seconds", 0.25, 0, 60);
  j.eo.max_cached = static_cast<size_t>(args.integer("cached-builds", 8, 1, 1000));
  j.log_path = args.str("log", j.out + ".csv");
  j.plot_path = args.str("plot", j.out + ".png");
  j.quiet = args.flag("quiet");
  const long long threads = args.integer("threads", 0, 0, 1024);
  args.finish();
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
  for (const std::string& s : j.strategies) {
    WP_THROW_IF_NOT(strategy(s), "--strategies: '", s, "' is not available (random, coordinate",
                    strategy("controller") ? ", controller)" : "; controller needs LibTorch)");
  }
  return j;
}

/// The tuned base and its queries: the dataset's training queries, or base rows held out of the
/// tuned index. With a trained graph (built over every base row) they stay in: each is its own
/// neighbour.
struct TuneSet {
  index::Matrix base, queries;
  std::string where;
};

TuneSet tuning_set(const index::Dataset& ds, const TuneJob& j) {
  TuneSet t;
  if (ds.learn.n > 0) {
    t.base = ds.base;
    t.queries = index::Matrix(std::min(ds.learn.n, j.tune_queries), ds.base.d);
    std::copy_n(ds.learn.data.begin(), t.queries.data.size(), t.queries.data.begin());
    t.where = "learn.fvecs";
    return t;
  }
  HeldOut split = hold_out(ds.base, std::min(j.tune_queries, ds.base.n / 10), j.to.seed + 11);
  t.queries = std::move(split.queries);
  if (j.eo.rl_graph.empty()) {
    t.base = std::move(split.base);
    t.where = "base rows held out of the tuned index";
  } else {
    t.base = ds.base;
    t.where = "base rows (kept in the index for the rl graph)";
  }
  return t;
}

/// Every strategy in lockstep, each trial a line of the CSV log.
std::vector<StrategyResult> run_logged(const TuneJob& j, const Space& space, Environment& env,
                                       const RewardSpec& reward) {
  std::ofstream log(j.log_path, std::ios::trunc);
  WP_THROW_IF_NOT(log.good(), "cannot write '", j.log_path, "'");
  log << "strategy,trial,proposals,config,type,recall,qps,p50_us,p99_us,dcs,build_s,reward,"
         "best_reward,feasible,seconds\n";
  Progress progress("tune", j.to.trials * j.strategies.size(), j.quiet);
  std::vector<std::unique_ptr<Strategy>> owned;
  std::vector<std::pair<std::string, Strategy*>> runs;
  for (size_t si = 0; si < j.strategies.size(); ++si) {
    owned.push_back((*strategy(j.strategies[si]))(space, j.to.seed + 1000 * si));
    runs.emplace_back(j.strategies[si], owned.back().get());
  }
  size_t done = 0;
  const std::vector<StrategyResult> results =
      run_strategies(runs, env, space, reward, j.to, [&](size_t si, const Trial& t) {
        log << j.strategies[si] << ',' << t.trial << ',' << t.proposals << ','
            << csv_quote(describe(space, t.config)) << ',' << space.type_name(t.config.type) << ','
            << t.m.recall << ',' << t.m.qps << ',' << t.m.p50_us << ',' << t.m.p99_us << ','
            << t.m.dcs << ',' << t.m.build_s << ',' << t.reward << ',' << t.best_reward << ','
            << (t.feasible ? 1 : 0) << ',' << t.seconds << '\n';
        log.flush();
        progress.update(++done);
      });
  progress.finish();
  return results;
}

/// Reward per trial and best feasible reward so far, for every strategy.
void plot_rewards(const TuneJob& j, const std::string& dataset,
                  const std::vector<StrategyResult>& results) {
  PlotSpec plot;
  plot.title = "tune " + dataset + ": QPS / exact QPS at recall@" + std::to_string(j.eo.k) +
               " >= " + std::to_string(j.to.recall).substr(0, 4) + " (misses: x (recall/target)^" +
               std::to_string(static_cast<int>(j.to.penalty)) + ")";
  plot.xlabel = "trial";
  plot.ylabel = "reward";
  for (const StrategyResult& r : results) {
    Series reward_s{r.name + ": reward", {}, {}}, best_s{r.name + ": best so far", {}, {}};
    for (const Trial& t : r.trials) {
      reward_s.x.push_back(static_cast<double>(t.trial));
      reward_s.y.push_back(t.reward);
      best_s.x.push_back(static_cast<double>(t.trial));
      best_s.y.push_back(t.best_reward);
    }
    plot.series.push_back(std::move(reward_s));
    plot.series.push_back(std::move(best_s));
  }
  write_png_plot(j.plot_path, plot);
}

/// Each strategy's best, built on the whole base and measured on the evaluation queries, which
/// tuning never saw; returns the strategy whose best had the highest reward (null: none met
/// the target).
const StrategyResult* verify(const TuneJob& j, const Space& space, const index::Dataset& ds,
                             const std::vector<StrategyResult>& results) {
  std::printf("%-11s %-58s %7s %9s %6s | %7s %9s\n", "strategy", "best configuration (tuning)",
              "recall", "qps", "trial", "eval-r", "eval-qps");
  const StrategyResult* winner = nullptr;
  for (const StrategyResult& r : results) {
    if (!r.best) {
      std::printf("%-11s (no configuration reached the target in %zu trials)\n", r.name.c_str(),
                  r.trials.size());
      continue;
    }
    const Trial& t = r.trials[*r.best];
    auto idx = Environment::build(space, t.config, ds.base, ds.metric, j.eo);
    const Measurement v = Environment::search(*idx, search_ef(space, t.config), ds.base, ds.query,
                                              ds.groundtruth, j.eo);
    std::printf("%-11s %-58s %7.4f %9.0f %6zu | %7.4f %9.0f\n", r.name.c_str(),
                describe(space, t.config).c_str(), t.m.recall, t.m.qps, t.trial, v.recall, v.qps);
    if (!winner || t.reward > winner->trials[*winner->best].reward) winner = &r;
  }
  return winner;
}

int cmd_tune(Args& args) {
  const TuneJob j = parse_options(args);
  const index::Dataset ds = index::load_dataset(j.dir);
  const Space space = Space::standard(j.types, {ds.metric, !j.eo.rl_graph.empty()});
  const TuneSet set = tuning_set(ds, j);
  const index::IntMatrix gt = index::exact_knn(set.base, set.queries, j.eo.k, ds.metric);
  Environment env(set.base, ds.metric, set.queries, gt, j.eo);
  RewardSpec reward;
  reward.recall_target = j.to.recall;
  reward.penalty = j.to.penalty;
  reward.latency_budget_us = j.to.latency_budget_us;
  reward.reference_qps = env.exact_qps();
  if (!j.quiet) {
    std::fprintf(stderr,
                 "tune: %s, %zu x %zu, recall@%zu >= %.3f, %zu tuning queries (%s), exact "
                 "search %.0f QPS\n",
                 ds.name.c_str(), set.base.n, set.base.d, j.eo.k, j.to.recall, set.queries.n,
                 set.where.c_str(), reward.reference_qps);
  }
  const std::vector<StrategyResult> results = run_logged(j, space, env, reward);
  plot_rewards(j, ds.name, results);
  const StrategyResult* winner = verify(j, space, ds, results);
  WP_THROW_IF_NOT(winner, "no strategy reached recall ", j.to.recall,
                  "; give more --trials or a lower --recall (the log is in ", j.log_path, ")");
  // A learnt graph: `build --config` and PUT .../vector_index train it as tuning did.
  const nlohmann::json best = request_body(space, winner->trials[*winner->best].config, j.eo);
  std::ofstream json_out(j.out, std::ios::trunc);
  WP_THROW_IF_NOT(json_out.good(), "cannot write '", j.out, "'");
  json_out << best.dump(2) << '\n';
  std::printf("best (%s): %s -> %s; %zu builds; log %s, plot %s\n", winner->name.c_str(),
              best.dump().c_str(), j.out.c_str(), env.builds(), j.log_path.c_str(),
              j.plot_path.c_str());
  return 0;
}

const CommandRegistration kTune(
    {"tune",
     "--dataset DIR --out FILE.json [--recall 0.95] [--k 10] [--trials 60] [--max-minutes N]\n"
     "          [--strategies controller,random,coordinate] [--types hnsw,lsh,graph,rl]\n"
     "          [--rl-minutes 1 | --rl-graph FILE]\n"
     "          [--tune-queries 500] [--latency-budget-us 0] [--penalty 30] [--repeats 3]\n"
     "          [--min-seconds 0.25] [--cached-builds 8] [--seed 0] [--log FILE.csv] "
     "[--plot FILE.png]\n"
     "          [--quiet]",
     80,
     {"quiet"},
     &cmd_tune});

}  // namespace

}  // namespace wp::cli
