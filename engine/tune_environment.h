#pragma once
/**
 * @file tune_environment.h
 * Where the tuner measures: the Environment builds each configuration (one build per distinct
 * build-time choice, kept in an LRU cache), measures recall@k and single-threaded QPS on held-out
 * tuning queries, and caches the measurement per configuration, so that every strategy of one
 * run sees the same figure for the same configuration. The reward turns a measurement into the
 * number strategies maximise.
 */
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/tune_space.h"
#include "index/index.h"
#include "index/matrix.h"
#include "index/metric.h"

namespace wp::engine::tune {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Measurement {
  double recall = 0;  ///< recall@k (ann-benchmarks), on the tuning queries
  double qps = 0;     ///< single-threaded, the best of a few passes
  double p50_us = 0, p99_us = 0;
  double dcs = 0;  ///< mean distance computations per query
  double build_s = 0;
  size_t memory_bytes = 0;
};

/// The reward of a measurement, a soft constraint as MnasNet's (Tan et al., 2019): QPS /
/// reference QPS, times (recall / target)^penalty when recall misses the target and (budget /
/// p99)^penalty when p99 is over the latency budget. With penalty 30 one recall point short
/// costs 27% of the reward, five points 80%: a fast near miss still tells a learner where the
/// boundary is, where a flat penalty would teach it to keep a wide margin. The best
/// configuration of a run is chosen among feasible ones only.
struct RewardSpec {
  double recall_target = 0.95;
  double reference_qps = 1;      ///< exact search's QPS on the same queries
  double penalty = 30;           ///< exponent of the shortfall factors
  double latency_budget_us = 0;  ///< 0: none
  bool feasible(const Measurement& m) const;
  /// The factors of the reward for missing the target and the budget: 1 when feasible.
  double shortfall(const Measurement& m) const;
  double reward(const Measurement& m) const;
};

struct EnvironmentOptions {
  size_t k = 10;
  std::string rl_graph;  ///< a trained graph index file over the same base (type "rl")
  /// Without rl_graph, each rl configuration is a learning job on the tuned base (the learn
  /// module's builder): this many minutes of training (after its set-up), validated at
  /// rl_target_recall (the tuning's recall target).
  double rl_minutes = 1;
  double rl_target_recall = 0.95;
  size_t max_cached = 4;  ///< built indexes kept (LRU); a measurement is cached regardless
  int repeats = 3;        ///< timed passes over the queries at least; the fastest counts
  /// Passes go on (up to 200) until this much search time is spent: at 100k QPS one pass over
  /// 500 queries takes 5 ms, and the fastest of 3 such passes varies by 10-20%.
  double min_seconds = 0.25;
  uint64_t seed = 100;  ///< HNSW level generator, LSH planes
};

/// The index request body of `c` as the environment builds it: to_request, and for an rl
/// configuration that trains (no rl_graph) the learning job's keys (steps, max_minutes,
/// target_recall), so that `build --config` and a collection train what tuning measured.
nlohmann::json request_body(const Space& s, const Config& c, const EnvironmentOptions& opts);

class Environment {
 public:
  /// `base` and `queries` must outlive the environment; `groundtruth` row i = the exact
  /// neighbours (rows of base) of query i.
  Environment(const index::Matrix& base, index::Metric metric, const index::Matrix& queries,
              const index::IntMatrix& groundtruth, EnvironmentOptions opts);

  /// Measures `c` (builds it unless its build is cached); a repeated configuration is free.
  Measurement measure(const Space& s, const Config& c);
  bool measured(const Space& s, const Config& c) const;
  /// Exact search's QPS on the queries (the reward's reference), measured once.
  double exact_qps();
  size_t builds() const { return builds_; }

  /// A fresh index of configuration `c` over the rows of `base` (ids = row numbers).
  static std::unique_ptr<index::Index> build(const Space& s, const Config& c,
                                             const index::Matrix& base, index::Metric metric,
                                             const EnvironmentOptions& opts);
  /// Recall and timing of `idx` on `queries` at search width `ef` (raised to k).
  static Measurement search(const index::Index& idx, size_t ef, const index::Matrix& base,
                            const index::Matrix& queries, const index::IntMatrix& groundtruth,
                            const EnvironmentOptions& opts);

 private:
  const index::Matrix& base_;
  index::Metric metric_;
  const index::Matrix& queries_;
  const index::IntMatrix& gt_;
  EnvironmentOptions opts_;
  std::map<std::string, Measurement> measured_;  ///< by describe()
  /// LRU of built indexes by build key, most recent first.
  std::list<std::pair<std::string, std::pair<std::unique_ptr<index::Index>, double>>> built_;
  size_t builds_ = 0;
  double exact_qps_ = 0;
};

/// `count` seeded rows of `x` held out as tuning queries, and the other rows (in order) as base.
struct HeldOut {
  index::Matrix base, queries;
};
HeldOut hold_out(const index::Matrix& x, size_t count, uint64_t seed);

}  // namespace wp::engine::tune
