#pragma once
/**
 * @file learned_index.h
 * Index types whose build needs learn/ (LibTorch): the engine knows them only through a builder
 * that learn/ registers: the learn module does when it is loaded (learn_module.h; `waypoint` built
 * with WAYPOINT_WITH_TORCH loads it the first time such a type is asked for), a test binary that
 * links learn/ calls its register function. engine/ and http/ never depend on LibTorch. Without a
 * builder the type is refused with a clear error.
 */
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/hnsw_index.h"
#include "index/index.h"
#include "index/index_spec.h"
#include "index/matrix.h"
#include "index/param_range.h"

namespace wp::engine {

/// The learning job's parameters in a request for kind "rl" (index_request.h), passed to the
/// builder in LearnedBuildRequest::params.
inline constexpr index::ParamRange kRlSteps{
    "steps", "steps", "steps", 1, 100000, true, "TRPO steps of the pruning agent"};
inline constexpr index::ParamRange kRlMaxMinutes{"max_minutes", "max_minutes", "max-minutes", 1e-3,
                                                 24 * 60,       false,         "of training"};
inline constexpr index::ParamRange kRlTargetRecall{
    "target_recall",
    "target_recall",
    "target-recall",
    1e-3,
    1,
    false,
    "validation keeps the step with the fewest distance computations at this recall"};

struct LearnedBuildRequest {
  const index::Matrix* vectors = nullptr;               ///< the points, one per row
  const std::vector<index::label_t>* labels = nullptr;  ///< their ids in the index
  index::Metric metric = index::Metric::kL2;
  index::HnswParams hnsw;                ///< the collection's graph parameters
  nlohmann::json params;                 ///< the request's type-specific parameters
  std::function<void(double)> progress;  ///< 0..1
};

using LearnedBuilder = std::function<std::unique_ptr<index::Index>(const LearnedBuildRequest&)>;

/// Registers (or replaces) the builder of `type`; call before serving.
void register_learned_builder(const std::string& type, LearnedBuilder builder);
/// The builder of `type` (the learn module loaded first when none is registered and one is set),
/// or nullptr.
const LearnedBuilder* learned_builder(const std::string& type);

/// Builds the learned index `spec` asks for (its kind's builder, its metric and HNSW parameters,
/// the request's `params`) over `vectors`, row i labelled labels[i]. UserError naming the type
/// when no builder is registered or loadable.
std::unique_ptr<index::Index> build_learned_index(const index::IndexSpec& spec,
                                                  const nlohmann::json& params,
                                                  const index::Matrix& vectors,
                                                  const std::vector<index::label_t>& labels,
                                                  std::function<void(double)> progress = {});

}  // namespace wp::engine
