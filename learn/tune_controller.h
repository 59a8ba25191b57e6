#pragma once
/**
 * @file tune_controller.h
 * The controller RNN of `waypoint tune` (Zoph & Le, 2016, brought to index configuration): an
 * LSTM cell steps once per choice; its first input is a learnt start token, each next input the
 * embedding of the previous choice's value; one softmax head per choice (the index type first,
 * then that type's own choices). A configuration is sampled from the heads, mixed with a uniform
 * exploration that decays, and drawn again while it is one the controller has already proposed
 * (a trial costs a build; a repeat teaches nothing new). Rewards are gathered in batches of
 * `batch` configurations; each batch trains the policy with a few epochs of the clipped
 * policy-gradient objective (PPO, as Zoph et al. 2018 train their NAS controller) on advantages
 * against an exponential-moving-average baseline, divided by a running deviation of the rewards,
 * plus an entropy bonus. Plain header: LibTorch stays in tune_controller.cpp.
 */
#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include "engine/tune.h"

namespace wp::learn {

struct ControllerConfig {
  int hidden = 32;  ///< LSTM width (and embedding width)
  double lr = 0.05;
  int batch = 4;                ///< rewards per policy update
  int epochs = 4;               ///< gradient steps per batch
  double clip = 0.2;            ///< PPO's ratio clip
  double baseline_decay = 0.8;  ///< EMA of the batches' mean rewards
  double entropy = 0.05;        ///< weight of the entropy bonus
  double explore = 0.3;         ///< uniform mixture at the first proposal
  double explore_decay = 0.8;   ///< per update
  int draws = 200;              ///< samples per proposal to find an unproposed configuration
  uint64_t seed = 0;
};

class TuneController : public engine::tune::Strategy {
 public:
  TuneController(const engine::tune::Space& space, const ControllerConfig& cfg);
  ~TuneController() override;

  /// A sample that was not proposed before, when `draws` samples find one.
  engine::tune::Config propose() override;
  /// Adds (c, reward) to the batch; a full batch updates the policy.
  void observe(const engine::tune::Config& c, double reward, bool feasible) override;

  /// The policy's probability of each value of choice `choice` of `type` (choice -1: the type),
  /// greedy on the earlier choices of `prefix`; no exploration mixed in.
  std::vector<double> probabilities(const engine::tune::Config& prefix, int choice) const;
  double exploration() const { return explore_; }
  double baseline() const { return baseline_; }
  size_t updates() const { return updates_; }

 private:
  struct Sample {
    engine::tune::Config config;
    double reward;
    double logp;  ///< under the policy that sampled it
  };
  void update();

  struct Impl;
  std::unique_ptr<Impl> impl_;
  ControllerConfig cfg_;
  double explore_;
  double baseline_ = 0, variance_ = 1;
  bool first_ = true;
  size_t updates_ = 0;
  std::set<engine::tune::Config> proposed_;
  std::vector<Sample> batch_;
};

/// Registers the controller as tune strategy "controller" (called at start-up when LibTorch is in).
void register_tune_controller();

}  // namespace wp::learn
