// `waypoint train-pruner` and `train-hash` (built only with WAYPOINT_WITH_TORCH): options ->
// learn::train_pruner, learn::train_hash. Linking learn/ also brings its extensions of the
// engine: the tuner's controller RNN (strategy "controller") and the builder of index type "rl".
#include <cstdio>

#include "engine/command/command.h"
#include "index/error.h"
#include "learn/train_hash.h"
#include "learn/train_pruner.h"
#include "learn/tune_controller.h"

namespace wp::cli {

namespace {

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

int cmd_train_hash(Args& args) {
  learn::TrainHashOptions o;
  o.dataset = args.required("dataset");
  o.out = args.required("out");
  if (args.has("train-classes")) {
    for (long long c : args.int_list("train-classes", "", -(1LL << 31), (1LL << 31) - 1)) {
      o.train_classes.push_back(static_cast<int>(c));
    }
  }
  o.task = args.str("task", "classes");
  o.anchors = static_cast<size_t>(args.integer("anchors", 4000, 10, 1LL << 30));
  o.neighbours = static_cast<size_t>(args.integer("neighbours", 10, 1, 1000));
  learn::MatchingConfig& c = o.cfg;
  c.encoder = args.str("encoder", "mlp");
  c.hidden.clear();
  const std::vector<std::string> hidden = args.list("hidden", "256");
  if (!(hidden.size() == 1 && hidden[0] == "none")) {
    for (const std::string& h : hidden) {
      try {
        c.hidden.push_back(std::stoi(h));
      } catch (const std::exception&) {
        throw UserError("--hidden: expected widths like 256,128 or 'none', got '" + h + "'");
      }
    }
  }
  c.embed = static_cast<int>(args.integer("embed", 64, 1, 8192));
  c.n_way = static_cast<int>(args.integer("way", 5, 2, 1000));
  c.k_shot = static_cast<int>(args.integer("shot", 1, 1, 1000));
  c.queries = static_cast<int>(args.integer("queries", 5, 1, 1000));
  c.episodes_per_step = static_cast<int>(args.integer("episodes", 16, 1, 1 << 20));
  c.lr = args.real("lr", 1e-3, 1e-8, 1);
  c.weight_decay = args.real("weight-decay", 0, 0, 0.99);
  c.dropout = args.real("dropout", 0, 0, 0.99);
  c.scale = args.real("scale", 10, 1e-3, 1e4);
  c.score = args.str("score", "cosine");
  c.planes = args.str("planes", "learned");
  c.relax = args.str("relax", "tanh");
  c.bits = static_cast<int>(args.integer("bits", 256, 1, 65536));
  c.beta = args.real("beta", 1, 1e-3, 1e3);
  c.ovr_every = static_cast<int>(args.integer("ovr-every", 25, 1, 1 << 30));
  c.standardise = args.str("standardise", o.task == "neighbours" ? "global" : "feature");
  c.seed = static_cast<uint64_t>(args.integer("seed", 0, 0, 1LL << 62));
  o.itq.bits = static_cast<size_t>(c.bits);
  o.itq.iterations = static_cast<int>(args.integer("itq-iterations", 50, 1, 100000));
  o.itq.max_rows = static_cast<size_t>(args.integer("itq-rows", 20000, 2, 1LL << 40));
  o.itq.seed = c.seed + 1;
  o.steps = static_cast<size_t>(args.integer("steps", 500, 1, 100000000));
  o.max_minutes = args.real("max-minutes", 0, 0, 1e6);
  o.validate_every = static_cast<int>(args.integer("validate-every", 25, 1, 1 << 30));
  o.val_episodes = static_cast<int>(args.integer("val-episodes", 300, 1, 1 << 24));
  o.validate_on = args.str("validate-on", "unseen");
  o.patience = static_cast<int>(args.integer("patience", 0, 0, 1 << 30));
  o.export_bits = static_cast<size_t>(args.integer("export-bits", 256, 1, 65536));
  o.controller = args.str("controller", "none");
  o.dqn.runs = static_cast<int>(args.integer("dqn-runs", 3, 1, 100));
  o.dqn.interval = static_cast<int>(args.integer("dqn-interval", 10, 1, 1 << 20));
  o.dqn.meta_momentum = args.real("meta-momentum", 1e-3, 0, 1e3);
  o.dqn.meta_fraction = args.real("meta-fraction", 0.3, 0, 1);
  o.dqn.epsilon_greedy = args.real("dqn-epsilon", 0, 0, 1);
  for (const std::string& lr : args.list("baseline-lrs", "")) {
    try {
      o.baseline_lrs.push_back(std::stod(lr));
    } catch (const std::exception&) {
      throw UserError("--baseline-lrs: expected numbers like 3e-4,1e-3, got '" + lr + "'");
    }
    WP_THROW_IF_NOT(o.baseline_lrs.back() > 0 && o.baseline_lrs.back() < 10,
                    "--baseline-lrs: each must be in (0, 10), got ", lr);
  }
  o.study = args.flag("study");
  o.study_bits.clear();
  for (long long b : args.int_list("study-bits", "100,200,500,1000,2000", 1, 65536)) {
    o.study_bits.push_back(static_cast<size_t>(b));
  }
  o.study_episodes = static_cast<int>(args.integer("study-episodes", 600, 1, 1 << 24));
  o.log_csv = args.str("log", "");
  o.plot_png = args.str("plot", "");
  o.checkpoint = args.str("checkpoint", "");
  o.resume = args.flag("resume");
  o.quiet = args.flag("quiet");
  o.threads = static_cast<int>(args.integer("threads", 0, 0, 1024));
  args.finish();
  const learn::TrainHashResult r = learn::train_hash(o);
  if (o.task == "itq") {
    std::printf("hash model written to %s: ITQ, %zu bits, %zu iterations\n", o.out.c_str(),
                o.itq.bits, r.steps_run);
    return 0;
  }
  std::printf(
      "hash model written to %s: validation accuracy %.3f at step %zu, test accuracy %.3f\n",
      o.out.c_str(), r.best_val_accuracy, r.best_step, r.test_accuracy);
  for (const learn::RunSummary& s : r.runs) {
    std::printf("  run %-22s best validation accuracy %.3f (loss %.3f), last %.3f (loss %.3f)\n",
                s.name.c_str(), s.best_val_accuracy, s.best_val_loss, s.last_val_accuracy,
                s.last_val_loss);
  }
  if (!r.study.empty()) std::printf("\n%s", learn::study_table(r.study).c_str());
  return 0;
}

const CommandRegistration kTrainPruner(
    {"train-pruner",
     "--dataset DIR --out FILE [--initial hnsw|vamana|complete] [--M 16]\n"
     "          [--ef-construction 200] [--ef auto] [--k 10] [--target-recall 0.95]\n"
     "          [--min-degree 4] [--budget 0.09]\n"
     "          [--steps 50] [--max-minutes N] [--episodes 256] [--train-queries 4000]\n"
     "          [--val-queries 500] [--validate-every 5] [--hidden 32] [--encoder mlp|sage]\n"
     "          [--max-kl 0.01] [--seed 0]\n"
     "          [--max-dcs N] [--limit-base N] [--log FILE.csv] [--plot FILE.png]\n"
     "          [--checkpoint FILE] [--resume] [--graph-png FILE] [--quiet]",
     60,
     {"quiet", "resume"},
     &cmd_train_pruner});
const CommandRegistration kTrainHash(
    {"train-hash",
     "--dataset DIR (labelled) --out FILE [--task classes|neighbours|itq] [--anchors 4000]\n"
     "          [--neighbours 10] [--train-classes lower half] [--encoder mlp|conv]\n"
     "          [--hidden 256|none] [--embed 64] [--way 5] [--shot 1] [--queries 5] "
     "[--episodes 16]\n"
     "          [--lr 1e-3] [--weight-decay 0] [--dropout 0] [--scale 10] [--score cosine|bits]\n"
     "          [--planes learned|fixed|ovr] [--relax tanh|sigmoid|ste] [--bits 256] [--beta 1]\n"
     "          [--standardise feature|global (neighbours: global)]\n"
     "          [--steps 500] [--max-minutes N] [--validate-every 25] [--val-episodes 300]\n"
     "          [--validate-on unseen|seen] [--patience 0] [--export-bits 256]\n"
     "          [--controller none|dqn] [--dqn-runs 3]\n"
     "          [--dqn-interval 10] [--meta-momentum 1e-3] [--baseline-lrs 3e-4,1e-3,...]\n"
     "          [--itq-iterations 50] [--itq-rows 20000]\n"
     "          [--study] [--study-bits 100,200,500,1000,2000] [--seed 0] [--log FILE.csv]\n"
     "          [--plot FILE.png] [--checkpoint FILE] [--resume] [--quiet]",
     70,
     {"quiet", "resume", "study"},
     &cmd_train_hash});

/// learn/'s extensions of the engine, registered before main runs.
const bool kExtensions = [] {
  learn::register_tune_controller();
  learn::register_learned_indexes();
  return true;
}();

}  // namespace

}  // namespace wp::cli
