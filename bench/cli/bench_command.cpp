// `waypoint bench`: the options, then bench/runner measures and this file prints each point (a
// table, or one JSON object per line: the bench contract), writes the CSV and draws the
// recall/QPS Pareto plot (and recall/DCS).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include "bench/runner/bench_runner.h"
#include "bench/runner/recall_targets.h"
#include "engine/command/command.h"
#include "engine/command/plot.h"
#include "engine/command/progress.h"
#include "index/error.h"

namespace wp::cli {

namespace {

void print_table_row(std::ostream& out, const bench::BenchPoint& p) {
  char line[256];
  std::snprintf(line, sizeof line, "%-12s %-28s %8.4f %8.4f %11.1f %9s %8.1f %8.1f %8.2f %10.1f",
                p.index.c_str(), p.params.dump().c_str(), p.recall, p.recall1, p.qps,
                p.has_work ? std::to_string(static_cast<long>(p.dcs)).c_str() : "-", p.p50_us,
                p.p99_us, p.build_s, p.memory_bytes / 1048576.0);
  out << line << std::endl;
}

/// Each index's figures at the recall targets (bench/runner/recall_targets.h): a table, or one
/// JSON line per index and target ({"kind": "at_recall", ...}).
void print_at_recall(std::ostream& out, const bench::BenchConfig& cfg, const std::string& dataset,
                     const std::vector<bench::BenchPoint>& points,
                     const std::vector<double>& targets, size_t resamples, bool json) {
  if (!json) {
    char head[256];
    std::snprintf(head, sizeof head, "\n%-12s %-8s %-11s %9s %21s %11s %8s %10s", "index", "recall",
                  "reading", "dcs", "dcs 95% interval", "qps", "degree", "mem_MiB");
    out << "at recall@" << cfg.k << " targets (" << points.front().recall_q.size() << " queries, "
        << resamples << " bootstrap resamples of them):" << head << std::endl;
  }
  for (size_t i = 0; i < points.size();) {
    size_t j = i;
    std::vector<bench::SweepPoint> sweep;
    for (; j < points.size() && points[j].index == points[i].index; ++j) {
      sweep.push_back({points[j].recall_q, points[j].dcs_q, points[j].qps});
    }
    const bench::BenchPoint& p = points[i];
    nlohmann::json params = p.params;
    params.erase("ef");
    const double degree = params.value("avg_degree", 0.0);
    for (const bench::AtRecall& a : bench::at_recall(sweep, targets, resamples)) {
      if (json) {
        nlohmann::json line{{"kind", "at_recall"},
                            {"dataset", dataset},
                            {"index", p.index},
                            {"params", params},
                            {"k", cfg.k},
                            {"target", a.target},
                            {"reading", bench::reading_name(a.reading)},
                            {"qps", a.qps},
                            {"queries", p.recall_q.size()},
                            {"memory_bytes", p.memory_bytes}};
        if (p.has_work) {
          line["dcs"] = a.dcs;
          line["dcs_lo"] = std::isfinite(a.dcs_lo) ? nlohmann::json(a.dcs_lo) : nlohmann::json();
          line["dcs_hi"] = std::isfinite(a.dcs_hi) ? nlohmann::json(a.dcs_hi) : nlohmann::json();
        }
        out << line.dump() << std::endl;
        continue;
      }
      char interval[64] = "-", dcs[32] = "-", qps[32] = "-", deg[32] = "-";
      if (a.reading != bench::AtRecall::Reading::kNotReached) {
        if (p.has_work) {
          std::snprintf(dcs, sizeof dcs, "%s%.1f",
                        a.reading == bench::AtRecall::Reading::kAtFirst ? "<= " : "", a.dcs);
          if (std::isfinite(a.dcs_hi)) {
            std::snprintf(interval, sizeof interval, "[%.1f, %.1f]", a.dcs_lo, a.dcs_hi);
          } else {
            std::snprintf(interval, sizeof interval, "[%.1f, not reached]", a.dcs_lo);
          }
        }
        std::snprintf(qps, sizeof qps, "%.1f", a.qps);
      }
      if (degree > 0) std::snprintf(deg, sizeof deg, "%.2f", degree);
      char line[320];
      std::snprintf(line, sizeof line, "%-12s %-8.3f %-11s %9s %21s %11s %8s %10.1f",
                    p.index.c_str(), a.target, bench::reading_name(a.reading), dcs, interval, qps,
                    deg, p.memory_bytes / 1048576.0);
      out << line << std::endl;
    }
    i = j;
  }
}

void write_csv(const std::string& path, const bench::BenchConfig& cfg, const std::string& dataset,
               const std::vector<bench::BenchPoint>& pts) {
  std::ofstream f(path);
  WP_THROW_IF_NOT(f.good(), "cannot write --csv file '", path, "'");
  f << "dataset,index,params,k,threads,recall,recall_1,qps,dcs,hops,p50_us,p99_us,build_s,"
       "memory_bytes\n";
  for (const bench::BenchPoint& p : pts) {
    std::string params = p.params.dump();
    std::string esc;
    for (char c : params) esc += c == '"' ? std::string("\"\"") : std::string(1, c);
    f << dataset << "," << p.index << ",\"" << esc << "\"," << cfg.k << "," << cfg.threads << ","
      << p.recall << "," << p.recall1 << "," << p.qps << ","
      << (p.has_work ? std::to_string(p.dcs) : "") << ","
      << (p.has_work ? std::to_string(p.hops) : "") << "," << p.p50_us << "," << p.p99_us << ","
      << p.build_s << "," << p.memory_bytes << "\n";
  }
}

/// Recall against QPS (the Pareto frontier per index, log scale), or against mean distance
/// computations (`dcs`: the frontier of fewest DCS per recall, of the indexes that count them).
void write_plot(const std::string& path, const bench::BenchConfig& cfg, const std::string& dataset,
                const std::vector<bench::BenchPoint>& pts, bool dcs) {
  std::map<std::string, Series> by_index;
  for (const bench::BenchPoint& p : pts) {
    if (dcs && !p.has_work) continue;  // hnswlib and FAISS do not count theirs
    Series& s = by_index[p.index];
    s.name = p.index;
    s.x.push_back(p.recall);
    s.y.push_back(dcs ? -p.dcs : p.qps);  // the frontier keeps the highest y
  }
  PlotSpec spec;
  spec.title = dataset + ": recall@" + std::to_string(cfg.k) + (dcs ? " vs DCS (" : " vs QPS (") +
               std::to_string(cfg.threads) + " thread" + (cfg.threads > 1 ? "s" : "") +
               ", M=" + std::to_string(cfg.graph.M) +
               ", ef_construction=" + std::to_string(cfg.graph.ef_construction) + ")";
  spec.xlabel = "Recall@" + std::to_string(cfg.k);
  spec.ylabel = dcs ? "Mean distance computations per query" : "Queries per second (1/s)";
  spec.log_y = true;
  for (auto& kv : by_index) {
    Series f = pareto_frontier(kv.second);
    if (dcs) {
      for (double& y : f.y) y = -y;
    }
    spec.series.push_back(std::move(f));
  }
  write_png_plot(path, spec);
}

int cmd_bench(Args& args) {
  bench::BenchConfig cfg;
  cfg.dataset = args.required("dataset");
  cfg.k = args.integer("k", 10, 1, 1000);
  if (args.has("indexes")) cfg.indexes = args.list("indexes", "");
  if (args.has("ef")) {
    cfg.efs.clear();
    for (long long e : args.int_list("ef", "", 1, 100000)) cfg.efs.push_back(e);
  }
  cfg.graph.M = args.integer("M", 16, 2, 1024);
  cfg.graph.ef_construction = args.integer("ef-construction", 200, 1, 100000);
  cfg.graph.seed = args.integer("seed", 100, 0, (1LL << 62));
  cfg.graph.R = args.integer("R", 0, 0, 4096);
  cfg.metric_given = args.has("metric");
  cfg.graph.metric = index::parse_metric(args.str("metric", "l2"), "--metric");
  cfg.threads = args.integer("threads", 1, 1, 1024);
  cfg.build_threads = args.integer("build-threads", 0, 0, 1024);
  cfg.runs = args.integer("runs", 5, 1, 1000);
  cfg.min_seconds = args.real("min-seconds", 0.2, 0, 3600);
  cfg.max_queries = args.integer("max-queries", 1LL << 40, 1, 1LL << 40);
  const bool json = args.flag("json");
  const std::string csv = args.str("csv", "");
  const std::string plot = args.str("plot", "");
  const std::string plot_dcs = args.str("plot-dcs", "");
  cfg.rl_graph = args.str("rl-graph", "");
  cfg.holdout = args.integer("holdout", 0, 0, 1LL << 40);
  cfg.holdout_seed = args.integer("holdout-seed", 7, 0, (1LL << 62));
  cfg.graph.entry_given = args.has("entry");
  cfg.graph.entry = index::parse_graph_entry(args.str("entry", "medoid"), "--entry");
  std::vector<double> targets;
  if (args.has("targets")) {
    for (const std::string& t : args.list("targets", "")) {
      char* end = nullptr;
      const double v = std::strtod(t.c_str(), &end);
      WP_THROW_IF_NOT(!t.empty() && *end == '\0' && v > 0 && v <= 1, "--targets: '", t,
                      "' is not a recall in (0, 1]");
      targets.push_back(v);
    }
  }
  const size_t resamples = args.integer("bootstrap", 1000, 0, 100000);
  cfg.lsh.bits = args.integer("bits", 256, 1, 4096);
  cfg.lsh.tables = args.integer("tables", 8, 1, 64);
  cfg.lsh.key_bits = args.integer("key-bits", 0, 0, 32);
  cfg.lsh.probes = args.integer("probes", 16, 1, 4096);
  cfg.lsh.hash_model = args.str("hash-model", "");
  const bool quiet = args.flag("quiet") || json;
  args.finish();

  std::string dataset;
  std::unique_ptr<Progress> progress;
  bench::BenchObserver observer;
  observer.started = [&](const bench::BenchRun& run) {
    dataset = run.dataset;
    if (json) return;
    std::cout << "dataset " << run.dataset << ": " << run.base << " base x " << run.dim << ", "
              << run.queries << " queries, k=" << cfg.k << ", query threads " << cfg.threads
              << ", build threads " << run.build_threads << "\n";
    char head[256];
    std::snprintf(head, sizeof head, "%-12s %-28s %8s %8s %11s %9s %8s %8s %8s %10s", "index",
                  "params", "recall", "recall@1", "qps", "dcs", "p50_us", "p99_us", "build_s",
                  "mem_MiB");
    std::cout << head << std::endl;
  };
  observer.point = [&](const bench::BenchPoint& p) {
    if (json) {
      std::cout << p.to_json(cfg, dataset).dump() << std::endl;
    } else {
      print_table_row(std::cout, p);
    }
  };
  observer.progress = [&](const std::string& index, size_t done, size_t total) {
    if (done == 1 || !progress)
      progress = std::make_unique<Progress>("bench " + index, total, quiet);
    progress->update(done);
    if (done == total) progress->finish();
  };
  const std::vector<bench::BenchPoint> points = bench::run_bench(cfg, observer);
  if (!targets.empty()) print_at_recall(std::cout, cfg, dataset, points, targets, resamples, json);
  if (!csv.empty()) write_csv(csv, cfg, dataset, points);
  if (!plot.empty()) write_plot(plot, cfg, dataset, points, false);
  if (!plot_dcs.empty()) write_plot(plot_dcs, cfg, dataset, points, true);
  return 0;
}

const CommandRegistration kBench(
    {"bench",
     "--dataset DIR|FILE.hdf5 [--k 10] [--indexes hnsw,hnsw-sq8,faiss-hnsw,hnswlib,flat,\n"
     "          knn,knn-hnsw,robust-1.2,vamana-1.2,...,lsh,lsh-mp,lsh-learned,faiss-lsh]\n"
     "          [--rl-graph FILE] [--R 2M] [--bits 256] [--tables 8] [--key-bits auto] "
     "[--probes 16]\n"
     "          [--hash-model FILE]\n"
     "          [--ef 10,16,...] [--M 16] [--ef-construction 200] [--threads 1] "
     "[--build-threads N]\n"
     "          [--runs 5] [--min-seconds 0.2] [--max-queries N] [--json] [--csv FILE] "
     "[--plot FILE]\n"
     "          [--plot-dcs FILE] [--metric l2|ip|cosine (default: the dataset's)] [--quiet]\n"
     "          [--holdout N [--holdout-seed 7]] [--entry medoid|hnsw]\n"
     "          [--targets 0.9,0.95,0.99 [--bootstrap 1000]]",
     50,
     {"quiet", "json"},
     &cmd_bench});

}  // namespace

}  // namespace wp::cli
