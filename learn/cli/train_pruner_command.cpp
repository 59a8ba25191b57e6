// `waypoint train-pruner` (built only with WAYPOINT_WITH_TORCH): options -> learn::train_pruner,
// whose observer this file turns into the progress bar, the CSV log (a row per step), the
// checkpoint file and the messages; then the learnt `rl` index, the curves and, when asked, the
// drawing of the learnt graph.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>

#include "engine/command/command.h"
#include "engine/command/plot.h"
#include "index/error.h"
#include "index/hnsw_params.h"
#include "learn/cli/training_output.h"
#include "learn/train_pruner.h"

namespace wp::cli {

namespace {

constexpr char kLogHeader[] =
    "step,reward,recall,dcs,kl,entropy,kept_edges,frozen_edges,accepted,val_dcs_at_target,"
    "restored_edges,seconds,degree,lambda\n";

void write_log_row(std::ostream& log, const learn::PrunerStepRecord& r) {
  const learn::StepStats& st = r.stats;
  log << st.step << "," << st.reward << "," << st.recall << "," << st.dcs << "," << st.kl << ","
      << st.entropy << "," << st.kept_edges << "," << st.frozen_edges << "," << st.accepted << ","
      << r.val_dcs_at_target << "," << r.restored_edges << "," << r.seconds << "," << st.degree
      << "," << st.lambda << "\n";
  log.flush();
}

/// The rows of an existing log (a resumed run plots the steps before it too).
std::vector<learn::PrunerStepRecord> read_log(const std::string& path) {
  std::vector<learn::PrunerStepRecord> rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    learn::PrunerStepRecord r;
    learn::StepStats& st = r.stats;
    double kept, frozen, accepted, restored;
    // Logs written before the degree budget have 12 columns.
    const int read =
        std::sscanf(line.c_str(), "%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf",
                    &st.step, &st.reward, &st.recall, &st.dcs, &st.kl, &st.entropy, &kept, &frozen,
                    &accepted, &r.val_dcs_at_target, &restored, &r.seconds, &st.degree, &st.lambda);
    if (read != 12 && read != 14) continue;
    st.kept_edges = static_cast<size_t>(kept);
    st.frozen_edges = static_cast<size_t>(frozen);
    st.accepted = accepted != 0;
    r.restored_edges = static_cast<size_t>(restored);
    rows.push_back(r);
  }
  return rows;
}

/// The training curves as a PNG: per step the sampled episodes' DCS, recall, reward and kept
/// edges, and the validation DCS where the step was validated.
void plot_curves(const std::string& png, const std::vector<learn::PrunerStepRecord>& rows,
                 const learn::PrunerSetup& setup) {
  PlotSpec plot;
  plot.title = "train-pruner on " + std::to_string(setup.vertices) + " vectors (" +
               setup.query_source + " as queries): sampled episodes per step";
  plot.xlabel = "TRPO step";
  plot.ylabel = "value (DCS / 100, recall, reward / max reward)";
  Series dcs{"mean DCS / 100", {}, {}}, rec{"recall@k", {}, {}}, rew{"reward / max_dcs", {}, {}},
      kept{"kept edges / initial", {}, {}}, val{"validation DCS at target recall / 100", {}, {}};
  for (const learn::PrunerStepRecord& r : rows) {
    const double step = r.stats.step;
    if (r.val_dcs_at_target > 0) {
      val.x.push_back(step);
      val.y.push_back(r.val_dcs_at_target / 100);
    }
    dcs.x.push_back(step);
    dcs.y.push_back(r.stats.dcs / 100);
    rec.x.push_back(step);
    rec.y.push_back(r.stats.recall);
    rew.x.push_back(step);
    rew.y.push_back(r.stats.reward / setup.max_dcs);
    kept.x.push_back(step);
    kept.y.push_back(static_cast<double>(r.stats.kept_edges) / std::max<size_t>(1, setup.edges));
  }
  plot.series = {dcs, rec, rew, kept, val};
  write_png_plot(png, plot);
}

/// The first two principal axes of `x` (power iteration with deflation), as (x, y) per row.
std::pair<std::vector<double>, std::vector<double>> pca_2d(const index::Matrix& x) {
  const size_t n = x.n, d = x.d;
  std::vector<double> mean(d, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < d; ++j) mean[j] += x.row(i)[j] / n;
  }
  std::vector<double> cov(d * d, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t a = 0; a < d; ++a) {
      const double ca = x.row(i)[a] - mean[a];
      for (size_t b = 0; b < d; ++b) cov[a * d + b] += ca * (x.row(i)[b] - mean[b]);
    }
  }
  std::vector<std::vector<double>> axes;
  for (int c = 0; c < 2; ++c) {
    std::vector<double> v(d), w(d);
    for (size_t j = 0; j < d; ++j) v[j] = 1.0 + 0.01 * static_cast<double>(j % 7);  // fixed start
    for (int it = 0; it < 200; ++it) {
      for (size_t a = 0; a < d; ++a) {
        w[a] = 0;
        for (size_t b = 0; b < d; ++b) w[a] += cov[a * d + b] * v[b];
      }
      for (const auto& u : axes) {  // deflate: stay orthogonal to the axes found
        const double dot = std::inner_product(w.begin(), w.end(), u.begin(), 0.0);
        for (size_t a = 0; a < d; ++a) w[a] -= dot * u[a];
      }
      const double norm = std::sqrt(std::inner_product(w.begin(), w.end(), w.begin(), 0.0));
      if (norm == 0) break;
      for (size_t a = 0; a < d; ++a) v[a] = w[a] / norm;
    }
    axes.push_back(v);
  }
  std::vector<double> px(n), py(n);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < d; ++j) {
      px[i] += (x.row(i)[j] - mean[j]) * axes[0][j];
      py[i] += (x.row(i)[j] - mean[j]) * axes[1][j];
    }
  }
  return {px, py};
}

