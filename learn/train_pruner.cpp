#include "learn/train_pruner.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "engine/cli/plot.h"
#include "engine/cli/progress.h"
#include "index/dataset.h"
#include "index/error.h"
#include "index/graph_index.h"
#include "index/vector_io.h"
#include "learn/torch_runtime.h"

namespace wp::learn {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

/// Training and validation queries that are never evaluation queries: the dataset's learn set;
/// else Fashion-MNIST's query_all.fvecs beyond the first 1000 evaluation queries; else mixes of
/// near neighbours (make_training_queries).
index::Matrix training_queries(const index::Dataset& ds, const std::string& dir, size_t n,
                               uint64_t seed, std::string* source) {
  if (ds.learn.n >= n) {
    *source = "learn.fvecs";
    index::Matrix m(n, ds.learn.d);
    std::copy(ds.learn.data.begin(), ds.learn.data.begin() + n * ds.learn.d, m.data.begin());
    return m;
  }
  const fs::path all = fs::path(dir) / "query_all.fvecs";
  if (fs::exists(all)) {
    const index::Matrix q = index::read_fvecs(all.string());
    if (q.n >= ds.query.n + n) {
      *source = "query_all.fvecs rows " + std::to_string(ds.query.n) + "..";
      index::Matrix m(n, q.d);
      std::copy(q.row(ds.query.n), q.row(ds.query.n) + n * q.d, m.data.begin());
      return m;
    }
  }
  *source = "mixes of near neighbours plus noise";
  return make_training_queries(ds.base, n, seed);
}

index::Matrix rows(const index::Matrix& m, size_t begin, size_t n) {
  index::Matrix out(n, m.d);
  std::copy(m.row(begin), m.row(begin) + n * m.d, out.data.begin());
  return out;
}

}  // namespace

