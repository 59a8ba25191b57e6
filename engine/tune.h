#pragma once
/**
 * @file tune.h
 * `waypoint tune` and `PUT /collections/{name}/index {"type":"auto"}`: choose an index
 * configuration that reaches a recall target at the highest QPS.
 *
 * A Space of named discrete choices per index type (hnsw: m, ef_construct, quantization, ef;
 * graph: those and RobustPrune's alpha; lsh: bits, tables, probes, candidates; rl: a trained
 * graph's ef, when one is given). A Strategy
 * proposes configurations and is told their reward; the Environment builds each configuration
 * (one build per distinct build-time choice, kept in an LRU cache), measures recall@k and
 * single-threaded QPS on held-out tuning queries, and caches the measurement per configuration,
 * so every strategy of one run sees the same figure for the same configuration. Built-in
 * strategies: "random" (uniform, without repeats) and "coordinate" (FAISS-AutoTune-style
 * coordinate search); the controller RNN ("controller", learn/tune_controller.h, LibTorch)
 * registers itself at start-up. Torch-free: engine/ and http/ use it.
 */
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/index.h"
#include "index/matrix.h"
#include "index/metric.h"

namespace wp::engine::tune {

/// One named discrete choice; `labels` name categorical values (else the values are numbers).
struct Choice {
  std::string name;
  std::vector<double> values;
  std::vector<std::string> labels;
  bool search_time = false;  ///< changes the search, not the build
};

struct Space {
  std::vector<std::string> types;
  std::vector<std::vector<Choice>> choices;  ///< per type, in sampling order

  /// The standard space over `types` ("hnsw", "lsh", "rl": "rl" is a trained graph file, only ef).
  static Space standard(const std::vector<std::string>& types);
  size_t type_index(const std::string& type) const;  ///< UserError for an unknown type
  /// The most values any choice (the type included) has: the width of a controller's heads.
  size_t max_values() const;
};

/// A configuration: a type and one value index per choice of that type.
struct Config {
  size_t type = 0;
  std::vector<size_t> picks;
  bool operator<(const Config& o) const { return type != o.type ? type < o.type : picks < o.picks; }
  bool operator==(const Config& o) const { return type == o.type && picks == o.picks; }
};

bool valid(const Space& s, const Config& c);
/// The value of choice `name` in `c` (nullopt when its type has no such choice).
std::optional<double> value(const Space& s, const Config& c, const std::string& name);
/// "hnsw m=16 ef_construct=200 quantization=none ef=64"
std::string describe(const Space& s, const Config& c);
/// The configuration's search width: its ef or LSH candidates (0 when it has neither).
size_t search_ef(const Space& s, const Config& c);
/// The body `PUT /collections/{name}/index` and `waypoint build --config` accept.
nlohmann::json to_request(const Space& s, const Config& c);
/// The configuration of a request body (inverse of to_request; UserError if off the space).
Config from_request(const Space& s, const nlohmann::json& body);

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
  std::string rl_graph;   ///< a trained graph index file over the same base (type "rl")
  size_t max_cached = 4;  ///< built indexes kept (LRU); a measurement is cached regardless
  int repeats = 3;        ///< timed passes over the queries at least; the fastest counts
  /// Passes go on (up to 200) until this much search time is spent: at 100k QPS one pass over
  /// 500 queries takes 5 ms, and the fastest of 3 such passes varies by 10-20%.
  double min_seconds = 0.25;
  uint64_t seed = 100;  ///< HNSW level generator, LSH planes
};

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

/// Proposes configurations and learns from their rewards.
class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual Config propose() = 0;
  /// `feasible`: the configuration met the recall target (and latency budget).
  virtual void observe(const Config& c, double reward, bool feasible) = 0;
};
using StrategyFactory = std::function<std::unique_ptr<Strategy>(const Space&, uint64_t seed)>;

/// Registers (or replaces) a strategy; "random" and "coordinate" are built in.
void register_strategy(const std::string& name, StrategyFactory factory);
/// The factory of `name`, or nullptr.
const StrategyFactory* strategy(const std::string& name);

struct TuneOptions {
  double recall = 0.95;
  size_t trials = 60;      ///< distinct configurations measured per strategy
  double max_minutes = 0;  ///< per strategy; 0: no limit
  double penalty = 30;     ///< RewardSpec::penalty
  double latency_budget_us = 0;
  uint64_t seed = 0;
  /// Proposals per trial before a strategy that only repeats itself is stopped.
  size_t max_proposals_per_trial = 20;
};

struct Trial {
  size_t trial = 0;      ///< 1-based
  size_t proposals = 0;  ///< proposals so far (repeats included)
  Config config;
  Measurement m;
  double reward = 0;
  double best_reward = 0;  ///< of the best feasible trial so far (0: none yet)
  bool feasible = false;
  double seconds = 0;  ///< since the strategy started
};

struct StrategyResult {
  std::string name;
  std::vector<Trial> trials;
  std::optional<size_t> best;  ///< index into trials of the best feasible one
  /// Trials until the best was first measured (1-based; 0 when none is feasible).
  size_t trials_to_best() const { return best ? trials[*best].trial : 0; }
};

/// Runs `strategy` for opts.trials distinct configurations (or until max_minutes / repeats).
StrategyResult run_strategy(const std::string& name, Strategy& strategy, Environment& env,
                            const Space& space, const RewardSpec& reward, const TuneOptions& opts,
                            const std::function<void(const Trial&)>& on_trial = {});
/// Runs several strategies as run_strategy does, one trial of each in turn (so that a change in
/// the machine's speed during the run touches all of them alike); `on_trial(i, trial)` after
/// each trial of strategy i. Measurements are shared through `env`.
std::vector<StrategyResult> run_strategies(
    const std::vector<std::pair<std::string, Strategy*>>& strategies, Environment& env,
    const Space& space, const RewardSpec& reward, const TuneOptions& opts,
    const std::function<void(size_t, const Trial&)>& on_trial = {});

/// `count` seeded rows of `x` held out as tuning queries, and the other rows (in order) as base.
struct HeldOut {
  index::Matrix base, queries;
};
HeldOut hold_out(const index::Matrix& x, size_t count, uint64_t seed);

}  // namespace wp::engine::tune
