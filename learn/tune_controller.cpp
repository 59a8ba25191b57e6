#include "learn/tune_controller.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "index/error.h"

namespace wp::learn {

using engine::tune::Config;
using engine::tune::Space;

struct TuneController::Impl : torch::nn::Module {
  const Space& space;
  /// Token ids: 0 = start; then one per type; then one per (type, choice, value).
  std::vector<std::vector<int64_t>> token_base;  ///< [type][choice] -> first token
  torch::nn::Embedding embed{nullptr};
  torch::nn::LSTMCell cell{nullptr};
  torch::nn::Linear type_head{nullptr};
  /// [type][choice]: a choice's head gives one free logit per value, then a slope and a
  /// curvature over the values' positions (every choice's values are ordered: sizes, widths,
  /// none < sq8), so that a reward for one value also moves its neighbours.
  std::vector<std::vector<torch::nn::Linear>> heads;
  std::vector<std::vector<torch::Tensor>> positions;  ///< [type][choice]: 2 x values
  std::unique_ptr<torch::optim::Adam> opt;
  std::mt19937_64 rng;

  Impl(const Space& s, const ControllerConfig& cfg) : space(s), rng(cfg.seed) {
    torch::manual_seed(cfg.seed);
    int64_t tokens = 1 + static_cast<int64_t>(s.kinds.size());
    for (size_t t = 0; t < s.kinds.size(); ++t) {
      std::vector<int64_t> base;
      std::vector<torch::nn::Linear> hs;
      std::vector<torch::Tensor> ps;
      for (size_t j = 0; j < s.choices[t].size(); ++j) {
        base.push_back(tokens);
        const int64_t n = static_cast<int64_t>(s.choices[t][j].values.size());
        tokens += n;
        hs.push_back(register_module("head_" + std::to_string(t) + "_" + std::to_string(j),
                                     torch::nn::Linear(cfg.hidden, n + 2)));
        // Positions of the (ordered) values in [-1, 1], and their squares.
        const torch::Tensor z = n > 1 ? torch::linspace(-1, 1, n) : torch::zeros({1});
        ps.push_back(torch::stack({z, z * z}));
      }
      token_base.push_back(base);
      heads.push_back(hs);
      positions.push_back(ps);
    }
    embed = register_module("embed", torch::nn::Embedding(tokens, cfg.hidden));
    cell = register_module("cell", torch::nn::LSTMCell(cfg.hidden, cfg.hidden));
    type_head = register_module(
        "type_head", torch::nn::Linear(cfg.hidden, static_cast<int64_t>(s.kinds.size())));
    opt = std::make_unique<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(cfg.lr));
  }

  /// log P(c) under the policy mixed with `explore`; adds the heads' entropy to `*entropy`.
  torch::Tensor log_prob(Config c, double explore, torch::Tensor* entropy);

  /// Walks the sequence of `c` (all its choices when `steps` is -1), calling `at(logits, i)` with
  /// each head's logits (i = -1 for the type) and feeding the picked token onward. When
  /// `sample` is set, picks are drawn (into c) instead of read from it.
  template <typename F>
  void walk(Config& c, bool sample, double explore, int steps, F&& at) {
    torch::Tensor x = embed(torch::zeros({1}, torch::kLong));
    std::tuple<torch::Tensor, torch::Tensor> hc = cell(x);
    const auto pick = [&](const torch::Tensor& logits) {
      const torch::Tensor p = torch::softmax(logits.detach(), -1).squeeze(0);
      const int64_t n = p.size(0);
      std::vector<double> w(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        w[static_cast<size_t>(i)] = (1 - explore) * p[i].item<double>() + explore / n;
      }
      return static_cast<size_t>(std::discrete_distribution<int64_t>(w.begin(), w.end())(rng));
    };
    const torch::Tensor type_logits = type_head(std::get<0>(hc));
    if (sample) c.type = pick(type_logits);
    at(type_logits, -1, c.type);
    if (steps == 0) return;
    int64_t token = 1 + static_cast<int64_t>(c.type);
    if (sample) c.picks.assign(space.choices[c.type].size(), 0);
    for (size_t j = 0; j < space.choices[c.type].size(); ++j) {
      if (steps >= 0 && static_cast<int>(j) >= steps) return;
      hc = cell(embed(torch::full({1}, token, torch::kLong)), hc);
      const torch::Tensor out = heads[c.type][j](std::get<0>(hc));
      const int64_t n = out.size(1) - 2;
      torch::Tensor logits = out.narrow(1, 0, n);
      logits = logits + torch::matmul(out.narrow(1, n, 2), positions[c.type][j]);
      if (sample) c.picks[j] = pick(logits);
      at(logits, static_cast<int>(j), c.picks[j]);
      token = token_base[c.type][j] + static_cast<int64_t>(c.picks[j]);
    }
  }
};

