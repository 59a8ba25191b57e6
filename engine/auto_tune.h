#pragma once
/**
 * @file auto_tune.h
 * The tuning a collection runs for `PUT /collections/{name}/index {"type": "auto"}`: on a
 * snapshot of its points, held-out points as queries with exact ground truth, a strategy (the
 * controller RNN when learn/ registered it, else coordinate search) chooses the fastest
 * configuration that reaches the recall target, which the collection then builds. Type "rl" (asked
 * for in `types`) trains a learnt graph per configuration through the learn module.
 */
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/index_request.h"
#include "index/index_spec.h"
#include "index/matrix.h"

namespace wp::engine::tune {

/// What the tuning chose and measured (GET .../index shows it).
struct AutoTuneOutcome {
  std::string strategy;
  size_t trials = 0;  ///< configurations measured
  double recall_target = 0;
  size_t k = 0;
  nlohmann::json config;       ///< the chosen configuration as an index request body
  double recall = 0, qps = 0;  ///< its measurement on the tuning queries
  bool feasible = false;       ///< whether it met the target (else: the closest miss)
  size_t queries = 0;          ///< tuning queries
};

struct AutoTuneResult {
  index::IndexSpec spec;  ///< what to build: `current` with the chosen kind and parameters
  nlohmann::json learned = nlohmann::json::object();  ///< rl: the learning job's parameters
  AutoTuneOutcome outcome;
};

/// The fewest points a collection needs to be tuned.
inline constexpr size_t kMinAutoTunePoints = 200;

/**
 * Tunes over `points` (at least kMinAutoTunePoints rows; up to 500 of them, 10%, are held out as
 * queries). `current` supplies the metric and every parameter the chosen configuration leaves
 * out. `progress` (optional) gets the fraction of trials done. Throws UserError when no
 * configuration could be measured.
 */
AutoTuneResult auto_tune(const index::Matrix& points, const index::IndexSpec& current,
                         const AutoTuneRequest& req,
                         const std::function<void(double)>& progress = {});

}  // namespace wp::engine::tune
