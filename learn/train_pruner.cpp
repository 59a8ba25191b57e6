#include "learn/train_pruner.h"

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "engine/command/plot.h"
#include "engine/command/progress.h"
#include "engine/learned_index.h"
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
/// else Fashion-MNIST's query_all.fvecs beyond the first 1000 evaluation queries; else the base
/// vectors beyond `limit` (--limit-base) when there are enough; else leave-one-out base points
/// (leave_one_out_queries).
QuerySet training_queries(const index::Dataset& ds, const index::Matrix& full_base, size_t limit,
                          const std::string& dir, const index::HnswIndex& h, size_t n, size_t k,
                          uint64_t seed, std::string* source) {
  if (ds.learn.n >= n) {
    *source = "learn.fvecs";
    index::Matrix m(n, ds.learn.d);
    std::copy(ds.learn.data.begin(), ds.learn.data.begin() + n * ds.learn.d, m.data.begin());
    return query_set(h, std::move(m), k);
  }
  const fs::path all = fs::path(dir) / "query_all.fvecs";
  if (fs::exists(all)) {
    const index::Matrix q = index::read_fvecs(all.string());
    if (q.n >= ds.query.n + n) {
      *source = "query_all.fvecs rows " + std::to_string(ds.query.n) + "..";
      index::Matrix m(n, q.d);
      std::copy(q.row(ds.query.n), q.row(ds.query.n) + n * q.d, m.data.begin());
      return query_set(h, std::move(m), k);
    }
  }
  const size_t beyond = full_base.n > limit ? full_base.n - limit
                                            : 0;  // base vectors not in the graph (--limit-base)
  if (beyond >= std::min<size_t>(n, 200)) {
    n = std::min(n, beyond);
    *source = "base rows " + std::to_string(limit) + ".." + std::to_string(limit + n - 1);
    index::Matrix m(n, full_base.d);
    std::copy(full_base.row(limit), full_base.row(limit) + n * full_base.d, m.data.begin());
    return query_set(h, std::move(m), k);
  }
  *source = "leave-one-out base points";
  return leave_one_out_queries(h, n, k, seed, h.fixed_entry_slot());
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

/// The training curves of the CSV log as a PNG.
void plot_log(const std::string& csv, const std::string& png, uint64_t max_dcs, size_t edges,
              const std::string& title) {
  cli::PlotSpec plot;
  plot.title = title;
  plot.xlabel = "TRPO step";
  plot.ylabel = "value (DCS / 100, recall, reward / max reward)";
  cli::Series dcs{"mean DCS / 100", {}, {}}, rec{"recall@k", {}, {}},
      rew{"reward / max_dcs", {}, {}}, kept{"kept edges / initial", {}, {}},
      val{"validation DCS at target recall / 100", {}, {}};
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    double v[12];
    if (std::sscanf(line.c_str(), "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1],
                    &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11]) != 12) {
      continue;
    }
    if (v[9] > 0) {
      val.x.push_back(v[0]);
      val.y.push_back(v[9] / 100);
    }
    dcs.x.push_back(v[0]);
    dcs.y.push_back(v[3] / 100);
    rec.x.push_back(v[0]);
    rec.y.push_back(v[2]);
    rew.x.push_back(v[0]);
    rew.y.push_back(v[1] / max_dcs);
    kept.x.push_back(v[0]);
    kept.y.push_back(v[6] / std::max<size_t>(1, edges));
  }
  plot.series = {dcs, rec, rew, kept, val};
  cli::write_png_plot(png, plot);
}

}  // namespace

