// MatchingTrainer's training: the network, episode sampling, optimiser steps with their
// learning-rate, class-mix and anchor controls, and the training state's bytes. Evaluation and
// export are in matching_eval.cpp.
#include "learn/matching.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "index/error.h"
#include "learn/checkpoint.h"
#include "learn/matching_impl.h"
#include "learn/tensor_values.h"

namespace wp::learn {

namespace F = torch::nn::functional;

void MatchingConfig::validate() const {
  WP_THROW_IF_NOT(encoder == "mlp" || encoder == "conv", "encoder must be mlp or conv, got '",
                  encoder, "'");
  WP_THROW_IF_NOT(hidden.size() <= 8, "hidden: at most 8 layers");
  for (int h : hidden) WP_THROW_IF_NOT(h >= 1 && h <= 8192, "hidden width out of range: ", h);
  WP_THROW_IF_NOT(embed >= 1 && embed <= 8192, "embed must be in 1..8192, got ", embed);
  WP_THROW_IF_NOT(n_way >= 2 && n_way <= 1000, "n_way must be in 2..1000, got ", n_way);
  WP_THROW_IF_NOT(k_shot >= 1 && k_shot <= 1000, "k_shot must be in 1..1000, got ", k_shot);
  WP_THROW_IF_NOT(queries >= 1 && queries <= 1000, "queries must be in 1..1000, got ", queries);
  WP_THROW_IF_NOT(episodes_per_step >= 1, "episodes_per_step must be >= 1");
  WP_THROW_IF_NOT(lr > 0 && lr < 10, "lr must be in (0, 10), got ", lr);
  WP_THROW_IF_NOT(weight_decay >= 0 && weight_decay < 1, "weight_decay must be in [0, 1)");
  WP_THROW_IF_NOT(dropout >= 0 && dropout < 1, "dropout must be in [0, 1), got ", dropout);
  WP_THROW_IF_NOT(scale > 0, "scale must be > 0");
  WP_THROW_IF_NOT(score == "cosine" || score == "bits", "score must be cosine or bits, got '",
                  score, "'");
  WP_THROW_IF_NOT(planes == "learned" || planes == "fixed" || planes == "ovr",
                  "planes must be learned, fixed or ovr, got '", planes, "'");
  WP_THROW_IF_NOT(relax == "sigmoid" || relax == "tanh" || relax == "ste",
                  "relax must be sigmoid, tanh or ste, got '", relax, "'");
  WP_THROW_IF_NOT(bits >= 1 && bits <= 65536, "bits must be in 1..65536, got ", bits);
  WP_THROW_IF_NOT(beta > 0, "beta must be > 0");
  WP_THROW_IF_NOT(ovr_every >= 1, "ovr_every must be >= 1");
  WP_THROW_IF_NOT(standardise == "feature" || standardise == "global",
                  "standardise must be feature or global, got '", standardise, "'");
}

namespace detail {

Episode sample_episode(const std::map<int, std::vector<int64_t>>& by_class, int n_way, int k_shot,
                       int queries, const std::vector<double>& weights, std::mt19937_64& rng) {
  std::vector<int> classes;
  std::vector<double> w;
  size_t i = 0;
  for (const auto& [c, rows] : by_class) {
    if (rows.size() >= static_cast<size_t>(k_shot + queries)) {
      classes.push_back(c);
      w.push_back(weights.empty() ? 1.0 : std::max(weights[i], 1e-6));
    }
    ++i;
  }
  WP_THROW_IF_NOT(classes.size() >= static_cast<size_t>(n_way), "an episode needs ", n_way,
                  " classes with ", k_shot + queries, " examples each; the data has ",
                  classes.size());
  Episode e;
  for (int c = 0; c < n_way; ++c) {
    std::discrete_distribution<size_t> pick_class(w.begin(), w.end());
    const size_t j = pick_class(rng);
    e.classes.push_back(classes[j]);
    classes.erase(classes.begin() + static_cast<std::ptrdiff_t>(j));
    w.erase(w.begin() + static_cast<std::ptrdiff_t>(j));
  }
  for (int c = 0; c < n_way; ++c) {
    std::vector<int64_t> rows = by_class.at(e.classes[c]);
    // Partial Fisher-Yates: the first K + Q rows are a uniform sample.
    for (int r = 0; r < k_shot + queries; ++r) {
      std::uniform_int_distribution<size_t> pick(r, rows.size() - 1);
      std::swap(rows[r], rows[pick(rng)]);
    }
    for (int r = 0; r < k_shot; ++r) {
      e.support.push_back(rows[r]);
      e.support_label.push_back(c);
    }
    for (int r = 0; r < queries; ++r) {
      e.query.push_back(rows[k_shot + r]);
      e.query_label.push_back(c);
    }
  }
  return e;
}

std::map<int, std::vector<int64_t>> rows_by_class(const LabelledSet& s) {
  std::map<int, std::vector<int64_t>> m;
  for (size_t i = 0; i < s.y.size(); ++i) m[s.y[i]].push_back(static_cast<int64_t>(i));
  return m;
}

torch::Tensor ridge_separators(const torch::Tensor& x, const torch::Tensor& y, int64_t classes,
                               double lambda) {
  const torch::Tensor xb = torch::cat({x, torch::ones({x.size(0), 1})}, 1);
  const torch::Tensor targets = torch::one_hot(y, classes).to(torch::kFloat32) * 2 - 1;
  const int64_t n = xb.size(0), e = xb.size(1);
  if (n < e) {
    // Dual form: W = X^T (X X^T + lambda I)^-1 Y, an n x n solve.
    const torch::Tensor g = xb.matmul(xb.t()) + lambda * torch::eye(n);
    return xb.t().matmul(torch::linalg_solve(g, targets));
  }
  const torch::Tensor g = xb.t().matmul(xb) + lambda * torch::eye(e);
  return torch::linalg_solve(g, xb.t().matmul(targets));
}

}  // namespace detail

std::vector<torch::Tensor> MatchingTrainer::Impl::trained_parameters() const {
  std::vector<torch::Tensor> p = net->parameters();
  if (cfg.score == "bits" && cfg.planes == "learned") {
    p.push_back(planes);
    p.push_back(offsets);
  }
  return p;
}

torch::Tensor MatchingTrainer::Impl::score(const torch::Tensor& fq, const torch::Tensor& fs) const {
  if (cfg.score == "cosine") {
    return F::normalize(fq, F::NormalizeFuncOptions().dim(1))
        .matmul(F::normalize(fs, F::NormalizeFuncOptions().dim(1)).t());
  }
  torch::Tensor aq = project(fq), as = project(fs);
  // Each plane's projections in units of their deviation over the episode (signs unchanged).
  const torch::Tensor dev = torch::cat({aq, as}, 0).std(0).detach() + 1e-6;
  aq = aq / dev * cfg.beta;
  as = as / dev * cfg.beta;
  const double p = static_cast<double>(aq.size(1));
  if (cfg.relax == "sigmoid") {
    // Mean over planes of 2 sigmoid(a_q a_s) - 1: [Q, 1, P] * [1, S, P].
    return (2 * torch::sigmoid(aq.unsqueeze(1) * as.unsqueeze(0)) - 1).mean(2);
  }
  torch::Tensor hq = torch::tanh(aq), hs = torch::tanh(as);
  if (cfg.relax == "ste") {
    hq = hq + (torch::sign(aq) - hq).detach();
    hs = hs + (torch::sign(as) - hs).detach();
  }
  return hq.matmul(hs.t()) / p;
}

std::pair<torch::Tensor, torch::Tensor> MatchingTrainer::Impl::attention(
    const torch::Tensor& fq, const torch::Tensor& fs, const detail::Episode& e) const {
  const torch::Tensor att = torch::softmax(cfg.scale * score(fq, fs), 1);  // [Q, S]
  const torch::Tensor onehot =
      torch::one_hot(detail::ids(e.support_label), static_cast<int64_t>(e.classes.size()))
          .to(torch::kFloat32);
  const torch::Tensor p = att.matmul(onehot);  // [Q, N]
  const torch::Tensor loss = F::nll_loss(torch::log(p + 1e-8), detail::ids(e.query_label),
                                         F::NLLLossFuncOptions().reduction(torch::kNone));
  return {loss, p};
}

std::pair<torch::Tensor, torch::Tensor> MatchingTrainer::Impl::episode(
    const torch::Tensor& inputs, const detail::Episode& e) const {
  return attention(forward(inputs.index_select(0, detail::ids(e.query))),
                   forward(inputs.index_select(0, detail::ids(e.support))), e);
}

void MatchingTrainer::Impl::refit_ovr() {
  torch::NoGradGuard no_grad;
  net->eval();
  std::vector<int64_t> rows, labels;
  for (size_t c = 0; c < train_classes.size(); ++c) {
    const auto& r = by_class.at(train_classes[c]);
    const size_t take = std::min<size_t>(100, r.size());
    for (size_t i = 0; i < take; ++i) {
      rows.push_back(r[i * r.size() / take]);
      labels.push_back(static_cast<int64_t>(c));
    }
  }
  const torch::Tensor f = forward(x.index_select(0, detail::ids(rows)));
  const torch::Tensor w = detail::ridge_separators(f, detail::ids(labels),
                                                   static_cast<int64_t>(train_classes.size()), 1.0);
  planes = w.slice(0, 0, f.size(1)).t().contiguous();
  offsets = w[f.size(1)].contiguous();
}

torch::Tensor MatchingTrainer::Impl::flat() const {
  std::vector<torch::Tensor> parts;
  for (const auto& p : trained_parameters()) parts.push_back(p.detach().reshape({-1}));
  return torch::cat(parts);
}

MatchingTrainer::MatchingTrainer(const LabelledSet& train, const MatchingConfig& cfg)
    : impl_(std::make_unique<Impl>()) {
  cfg.validate();
  WP_THROW_IF_NOT(train.x.n == train.y.size() && train.x.n > 0, "training set is empty");
  Impl& m = *impl_;
  m.cfg = cfg;
  m.train = train;
  m.train_classes = train.classes();
  m.by_class = detail::rows_by_class(train);
  m.class_loss.assign(m.train_classes.size(), 0.0);
  m.rng.seed(cfg.seed);
  torch::manual_seed(cfg.seed);
  const torch::Tensor raw = detail::to_tensor(train.x);
  m.mean = raw.mean(0);
  // Per-feature deviations floored at their mean: a feature that never varies in the training
  // classes (a corner pixel of clothes) must not be blown up where unseen classes use it (shoes).
  const torch::Tensor sd = raw.std(0);
  m.inv_std =
      cfg.standardise == "global"
          ? torch::full_like(sd, 1.0 / ((raw - m.mean).pow(2).mean().sqrt().item<double>() + 1e-6))
          : 1.0 / torch::clamp_min(sd, sd.mean().item<double>() + 1e-6);
  m.x = m.standardise(raw);
  m.net = torch::nn::Sequential();
  const int64_t d = static_cast<int64_t>(train.x.d);
  int64_t in = d;
  if (cfg.encoder == "conv") {
    m.side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(d))));
    WP_THROW_IF_NOT(m.side * m.side == d && m.side % 4 == 0, "encoder conv needs square images ",
                    "with a side divisible by 4 (8x8, 28x28); d = ", d);
    // Two 3x3 conv blocks (32, 64 channels), each ReLU + 2x2 max-pool, then the dense layers.
    m.net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3).padding(1)));
    m.net->push_back(torch::nn::ReLU());
    m.net->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
    m.net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).padding(1)));
    m.net->push_back(torch::nn::ReLU());
    m.net->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
    m.net->push_back(torch::nn::Flatten());
    in = 64 * (m.side / 4) * (m.side / 4);
  }
  for (int h : cfg.hidden) {
    m.net->push_back(torch::nn::Linear(in, h));
    m.net->push_back(torch::nn::ReLU());
    if (cfg.dropout > 0) m.net->push_back(torch::nn::Dropout(cfg.dropout));
    in = h;
  }
  m.net->push_back(torch::nn::Linear(in, cfg.embed));
  if (cfg.score == "bits") {
    if (cfg.planes == "ovr") {
      m.refit_ovr();
    } else {
      // Random orthogonalised Gaussian planes (HashModel::random), zero offsets.
      const index::HashModel r = index::HashModel::random(cfg.embed, cfg.bits, cfg.seed + 7);
      m.planes = torch::from_blob(const_cast<float*>(r.planes.data()),
                                  {cfg.bits, static_cast<int64_t>(cfg.embed)}, torch::kFloat32)
                     .clone();
      m.offsets = torch::zeros({cfg.bits});
      if (cfg.planes == "learned") {
        m.planes.set_requires_grad(true);
        m.offsets.set_requires_grad(true);
      }
    }
  }
  m.opt = std::make_unique<torch::optim::Adam>(
      m.trained_parameters(), torch::optim::AdamOptions(cfg.lr).weight_decay(cfg.weight_decay));
}