/// The learnt graph in the plane of the data's two principal axes: colour = label, size =
/// in-degree (hubs stand out), as the paper's figure. Slots equal base rows (one batch).
void draw_graph(const std::string& png, const learn::TrainedPruner& t, const std::string& initial) {
  const index::Dataset& ds = t.data;
  const index::Level0Graph learnt = t.learnt.graph->graph().export_level0();
  GraphPlot gp;
  gp.title = "learnt graph over " + std::to_string(ds.base.n) + " vectors of " + ds.name +
             " (average degree " + std::to_string(t.learnt.result.learnt_degree).substr(0, 5) +
             ", initial " + initial + "); size = in-degree";
  std::tie(gp.x, gp.y) = pca_2d(ds.base);
  gp.weight.assign(ds.base.n, 0.0);
  for (uint32_t u = 0; u < learnt.num_vertices(); ++u) {
    for (uint64_t j = learnt.offsets[u]; j < learnt.offsets[u + 1]; ++j) {
      gp.edges.push_back({u, learnt.neighbors[j]});
      gp.weight[learnt.neighbors[j]] += 1;
    }
  }
  for (size_t i = 0; i < ds.base.n; ++i) {
    gp.label.push_back(i < ds.labels.n ? ds.labels.row(i)[0] : 0);
  }
  write_png_graph(png, gp);
}

learn::TrainPrunerOptions parse_pruner_options(Args& args) {
  learn::TrainPrunerOptions o;
  o.dataset = args.required("dataset");
  o.M = args.integer(index::HnswParams::kM, 16);
  o.ef_construction = args.integer(index::HnswParams::kEfConstruction, 200);
  o.limit_base = args.integer("limit-base", 0, 0, 1LL << 40);
  o.holdout = args.integer("holdout", 0, 0, 1LL << 40);
  o.holdout_seed = args.integer("holdout-seed", 7, 0, 1LL << 62);
  o.env.ef = args.integer("ef", 0, 0, 10000);
  o.target_recall = args.real("target-recall", 0.95, 1e-6, 1);
  o.min_degree = args.integer("min-degree", 4, 0, 1024);
  o.budget = args.real("budget", 0, 0, 1);
  o.env.k = args.integer("k", 10, 1, 10000);
  o.env.max_dcs = args.integer("max-dcs", 0, 0, 1LL << 40);
  o.steps = args.integer("steps", 50, 1, 1000000);
  o.max_minutes = args.real("max-minutes", 0, 0, 1e6);
  o.train_queries = args.integer("train-queries", 4000, 1, 1 << 24);
  o.val_queries = args.integer("val-queries", 1000, 1, 1 << 24);
  o.validate_every = static_cast<int>(args.integer("validate-every", 5, 1, 1000000));
  o.trainer.episodes_per_step = args.integer("episodes", 256, 1, 1 << 24);
  o.trainer.hidden = static_cast<int>(args.integer("hidden", 32, 1, 4096));
  o.trainer.encoder = args.str("encoder", "mlp");
  o.trainer.entropy_coef = args.real("entropy", 1e-3, 0, 10);
  o.trainer.seed = args.integer("seed", 0, 0, 1LL << 62);
  o.initial = args.str("initial", "pool");
  // From the pool's warm start, steps of KL 0.002: at 0.01 the policy left the warm graph within
  // 20 steps and never came back to it on validation (docs/rl.md, the measured recipe).
  o.trainer.max_kl = args.real("max-kl", o.initial == "pool" ? learn::kPoolMaxKl : 0.01, 1e-6, 0.5);
  o.entry = args.str("entry", "hnsw");
  o.degree = args.real("degree", 0, 0, 4096);
  o.alpha = static_cast<float>(args.real("alpha", 0, 0, 4));
  o.imitate_iterations = static_cast<int>(args.integer("imitate", 300, 0, 100000));
  o.trainer.target_degree = args.real("target-degree", 0, 0, 4096);
  o.trainer.degree_step = args.real("degree-step", 0.05, 0, 10);
  o.threads = static_cast<int>(args.integer("threads", 0, 0, 1024));
  return o;
}

