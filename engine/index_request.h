#pragma once
/**
 * @file index_request.h
 * The body of `PUT /collections/{name}/index`, which `waypoint build --config FILE.json` and
 * `waypoint tune --out FILE.json` share: {"type": "hnsw", "m": 16, "ef_construct": 200, "ef": 64,
 * "quantization": "none"}, {"type": "lsh", "bits": 256, "tables": 8, "probes": 16, "candidates":
 * 200}, {"type": "graph", "m": 16, "ef_construct": 200, "alpha": 1.2, "ef": 64} (a RobustPruned
 * graph, index/graph_index.h robust_graph), {"type": "rl", "steps": 200, ...}, {"type": "flat"},
 * or {"type": "auto", "recall": 0.95} (tune, then build the best configuration). Errors name the
 * field.
 */
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/hnsw_index.h"
#include "index/lsh_index.h"

namespace wp::engine {

/// Child path for messages: join("searches[2]", "filter") == "searches[2].filter".
std::string join(const std::string& where, const std::string& key);
/// An optional non-negative integer within [lo, hi], `def` when absent or null.
size_t get_count(const nlohmann::json& obj, const char* key, const std::string& where, size_t def,
                 size_t lo, size_t hi);
/// An optional number within [lo, hi], `def` when absent or null.
double get_number(const nlohmann::json& obj, const char* key, const std::string& where, double def,
                  double lo, double hi);

/// `{"type": "auto"}`: what to tune for.
struct AutoTuneRequest {
  double recall = 0.95;  ///< recall@k target
  size_t k = 10;
  size_t trials = 30;       ///< configurations measured
  double max_minutes = 10;  ///< of tuning
  std::vector<std::string> types{"hnsw", "lsh", "graph"};
  double latency_budget_us = 0;  ///< p99; 0: none
};

struct IndexRequest {
  std::string type;  ///< "hnsw", "flat", "lsh", "graph", "rl" or "auto"
  index::HnswParams hnsw;
  index::LshParams lsh;
  double alpha = 1.2;                                 ///< "graph": RobustPrune's slack
  nlohmann::json learned = nlohmann::json::object();  ///< "rl": steps, max_minutes, target_recall
  AutoTuneRequest tune;                               ///< "auto"

  /// Parses a body; parameters it leaves out keep the given defaults (the collection's current
  /// ones). Throws UserError naming the field.
  static IndexRequest parse(const nlohmann::json& body, const index::HnswParams& hnsw,
                            const index::LshParams& lsh, double alpha = 1.2);
};

}  // namespace wp::engine