MatchingTrainer::~MatchingTrainer() = default;

const MatchingConfig& MatchingTrainer::config() const {
  return impl_->cfg;
}
size_t MatchingTrainer::steps_done() const {
  return static_cast<size_t>(impl_->steps);
}

double MatchingTrainer::learning_rate() const {
  return static_cast<torch::optim::AdamOptions&>(impl_->opt->param_groups()[0].options()).lr();
}

void MatchingTrainer::set_learning_rate(double lr) {
  WP_THROW_IF_NOT(lr > 0 && std::isfinite(lr), "learning rate must be > 0");
  for (auto& g : impl_->opt->param_groups()) {
    static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
  }
}

void MatchingTrainer::set_class_mix(const std::vector<double>& weights) {
  WP_THROW_IF_NOT(weights.empty() || weights.size() == impl_->train_classes.size(),
                  "class mix needs one weight per training class (", impl_->train_classes.size(),
                  "), got ", weights.size());
  impl_->mix = weights;
}

std::vector<double> MatchingTrainer::class_losses() const {
  return impl_->class_loss;
}

std::vector<double> MatchingTrainer::first_layer_stats() const {
  torch::NoGradGuard no_grad;
  const torch::Tensor w = impl_->net->parameters().front().detach();
  return {w.mean().item<double>(), w.std().item<double>(), w.abs().mean().item<double>(),
          w.abs().max().item<double>()};
}