std::unique_ptr<index::GraphIndex> learn_pruned_graph(
    const index::Matrix& base, const index::label_t* ids, index::Metric metric,
    const TrainPrunerOptions& o, const QuerySource& queries, TrainPrunerResult* result_out,
    const std::function<void(double)>& on_step) {
  WP_THROW_IF_NOT(o.steps >= 1, "steps must be at least 1");
  WP_THROW_IF_NOT(o.target_recall > 0 && o.target_recall <= 1, "target_recall must be in (0, 1]");
  WP_THROW_IF_NOT(o.budget > 0 && o.budget <= 1, "budget must be in (0, 1], got ", o.budget);
  WP_THROW_IF_NOT(base.n >= 2 * o.env.k + 2, "need at least ", 2 * o.env.k + 2,
                  " vectors to learn a pruned graph, got ", base.n);
  init_torch(o.threads, o.trainer.seed);
  const std::string& csv = o.log_csv;
  const std::string& ckpt = o.checkpoint;

  // The initial graph, entered at the medoid: HNSW level 0 or the complete graph (GraphIndex with
  // pruning "none"), or a Vamana graph (alpha 1.2, R = 2M; what `bench` calls vamana-1.2).
  index::GraphBuildSpec spec;
  const bool vamana = o.initial == "vamana";
  spec.hnsw.M = o.initial == "complete" ? std::max(o.M, base.n / 2) : o.M;
  spec.hnsw.ef_construction = o.ef_construction;
  spec.hnsw.seed = o.trainer.seed + 100;
  spec.initial = vamana ? "random" : o.initial;
  spec.pruning = vamana ? "vamana" : "none";
  spec.alpha = 1.2f;
  spec.entry = "medoid";
  auto graph_ptr = std::make_unique<index::GraphIndex>(base.d, metric, spec);
  index::GraphIndex& graph = *graph_ptr;
  {
    // One build thread: the parallel build is not deterministic, and a single-threaded one is
    // what `waypoint bench --build-threads 1` rebuilds for hnsw-l0 and the non-learned prunings,
    // so that they are compared on the very same initial graph.
    // Slot i holds row i (one batch into an empty index).
    // (Vamana is deterministic at any thread count; its HNSW only stores the vectors.)
    const int threads = omp_get_max_threads();
    if (!vamana) omp_set_num_threads(1);
    graph.add(index::view(base), ids);
    omp_set_num_threads(threads);
  }
  const index::HnswIndex& h = graph.graph();
  const index::Level0Graph initial = h.export_level0();
  const uint32_t entry = h.fixed_entry_slot();

  std::string source;
  const QuerySet all_q = queries(h, o.train_queries + o.val_queries, o.env.k, &source);
  WP_THROW_IF_NOT(all_q.size() >= 2, "no training queries");
  const size_t n_val = std::min(o.val_queries, all_q.size() / 2);
  const QuerySet train_q = all_q.slice(0, all_q.size() - n_val);
  const QuerySet val_q = all_q.slice(all_q.size() - n_val, n_val);

  // The initial graph's recall/DCS curve on the validation queries: where it reaches the target,
  // the training beam width (default: the first sweep point at the target) and the reward budget.
  EnvConfig env_cfg = o.env;
  const std::vector<size_t> sweep = default_ef_sweep(env_cfg.k);
  const std::vector<float> all_edges(initial.num_edges(), 1.0f);
  EnvConfig probe_cfg = env_cfg;
  probe_cfg.ef = std::max(env_cfg.k, env_cfg.ef);
  PruningEnv probe(h, initial, entry, probe_cfg);
  const std::vector<CurvePoint> initial_curve = probe.curve(val_q, all_edges, sweep);
  TrainPrunerResult result;
  result.query_source = source;
  result.initial_dcs_at_target = dcs_at_recall(initial_curve, o.target_recall);
  result.initial_degree = static_cast<double>(initial.num_edges()) / initial.num_vertices();
  if (!env_cfg.ef) {
    env_cfg.ef = sweep.back();
    for (const CurvePoint& pt : initial_curve) {
      if (pt.recall >= o.target_recall) {
        env_cfg.ef = pt.ef;
        break;
      }
    }
  }
  double flat = 0;
  if (!env_cfg.max_dcs) {
    const size_t ef2 = env_cfg.ef + std::max<size_t>(env_cfg.ef / 2, 1);
    const auto ab = probe.curve(val_q, all_edges, {env_cfg.ef, ef2});
    flat = flat_reward_budget(ab[0], ab[1]);
    env_cfg.max_dcs =
        static_cast<uint64_t>(std::llround(ab[0].dcs + o.budget * (flat - ab[0].dcs)));
  }
  result.train_ef = env_cfg.ef;
  result.max_dcs = env_cfg.max_dcs;
  PruningEnv env(h, initial, entry, env_cfg);
  PruningTrainer trainer(env, train_q, o.trainer);
  if (o.resume && !ckpt.empty() && fs::exists(ckpt)) trainer.load_checkpoint(ckpt);

  // Validation: the guarded graph's DCS at the target recall over the sweep.
  auto validate = [&](const std::vector<float>& p, std::vector<uint8_t>* mask_out,
                      size_t* restored) {
    std::vector<uint8_t> mask = guarded_mask(initial, entry, p, o.min_degree, restored);
    const std::vector<float> keep(mask.begin(), mask.end());
    const double dcs = dcs_at_recall(env.curve(val_q, keep, sweep), o.target_recall);
    if (mask_out) *mask_out = std::move(mask);
    return dcs;
  };
  if (!o.quiet) {
    std::fprintf(stderr,
                 "train-pruner: %zu vertices, %zu edges, %zu training queries (%s); initial graph "
                 "on validation: %.1f DCS at recall@%zu %.2f; training at ef %zu, max_dcs %llu "
                 "(flat %.0f)\n",
                 initial.num_vertices(), initial.num_edges(), train_q.size(), source.c_str(),
                 result.initial_dcs_at_target, env_cfg.k, o.target_recall, env_cfg.ef,
                 static_cast<unsigned long long>(env_cfg.max_dcs), flat);
  }
  const bool fresh_log = !(o.resume && fs::exists(csv));
  std::ofstream log;
  if (!csv.empty()) {
    log.open(csv, fresh_log ? std::ios::trunc : std::ios::app);
    WP_THROW_IF_NOT(log.good(), "cannot write log '", csv, "'");
  }
  if (fresh_log && log.is_open()) {
    log << "step,reward,recall,dcs,kl,entropy,kept_edges,frozen_edges,accepted,val_dcs_at_target,"
           "restored_edges,seconds\n";
  }
  double best_dcs = result.initial_dcs_at_target;
  std::vector<uint8_t> best_mask(initial.num_edges(), 1);
  const auto t0 = Clock::now();
  cli::Progress progress("train-pruner", o.steps, o.quiet);
  for (size_t s = trainer.steps_done(); s < o.steps; ++s) {
    const double minutes = std::chrono::duration<double>(Clock::now() - t0).count() / 60;
    if (o.max_minutes > 0 && minutes >= o.max_minutes) break;
    const StepStats st = trainer.step();
    double val = -1;
    size_t restored = 0;
    if (st.step % o.validate_every == 0 || s + 1 == o.steps) {
      std::vector<uint8_t> mask;
      val = validate(trainer.probabilities(), &mask, &restored);
      if (val < best_dcs) {
        best_dcs = val;
        best_mask = std::move(mask);
        result.best_step = st.step;
      }
      if (!ckpt.empty()) trainer.save_checkpoint(ckpt);
    }
    log << st.step << "," << st.reward << "," << st.recall << "," << st.dcs << "," << st.kl << ","
        << st.entropy << "," << st.kept_edges << "," << st.frozen_edges << "," << st.accepted << ","
        << val << "," << restored << "," << std::chrono::duration<double>(Clock::now() - t0).count()
        << "\n";
    log.flush();
    progress.update(s + 1);
    if (on_step) on_step(static_cast<double>(s + 1) / o.steps);
  }
  progress.finish();
  log.close();

  // The learnt graph: the best validated policy's guarded mask (the initial graph if none beat it).
  graph.apply_mask(initial, best_mask);
  result.learnt_dcs_at_target = best_dcs;
  result.learnt_degree = graph.info().average_degree;
  if (!o.plot_png.empty() && !csv.empty()) {
    plot_log(csv, o.plot_png, env_cfg.max_dcs, initial.num_edges(),
             "train-pruner on " + std::to_string(base.n) + " vectors (" + source +
                 " as queries): sampled episodes per step");
  }
  if (!o.quiet) {
    std::fprintf(stderr,
                 "train-pruner: validation DCS at recall@%zu %.2f: %.1f (initial graph %.1f, step "
                 "%d); average degree %.2f -> %.2f\n",
                 env_cfg.k, o.target_recall, result.learnt_dcs_at_target,
                 result.initial_dcs_at_target, result.best_step, result.initial_degree,
                 result.learnt_degree);
  }
  if (result_out) *result_out = result;
  return graph_ptr;
}

