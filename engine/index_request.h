#pragma once
/**
 * @file index_request.h
 * The body of `PUT /collections/{name}/index`, which `waypoint build --config FILE.json` and
 * `waypoint tune --out FILE.json` share: {"type": KIND, ...the keys that kind takes} with KIND one
 * of the index registry's (index/index_spec.h: hnsw {m, ef_construct, ef, quantization}, graph
 * {...and alpha}, rl {...and steps, max_minutes, target_recall}, lsh {bits, tables, key_bits,
 * probes, candidates}, flat {}), or {"type": "auto", "recall": 0.95, ...} (tune, then build the
 * best configuration). Keys left out keep the current configuration's values. Errors name the
 * field.
 */
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/index_spec.h"
#include "index/param_range.h"

namespace wp::engine {

/// `{"type": "auto"}`: what to tune for.
struct AutoTuneRequest {
  double recall = 0.95;  ///< recall@k target
  size_t k = 10;
  size_t trials = 30;       ///< configurations measured
  double max_minutes = 10;  ///< of tuning
  /// The kinds tuned; "rl" (a learning job per configuration, minutes each) only when asked.
  std::vector<std::string> types{"hnsw", "lsh", "graph"};
  double latency_budget_us = 0;  ///< p99; 0: none

  static constexpr index::ParamRange kRecall{
      "recall", "recall", "recall", 0.01, 1, false, "the recall@k target"};
  static constexpr index::ParamRange kK{"k", "k", "k", 1, 1000, true, "neighbours per query"};
  static constexpr index::ParamRange kTrials{
      "trials", "trials", "trials", 1, 10000, true, "configurations measured"};
  static constexpr index::ParamRange kMaxMinutes{"max_minutes", "max_minutes", "max-minutes", 1e-3,
                                                 24 * 60,       false,         "of tuning"};
  static constexpr index::ParamRange kLatencyBudget{"latency_budget_us",
                                                    "latency_budget_us",
                                                    "latency-budget-us",
                                                    0,
                                                    1e9,
                                                    false,
                                                    "p99 budget in microseconds, 0: none"};
};

struct IndexRequest {
  bool tune = false;      ///< type "auto": tune first (auto_tune), then build the best
  index::IndexSpec spec;  ///< what to build (the current configuration, changed by the body)
  /// rl: the learning job's parameters (steps, max_minutes, target_recall; learned_index.h).
  nlohmann::json learned = nlohmann::json::object();
  AutoTuneRequest auto_tune;  ///< type "auto"

  /// Parses a body; parameters it leaves out keep `current`'s values (the collection's current
  /// configuration, or defaults). Throws UserError naming the field.
  static IndexRequest parse(const nlohmann::json& body, const index::IndexSpec& current);
};

/// The request keys of `spec`'s kind that are index parameters, with their values (GET
/// /collections/{name}/index; the learning job's keys are not index parameters).
nlohmann::json index_params_json(const index::IndexSpec& spec);

}  // namespace wp::engine
