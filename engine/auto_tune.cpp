#include "engine/auto_tune.h"

#include <algorithm>

#include "engine/tune_environment.h"
#include "engine/tune_space.h"
#include "engine/tune_strategy.h"
#include "index/dataset.h"
#include "index/error.h"

namespace wp::engine::tune {

AutoTuneResult auto_tune(const index::Matrix& points, const index::IndexSpec& current,
                         const AutoTuneRequest& req, const std::function<void(double)>& progress) {
  WP_THROW_IF_NOT(points.n >= kMinAutoTunePoints,
                  "type \"auto\" tunes on the collection's points "
                  "and needs at least ",
                  kMinAutoTunePoints, ", it holds ", points.n);
  const Space space = Space::standard(req.types, {current.metric, false});  // validates the types
  const HeldOut split = hold_out(points, std::min<size_t>(500, points.n / 10), 7);
  const index::Matrix &base = split.base, &queries = split.queries;
  const size_t k = std::min(req.k, base.n - 1);
  const index::IntMatrix gt = index::exact_knn(base, queries, k, current.metric);
  EnvironmentOptions eo;
  eo.k = k;
  eo.repeats = 2;
  eo.min_seconds = 0.1;
  // An rl configuration trains a graph: a tenth of the tuning's time each (set-up aside).
  eo.rl_minutes = std::clamp(req.max_minutes / 10, 0.05, 10.0);
  eo.rl_target_recall = req.recall;
  Environment env(base, current.metric, queries, gt, eo);
  RewardSpec reward;
  reward.recall_target = req.recall;
  reward.latency_budget_us = req.latency_budget_us;
  reward.reference_qps = env.exact_qps();
  TuneOptions to;
  to.recall = req.recall;
  to.trials = req.trials;
  to.max_minutes = req.max_minutes;
  const std::string name = strategy("controller") ? "controller" : "coordinate";
  auto strategy_run = (*strategy(name))(space, 7);
  const StrategyResult r =
      run_strategy(name, *strategy_run, env, space, reward, to, [&](const Trial& t) {
        if (progress) progress(static_cast<double>(t.trial) / req.trials);
      });
  WP_THROW_IF_NOT(!r.trials.empty(), "tuning measured no configuration");
  // The best feasible configuration, else the one closest to the target (and budget).
  size_t best = r.best.value_or(0);
  if (!r.best) {
    for (size_t i = 0; i < r.trials.size(); ++i) {
      if (reward.shortfall(r.trials[i].m) > reward.shortfall(r.trials[best].m)) best = i;
    }
  }
  const Trial& t = r.trials[best];
  AutoTuneResult out;
  // A learnt graph is built on every point as tuning trained it.
  out.outcome = {
      name,       r.trials.size(), req.recall, k,        request_body(space, t.config, eo),
      t.m.recall, t.m.qps,         t.feasible, queries.n};
  const IndexRequest chosen = IndexRequest::parse(out.outcome.config, current);
  out.spec = chosen.spec;
  out.learned = chosen.learned;
  return out;
}

}  // namespace wp::engine::tune
