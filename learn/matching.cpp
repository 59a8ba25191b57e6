#include "learn/matching.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include "index/error.h"
#include "index/vector_io.h"

namespace wp::learn {

void MatchingConfig::validate() const {
  WP_THROW_IF_NOT(!hidden.empty() && hidden.size() <= 8, "hidden: 1..8 layers");
  for (int h : hidden) WP_THROW_IF_NOT(h >= 1 && h <= 8192, "hidden width out of range: ", h);
  WP_THROW_IF_NOT(embed >= 1 && embed <= 8192, "embed must be in 1..8192, got ", embed);
  WP_THROW_IF_NOT(n_way >= 2 && n_way <= 1000, "n_way must be in 2..1000, got ", n_way);
  WP_THROW_IF_NOT(k_shot >= 1 && k_shot <= 1000, "k_shot must be in 1..1000, got ", k_shot);
  WP_THROW_IF_NOT(queries >= 1 && queries <= 1000, "queries must be in 1..1000, got ", queries);
  WP_THROW_IF_NOT(episodes_per_step >= 1, "episodes_per_step must be >= 1");
  WP_THROW_IF_NOT(lr > 0 && lr < 10, "lr must be in (0, 10), got ", lr);
  WP_THROW_IF_NOT(scale > 0, "scale must be > 0");
}

LabelledSet LabelledSet::subset(const std::vector<int>& classes) const {
  LabelledSet out;
  out.x = index::Matrix(0, x.d);
  for (size_t i = 0; i < y.size(); ++i) {
    if (std::find(classes.begin(), classes.end(), y[i]) == classes.end()) continue;
    out.x.data.insert(out.x.data.end(), x.row(i), x.row(i) + x.d);
    out.y.push_back(y[i]);
  }
  out.x.n = out.y.size();
  return out;
}

std::vector<int> LabelledSet::classes() const {
  std::vector<int> c(y.begin(), y.end());
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}

LabelledSet load_labelled(const std::string& dir, size_t limit) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  std::string vectors, labels;
  if (fs::exists(d / "base_labels.ivecs")) {
    vectors = (d / "base.fvecs").string();
    labels = (d / "base_labels.ivecs").string();
  } else if (fs::exists(d / "labels.ivecs")) {
    // digits: labels.ivecs covers digits.fvecs (base.fvecs is its first rows).
    vectors = fs::exists(d / "digits.fvecs") ? (d / "digits.fvecs").string()
                                             : (d / "base.fvecs").string();
    labels = (d / "labels.ivecs").string();
  } else {
    throw UserError("'" + dir + "' has no labels (base_labels.ivecs or labels.ivecs)");
  }
  LabelledSet s;
  s.x = index::read_vectors(vectors, limit);
  const index::IntMatrix l = index::read_ivecs(labels, s.x.n);
  WP_THROW_IF_NOT(l.n == s.x.n && l.d >= 1, "'", labels, "' has ", l.n, " labels for ", s.x.n,
                  " vectors");
  for (size_t i = 0; i < l.n; ++i) s.y.push_back(static_cast<int>(l.data[i * l.d]));
  return s;
}