EvalStats train_pruner(const TrainPrunerOptions& o) {
  WP_THROW_IF_NOT(!o.out.empty(), "--out is required");
  WP_THROW_IF_NOT(o.steps >= 1, "--steps must be at least 1");
  init_torch(o.threads, o.trainer.seed);
  index::Dataset ds = index::load_dataset(o.dataset);
  if (o.limit_base && o.limit_base < ds.base.n) {
    ds.base.n = o.limit_base;
    ds.base.data.resize(o.limit_base * ds.base.d);
  }
  const std::string csv = o.log_csv.empty() ? o.out + ".csv" : o.log_csv;
  const std::string png = o.plot_png.empty() ? o.out + ".png" : o.plot_png;
  const std::string ckpt = o.checkpoint.empty() ? o.out + ".ckpt" : o.checkpoint;

  // The initial graph: HNSW level 0 entered at the medoid (GraphIndex with pruning "none").
  index::GraphBuildSpec spec;
  spec.hnsw.M = o.M;
  spec.hnsw.ef_construction = o.ef_construction;
  spec.hnsw.seed = o.trainer.seed + 100;
  spec.initial = "hnsw";
  spec.pruning = "none";
  spec.entry = "medoid";
  index::GraphIndex graph(ds.base.d, ds.metric, spec);
  {
    std::vector<index::label_t> ids(ds.base.n);
    std::iota(ids.begin(), ids.end(), 0);
    graph.add(index::view(ds.base), ids.data());
  }
  const index::HnswIndex& h = graph.graph();
  const index::Level0Graph initial = h.export_level0();

  std::string source;
  const index::Matrix all_q =
      training_queries(ds, o.dataset, o.train_queries + o.val_queries, o.trainer.seed, &source);
  const index::Matrix train_q = rows(all_q, 0, o.train_queries);
  const index::Matrix val_q = rows(all_q, o.train_queries, o.val_queries);
  const std::vector<uint32_t> train_knn = true_neighbours(h, train_q, o.env.k);
  const std::vector<uint32_t> val_knn = true_neighbours(h, val_q, o.env.k);

  EnvConfig env_cfg = o.env;
  if (!env_cfg.max_dcs) {
    // Budget: 1.5 x the initial graph's mean DCS, so the full graph earns a positive reward and
    // every distance saved at equal recall earns more.
    PruningEnv probe(h, initial, h.fixed_entry_slot(), env_cfg);
    probe.calibrate_max_dcs(val_q, val_knn);
    env_cfg.max_dcs = probe.config().max_dcs * 11 / 10;
  }
  PruningEnv trained_env(h, initial, h.fixed_entry_slot(), env_cfg);
  PruningTrainer trainer(trained_env, train_q, train_knn, o.trainer);
  if (o.resume && fs::exists(ckpt)) trainer.load_checkpoint(ckpt);

  const EvalStats before = trainer.evaluate(val_q, val_knn);
  if (!o.quiet) {
    std::fprintf(stderr,
                 "train-pruner: %zu vertices, %zu edges, %zu training queries (%s), max_dcs %llu; "
                 "initial graph on validation: recall@%zu %.4f, DCS %.1f\n",
                 initial.num_vertices(), initial.num_edges(), train_q.n, source.c_str(),
                 static_cast<unsigned long long>(env_cfg.max_dcs), o.env.k, before.recall,
                 before.dcs);
  }
  const bool fresh_log = !(o.resume && fs::exists(csv));
  std::ofstream log(csv, fresh_log ? std::ios::trunc : std::ios::app);
  WP_THROW_IF_NOT(log.good(), "cannot write log '", csv, "'");
  if (fresh_log) {
    log << "step,reward,recall,dcs,kl,entropy,kept_edges,frozen_edges,accepted,val_recall,val_dcs,"
           "val_reward,seconds\n";
  }
  EvalStats best = before;
  std::vector<float> best_p = trainer.probabilities();
  const auto t0 = Clock::now();
  cli::Progress progress("train-pruner", o.steps, o.quiet);
  for (size_t s = trainer.steps_done(); s < o.steps; ++s) {
    const double minutes = std::chrono::duration<double>(Clock::now() - t0).count() / 60;
    if (o.max_minutes > 0 && minutes >= o.max_minutes) break;
    const StepStats st = trainer.step();
    EvalStats val{-1, -1, -1};
    if (st.step % o.validate_every == 0 || s + 1 == o.steps) {
      val = trainer.evaluate(val_q, val_knn);
      // Keep the step that searches with the fewest distance computations while its recall is
      // no lower than the initial graph's: the comparison the learnt graph is made for (a higher
      // reward can also come from trading recall away).
      if (val.recall >= before.recall && val.dcs < best.dcs) {
        best = val;
        best_p = trainer.probabilities();
      }
      trainer.save_checkpoint(ckpt);
    }
    log << st.step << "," << st.reward << "," << st.recall << "," << st.dcs << "," << st.kl << ","
        << st.entropy << "," << st.kept_edges << "," << st.frozen_edges << "," << st.accepted << ","
        << val.recall << "," << val.dcs << "," << val.reward << ","
        << std::chrono::duration<double>(Clock::now() - t0).count() << "\n";
    log.flush();
    progress.update(s + 1);
  }
  progress.finish();
  log.close();

  // The learnt graph: the best validated policy's edges with p > 0.5.
  std::vector<uint8_t> mask(best_p.size());
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = best_p[i] > 0.5f;
  graph.apply_mask(initial, mask);
  graph.save(o.out);

  // Curves from the log.
  cli::PlotSpec plot;
  plot.title = "train-pruner on " + ds.name + ": sampled episodes per step";
  plot.xlabel = "TRPO step";
  plot.ylabel = "value (DCS / 100, recall, reward / max reward)";
  cli::Series dcs{"mean DCS / 100", {}, {}}, rec{"recall@k", {}, {}},
      rew{"reward / max_dcs", {}, {}}, kept{"kept edges / initial", {}, {}};
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    double v[13];
    if (std::sscanf(line.c_str(), "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0],
                    &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11],
                    &v[12]) != 13) {
      continue;
    }
    dcs.x.push_back(v[0]);
    dcs.y.push_back(v[3] / 100);
    rec.x.push_back(v[0]);
    rec.y.push_back(v[2]);
    rew.x.push_back(v[0]);
    rew.y.push_back(v[1] / env_cfg.max_dcs);
    kept.x.push_back(v[0]);
    kept.y.push_back(v[6] / std::max<size_t>(1, initial.num_edges()));
  }
  plot.series = {dcs, rec, rew, kept};
  cli::write_png_plot(png, plot);
  if (!o.quiet) {
    std::fprintf(stderr,
                 "train-pruner: best validation recall@%zu %.4f, DCS %.1f (initial %.4f, %.1f); "
                 "average degree %.2f -> %.2f; wrote %s, %s, %s\n",
                 o.env.k, best.recall, best.dcs, before.recall, before.dcs,
                 static_cast<double>(initial.num_edges()) / initial.num_vertices(),
                 graph.info().average_degree, o.out.c_str(), csv.c_str(), png.c_str());
  }
  return best;
}

}  // namespace wp::learn