std::vector<float> MatchingTrainer::flat_parameters() const {
  return tensor_values<float>(impl_->flat());
}

void MatchingTrainer::set_anchor(const std::vector<float>& params, double mu) {
  Impl& m = *impl_;
  if (mu <= 0 || params.empty()) {
    m.anchor = torch::Tensor();
    m.anchor_mu = 0;
    return;
  }
  WP_THROW_IF_NOT(static_cast<int64_t>(params.size()) == m.flat().numel(), "anchor has ",
                  params.size(), " parameters, the model ", m.flat().numel());
  m.anchor = torch::from_blob(const_cast<float*>(params.data()),
                              {static_cast<int64_t>(params.size())}, torch::kFloat32)
                 .clone();
  m.anchor_mu = mu;
}

MatchingStep MatchingTrainer::step() {
  Impl& m = *impl_;
  if (m.cfg.score == "bits" && m.cfg.planes == "ovr" && m.steps > 0 &&
      m.steps % m.cfg.ovr_every == 0) {
    m.refit_ovr();
  }
  m.net->train();
  m.opt->zero_grad();
  torch::Tensor total = torch::zeros({});
  double acc = 0;
  std::vector<double> closs(m.train_classes.size(), 0.0), count(m.train_classes.size(), 0.0);
  for (int i = 0; i < m.cfg.episodes_per_step; ++i) {
    const detail::Episode e =
        detail::sample_episode(m.by_class, m.cfg.n_way, m.cfg.k_shot, m.cfg.queries, m.mix, m.rng);
    auto [loss, p] = m.episode(m.x, e);
    total = total + loss.mean();
    acc += p.argmax(1).eq(detail::ids(e.query_label)).to(torch::kFloat32).mean().item<double>();
    const torch::Tensor l = loss.detach();
    for (size_t q = 0; q < e.query.size(); ++q) {
      const int c = e.classes[static_cast<size_t>(e.query_label[q])];
      const size_t ci =
          static_cast<size_t>(std::lower_bound(m.train_classes.begin(), m.train_classes.end(), c) -
                              m.train_classes.begin());
      closs[ci] += l[static_cast<int64_t>(q)].item<double>();
      count[ci] += 1;
    }
  }
  total = total / m.cfg.episodes_per_step;
  torch::Tensor objective = total;
  if (m.anchor_mu > 0) {
    std::vector<torch::Tensor> parts;
    for (const auto& p : m.trained_parameters()) parts.push_back(p.reshape({-1}));
    objective = objective + m.anchor_mu * (torch::cat(parts) - m.anchor).pow(2).sum();
  }
  objective.backward();
  m.opt->step();
  for (size_t c = 0; c < closs.size(); ++c) {
    if (count[c] > 0) {
      const double v = closs[c] / count[c];
      m.class_loss[c] = m.steps == 0 || m.class_loss[c] == 0 ? v : 0.9 * m.class_loss[c] + 0.1 * v;
    }
  }
  ++m.steps;
  return {total.item<double>(), acc / m.cfg.episodes_per_step};
}