int cmd_train_pruner(Args& args) {
  const learn::TrainPrunerOptions o = parse_pruner_options(args);
  const TrainingOutput files = parse_training_output(args);
  const std::string graph_png = args.str("graph-png", "");
  args.finish();
  o.validate();
  const auto resume = checkpoint_to_resume<learn::PrunerCheckpoint>(files);
  // A resumed run appends to its log, and its curves show the steps before it too.
  const bool append = files.resume && std::filesystem::exists(files.log_csv);
  std::vector<learn::PrunerStepRecord> rows;
  if (append) rows = read_log(files.log_csv);
  std::ofstream log = open_log(files.log_csv, append, kLogHeader);

  JobProgress progress("train-pruner", files.quiet);
  learn::PrunerObserver observer;
  observer.started = [&](const learn::PrunerSetup& s) {
    if (files.quiet) return;
    std::fprintf(stderr,
                 "train-pruner: %zu vertices, %zu edges, %zu training queries (%s); initial graph "
                 "on validation: %.1f DCS at recall@%zu %.2f; training at ef %zu, max_dcs %llu "
                 "(flat %.0f)\n",
                 s.vertices, s.edges, s.train_queries, s.query_source.c_str(),
                 s.initial_dcs_at_target, o.env.k, o.target_recall, s.train_ef,
                 static_cast<unsigned long long>(s.max_dcs), s.flat_budget);
    if (s.warm_degree > 0) {
      std::fprintf(stderr,
                   "train-pruner: warm start (Vamana R %.0f, alpha %.2f): degree %.2f, %.1f DCS "
                   "at the target; the policy agrees with it on %.1f%% of the edges (set-up "
                   "%.0f s)\n",
                   learn::pool_degree(o), s.warm_alpha, s.warm_degree, s.warm_dcs_at_target,
                   100 * s.imitation_agreement, s.seconds);
    }
  };
  observer.step = [&](const learn::PrunerStepRecord& r) {
    write_log_row(log, r);
    rows.push_back(r);
  };
  observer.checkpoint = checkpoint_writer<learn::PrunerCheckpoint>(files);
  observer.progress = progress.reporter();
  const learn::TrainedPruner trained =
      learn::train_pruner(o, observer, resume ? &*resume : nullptr);
  progress.finish();
  log.close();

  const learn::TrainPrunerResult& r = trained.learnt.result;
  plot_curves(files.plot_png, rows, r.setup);
  if (!files.quiet) {
    std::fprintf(stderr,
                 "train-pruner: validation DCS at recall@%zu %.2f: %.1f (initial graph %.1f, step "
                 "%d); average degree %.2f -> %.2f\n",
                 o.env.k, o.target_recall, r.learnt_dcs_at_target, r.setup.initial_dcs_at_target,
                 r.best_step, r.setup.initial_degree, r.learnt_degree);
  }
  trained.learnt.graph->save(files.out);
  if (!graph_png.empty()) draw_graph(graph_png, trained, o.initial);
  if (!files.quiet) {
    std::fprintf(stderr, "train-pruner: wrote %s, %s, %s%s%s\n", files.out.c_str(),
                 files.log_csv.c_str(), files.plot_png.c_str(), graph_png.empty() ? "" : ", ",
                 graph_png.c_str());
  }
  std::printf(
      "learnt graph written to %s: %.1f distance computations per query at validation "
      "recall@%zu %.2f (initial graph: %.1f), average degree %.2f (initial %.2f)\n",
      files.out.c_str(), r.learnt_dcs_at_target, o.env.k, o.target_recall,
      r.setup.initial_dcs_at_target, r.learnt_degree, r.setup.initial_degree);
  return 0;
}

const CommandRegistration kTrainPruner(
    {"train-pruner",
     "--dataset DIR --out FILE [--initial pool|hnsw|vamana|complete] [--M 16]\n"
     "          [--entry hnsw|medoid] [--degree M] [--alpha auto] [--imitate 300]\n"
     "          [--target-degree D] [--degree-step 0.05]\n"
     "          [--ef-construction 200] [--ef auto] [--k 10] [--target-recall 0.95]\n"
     "          [--min-degree 4] [--budget auto]\n"
     "          [--steps 50] [--max-minutes N] [--episodes 256] [--train-queries 4000]\n"
     "          [--val-queries 1000] [--validate-every 5] [--hidden 32] [--encoder mlp|sage]\n"
     "          [--max-kl 0.002 (pool; else 0.01)] [--seed 0]\n"
     "          [--max-dcs N] [--limit-base N] [--holdout N [--holdout-seed 7]]\n"
     "          [--log FILE.csv] [--plot FILE.png]\n"
     "          [--checkpoint FILE] [--resume] [--graph-png FILE] [--quiet]",
     60,
     {"quiet", "resume"},
     &cmd_train_pruner});

}  // namespace

}  // namespace wp::cli
