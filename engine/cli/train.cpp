// `waypoint train-pruner` (built only with WAYPOINT_WITH_TORCH): options -> learn::train_pruner.
#include <cstdio>

#include "engine/cli/commands.h"
#include "learn/train_pruner.h"

namespace wp::cli {

int cmd_train_pruner(Args& args) {
  learn::TrainPrunerOptions o;
  o.dataset = args.required("dataset");
  o.out = args.required("out");
  o.M = args.integer("M", 16, 2, 1024);
  o.ef_construction = args.integer("ef-construction", 200, 1, 100000);
  o.limit_base = args.integer("limit-base", 0, 0, 1LL << 40);
  o.env.ef = args.integer("ef", 0, 0, 10000);
  o.target_recall = args.real("target-recall", 0.95, 1e-6, 1);
  o.min_degree = args.integer("min-degree", 4, 0, 1024);
  o.budget = args.real("budget", 0.09, 1e-6, 1);
  o.env.k = args.integer("k", 10, 1, 10000);
  o.env.max_dcs = args.integer("max-dcs", 0, 0, 1LL << 40);
  o.steps = args.integer("steps", 50, 1, 1000000);
  o.max_minutes = args.real("max-minutes", 0, 0, 1e6);
  o.train_queries = args.integer("train-queries", 4000, 1, 1 << 24);
  o.val_queries = args.integer("val-queries", 500, 1, 1 << 24);
  o.validate_every = static_cast<int>(args.integer("validate-every", 5, 1, 1000000));
  o.trainer.episodes_per_step = args.integer("episodes", 256, 1, 1 << 24);
  o.trainer.hidden = static_cast<int>(args.integer("hidden", 32, 1, 4096));
  o.trainer.encoder = args.str("encoder", "mlp");
  o.trainer.max_kl = args.real("max-kl", 0.01, 1e-6, 0.5);
  o.trainer.entropy_coef = args.real("entropy", 1e-3, 0, 10);
  o.trainer.seed = args.integer("seed", 0, 0, 1LL << 62);
  o.log_csv = args.str("log", "");
  o.plot_png = args.str("plot", "");
  o.checkpoint = args.str("checkpoint", "");
  o.graph_png = args.str("graph-png", "");
  o.initial = args.str("initial", "hnsw");
  o.resume = args.flag("resume");
  o.quiet = args.flag("quiet");
  o.threads = static_cast<int>(args.integer("threads", 0, 0, 1024));
  args.finish();
  const learn::TrainPrunerResult r = learn::train_pruner(o);
  std::printf(
      "learnt graph written to %s: %.1f distance computations per query at validation "
      "recall@%zu %.2f (initial graph: %.1f), average degree %.2f (initial %.2f)\n",
      o.out.c_str(), r.learnt_dcs_at_target, o.env.k, o.target_recall, r.initial_dcs_at_target,
      r.learnt_degree, r.initial_degree);
  return 0;
}

}  // namespace wp::cli