namespace {
torch::Tensor bytes_tensor(const std::string& s) {
  return torch::from_blob(const_cast<char*>(s.data()), {static_cast<int64_t>(s.size())},
                          torch::kUInt8)
      .clone();
}
std::string tensor_bytes(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()),
                     static_cast<size_t>(c.numel()));
}
}  // namespace

std::string MatchingTrainer::state() const {
  const Impl& m = *impl_;
  torch::serialize::OutputArchive ar;
  m.net->save(ar);
  ar.write("mean", m.mean);
  ar.write("inv_std", m.inv_std);
  if (m.planes.defined()) {
    ar.write("planes", m.planes.detach());
    ar.write("offsets", m.offsets.detach());
  }
  torch::serialize::OutputArchive opt;
  m.opt->save(opt);
  ar.write("optimizer", opt);
  std::ostringstream rng;
  rng << m.rng;
  ar.write("rng", bytes_tensor(rng.str()));
  ar.write("steps", torch::tensor(m.steps));
  ar.write("class_loss", torch::tensor(m.class_loss, torch::kFloat64));
  std::ostringstream out;
  ar.save_to(out);
  return out.str();
}

void MatchingTrainer::restore(const std::string& state) {
  Impl& m = *impl_;
  torch::serialize::InputArchive ar;
  std::istringstream in(state);
  try {
    ar.load_from(in);
    m.net->load(ar);
    ar.read("mean", m.mean);
    ar.read("inv_std", m.inv_std);
    if (m.planes.defined()) {
      torch::NoGradGuard no_grad;
      torch::Tensor p, o;
      ar.read("planes", p);
      ar.read("offsets", o);
      WP_THROW_IF_NOT(p.sizes() == m.planes.sizes(), "saved planes have another shape");
      m.planes.copy_(p);
      m.offsets.copy_(o);
    }
    torch::serialize::InputArchive opt;
    if (ar.try_read("optimizer", opt)) m.opt->load(opt);
    torch::Tensor t;
    if (ar.try_read("rng", t)) {
      std::istringstream r(tensor_bytes(t));
      r >> m.rng;
    }
    if (ar.try_read("steps", t)) m.steps = t.item<int64_t>();
    if (ar.try_read("class_loss", t) && t.numel() == static_cast<int64_t>(m.class_loss.size())) {
      for (size_t i = 0; i < m.class_loss.size(); ++i) {
        m.class_loss[i] = t[static_cast<int64_t>(i)].item<double>();
      }
    }
  } catch (const c10::Error& e) {
    throw UserError(std::string("matching model state does not fit this model: ") +
                    e.what_without_backtrace());
  }
  m.x = m.standardise(detail::to_tensor(m.train.x));
}

void MatchingTrainer::save(const std::string& path) const {
  write_file_atomically(path, state());
}

void MatchingTrainer::load(const std::string& path) {
  restore(read_file(path));
}

}  // namespace wp::learn