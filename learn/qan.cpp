#include "learn/qan.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "index/error.h"
#include "learn/matching.h"
#include "learn/tensor_values.h"

namespace wp::learn {

ReplayBuffer::ReplayBuffer(size_t capacity) : capacity_(capacity) {
  WP_THROW_IF_NOT(capacity >= 1, "replay capacity must be >= 1");
}

void ReplayBuffer::push(Transition t) {
  if (items_.size() < capacity_) {
    items_.push_back(std::move(t));
    return;
  }
  items_[next_] = std::move(t);  // overwrite the oldest
  next_ = (next_ + 1) % capacity_;
}

std::vector<const Transition*> ReplayBuffer::sample(size_t n, std::mt19937_64& rng) const {
  std::vector<const Transition*> out;
  if (items_.empty()) return out;
  std::uniform_int_distribution<size_t> pick(0, items_.size() - 1);
  for (size_t i = 0; i < n; ++i) out.push_back(&items_[pick(rng)]);
  return out;
}

void DqnConfig::validate() const {
  WP_THROW_IF_NOT(interval >= 1, "dqn interval must be >= 1");
  WP_THROW_IF_NOT(runs >= 1 && runs <= 100, "dqn runs must be in 1..100, got ", runs);
  WP_THROW_IF_NOT(lr_factor > 1, "dqn lr_factor must be > 1");
  WP_THROW_IF_NOT(min_lr > 0 && max_lr > min_lr, "dqn needs 0 < min_lr < max_lr");
  WP_THROW_IF_NOT(gamma >= 0 && gamma < 1, "dqn gamma must be in [0, 1)");
  WP_THROW_IF_NOT(epsilon_start >= 0 && epsilon_start <= 1 && epsilon_end >= 0 &&
                      epsilon_end <= 1 && epsilon_greedy >= 0 && epsilon_greedy <= 1,
                  "dqn epsilons must be in [0, 1]");
  WP_THROW_IF_NOT(replay >= 1 && batch >= 1, "dqn replay and batch must be >= 1");
  WP_THROW_IF_NOT(target_every >= 1 && updates_per_decision >= 0, "dqn target_every >= 1");
  WP_THROW_IF_NOT(q_lr > 0 && hidden >= 1, "dqn q_lr > 0 and hidden >= 1");
  WP_THROW_IF_NOT(meta_momentum >= 0 && meta_fraction >= 0 && meta_fraction <= 1,
                  "dqn meta_momentum >= 0, meta_fraction in [0, 1]");
}

namespace {
torch::nn::Sequential q_net(int64_t in, int64_t hidden, int64_t out) {
  return torch::nn::Sequential(torch::nn::Linear(in, hidden), torch::nn::ReLU(),
                               torch::nn::Linear(hidden, hidden), torch::nn::ReLU(),
                               torch::nn::Linear(hidden, out));
}
torch::Tensor row(const std::vector<float>& v) {
  return torch::tensor(v, torch::kFloat32).reshape({1, static_cast<int64_t>(v.size())});
}
}  // namespace

struct DqnAgent::Impl {
  DqnConfig cfg;
  size_t state_dim;
  int actions;
  mutable torch::nn::Sequential online{nullptr}, target{nullptr};
  std::unique_ptr<torch::optim::Adam> opt;
  ReplayBuffer replay;
  std::mt19937_64 rng;
  size_t updates = 0;

