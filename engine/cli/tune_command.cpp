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

int cmd_tune(Args& args) {
  const std::string dir = args.required("dataset");
  const std::string out = args.required("out");
  TuneOptions to;
  to.recall = args.real(engine::AutoTuneRequest::kRecall, 0.95);
  EnvironmentOptions eo;
  eo.k = static_cast<size_t>(args.integer(engine::AutoTuneRequest::kK, 10));
  to.trials = static_cast<size_t>(args.integer(engine::AutoTuneRequest::kTrials, 60));
  to.max_minutes = args.real("max-minutes", 0, 0, 1e6);
  to.penalty = args.real("penalty", 30, 0, 1e4);
  to.latency_budget_us = args.real(engine::AutoTuneRequest::kLatencyBudget, 0);
  to.seed = static_cast<uint64_t>(args.integer("seed", 0, 0, 1LL << 62));
  const std::vector<std::string> strategies = args.list(
      "strategies", strategy("controller") ? "controller,random,coordinate" : "random,coordinate");
  std::vector<std::string> types = args.list("types", "hnsw,lsh,graph");
  eo.rl_graph = args.str("rl-graph", "");
  if (!eo.rl_graph.empty() && std::find(types.begin(), types.end(), "rl") == types.end()) {
    types.push_back("rl");
  }
  const size_t tune_queries = static_cast<size_t>(args.integer("tune-queries", 500, 10, 1 << 24));
  eo.repeats = static_cast<int>(args.integer("repeats", 3, 1, 100));
  eo.min_seconds = args.real("min-seconds", 0.25, 0, 60);
  eo.max_cached = static_cast<size_t>(args.integer("cached-builds", 8, 1, 1000));
  const std::string log_path = args.str("log", out + ".csv");
  const std::string plot_path = args.str("plot", out + ".png");
  const bool quiet = args.flag("quiet");
  const long long threads = args.integer("threads", 0, 0, 1024);
  args.finish();
  if (threads > 0) omp_set_num_threads(static_cast<int>(threads));
  for (const std::string& s : strategies) {
    WP_THROW_IF_NOT(strategy(s), "--strategies: '", s, "' is not available (random, coordinate",
                    strategy("controller") ? ", controller)" : "; controller needs LibTorch)");
  }
  const Space space = Space::standard(types);
  WP_THROW_IF_NOT(
      std::find(types.begin(), types.end(), "rl") == types.end() || !eo.rl_graph.empty(),
      "--types rl: give the trained graph with --rl-graph FILE");

  // Tuning queries: the dataset's training queries, or base rows held out of the tuned index.
  // With a trained graph (built over every base row) they stay in: each is its own neighbour.
  const index::Dataset ds = index::load_dataset(dir);
  index::Matrix tune_base, queries;
  std::string where;
  if (ds.learn.n > 0) {
    tune_base = ds.base;
    queries = ds.learn;
    if (queries.n > tune_queries) queries = index::Matrix(tune_queries, ds.base.d);
    std::copy_n(ds.learn.data.begin(), queries.data.size(), queries.data.begin());
    where = "learn.fvecs";
  } else {
    HeldOut split = hold_out(ds.base, std::min(tune_queries, ds.base.n / 10), to.seed + 11);
    queries = std::move(split.queries);
    if (eo.rl_graph.empty()) {
      tune_base = std::move(split.base);
      where = "base rows held out of the tuned index";
    } else {
      tune_base = ds.base;
      where = "base rows (kept in the index for the rl graph)";
    }
  }
  const index::IntMatrix gt = index::exact_knn(tune_base, queries, eo.k, ds.metric);
  Environment env(tune_base, ds.metric, queries, gt, eo);
  RewardSpec reward;
  reward.recall_target = to.recall;
  reward.penalty = to.penalty;
  reward.latency_budget_us = to.latency_budget_us;
  reward.reference_qps = env.exact_qps();
  if (!quiet) {
    std::fprintf(stderr,
                 "tune: %s, %zu x %zu, recall@%zu >= %.3f, %zu tuning queries (%s), exact "
                 "search %.0f QPS\n",
                 ds.name.c_str(), tune_base.n, tune_base.d, eo.k, to.recall, queries.n,
                 where.c_str(), reward.reference_qps);
  }

  std::ofstream log(log_path, std::ios::trunc);
  WP_THROW_IF_NOT(log.good(), "cannot write '", log_path, "'");
  log << "strategy,trial,proposals,config,type,recall,qps,p50_us,p99_us,dcs,build_s,reward,"
         "best_reward,feasible,seconds\n";
  Progress progress("tune", to.trials * strategies.size(), quiet);
  std::vector<std::unique_ptr<Strategy>> owned;
  std::vector<std::pair<std::string, Strategy*>> runs;
  for (size_t si = 0; si < strategies.size(); ++si) {
    owned.push_back((*strategy(strategies[si]))(space, to.seed + 1000 * si));
    runs.emplace_back(strategies[si], owned.back().get());
  }
  size_t done = 0;
  const std::vector<StrategyResult> results =
      run_strategies(runs, env, space, reward, to, [&](size_t si, const Trial& t) {
        log << strategies[si] << ',' << t.trial << ',' << t.proposals << ','
            << csv_quote(describe(space, t.config)) << ',' << space.types[t.config.type] << ','
            << t.m.recall << ',' << t.m.qps << ',' << t.m.p50_us << ',' << t.m.p99_us << ','
            << t.m.dcs << ',' << t.m.build_s << ',' << t.reward << ',' << t.best_reward << ','
            << (t.feasible ? 1 : 0) << ',' << t.seconds << '\n';
        log.flush();
        progress.update(++done);
      });
  progress.finish();

  // Reward per trial and best feasible reward so far, for every strategy.
  PlotSpec plot;
  plot.title = "tune " + ds.name + ": QPS / exact QPS at recall@" + std::to_string(eo.k) +
               " >= " + std::to_string(to.recall).substr(0, 4) + " (misses: x (recall/target)^" +
               std::to_string(static_cast<int>(to.penalty)) + ")";
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
  write_png_plot(plot_path, plot);

  // Verification: each strategy's best, built on the whole base, on the evaluation queries.
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
    auto idx = Environment::build(space, t.config, ds.base, ds.metric, eo);
    const Measurement v = Environment::search(*idx, search_ef(space, t.config), ds.base, ds.query,
                                              ds.groundtruth, eo);
    std::printf("%-11s %-58s %7.4f %9.0f %6zu | %7.4f %9.0f\n", r.name.c_str(),
                describe(space, t.config).c_str(), t.m.recall, t.m.qps, t.trial, v.recall, v.qps);
    if (!winner || t.reward > winner->trials[*winner->best].reward) winner = &r;
  }
  WP_THROW_IF_NOT(winner, "no strategy reached recall ", to.recall,
                  "; give more --trials or a lower --recall (the log is in ", log_path, ")");
  const nlohmann::json best = to_request(space, winner->trials[*winner->best].config);
  std::ofstream json_out(out, std::ios::trunc);
  WP_THROW_IF_NOT(json_out.good(), "cannot write '", out, "'");
  json_out << best.dump(2) << '\n';
  std::printf("best (%s): %s -> %s; %zu builds; log %s, plot %s\n", winner->name.c_str(),
              best.dump().c_str(), out.c_str(), env.builds(), log_path.c_str(), plot_path.c_str());
  return 0;
}

const CommandRegistration kTune(
    {"tune",
     "--dataset DIR --out FILE.json [--recall 0.95] [--k 10] [--trials 60] [--max-minutes N]\n"
     "          [--strategies controller,random,coordinate] [--types hnsw,lsh,graph] "
     "[--rl-graph FILE]\n"
     "          [--tune-queries 500] [--latency-budget-us 0] [--penalty 30] [--repeats 3]\n"
     "          [--min-seconds 0.25] [--cached-builds 8] [--seed 0] [--log FILE.csv] "
     "[--plot FILE.png]\n"
     "          [--quiet]",
     80,
     {"quiet"},
     &cmd_tune});

}  // namespace

}  // namespace wp::cli
