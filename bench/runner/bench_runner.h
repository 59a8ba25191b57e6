#pragma once
/**
 * @file bench_runner.h
 * `waypoint bench`: builds every index of the run over the same base, sweeps ef, and measures
 * recall@k (ann-benchmarks, tie-aware), QPS, mean distance computations, p50/p99 latency, build
 * time and memory, one point per (index, ef) (the bench contract: README.md, "waypoint bench", and
 * docs/benchmarks.md).
 */
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/runner/bench_subject.h"

namespace wp::bench {

struct BenchConfig {
  std::string dataset;  ///< folder or .hdf5 (index/dataset.h)
  size_t k = 10;
  std::vector<std::string> indexes{"hnsw", "faiss-hnsw", "hnswlib", "flat"};
  std::vector<size_t> efs{10, 16, 20, 32, 40, 64, 80, 128, 256, 512};
  GraphBuildParams graph;     ///< graph.metric is used only when metric_given
  bool metric_given = false;  ///< false: the dataset's metric (its `metric` file, l2 without one)
  int threads = 1;            ///< query threads (1: single-threaded QPS)
  int build_threads = 0;      ///< 0: all cores
  int runs = 5;               ///< passes over the queries per point; the fastest pass gives QPS
  double min_seconds = 0.2;   ///< keep passing until at least this much time was measured
  size_t max_queries = static_cast<size_t>(-1);
  /// Evaluation queries held out of the base (index::hold_out): 0 keeps the dataset's queries.
  size_t holdout = 0;
  uint64_t holdout_seed = 7;
  std::string rl_graph;  ///< index "rl" reads its graph from this file
  LshBenchParams lsh;    ///< lsh, lsh-mp, lsh-learned, faiss-lsh

  void validate() const;
};

/// One measured point.
struct BenchPoint {
  std::string index;
  nlohmann::json params;
  double recall = 0;   ///< recall@k
  double recall1 = 0;  ///< recall@1
  double qps = 0;
  bool has_work = false;
  double dcs = 0;   ///< mean distance computations per query
  double hops = 0;  ///< mean vertices expanded per query
  double p50_us = 0, p99_us = 0;
  double build_s = 0;
  size_t memory_bytes = 0;
  std::vector<double> recall_q;  ///< recall@k of each query (for intervals; not in to_json)
  std::vector<double> dcs_q;     ///< distance computations of each query (when has_work)

  /// One line of `waypoint bench --json` (the bench contract: docs/benchmarks.md).
  nlohmann::json to_json(const BenchConfig& cfg, const std::string& dataset) const;
};

/// What a run measured on.
struct BenchRun {
  std::string dataset;  ///< the dataset's name
  size_t base = 0, dim = 0, queries = 0;
  int build_threads = 0;
};

/// Told of a run as it goes (each member optional): the command prints and draws from these.
struct BenchObserver {
  /// The dataset is loaded; measuring starts.
  std::function<void(const BenchRun&)> started;
  /// Index `index` has measured `done` of its `total` search parameters.
  std::function<void(const std::string& index, size_t done, size_t total)> progress;
  /// A point was measured (in order: every ef of an index, then the next index).
  std::function<void(const BenchPoint&)> point;
};

/// Runs the whole bench: builds every index of the run over the dataset's base and measures
/// every point, telling `observer` as it goes; returns the points in order.
std::vector<BenchPoint> run_bench(const BenchConfig& cfg, const BenchObserver& observer = {});

}  // namespace wp::bench