  Impl(size_t dim, int a, const DqnConfig& c)
      : cfg(c), state_dim(dim), actions(a), replay(c.replay), rng(c.seed + 31) {}
};

DqnAgent::DqnAgent(size_t state_dim, int actions, const DqnConfig& cfg)
    : impl_(std::make_unique<Impl>(state_dim, actions, cfg)) {
  cfg.validate();
  WP_THROW_IF_NOT(state_dim >= 1 && actions >= 2, "dqn needs a state and two actions");
  torch::manual_seed(cfg.seed + 17);
  Impl& m = *impl_;
  m.online = q_net(static_cast<int64_t>(state_dim), cfg.hidden, actions);
  m.target = q_net(static_cast<int64_t>(state_dim), cfg.hidden, actions);
  m.opt = std::make_unique<torch::optim::Adam>(m.online->parameters(),
                                               torch::optim::AdamOptions(cfg.q_lr));
  sync_target();
}

DqnAgent::~DqnAgent() = default;

void DqnAgent::sync_target() {
  torch::NoGradGuard no_grad;
  const auto src = impl_->online->parameters();
  auto dst = impl_->target->parameters();
  for (size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
}

std::vector<float> DqnAgent::q_values(const std::vector<float>& state) const {
  torch::NoGradGuard no_grad;
  return tensor_values<float>(impl_->online->forward(row(state)));
}

std::vector<float> DqnAgent::target_q_values(const std::vector<float>& state) const {
  torch::NoGradGuard no_grad;
  return tensor_values<float>(impl_->target->forward(row(state)));
}

int DqnAgent::act(const std::vector<float>& state, double epsilon) {
  Impl& m = *impl_;
  WP_THROW_IF_NOT(state.size() == m.state_dim, "dqn state has ", state.size(), " features, not ",
                  m.state_dim);
  std::uniform_real_distribution<double> u(0, 1);
  if (u(m.rng) < epsilon) {
    return std::uniform_int_distribution<int>(0, m.actions - 1)(m.rng);
  }
  const std::vector<float> q = q_values(state);
  return static_cast<int>(std::max_element(q.begin(), q.end()) - q.begin());
}

void DqnAgent::observe(Transition t) {
  WP_THROW_IF_NOT(t.state.size() == impl_->state_dim && t.next_state.size() == impl_->state_dim,
                  "transition has the wrong state size");
  WP_THROW_IF_NOT(t.action >= 0 && t.action < impl_->actions, "action out of range");
  impl_->replay.push(std::move(t));
}

double DqnAgent::update() {
  Impl& m = *impl_;
  const auto batch = m.replay.sample(m.cfg.batch, m.rng);
  if (batch.empty()) return 0;
  const int64_t b = static_cast<int64_t>(batch.size()), d = static_cast<int64_t>(m.state_dim);
  std::vector<float> s, s2, r, done;
  std::vector<int64_t> a;
  for (const Transition* t : batch) {
    s.insert(s.end(), t->state.begin(), t->state.end());
    s2.insert(s2.end(), t->next_state.begin(), t->next_state.end());
    r.push_back(t->reward);
    done.push_back(t->done ? 1.0f : 0.0f);
    a.push_back(t->action);
  }
  const torch::Tensor st = torch::tensor(s).reshape({b, d}),
                      st2 = torch::tensor(s2).reshape({b, d});
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor next = std::get<0>(m.target->forward(st2).max(1));
    target = torch::tensor(r) + m.cfg.gamma * (1 - torch::tensor(done)) * next;
  }
  const torch::Tensor q =
      m.online->forward(st).gather(1, torch::tensor(a, torch::kInt64).unsqueeze(1)).squeeze(1);
  const torch::Tensor loss = torch::nn::functional::smooth_l1_loss(q, target);
  m.opt->zero_grad();
  loss.backward();
  m.opt->step();
  if (++m.updates % static_cast<size_t>(m.cfg.target_every) == 0) sync_target();
  return loss.item<double>();
}

size_t DqnAgent::updates() const {
  return impl_->updates;
}
const ReplayBuffer& DqnAgent::replay() const {
  return impl_->replay;
}

// ---- QanController -------------------------------------------------------------------------

namespace {
constexpr size_t kRecent = 3;  ///< interval mean losses in the state
constexpr size_t kStateDim = 4 + 1 + kRecent + 2;
}  // namespace

QanController::QanController(const DqnConfig& cfg, size_t classes)
    : cfg_(cfg), classes_(classes), agent_(kStateDim, kActions, cfg), rng_(cfg.seed + 5) {}

QanController::~QanController() = default;

double QanController::epsilon() const {
  if (run_ >= cfg_.runs - 1) return cfg_.runs == 1 ? cfg_.epsilon_start : cfg_.epsilon_greedy;
  const int learning = std::max(1, cfg_.runs - 2);
  const double t = static_cast<double>(run_) / learning;
  return cfg_.epsilon_start + (cfg_.epsilon_end - cfg_.epsilon_start) * std::min(1.0, t);
}

std::vector<float> QanController::state(const MatchingTrainer& trainer, size_t step) const {
  std::vector<float> s;
  for (double v : trainer.first_layer_stats()) s.push_back(static_cast<float>(v * 10));
  s.push_back(static_cast<float>(std::log10(trainer.learning_rate()) + 3));
  for (size_t i = 0; i < kRecent; ++i) {
    s.push_back(i < recent_.size() ? static_cast<float>(recent_[recent_.size() - 1 - i]) : 0.0f);
  }
  const double trend = recent_.size() >= 2 ? recent_.back() - recent_[recent_.size() - 2] : 0.0;
  s.push_back(static_cast<float>(trend * 10));
  s.push_back(static_cast<float>(steps_ ? static_cast<double>(step) / steps_ : 0.0));
  return s;
}

void QanController::apply(int action, MatchingTrainer& trainer) {
  const int lr_move = action % 3;  // 0 up, 1 keep, 2 down
  const bool hard = action >= 3;
  double lr = trainer.learning_rate();
  if (lr_move == 0) lr *= cfg_.lr_factor;
  if (lr_move == 2) lr /= cfg_.lr_factor;
  trainer.set_learning_rate(std::clamp(lr, cfg_.min_lr, cfg_.max_lr));
  if (!hard) {
    trainer.set_class_mix({});
    return;
  }
  // Weighted toward the classes whose queries lost most recently: w ~ loss^2 (uniform if unknown).
  std::vector<double> w = trainer.class_losses();
  double sum = 0;
  for (double& v : w) sum += (v = v * v);
  trainer.set_class_mix(sum > 0 ? w : std::vector<double>{});
}

void QanController::begin_run(int run, size_t steps, MatchingTrainer& trainer) {
  run_ = run;
  steps_ = steps;
  action_ = -1;
  interval_loss_ = prev_interval_loss_ = 0;
  interval_count_ = 0;
  recent_.clear();
  prev_snapshots_ = std::move(snapshots_);
  snapshots_.clear();
  trainer.set_class_mix({});
}

bool QanController::before_step(size_t step, double last_loss, MatchingTrainer& trainer,
                                QanDecision* decision) {
  if (step > 0) {
    interval_loss_ += last_loss;
    ++interval_count_;
  }
  if (step % static_cast<size_t>(cfg_.interval) != 0) return false;
  double reward = 0;
  if (interval_count_ > 0) {
    const double mean = interval_loss_ / static_cast<double>(interval_count_);
    if (prev_interval_loss_ > 0) {
      reward = (prev_interval_loss_ - mean) / prev_interval_loss_ * 10;  // relative drop
    }
    recent_.push_back(mean);
    prev_interval_loss_ = mean;
    interval_loss_ = 0;
    interval_count_ = 0;
  }
  const std::vector<float> s = state(trainer, step);
  if (action_ >= 0) {
    agent_.observe({state_, action_, static_cast<float>(reward), s, false});
    for (int i = 0; i < cfg_.updates_per_decision; ++i) agent_.update();
  }
  const double eps = epsilon();
  const int a = agent_.act(s, eps);
  apply(a, trainer);
  state_ = s;
  action_ = a;
  // Meta-momentum: early in the run, pull toward the previous run's weights at this decision.
  const size_t k = step / static_cast<size_t>(cfg_.interval);
  if (cfg_.meta_momentum > 0) snapshots_.push_back(trainer.flat_parameters());
  const bool early = static_cast<double>(step) < cfg_.meta_fraction * static_cast<double>(steps_);
  if (early && k < prev_snapshots_.size()) {
    trainer.set_anchor(prev_snapshots_[k], cfg_.meta_momentum);
  } else {
    trainer.set_anchor({}, 0);
  }
  if (decision) {
    decision->run = run_;
    decision->step = step;
    decision->action = a;
    decision->lr = trainer.learning_rate();
    decision->hard_mix = a >= 3;
    decision->reward = reward;
    decision->epsilon = eps;
  }
  return true;
}

void QanController::end_run(MatchingTrainer& trainer) {
  if (action_ < 0) return;
  double reward = 0;
  if (interval_count_ > 0 && prev_interval_loss_ > 0) {
    const double mean = interval_loss_ / static_cast<double>(interval_count_);
    reward = (prev_interval_loss_ - mean) / prev_interval_loss_ * 10;
  }
  agent_.observe({state_, action_, static_cast<float>(reward), state(trainer, steps_), true});
  for (int i = 0; i < cfg_.updates_per_decision; ++i) agent_.update();
  trainer.set_anchor({}, 0);
  action_ = -1;
}

}  // namespace wp::learn
