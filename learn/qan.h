#pragma once
/**
 * @file qan.h
 * A DQN that steers a MatchingTrainer as it runs (a "Q-learning approach to training networks"):
 * every `interval` training steps it observes the trainer (statistics of the first layer's
 * weights, the learning rate, the recent losses, progress), picks an action -- raise, lower or
 * keep the learning rate, crossed with the class mix of the next episodes (uniform, or weighted
 * toward the classes with the highest recent loss) -- and is rewarded by the relative drop of the
 * training loss over the next interval. Replay buffer, target network, epsilon-greedy.
 *
 * Learning happens over several training runs of the same network from the same initial weights:
 * the first runs explore (epsilon decays across them), the last acts greedily and is the one kept.
 * "Meta-momentum": during the first part of every run after the first, the weights are pulled
 * toward the previous run's weights at the same decision, so that states (and rewards) of
 * different runs stay comparable while Q is learnt.
 *
 * Plain header: LibTorch stays in qan.cpp.
 */
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <vector>

namespace wp::learn {

class MatchingTrainer;

/// One observed transition.
struct Transition {
  std::vector<float> state;
  int action = 0;
  float reward = 0;
  std::vector<float> next_state;
  bool done = false;
};

/// A ring of the last `capacity` transitions, sampled uniformly.
class ReplayBuffer {
 public:
  explicit ReplayBuffer(size_t capacity);
  void push(Transition t);
  size_t size() const { return items_.size(); }
  size_t capacity() const { return capacity_; }
  /// `n` transitions drawn uniformly with replacement (empty buffer: none).
  std::vector<const Transition*> sample(size_t n, std::mt19937_64& rng) const;
  const Transition& at(size_t i) const { return items_.at(i); }

 private:
  size_t capacity_;
  size_t next_ = 0;  ///< where the next push goes once full
  std::vector<Transition> items_;
};

struct DqnConfig {
  int interval = 10;       ///< trainer steps per decision
  int runs = 3;            ///< training runs; the last acts greedily and is kept
  double lr_factor = 1.5;  ///< the learning rate is multiplied or divided by this
  double min_lr = 1e-5, max_lr = 0.1;
  double gamma = 0.9;           ///< discount per decision
  double epsilon_start = 1.0;   ///< first run
  double epsilon_end = 0.1;     ///< last exploring run
  double epsilon_greedy = 0.0;  ///< the kept (last) run
  size_t replay = 10000, batch = 32;
  int updates_per_decision = 4;
  int target_every = 25;  ///< gradient updates between target-network syncs
  double q_lr = 1e-3;
  int hidden = 64;
  double meta_momentum = 1e-3;  ///< mu of the pull toward the previous run's weights
  double meta_fraction = 0.3;   ///< of each run's steps during which the pull applies
  uint64_t seed = 0;

  void validate() const;
};

/// Q-network, target network, replay and epsilon-greedy action choice.
class DqnAgent {
 public:
  DqnAgent(size_t state_dim, int actions, const DqnConfig& cfg);
  ~DqnAgent();
  DqnAgent(const DqnAgent&) = delete;
  DqnAgent& operator=(const DqnAgent&) = delete;

  /// Epsilon-greedy: a uniform action with probability epsilon, else argmax Q.
  int act(const std::vector<float>& state, double epsilon);
  void observe(Transition t);
  /// One gradient step on a replay batch (Huber loss against the target network's bootstrap);
  /// syncs the target network every target_every updates. Returns the loss (0: buffer empty).
  double update();
  void sync_target();
  std::vector<float> q_values(const std::vector<float>& state) const;
  std::vector<float> target_q_values(const std::vector<float>& state) const;
  size_t updates() const;
  const ReplayBuffer& replay() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// What the controller did at one decision (for the CSV log).
struct QanDecision {
  int run = 0;
  size_t step = 0;  ///< trainer step at which the action took effect
  int action = 0;
  double lr = 0;
  bool hard_mix = false;
  double reward = 0;  ///< of the previous decision (known now)
  double epsilon = 0;
};

/**
 * The controller of one training run at a time. begin_run() before a run's first step,
 * before_step() before every trainer step (decides every `interval` steps), end_run() after its
 * last step (the terminal transition).
 */
class QanController {
 public:
  QanController(const DqnConfig& cfg, size_t classes);
  ~QanController();

  static constexpr int kActions = 6;  ///< {lr up, keep, down} x {uniform, hard classes}
  /// Starts run `run` (0-based) of `steps` trainer steps at the trainer's learning rate.
  void begin_run(int run, size_t steps, MatchingTrainer& trainer);
  /// Records the last step's training loss; at a decision point picks and applies an action.
  /// Returns true when it decided (`decision` then says what).
  bool before_step(size_t step, double last_loss, MatchingTrainer& trainer, QanDecision* decision);
  void end_run(MatchingTrainer& trainer);
  double epsilon() const;
  const DqnAgent& agent() const { return agent_; }

  /// The state features of the trainer now.
  std::vector<float> state(const MatchingTrainer& trainer, size_t step) const;

 private:
  void apply(int action, MatchingTrainer& trainer);

  DqnConfig cfg_;
  size_t classes_;
  DqnAgent agent_;
  std::mt19937_64 rng_;
  int run_ = 0;
  size_t steps_ = 0;
  std::vector<float> state_;  ///< at the last decision
  int action_ = -1;
  double interval_loss_ = 0, prev_interval_loss_ = 0;
  size_t interval_count_ = 0;
  std::vector<double> recent_;  ///< the last interval means
  /// Weights at each decision of the previous run, and of this one (meta-momentum).
  std::vector<std::vector<float>> prev_snapshots_, snapshots_;
};

}  // namespace wp::learn