TrainPrunerResult train_pruner(const TrainPrunerOptions& opts) {
  WP_THROW_IF_NOT(!opts.out.empty(), "--out is required");
  TrainPrunerOptions o = opts;
  if (o.log_csv.empty()) o.log_csv = o.out + ".csv";
  if (o.plot_png.empty()) o.plot_png = o.out + ".png";
  if (o.checkpoint.empty()) o.checkpoint = o.out + ".ckpt";
  index::Dataset ds = index::load_dataset(o.dataset);
  const size_t limit = o.limit_base && o.limit_base < ds.base.n ? o.limit_base : ds.base.n;
  index::Matrix full_base;  // rows beyond --limit-base may serve as training queries
  if (limit < ds.base.n) {
    full_base = ds.base;
    ds.base.n = limit;
    ds.base.data.resize(limit * ds.base.d);
  } else {
    full_base.d = ds.base.d;  // nothing beyond: n = 0 rows
  }
  std::vector<index::label_t> ids(ds.base.n);
  std::iota(ids.begin(), ids.end(), 0);
  const QuerySource queries = [&](const index::HnswIndex& h, size_t n, size_t k,
                                  std::string* source) {
    return training_queries(ds, full_base, limit, o.dataset, h, n, k, o.trainer.seed, source);
  };
  TrainPrunerResult result;
  auto graph = learn_pruned_graph(ds.base, ids.data(), ds.metric, o, queries, &result, nullptr);
  graph->save(o.out);

  if (!o.graph_png.empty()) {
    // The learnt graph in the plane of the data's two principal axes: colour = label, size =
    // in-degree (hubs stand out), as the paper's figure. Slots equal base rows (one batch).
    const index::Level0Graph learnt = graph->graph().export_level0();
    cli::GraphPlot gp;
    gp.title = "learnt graph over " + std::to_string(ds.base.n) + " vectors of " + ds.name +
               " (average degree " + std::to_string(result.learnt_degree).substr(0, 5) +
               ", initial " + o.initial + "); size = in-degree";
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
    cli::write_png_graph(o.graph_png, gp);
  }
  if (!o.quiet) {
    std::fprintf(stderr, "train-pruner: wrote %s, %s, %s%s%s\n", o.out.c_str(), o.log_csv.c_str(),
                 o.plot_png.c_str(), o.graph_png.empty() ? "" : ", ", o.graph_png.c_str());
  }
  return result;
}