namespace {
/// Rows of one episode: support and query rows, with labels 0..N-1 in episode order.
struct Episode {
  std::vector<int64_t> support, query;
  std::vector<int64_t> support_label, query_label;
};

Episode sample_episode(const std::map<int, std::vector<int64_t>>& by_class, int n_way, int k_shot,
                       int queries, std::mt19937_64& rng) {
  std::vector<int> classes;
  for (const auto& [c, rows] : by_class) {
    if (rows.size() >= static_cast<size_t>(k_shot + queries)) classes.push_back(c);
  }
  WP_THROW_IF_NOT(classes.size() >= static_cast<size_t>(n_way), "an episode needs ", n_way,
                  " classes with ", k_shot + queries, " examples each; the data has ",
                  classes.size());
  std::shuffle(classes.begin(), classes.end(), rng);
  Episode e;
  for (int c = 0; c < n_way; ++c) {
    std::vector<int64_t> rows = by_class.at(classes[c]);
    // Partial Fisher-Yates: the first K + Q rows are a uniform sample.
    for (int i = 0; i < k_shot + queries; ++i) {
      std::uniform_int_distribution<size_t> pick(i, rows.size() - 1);
      std::swap(rows[i], rows[pick(rng)]);
    }
    for (int i = 0; i < k_shot; ++i) {
      e.support.push_back(rows[i]);
      e.support_label.push_back(c);
    }
    for (int i = 0; i < queries; ++i) {
      e.query.push_back(rows[k_shot + i]);
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
}  // namespace

struct MatchingTrainer::Impl {
  MatchingConfig cfg;
  LabelledSet train;
  std::map<int, std::vector<int64_t>> by_class;
  torch::Tensor x;  ///< standardised training inputs
  torch::Tensor mean, inv_std;
  mutable torch::nn::Sequential net{nullptr};  // forward() is not const in LibTorch
  std::unique_ptr<torch::optim::Adam> opt;
  std::mt19937_64 rng;

  torch::Tensor standardise(const torch::Tensor& raw) const { return (raw - mean) * inv_std; }

  /// Episode loss and accuracy: softmax(scale * cos) attention over the supports.
  std::pair<torch::Tensor, double> episode(const torch::Tensor& inputs, const Episode& e) const {
    auto opts = torch::TensorOptions().dtype(torch::kInt64);
    const torch::Tensor s_idx = torch::tensor(e.support, opts),
                        q_idx = torch::tensor(e.query, opts);
    const torch::Tensor fs =
        torch::nn::functional::normalize(net->forward(inputs.index_select(0, s_idx)),
                                         torch::nn::functional::NormalizeFuncOptions().dim(1));
    const torch::Tensor fq =
        torch::nn::functional::normalize(net->forward(inputs.index_select(0, q_idx)),
                                         torch::nn::functional::NormalizeFuncOptions().dim(1));
    const torch::Tensor att = torch::softmax(cfg.scale * fq.matmul(fs.t()), 1);  // [Q, S]
    const torch::Tensor onehot =
        torch::one_hot(torch::tensor(e.support_label, opts), cfg.n_way).to(torch::kFloat32);
    const torch::Tensor p = att.matmul(onehot);  // [Q, N]
    const torch::Tensor target = torch::tensor(e.query_label, opts);
    const torch::Tensor loss = torch::nll_loss(torch::log(p + 1e-8), target);
    const double acc = p.argmax(1).eq(target).to(torch::kFloat32).mean().item<double>();
    return {loss, acc};
  }
};

MatchingTrainer::MatchingTrainer(const LabelledSet& train, const MatchingConfig& cfg)
    : impl_(std::make_unique<Impl>()) {
  cfg.validate();
  WP_THROW_IF_NOT(train.x.n == train.y.size() && train.x.n > 0, "training set is empty");
  Impl& m = *impl_;
  m.cfg = cfg;
  m.train = train;
  m.by_class = rows_by_class(train);
  m.rng.seed(cfg.seed);
  torch::manual_seed(cfg.seed);
  const torch::Tensor raw = to_tensor(train.x);
  m.mean = raw.mean(0);
  m.inv_std = 1.0 / (raw.std(0) + 1e-3);
  m.x = m.standardise(raw);
  m.net = torch::nn::Sequential();
  int64_t in = static_cast<int64_t>(train.x.d);
  for (int h : cfg.hidden) {
    m.net->push_back(torch::nn::Linear(in, h));
    m.net->push_back(torch::nn::ReLU());
    in = h;
  }
  m.net->push_back(torch::nn::Linear(in, cfg.embed));
  m.opt =
      std::make_unique<torch::optim::Adam>(m.net->parameters(), torch::optim::AdamOptions(cfg.lr));
}

MatchingTrainer::~MatchingTrainer() = default;

void MatchingTrainer::set_learning_rate(double lr) {
  for (auto& g : impl_->opt->param_groups()) {
    static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
  }
}

MatchingStep MatchingTrainer::step() {
  Impl& m = *impl_;
  m.net->train();
  m.opt->zero_grad();
  torch::Tensor total = torch::zeros({});
  double acc = 0;
  for (int i = 0; i < m.cfg.episodes_per_step; ++i) {
    const Episode e = sample_episode(m.by_class, m.cfg.n_way, m.cfg.k_shot, m.cfg.queries, m.rng);
    auto [loss, a] = m.episode(m.x, e);
    total = total + loss;
    acc += a;
  }
  total = total / m.cfg.episodes_per_step;
  total.backward();
  m.opt->step();
  return {total.item<double>(), acc / m.cfg.episodes_per_step};
}

index::Matrix MatchingTrainer::embed(const index::Matrix& x) const {
  torch::NoGradGuard no_grad;
  impl_->net->eval();
  const torch::Tensor e = impl_->net->forward(impl_->standardise(to_tensor(x))).contiguous();
  index::Matrix out(x.n, static_cast<size_t>(e.size(1)));
  std::copy(e.data_ptr<float>(), e.data_ptr<float>() + e.numel(), out.data.begin());
  return out;
}

double MatchingTrainer::accuracy(const LabelledSet& data, int n_way, int k_shot, int queries,
                                 int episodes, size_t bits, uint64_t seed, bool raw) const {
  WP_THROW_IF_NOT(episodes >= 1, "episodes must be >= 1");
  index::Matrix e;
  if (raw) {
    torch::NoGradGuard no_grad;
    const torch::Tensor s = impl_->standardise(to_tensor(data.x)).contiguous();
    e = index::Matrix(data.x.n, data.x.d);
    std::copy(s.data_ptr<float>(), s.data_ptr<float>() + s.numel(), e.data.begin());
  } else {
    e = embed(data.x);
  }
  const size_t d = e.d;
  // Cosine scores need unit rows; SimHash codes from `bits` Gaussian planes through the origin.
  for (size_t i = 0; i < e.n; ++i) index::normalize(e.row(i), d);
  std::vector<uint64_t> codes;
  const size_t words = (bits + 63) / 64;
  if (bits) {
    index::HashModel planes = index::HashModel::random(d, bits, seed + 1);
    std::vector<float> proj(bits);
    index::HashModel::Scratch scratch;
    codes.resize(e.n * words);
    for (size_t i = 0; i < e.n; ++i) {
      planes.project(e.row(i), proj.data(), scratch);
      index::HashModel::pack(proj.data(), bits, codes.data() + i * words);
    }
  }
  const auto by_class = rows_by_class(data);
  std::mt19937_64 rng(seed);
  size_t correct = 0, total = 0;
  const index::HammingScanFn scan = index::kernels().hamming_scan;
  for (int ep = 0; ep < episodes; ++ep) {
    const Episode epi = sample_episode(by_class, n_way, k_shot, queries, rng);
    for (size_t qi = 0; qi < epi.query.size(); ++qi) {
      const size_t q = static_cast<size_t>(epi.query[qi]);
      double best = -1e30;
      int64_t label = -1;
      for (size_t si = 0; si < epi.support.size(); ++si) {
        const size_t s = static_cast<size_t>(epi.support[si]);
        double score;
        if (bits) {
          uint32_t ham;
          scan(codes.data() + q * words, codes.data() + s * words, 1, words, &ham);
          score = static_cast<double>(bits) - ham;  // XNOR similarity
        } else {
          score = index::inner_product(e.row(q), e.row(s), d);
        }
        if (score > best) {
          best = score;
          label = epi.support_label[si];
        }
      }
      correct += label == epi.query_label[qi];
      ++total;
    }
  }
  return static_cast<double>(correct) / static_cast<double>(total);
}

index::HashModel MatchingTrainer::export_model(size_t bits, uint64_t seed) const {
  torch::NoGradGuard no_grad;
  const Impl& m = *impl_;
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
  const index::HashModel planes = index::HashModel::random(h.embed_dim(), bits, seed);
  h.bits = bits;
  h.planes = planes.planes;
  h.offsets.assign(bits, 0.0f);
  h.fit_offsets = false;  // SimHash of the embedding: planes through the origin
  h.validate();
  return h;
}

void MatchingTrainer::save(const std::string& path) const {
  torch::serialize::OutputArchive ar;
  impl_->net->save(ar);
  ar.write("mean", impl_->mean);
  ar.write("inv_std", impl_->inv_std);
  ar.save_to(path);
}

void MatchingTrainer::load(const std::string& path) {
  torch::serialize::InputArchive ar;
  ar.load_from(path);
  impl_->net->load(ar);
  ar.read("mean", impl_->mean);
  ar.read("inv_std", impl_->inv_std);
  impl_->x = impl_->standardise(to_tensor(impl_->train.x));
}

}  // namespace wp::learn
