#pragma once
/**
 * @file tune_controller.h
 * The controller RNN of `waypoint tune` (Zoph & Le, 2016, brought to index configuration): an
 * LSTM cell steps once per choice; its first input is a learnt start token, each next input the
 * embedding of the previous choice's value; one softmax head per choice (the index type first,
 * then that type's own choices). A configuration is sampled from the heads, mixed with a uniform
 * exploration that decays; REINFORCE with an exponential-moving-average baseline (advantages
 * divided by a running deviation of the rewards) and an entropy bonus trains it after every
 * reward. Plain header: LibTorch stays in tune_controller.cpp.
 */
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/tune.h"

namespace wp::learn {

struct ControllerConfig {
  int hidden = 32;  ///< LSTM width (and embedding width)
  double lr = 0.05;
  double baseline_decay = 0.8;  ///< EMA of rewards
  double entropy = 0.01;        ///< weight of the entropy bonus
  double explore = 0.3;         ///< uniform mixture at the first proposal
  double explore_decay = 0.93;  ///< per update
  uint64_t seed = 0;
};

class TuneController : public engine::tune::Strategy {
 public:
  TuneController(const engine::tune::Space& space, const ControllerConfig& cfg);
  ~TuneController() override;

  engine::tune::Config propose() override;
  /// A REINFORCE step on the configuration's log-probability.
  void observe(const engine::tune::Config& c, double reward) override;

  /// The policy's probability of each value of choice `choice` of `type` (choice -1: the type),
  /// greedy on the earlier choices of `prefix`; no exploration mixed in.
  std::vector<double> probabilities(const engine::tune::Config& prefix, int choice) const;
  double exploration() const { return explore_; }
  double baseline() const { return baseline_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ControllerConfig cfg_;
  double explore_;
  double baseline_ = 0, variance_ = 1;
  bool first_ = true;
};

/// Registers the controller as tune strategy "controller" (called at start-up when LibTorch is in).
void register_tune_controller();

}  // namespace wp::learn