std::unique_ptr<index::GraphIndex> learn_pruned_graph(const index::Matrix& base,
                                                      const index::label_t* ids,
                                                      index::Metric metric,
                                                      const TrainPrunerOptions& o,
                                                      TrainPrunerResult* result,
                                                      const std::function<void(double)>& on_step) {
  const QuerySource loo = [&](const index::HnswIndex& h, size_t n, size_t k, std::string* source) {
    *source = "leave-one-out points";
    return leave_one_out_queries(h, std::min(n, base.n - 1), k, o.trainer.seed,
                                 h.fixed_entry_slot());
  };
  return learn_pruned_graph(base, ids, metric, o, loo, result, on_step);
}

void register_learned_indexes() {
  engine::register_learned_builder("rl", [](const engine::LearnedBuildRequest& r) {
    // The same job as `waypoint train-pruner`, on the collection's points with leave-one-out
    // queries, quiet, no files: the collection stores the learnt index itself.
    TrainPrunerOptions o;
    o.M = r.hnsw.M;
    o.ef_construction = r.hnsw.ef_construction;
    o.steps = r.params.value("steps", size_t{200});
    o.max_minutes = r.params.value("max_minutes", 0.0);
    o.target_recall = r.params.value("target_recall", 0.95);
    o.validate_every = 10;
    o.quiet = true;
    o.env.k = 10;
    o.train_queries = std::min<size_t>(4000, r.vectors->n * 4 / 5);
    o.val_queries = std::min<size_t>(500, r.vectors->n / 5);
    std::unique_ptr<index::Index> g =
        learn_pruned_graph(*r.vectors, r.labels->data(), r.metric, o, nullptr, r.progress);
    return g;
  });
}

}  // namespace wp::learn
