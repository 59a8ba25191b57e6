#include "learn/matching.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>

#include "index/error.h"
#include "index/vector_io.h"

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

void EvalSpec::validate() const {
  WP_THROW_IF_NOT(n_way >= 2 && k_shot >= 1 && queries >= 1 && episodes >= 1,
                  "evaluation episodes need n_way >= 2, k_shot, queries, episodes >= 1");
  WP_THROW_IF_NOT(
      code == "cosine" || code == "simhash" || code == "planes" || code == "ovr" || code == "score",
      "code must be cosine, simhash, planes, ovr or score, got '", code, "'");
  WP_THROW_IF_NOT(code != "simhash" || bits >= 1, "simhash needs bits >= 1");
  WP_THROW_IF_NOT(!raw || code == "cosine" || code == "simhash",
                  "raw inputs are matched by cosine or simhash only");
}

LabelledSet LabelledSet::select(const std::function<bool(size_t, int)>& keep) const {
  LabelledSet out;
  out.x = index::Matrix(0, x.d);
  for (size_t i = 0; i < y.size(); ++i) {
    if (!keep(i, y[i])) continue;
    out.x.data.insert(out.x.data.end(), x.row(i), x.row(i) + x.d);
    out.y.push_back(y[i]);
  }
  out.x.n = out.y.size();
  return out;
}

LabelledSet LabelledSet::subset(const std::vector<int>& classes) const {
  return select(
      [&](size_t, int c) { return std::find(classes.begin(), classes.end(), c) != classes.end(); });
}

LabelledSet LabelledSet::half(int parity) const {
  return select([&](size_t i, int) { return (i & 1) == static_cast<size_t>(parity & 1); });
}

std::vector<int> LabelledSet::classes() const {
  std::vector<int> c(y.begin(), y.end());
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}

namespace {
LabelledSet read_labelled(const std::string& vectors, const std::string& labels, size_t limit) {
  LabelledSet s;
  s.x = index::read_vectors(vectors, limit);
  const index::IntMatrix l = index::read_ivecs(labels, s.x.n);
  WP_THROW_IF_NOT(l.n == s.x.n && l.d >= 1, "'", labels, "' has ", l.n, " labels for ", s.x.n,
                  " vectors");
  for (size_t i = 0; i < l.n; ++i) s.y.push_back(static_cast<int>(l.data[i * l.d]));
  return s;
}
}  // namespace

LabelledSet load_labelled(const std::string& dir, size_t limit) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (fs::exists(d / "base_labels.ivecs")) {
    return read_labelled((d / "base.fvecs").string(), (d / "base_labels.ivecs").string(), limit);
  }
  if (fs::exists(d / "labels.ivecs")) {
    // digits: labels.ivecs covers digits.fvecs (base.fvecs is its first rows).
    const std::string vectors = fs::exists(d / "digits.fvecs") ? (d / "digits.fvecs").string()
                                                               : (d / "base.fvecs").string();
    return read_labelled(vectors, (d / "labels.ivecs").string(), limit);
  }
  throw UserError("'" + dir + "' has no labels (base_labels.ivecs or labels.ivecs)");
}

LabelledSet load_labelled_queries(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (!fs::exists(d / "query_labels.ivecs") || !fs::exists(d / "query.fvecs")) return {};
  return read_labelled((d / "query.fvecs").string(), (d / "query_labels.ivecs").string(),
                       static_cast<size_t>(-1));
}

namespace {
/// Rows of one episode: support and query rows, with labels 0..N-1 in episode order.
struct Episode {
  std::vector<int64_t> support, query;
  std::vector<int64_t> support_label, query_label;
  std::vector<int> classes;  ///< the dataset class of episode label c
};

/// Draws N classes (weighted without replacement by `weights`, keyed like by_class's order, when
/// given) with K + Q rows each.
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

torch::Tensor to_tensor(const index::Matrix& m) {
  return torch::from_blob(const_cast<float*>(m.data.data()),
                          {static_cast<int64_t>(m.n), static_cast<int64_t>(m.d)}, torch::kFloat32)
      .clone();
}

torch::Tensor ids(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kInt64));
}

