#pragma once
/**
 * @file tune_strategy.h
 * How the tuner searches: a Strategy proposes configurations and is told their reward. Built in:
 * "random" (uniform, without repeats) and "coordinate" (FAISS-AutoTune-style coordinate search);
 * the controller RNN ("controller", learn/tune_controller.h, LibTorch) registers itself when learn/
 * is linked. run_strategies runs several in lockstep on one Environment.
 */
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tune_environment.h"
#include "engine/tune_space.h"

namespace wp::engine::tune {

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
/// The factory of `name` (the learn module loaded first when none is registered and one is set,
/// learn_module.h), or nullptr (also when the module cannot be loaded).
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

}  // namespace wp::engine::tune
