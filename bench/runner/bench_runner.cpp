#include "bench/runner/bench_runner.h"

#include <omp.h>

#include <algorithm>
#include <chrono>

#include "bench/runner/percentile.h"
#include "index/dataset.h"
#include "index/error.h"
#include "index/omp_team.h"

namespace wp::bench {

using Clock = std::chrono::steady_clock;
using index::label_t;

void BenchConfig::validate() const {
  WP_THROW_IF_NOT(k >= 1 && k <= 1000, "k must be in 1..1000, got ", k);
  WP_THROW_IF_NOT(!indexes.empty(), "indexes must name at least one index");
  WP_THROW_IF_NOT(!efs.empty(), "ef needs at least one value");
  WP_THROW_IF_NOT(threads >= 1 && threads <= 1024, "threads must be in 1..1024, got ", threads);
  WP_THROW_IF_NOT(runs >= 1, "runs must be at least 1, got ", runs);
}

nlohmann::json BenchPoint::to_json(const BenchConfig& cfg, const std::string& dataset) const {
  nlohmann::json j{{"dataset", dataset}, {"index", index},         {"params", params},
                   {"k", cfg.k},         {"recall", recall},       {"recall_1", recall1},
                   {"qps", qps},         {"threads", cfg.threads}, {"p50_us", p50_us},
                   {"p99_us", p99_us},   {"build_s", build_s},     {"memory_bytes", memory_bytes}};
  if (has_work) {
    j["dcs"] = dcs;
    j["hops"] = hops;
  }
  return j;
}

namespace {

std::unique_ptr<BenchSubject> make_subject(const std::string& name, const BenchConfig& cfg) {
  const GraphBuildParams& p = cfg.graph;
  const std::string& rl_graph = cfg.rl_graph;
  if (name == "lsh" || name == "lsh-mp" || name == "lsh-learned" || name == "faiss-lsh") {
    return make_lsh_subject(name, p.metric, cfg.lsh, p.seed, cfg.k);
  }
  if (name == "rl") {
    WP_THROW_IF_NOT(!rl_graph.empty(), "index rl needs --rl-graph FILE");
    return make_graph_file_subject(rl_graph, p);
  }
  if (name == "hnsw" || name == "hnsw-sq8" || name == "flat" || name == "knn" ||
      name == "knn-hnsw" || name == "hnsw-l0" || name.rfind("robust-", 0) == 0 ||
      name.rfind("vamana-", 0) == 0) {
    return make_waypoint_subject(name, p);
  }
  if (name == "faiss-hnsw") return make_faiss_hnsw_subject(p);
  if (name == "hnswlib") return make_hnswlib_subject(p);
  throw UserError(
      "unknown index '" + name +
      "' in --indexes (known: hnsw, hnsw-sq8, flat, faiss-hnsw, hnswlib, knn, "
      "knn-hnsw, hnsw-l0, robust-<alpha>, vamana-<alpha>, rl, lsh, lsh-mp, lsh-learned, "
      "faiss-lsh)");
}

/// One pass over all queries; returns wall seconds. Fills ids, latencies (us), the work of each
/// query (`dcs_q`) and in all.
double run_pass(const BenchSubject& s, const index::Matrix& q, size_t k, int threads,
                std::vector<label_t>& ids, std::vector<double>& lat_us, std::vector<double>& dcs_q,
                index::SearchStats& work) {
  const int64_t n = static_cast<int64_t>(q.n);
  uint64_t dcs = 0, hops = 0;
  // A library that opens its own OpenMP region per query (FAISS) must not spread a
  // single-threaded pass over more cores; inside our parallel loop its region is nested and serial.
  const index::OmpTeamScope team(threads);
  const auto t0 = Clock::now();
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(+ : dcs, hops) if (threads > 1)
  for (int64_t i = 0; i < n; ++i) {
    const auto a = Clock::now();
    const index::SearchStats st = s.search(q.row(i), k, ids.data() + i * k);
    lat_us[i] = std::chrono::duration<double, std::micro>(Clock::now() - a).count();
    dcs_q[i] = static_cast<double>(st.distance_computations);
    dcs += st.distance_computations;
    hops += st.hops;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  work.distance_computations = dcs;
  work.hops = hops;
  return secs;
}

}  // namespace

std::vector<BenchPoint> run_bench(const BenchConfig& asked, const BenchObserver& observer) {
  asked.validate();
  index::Dataset ds = index::load_dataset(asked.dataset, asked.max_queries);
  if (asked.holdout > 0) ds = index::hold_out(ds, asked.holdout, asked.holdout_seed);
  BenchConfig cfg = asked;
  if (!cfg.metric_given) cfg.graph.metric = ds.metric;
  WP_THROW_IF_NOT(cfg.k <= ds.groundtruth.d, "k = ", cfg.k, " but the ground truth has only ",
                  ds.groundtruth.d, " neighbours per query");
  WP_THROW_IF_NOT(ds.metric == cfg.graph.metric, "dataset metric is ",
                  index::metric_name(ds.metric), " but the bench was asked for ",
                  index::metric_name(cfg.graph.metric));
  std::vector<std::unique_ptr<BenchSubject>> subjects;
  for (const std::string& name : cfg.indexes) {
    subjects.push_back(make_subject(name, cfg));
  }
  const int build_threads = cfg.build_threads > 0 ? cfg.build_threads : omp_get_num_procs();
  if (observer.started) {
    observer.started({ds.name, ds.base.n, ds.base.d, ds.query.n, build_threads});
  }

  std::vector<BenchPoint> points;
  const size_t nq = ds.query.n, k = cfg.k;
  std::vector<label_t> ids(nq * k), first(nq);
  std::vector<double> lat(nq), all_lat, dcs_q(nq);
  for (auto& s : subjects) {
    const auto t0 = Clock::now();
    s->build(ds.base, build_threads);
    const double build_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const size_t mem = s->memory_bytes();
    const std::vector<size_t> efs = s->sweeps_ef() ? cfg.efs : std::vector<size_t>{0};
    for (size_t e = 0; e < efs.size(); ++e) {
      if (s->sweeps_ef()) s->set_ef(efs[e]);
      BenchPoint p;
      p.index = s->name();
      p.params = s->build_params();
      if (s->sweeps_ef()) p.params["ef"] = efs[e];
      p.build_s = build_s;
      p.memory_bytes = mem;
      p.has_work = s->counts_work();
      index::SearchStats work;
      // First pass: results for recall, and warm-up.
      run_pass(*s, ds.query, k, cfg.threads, ids, lat, dcs_q, work);
      p.recall_q = index::recall_per_query(ds.base, ds.query, ds.groundtruth, ids, k, ds.metric);
      double sum = 0;
      for (const double r : p.recall_q) sum += r;
      p.recall = nq ? sum / static_cast<double>(nq) : 0.0;
      if (p.has_work) p.dcs_q = dcs_q;
      for (size_t i = 0; i < nq; ++i) first[i] = ids[i * k];
      p.recall1 = index::recall_at_k(ds.base, ds.query, ds.groundtruth, first, 1, ds.metric);
      p.dcs = static_cast<double>(work.distance_computations) / nq;
      p.hops = static_cast<double>(work.hops) / nq;
      // Timed passes: best wall time gives QPS; latencies pooled over passes for p50/p99.
      all_lat.clear();
      double best = 1e300, measured = 0;
      for (int r = 0; r < cfg.runs || (measured < cfg.min_seconds && r < 1000); ++r) {
        const double secs = run_pass(*s, ds.query, k, cfg.threads, ids, lat, dcs_q, work);
        best = std::min(best, secs);
        measured += secs;
        all_lat.insert(all_lat.end(), lat.begin(), lat.end());
      }
      p.qps = nq / best;
      p.p50_us = percentile(all_lat, 0.50);
      p.p99_us = percentile(all_lat, 0.99);
      if (observer.point) observer.point(p);
      points.push_back(std::move(p));
      if (observer.progress) observer.progress(s->name(), e + 1, efs.size());
    }
  }
  return points;
}

}  // namespace wp::bench