/// Ridge one-vs-rest separators: columns of [W; b] fitting +1 / -1 targets per class, shape
/// [E + 1, C], from rows x [n, E] with episode labels y [n] in 0..C-1.
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

/// XNOR similarity of sign codes: the number of equal signs, [Q, S].
torch::Tensor sign_agreement(const torch::Tensor& aq, const torch::Tensor& as) {
  const torch::Tensor sq = (aq >= 0).to(torch::kFloat32) * 2 - 1,
                      ss = (as >= 0).to(torch::kFloat32) * 2 - 1;
  return (sq.matmul(ss.t()) + aq.size(1)) / 2;
}
}  // namespace

struct MatchingTrainer::Impl {
  MatchingConfig cfg;
  LabelledSet train;
  std::vector<int> train_classes;
  std::map<int, std::vector<int64_t>> by_class;
  torch::Tensor x;  ///< standardised training inputs
  torch::Tensor mean, inv_std;
  int64_t side = 0;                            ///< conv: image side
  mutable torch::nn::Sequential net{nullptr};  // forward() is not const in LibTorch
  torch::Tensor planes, offsets;               ///< score "bits": [P, E], [P]
  std::unique_ptr<torch::optim::Adam> opt;
  std::mt19937_64 rng;
  std::vector<double> mix;         ///< class sampling weights (empty: uniform)
  std::vector<double> class_loss;  ///< moving average per training class
  torch::Tensor anchor;            ///< meta-momentum target (flat parameters)
  double anchor_mu = 0;
  int64_t steps = 0;

  torch::Tensor standardise(const torch::Tensor& raw) const { return (raw - mean) * inv_std; }

  torch::Tensor forward(const torch::Tensor& in) const {
    if (cfg.encoder == "conv") return net->forward(in.view({-1, 1, side, side}));
    return net->forward(in);
  }

  std::vector<torch::Tensor> trained_parameters() const {
    std::vector<torch::Tensor> p = net->parameters();
    if (cfg.score == "bits" && cfg.planes == "learned") {
      p.push_back(planes);
      p.push_back(offsets);
    }
    return p;
  }

  /// Projections on the planes, [n, P].
  torch::Tensor project(const torch::Tensor& f) const { return f.matmul(planes.t()) + offsets; }