TuneController::TuneController(const Space& space, const ControllerConfig& cfg)
    : impl_(std::make_unique<Impl>(space, cfg)), cfg_(cfg), explore_(cfg.explore) {
  WP_THROW_IF_NOT(cfg.hidden >= 1 && cfg.lr > 0 && cfg.batch >= 1 && cfg.epochs >= 1 &&
                      cfg.clip > 0 && cfg.explore >= 0 && cfg.explore <= 1 &&
                      cfg.explore_decay > 0 && cfg.explore_decay <= 1 && cfg.baseline_decay >= 0 &&
                      cfg.baseline_decay < 1 && cfg.entropy >= 0 && cfg.draws >= 1,
                  "bad controller settings");
}

TuneController::~TuneController() = default;

Config TuneController::propose() {
  torch::NoGradGuard no_grad;
  Config c;
  for (int d = 0; d < cfg_.draws; ++d) {
    c = Config();
    impl_->walk(c, true, explore_, -1, [](const torch::Tensor&, int, size_t) {});
    if (proposed_.count(c) == 0) break;
  }
  proposed_.insert(c);
  return c;
}

torch::Tensor TuneController::Impl::log_prob(Config c, double explore, torch::Tensor* entropy) {
  torch::Tensor logp = torch::zeros({});
  walk(c, false, explore, -1, [&](const torch::Tensor& logits, int, size_t v) {
    const torch::Tensor p = torch::softmax(logits, -1).squeeze(0);
    const double n = static_cast<double>(p.size(0));
    const torch::Tensor mix = (1 - explore) * p + explore / n;
    logp = logp + torch::log(mix[static_cast<int64_t>(v)]);
    if (entropy) *entropy = *entropy - (p * torch::log(p + 1e-12)).sum();
  });
  return logp;
}

void TuneController::observe(const Config& c, double reward, bool /*feasible*/) {
  WP_THROW_INTERNAL_IF_NOT(engine::tune::valid(impl_->space, c), "observed an invalid config");
  proposed_.insert(c);
  double logp = 0;
  {
    torch::NoGradGuard no_grad;
    logp = impl_->log_prob(c, explore_, nullptr).item<double>();
  }
  batch_.push_back({c, reward, logp});
  if (batch_.size() >= static_cast<size_t>(cfg_.batch)) update();
}

void TuneController::update() {
  double mean = 0;
  for (const Sample& s : batch_) mean += s.reward / static_cast<double>(batch_.size());
  if (first_) {
    baseline_ = mean;
    double v = 0;
    for (const Sample& s : batch_) v += (s.reward - mean) * (s.reward - mean);
    variance_ = std::max(v / static_cast<double>(batch_.size()), 1e-6);
    first_ = false;
  }
  std::vector<float> advantage;
  for (const Sample& s : batch_) {
    advantage.push_back(static_cast<float>((s.reward - baseline_) / std::sqrt(variance_ + 1e-8)));
  }
  const auto n = static_cast<float>(batch_.size());
  for (int e = 0; e < cfg_.epochs; ++e) {
    torch::Tensor loss = torch::zeros({}), entropy = torch::zeros({});
    for (size_t i = 0; i < batch_.size(); ++i) {
      const torch::Tensor ratio =
          torch::exp(impl_->log_prob(batch_[i].config, explore_, &entropy) - batch_[i].logp);
      const torch::Tensor clipped = torch::clamp(ratio, 1 - cfg_.clip, 1 + cfg_.clip);
      loss = loss - torch::min(ratio * advantage[i], clipped * advantage[i]) / n;
    }
    loss = loss - static_cast<float>(cfg_.entropy) * entropy / n;
    impl_->opt->zero_grad();
    loss.backward();
    impl_->opt->step();
  }
  for (const Sample& s : batch_) {
    const double d = s.reward - baseline_;
    variance_ = cfg_.baseline_decay * variance_ + (1 - cfg_.baseline_decay) * d * d;
  }
  baseline_ = cfg_.baseline_decay * baseline_ + (1 - cfg_.baseline_decay) * mean;
  explore_ *= cfg_.explore_decay;
  batch_.clear();
  ++updates_;
}

std::vector<double> TuneController::probabilities(const Config& prefix, int choice) const {
  torch::NoGradGuard no_grad;
  Config c = prefix;
  std::vector<double> out;
  impl_->walk(c, false, 0, choice + 1, [&](const torch::Tensor& logits, int i, size_t) {
    if (i != choice) return;
    const torch::Tensor p = torch::softmax(logits, -1).squeeze(0);
    for (int64_t k = 0; k < p.size(0); ++k) out.push_back(p[k].item<double>());
  });
  return out;
}

void register_tune_controller() {
  engine::tune::register_strategy("controller", [](const Space& s, uint64_t seed) {
    ControllerConfig cfg;
    cfg.seed = seed;
    return std::make_unique<TuneController>(s, cfg);
  });
}

}  // namespace wp::learn