  /// The training score of queries against supports, [Q, S], in [-1, 1].
  torch::Tensor score(const torch::Tensor& fq, const torch::Tensor& fs) const {
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

  /// Loss per query ([Q]) and the attention's class probabilities ([Q, N]) of embedded queries
  /// against embedded supports.
  std::pair<torch::Tensor, torch::Tensor> attention(const torch::Tensor& fq,
                                                    const torch::Tensor& fs,
                                                    const Episode& e) const {
    const torch::Tensor att = torch::softmax(cfg.scale * score(fq, fs), 1);  // [Q, S]
    const torch::Tensor onehot =
        torch::one_hot(ids(e.support_label), static_cast<int64_t>(e.classes.size()))
            .to(torch::kFloat32);
    const torch::Tensor p = att.matmul(onehot);  // [Q, N]
    const torch::Tensor loss = F::nll_loss(torch::log(p + 1e-8), ids(e.query_label),
                                           F::NLLLossFuncOptions().reduction(torch::kNone));
    return {loss, p};
  }

  /// The same for an episode's rows of `inputs`, embedded here.
  std::pair<torch::Tensor, torch::Tensor> episode(const torch::Tensor& inputs,
                                                  const Episode& e) const {
    return attention(forward(inputs.index_select(0, ids(e.query))),
                     forward(inputs.index_select(0, ids(e.support))), e);
  }

  /// One-vs-rest planes: a ridge separator per training class on the current embeddings of up
  /// to 100 rows per class.
  void refit_ovr() {
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
    const torch::Tensor f = forward(x.index_select(0, ids(rows)));
    const torch::Tensor w =
        ridge_separators(f, ids(labels), static_cast<int64_t>(train_classes.size()), 1.0);
    planes = w.slice(0, 0, f.size(1)).t().contiguous();
    offsets = w[f.size(1)].contiguous();
  }

  torch::Tensor flat() const {
    std::vector<torch::Tensor> parts;
    for (const auto& p : trained_parameters()) parts.push_back(p.detach().reshape({-1}));
    return torch::cat(parts);
  }
};

MatchingTrainer::MatchingTrainer(const LabelledSet& train, const MatchingConfig& cfg)
    : impl_(std::make_unique<Impl>()) {
  cfg.validate();
  WP_THROW_IF_NOT(train.x.n == train.y.size() && train.x.n > 0, "training set is empty");
  Impl& m = *impl_;
  m.cfg = cfg;
  m.train = train;
  m.train_classes = train.classes();
  m.by_class = rows_by_class(train);
  m.class_loss.assign(m.train_classes.size(), 0.0);
  m.rng.seed(cfg.seed);
  torch::manual_seed(cfg.seed);
  const torch::Tensor raw = to_tensor(train.x);
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
  const torch::Tensor f = impl_->flat().contiguous();
  return std::vector<float>(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
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
    const Episode e =
        sample_episode(m.by_class, m.cfg.n_way, m.cfg.k_shot, m.cfg.queries, m.mix, m.rng);
    auto [loss, p] = m.episode(m.x, e);
    total = total + loss.mean();
    acc += p.argmax(1).eq(ids(e.query_label)).to(torch::kFloat32).mean().item<double>();
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

index::Matrix MatchingTrainer::embed(const index::Matrix& x) const {
  torch::NoGradGuard no_grad;
  impl_->net->eval();
  const torch::Tensor e = impl_->forward(impl_->standardise(to_tensor(x))).contiguous();
  index::Matrix out(x.n, static_cast<size_t>(e.size(1)));
  std::copy(e.data_ptr<float>(), e.data_ptr<float>() + e.numel(), out.data.begin());
  return out;
}

MatchingStep MatchingTrainer::evaluate(const LabelledSet& data, const EvalSpec& spec) const {
  spec.validate();
  const Impl& m = *impl_;
  WP_THROW_IF_NOT(spec.code != "planes" || m.cfg.score == "bits",
                  "code 'planes' needs a model trained with score bits");
  torch::NoGradGuard no_grad;
  m.net->eval();
  const torch::Tensor inputs = m.standardise(to_tensor(data.x));
  torch::Tensor f;
  if (spec.raw) {
    f = to_tensor(data.x);  // the vectors as stored (what LshIndex hashes without a model)
  } else {
    std::vector<torch::Tensor> chunks;  // bounded memory for conv nets on large sets
    for (int64_t i = 0; i < inputs.size(0); i += 4096) {
      chunks.push_back(m.forward(inputs.slice(0, i, std::min<int64_t>(i + 4096, inputs.size(0)))));
    }
    f = torch::cat(chunks, 0);
  }
  torch::Tensor codes_src;  // per row: the projections whose signs are compared
  if (spec.code == "simhash") {
    const index::HashModel r =
        index::HashModel::random(static_cast<size_t>(f.size(1)), spec.bits, spec.seed + 1);
    const torch::Tensor w =
        torch::from_blob(const_cast<float*>(r.planes.data()),
                         {static_cast<int64_t>(spec.bits), f.size(1)}, torch::kFloat32);
    codes_src = F::normalize(f, F::NormalizeFuncOptions().dim(1)).matmul(w.t());
  } else if (spec.code == "planes") {
    codes_src = m.project(f);
  }
  const auto by_class = rows_by_class(data);
  std::mt19937_64 rng(spec.seed);
  double correct = 0, total = 0, loss = 0;
  for (int ep = 0; ep < spec.episodes; ++ep) {
    const Episode e = sample_episode(by_class, spec.n_way, spec.k_shot, spec.queries, {}, rng);
    const torch::Tensor s_idx = ids(e.support), q_idx = ids(e.query);
    const torch::Tensor fs = f.index_select(0, s_idx), fq = f.index_select(0, q_idx);
    if (!spec.raw) {
      // The training loss on this episode, with the training score.
      loss += m.attention(fq, fs, e).first.mean().item<double>();
    }
    torch::Tensor sim;  // [Q, S]
    if (spec.code == "cosine") {
      sim = F::normalize(fq, F::NormalizeFuncOptions().dim(1))
                .matmul(F::normalize(fs, F::NormalizeFuncOptions().dim(1)).t());
    } else if (spec.code == "simhash" || spec.code == "planes") {
      sim = sign_agreement(codes_src.index_select(0, q_idx), codes_src.index_select(0, s_idx));
    } else if (spec.code == "ovr") {
      // One ridge separator per episode class, fitted on the supports' embeddings.
      const torch::Tensor w = ridge_separators(fs, ids(e.support_label), spec.n_way, 1.0);
      const auto proj = [&](const torch::Tensor& z) {
        return torch::cat({z, torch::ones({z.size(0), 1})}, 1).matmul(w);
      };
      sim = sign_agreement(proj(fq), proj(fs));
    } else {
      sim = m.score(fq, fs);
    }
    // The label of the best-matching support (first on ties).
    const torch::Tensor best = sim.argmax(1);
    const torch::Tensor pred = ids(e.support_label).index_select(0, best);
    correct += pred.eq(ids(e.query_label)).sum().item<double>();
    total += static_cast<double>(e.query.size());
  }
  return {spec.raw ? 0.0 : loss / spec.episodes, correct / total};
}

index::HashModel MatchingTrainer::export_model(size_t bits, uint64_t seed) const {
  torch::NoGradGuard no_grad;
  const Impl& m = *impl_;
  WP_THROW_IF_NOT(m.cfg.encoder == "mlp",
                  "only MLP embeddings export to a HashModel (LshIndex has dense layers only)");
  std::vector<torch::nn::Linear> linears;
  for (const auto& mod : m.net->children()) {
    if (auto l = std::dynamic_pointer_cast<torch::nn::LinearImpl>(mod)) {
      linears.emplace_back(l);
    }
  }
  index::HashModel h;
  h.kind = "learned";
  h.input_dim = m.train.x.d;
  for (size_t i = 0; i < linears.size(); ++i) {
    torch::Tensor w = linears[i]->weight.detach().clone();
    torch::Tensor b = linears[i]->bias.detach().clone();
    if (i == 0) {
      // W ((x - mean) * inv_std) + b = (W * inv_std) x + (b - W (mean * inv_std)).
      b = b - w.matmul(m.mean * m.inv_std);
      w = w * m.inv_std.unsqueeze(0);
    }
    w = w.contiguous();
    b = b.contiguous();
    index::HashModel::Layer layer;
    layer.in = static_cast<uint32_t>(w.size(1));
    layer.out = static_cast<uint32_t>(w.size(0));
    layer.relu = i + 1 < linears.size();
    layer.w.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
    layer.b.assign(b.data_ptr<float>(), b.data_ptr<float>() + b.numel());
    h.layers.push_back(std::move(layer));
  }
  if (m.cfg.score == "bits") {
    const torch::Tensor p = m.planes.detach().contiguous(), o = m.offsets.detach().contiguous();
    h.bits = static_cast<size_t>(p.size(0));
    h.planes.assign(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
    h.offsets.assign(o.data_ptr<float>(), o.data_ptr<float>() + o.numel());
  } else {
    const index::HashModel planes = index::HashModel::random(h.embed_dim(), bits, seed);
    h.bits = bits;
    h.planes = planes.planes;
    h.offsets.assign(bits, 0.0f);  // SimHash of the embedding: planes through the origin
  }
  h.fit_offsets = false;
  h.validate();
  return h;
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
  m.x = m.standardise(to_tensor(m.train.x));
}

void MatchingTrainer::save(const std::string& path) const {
  // A temporary file renamed into place: a kill mid-write leaves the previous file whole.
  const std::string s = state(), tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(s.data(), static_cast<std::streamsize>(s.size()));
    out.flush();
    WP_THROW_IF_NOT(out.good(), "cannot write '", tmp, "'");
  }
  std::filesystem::rename(tmp, path);
}

void MatchingTrainer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  WP_THROW_IF_NOT(in.good(), "cannot read '", path, "'");
  std::ostringstream s;
  s << in.rdbuf();
  restore(s.str());
}

}  // namespace wp::learn
