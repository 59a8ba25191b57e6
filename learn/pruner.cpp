#include "learn/pruner.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "index/distance.h"
#include "index/error.h"
#include "learn/checkpoint.h"
#include "learn/tensor_values.h"

namespace wp::learn {

void PrunerConfig::validate() const {
  WP_THROW_IF_NOT(hidden >= 1 && hidden <= 4096, "hidden must be in 1..4096, got ", hidden);
  WP_THROW_IF_NOT(episodes_per_step >= 1, "episodes_per_step must be at least 1");
  WP_THROW_IF_NOT(max_kl > 0 && max_kl < 1, "max_kl must be in (0, 1), got ", max_kl);
  WP_THROW_IF_NOT(cg_iters >= 1 && cg_damping >= 0, "cg_iters >= 1 and cg_damping >= 0 required");
  WP_THROW_IF_NOT(line_search_steps >= 1, "line_search_steps must be at least 1");
  WP_THROW_IF_NOT(freeze_eps >= 0 && freeze_eps < 0.5, "freeze_eps must be in [0, 0.5)");
  WP_THROW_IF_NOT(initial_keep > 0 && initial_keep < 1, "initial_keep must be in (0, 1)");
  WP_THROW_IF_NOT(encoder == "mlp" || encoder == "sage", "encoder must be mlp or sage, got '",
                  encoder, "'");
  WP_THROW_IF_NOT(target_degree >= 0 && target_degree <= 4096,
                  "target_degree must be in 0..4096, got ", target_degree);
  WP_THROW_IF_NOT(degree_step >= 0 && degree_step <= 10, "degree_step must be in 0..10, got ",
                  degree_step);
}

std::vector<double> conjugate_gradient(
    const std::function<std::vector<double>(const std::vector<double>&)>& A,
    const std::vector<double>& b, int iters, double tol) {
  const size_t n = b.size();
  std::vector<double> x(n, 0.0), r = b, p = b;
  auto dot = [](const std::vector<double>& u, const std::vector<double>& v) {
    return std::inner_product(u.begin(), u.end(), v.begin(), 0.0);
  };
  double rr = dot(r, r);
  for (int it = 0; it < iters && rr > tol; ++it) {
    const std::vector<double> Ap = A(p);
    const double alpha = rr / std::max(dot(p, Ap), 1e-30);
    for (size_t i = 0; i < n; ++i) {
      x[i] += alpha * p[i];
      r[i] -= alpha * Ap[i];
    }
    const double rr_new = dot(r, r);
    for (size_t i = 0; i < n; ++i) p[i] = r[i] + (rr_new / rr) * p[i];
    rr = rr_new;
  }
  return x;
}

// Not an anonymous namespace: PruningTrainer::Impl holds an EdgeMlp (g++ warns of that in a
// unity build, where this file is read as included: -Wsubobject-linkage).
namespace pruner_nets {

/**
 * GraphSAGE-style vertex encoder (as GraphEnas does it): separate aggregation of the out- and
 * in-neighbours, plus degree features,
 *   z_v = relu(S x_v + mean_{v->u} O x_u + mean_{u->v} I x_u + D (outdeg_v, indeg_v)).
 * The projections run before the means (a mean is linear), so aggregation moves hidden-size rows.
 */
struct SageEncoderImpl : torch::nn::Module {
  torch::nn::Linear self{nullptr}, outn{nullptr}, inn{nullptr}, deg{nullptr};
  SageEncoderImpl(int64_t dim, int64_t hidden) {
    auto lin = [&](const char* name, int64_t in) {
      return register_module(name,
                             torch::nn::Linear(torch::nn::LinearOptions(in, hidden).bias(false)));
    };
    self = lin("self", dim);
    outn = lin("out", dim);
    inn = lin("in", dim);
    deg = register_module("deg", torch::nn::Linear(2, hidden));
  }
  /// X: N x dim; src/dst: every edge of the graph; degrees: N x 2 (standardised); inv_out/inv_in:
  /// N x 1 reciprocals of the degrees (0 where none).
  torch::Tensor forward(const torch::Tensor& X, const torch::Tensor& src, const torch::Tensor& dst,
                        const torch::Tensor& degrees, const torch::Tensor& inv_out,
                        const torch::Tensor& inv_in) {
    const torch::Tensor o = outn->forward(X), i = inn->forward(X);
    const torch::Tensor agg_out = torch::zeros_like(o).index_add(0, src, o.index_select(0, dst));
    const torch::Tensor agg_in = torch::zeros_like(i).index_add(0, dst, i.index_select(0, src));
    return torch::relu(self->forward(X) + agg_out * inv_out + agg_in * inv_in +
                       deg->forward(degrees));
  }
};
TORCH_MODULE(SageEncoder);

/// The edge MLP: h = relu(W_u z_u + W_v z_v + W_e f_uv), then hidden -> hidden -> 1, with z the
/// standardised vectors ("mlp") or the SageEncoder's output ("sage").
struct EdgeMlpImpl : torch::nn::Module {
  torch::nn::Linear wu{nullptr}, wv{nullptr}, we{nullptr}, h1{nullptr}, out{nullptr};
  SageEncoder sage{nullptr};
  EdgeMlpImpl(int64_t dim, int64_t hidden, double initial_keep, bool use_sage) {
    if (use_sage) {
      sage = register_module("sage", SageEncoder(dim, hidden));
      dim = hidden;
    }
    wu =
        register_module("wu", torch::nn::Linear(torch::nn::LinearOptions(dim, hidden).bias(false)));
    wv =
        register_module("wv", torch::nn::Linear(torch::nn::LinearOptions(dim, hidden).bias(false)));
    we = register_module("we", torch::nn::Linear(kEdgeFeatures, hidden));
    h1 = register_module("h1", torch::nn::Linear(hidden, hidden));
    out = register_module("out", torch::nn::Linear(hidden, 1));
    // Start near the full initial graph: every edge kept with probability initial_keep.
    torch::NoGradGuard no_grad;
    out->weight.mul_(0.01);
    out->bias.fill_(std::log(initial_keep / (1 - initial_keep)));
  }
  /// Logits of the edges (rows[src[i]] -> rows[dst[i]]) with features ef (E x kEdgeFeatures);
  /// `rows` holds the vertex vectors the edges index (all vertices, or only those they touch).
  torch::Tensor forward(const torch::Tensor& rows, const torch::Tensor& src,
                        const torch::Tensor& dst, const torch::Tensor& ef) {
    return edges(wu->forward(rows), wv->forward(rows), src, dst, ef);
  }
  /// The same from precomputed vertex parts a = W_u rows, b = W_v rows.
  torch::Tensor edges(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& src,
                      const torch::Tensor& dst, const torch::Tensor& ef) {
    torch::Tensor h =
        torch::relu(a.index_select(0, src) + b.index_select(0, dst) + we->forward(ef));
    h = torch::relu(h1->forward(h));
    return out->forward(h).squeeze(1);
  }
};
TORCH_MODULE(EdgeMlp);

torch::Tensor flat_params(const std::vector<torch::Tensor>& ps) {
  std::vector<torch::Tensor> v;
  for (const auto& p : ps) v.push_back(p.detach().reshape(-1));
  return torch::cat(v);
}

void set_flat_params(const std::vector<torch::Tensor>& ps, const torch::Tensor& flat) {
  torch::NoGradGuard no_grad;
  int64_t off = 0;
  for (const auto& p : ps) {
    const int64_t n = p.numel();
    p.copy_(flat.slice(0, off, off + n).view_as(p));
    off += n;
  }
}

torch::Tensor flat_grad(const torch::Tensor& y, const std::vector<torch::Tensor>& ps,
                        bool create_graph) {
  auto g = torch::autograd::grad({y}, ps, {}, /*retain_graph=*/true, create_graph,
                                 /*allow_unused=*/true);
  std::vector<torch::Tensor> v;
  for (size_t i = 0; i < g.size(); ++i) {
    v.push_back(g[i].defined() ? g[i].reshape(-1) : torch::zeros({ps[i].numel()}));
  }
  return torch::cat(v);
}

torch::Tensor to_tensor(const std::vector<double>& v) {
  return torch::from_blob(const_cast<double*>(v.data()), {static_cast<int64_t>(v.size())},
                          torch::kDouble)
      .to(torch::kFloat)
      .clone();
}

}  // namespace pruner_nets

using namespace pruner_nets;

struct PruningTrainer::Impl {
  const PruningEnv& env;
  QuerySet train;
  PrunerConfig cfg;
  EdgeMlp net{nullptr};
  torch::Tensor X, src, dst, efeat;        ///< constant features
  torch::Tensor degrees, inv_out, inv_in;  ///< for the GraphSAGE encoder
  std::vector<int32_t> near_count;         ///< consecutive steps with p near 0 or 1, per edge
  std::vector<int8_t> frozen;              ///< -1: free; 0/1: frozen value
  RewardBaseline baseline;
  std::mt19937_64 rng;
  int steps = 0;
  double lambda = 0;  ///< the degree budget's multiplier
  size_t live = 0;    ///< live vertices

  Impl(const PruningEnv& e, QuerySet q, PrunerConfig c, const std::vector<uint8_t>& sources)
      : env(e), train(std::move(q)), cfg(c), rng(c.seed) {
    cfg.validate();
    torch::manual_seed(cfg.seed);
    const index::Level0Graph& g = env.graph();
    const size_t n = g.num_vertices(), E = g.num_edges();
    const size_t d = train.x.d;
    WP_THROW_IF_NOT(train.size() >= 1, "no training queries");
    WP_THROW_IF_NOT(train.k == env.config().k && train.knn.size() >= train.size() * train.k,
                    "training queries need k true neighbours each");
    // Vertex features: the stored vectors, standardised per dimension over the graph.
    std::vector<float> xs(n * d, 0.0f);
    const auto& index = env_index();
    for (size_t s = 0; s < n; ++s) {
      if (g.labels[s] == index::kNoLabel) continue;
      std::copy(index.slot_vector(s), index.slot_vector(s) + d, xs.begin() + s * d);
    }
    X = torch::from_blob(xs.data(), {static_cast<int64_t>(n), static_cast<int64_t>(d)}).clone();
    X = (X - X.mean(0)) / (X.std(0) + 1e-6);
    // Edge features (pruning_env.h), standardised per column.
    std::vector<int64_t> s_idx(E), d_idx(E);
    for (size_t u = 0; u < n; ++u) {
      for (uint64_t j = g.offsets[u]; j < g.offsets[u + 1]; ++j) {
        s_idx[j] = static_cast<int64_t>(u);
        d_idx[j] = g.neighbors[j];
      }
    }
    for (size_t s = 0; s < n; ++s) live += g.labels[s] != index::kNoLabel;
    live = std::max<size_t>(live, 1);
    // How searches for the training queries use each edge of the whole initial graph.
    const EdgeUsage usage = env.usage(train, std::vector<float>(E, 1.0f));
    std::vector<float> feats = edge_features(index, g, &usage, sources);
    src = torch::from_blob(s_idx.data(), {static_cast<int64_t>(E)}, torch::kLong).clone();
    dst = torch::from_blob(d_idx.data(), {static_cast<int64_t>(E)}, torch::kLong).clone();
    efeat = torch::from_blob(feats.data(),
                             {static_cast<int64_t>(E), static_cast<int64_t>(kEdgeFeatures)})
                .clone();
    if (E > 1) efeat = (efeat - efeat.mean(0)) / (efeat.std(0) + 1e-6);
    net = EdgeMlp(static_cast<int64_t>(d), cfg.hidden, cfg.initial_keep, cfg.encoder == "sage");
    if (cfg.encoder == "sage") {
      const torch::Tensor outd = torch::zeros({static_cast<int64_t>(n)})
                                     .index_add(0, src, torch::ones({static_cast<int64_t>(E)})),
                          ind = torch::zeros({static_cast<int64_t>(n)})
                                    .index_add(0, dst, torch::ones({static_cast<int64_t>(E)}));
      degrees = torch::stack({outd, ind}, 1);
      degrees = (degrees - degrees.mean(0)) / (degrees.std(0) + 1e-6);
      inv_out =
          torch::where(outd > 0, 1.0 / outd.clamp_min(1), torch::zeros_like(outd)).unsqueeze(1);
      inv_in = torch::where(ind > 0, 1.0 / ind.clamp_min(1), torch::zeros_like(ind)).unsqueeze(1);
    }
    near_count.assign(E, 0);
    frozen.assign(E, -1);
  }

  const index::HnswIndex& env_index() const;  // defined below (PruningEnv keeps it private)

  /// A batch of edges with the vertex vectors they touch gathered once (the CG loop evaluates
  /// the same edges many times; a 784-d projection of every vertex each time would dominate).
  struct EdgeBatch {
    torch::Tensor rows, src, dst, feats;
  };
  /// The vertex rows the edge network reads: X, or the GraphSAGE encoding of every vertex.
  torch::Tensor vertex_rows() {
    return net->sage ? net->sage->forward(X, src, dst, degrees, inv_out, inv_in) : X;
  }
  EdgeBatch batch_of(const torch::Tensor& edges) const {
    const torch::Tensor s = src.index_select(0, edges), d = dst.index_select(0, edges);
    if (net->sage) return {torch::Tensor(), s, d, efeat.index_select(0, edges)};
    const int64_t n = s.size(0);
    auto [uniq, inv] = at::_unique(torch::cat({s, d}), /*sorted=*/false, /*return_inverse=*/true);
    return {X.index_select(0, uniq), inv.slice(0, 0, n), inv.slice(0, n, 2 * n),
            efeat.index_select(0, edges)};
  }
  torch::Tensor logits_of(const EdgeBatch& b) {
    // With the encoder every vertex's code depends on its neighbours: all rows are computed.
    return net->forward(b.rows.defined() ? b.rows : vertex_rows(), b.src, b.dst, b.feats);
  }

  std::vector<float> probabilities() {
    torch::NoGradGuard no_grad;
    const int64_t E = src.size(0);
    std::vector<float> p(E);
    const torch::Tensor rows = vertex_rows();
    const torch::Tensor a = net->wu->forward(rows), b = net->wv->forward(rows);  // once per vertex
    constexpr int64_t kChunk = 1 << 16;
    for (int64_t lo = 0; lo < E; lo += kChunk) {
      const int64_t hi = std::min(E, lo + kChunk);
      const torch::Tensor pr =
          torch::sigmoid(
              net->edges(a, b, src.slice(0, lo, hi), dst.slice(0, lo, hi), efeat.slice(0, lo, hi)))
              .contiguous();
      std::copy(pr.data_ptr<float>(), pr.data_ptr<float>() + pr.numel(), p.begin() + lo);
    }
    // A free edge is sampled while 0 < p < 1: a logit that saturates the float sigmoid (after
    // imitation, or a large step) would freeze it by accident.
    constexpr float kFloor = 1e-4f;
    for (int64_t e = 0; e < E; ++e) {
      p[e] = frozen[e] >= 0 ? static_cast<float>(frozen[e]) : std::clamp(p[e], kFloor, 1 - kFloor);
    }
    return p;
  }

  /// Freezes the edges whose probability has stayed within freeze_eps of 0 or 1 for
  /// freeze_after steps.
  void update_freeze(const std::vector<float>& p);
  /// One TRPO update of the policy on the batch's edges E with aggregated advantages A1 (kept)
  /// and A0 (dropped): conjugate gradient on Fisher-vector products, a step scaled to the KL
  /// limit, backtracking line search; fills entropy, kl, surrogate_gain and accepted.
  void trpo_update(const EdgeBatch& E, const torch::Tensor& A1, const torch::Tensor& A0,
                   StepStats& st);
};

// PruningEnv exposes what the trainer needs through its graph and a distance; the index itself is
// reached through the env's public accessors.
const index::HnswIndex& PruningTrainer::Impl::env_index() const {
  return env.index();
}

PruningTrainer::PruningTrainer(const PruningEnv& env, QuerySet train, PrunerConfig cfg,
                               const std::vector<uint8_t>& sources)
    : impl_(std::make_unique<Impl>(env, std::move(train), cfg, sources)) {}

PruningTrainer::~PruningTrainer() = default;

int PruningTrainer::steps_done() const {
  return impl_->steps;
}

std::vector<float> PruningTrainer::probabilities() const {
  return impl_->probabilities();
}

std::vector<uint8_t> PruningTrainer::mask() const {
  const std::vector<float> p = impl_->probabilities();
  std::vector<uint8_t> m(p.size());
  for (size_t i = 0; i < p.size(); ++i) m[i] = p[i] > 0.5f;
  return m;
}

namespace {

/// Summed advantages of keeping and of dropping one edge.
struct EdgeAdvantage {
  double keep = 0, drop = 0;
};

/// Per (edge, action), the sum of the batch's normalised advantages (reward minus the query's
/// moving baseline, standardised over the batch): identical samples are aggregated. Also fills
/// the batch's mean reward, recall and DCS into `st`.
std::unordered_map<uint32_t, EdgeAdvantage> aggregate_advantages(
    RewardBaseline& baseline, const std::vector<size_t>& pick, const std::vector<Episode>& episodes,
    StepStats& st) {
  const size_t nq = pick.size();
  std::vector<double> adv(nq);
  for (size_t i = 0; i < nq; ++i) {
    adv[i] = baseline.advantage(pick[i], episodes[i].reward);
    st.reward += episodes[i].reward;
    st.recall += episodes[i].recall;
    st.dcs += static_cast<double>(episodes[i].dcs);
  }
  st.reward /= nq;
  st.recall /= nq;
  st.dcs /= nq;
  double mean = 0, var = 0;
  for (double a : adv) mean += a;
  mean /= nq;
  for (double a : adv) var += (a - mean) * (a - mean);
  const double sd = std::sqrt(var / nq) + 1e-8;
  std::unordered_map<uint32_t, EdgeAdvantage> agg;
  for (size_t i = 0; i < nq; ++i) {
    const double a = (adv[i] - mean) / sd;
    for (const EdgeAction& act : episodes[i].actions) {
      EdgeAdvantage& slot = agg[act.edge];
      (act.kept ? slot.keep : slot.drop) += a;
    }
  }
  return agg;
}

}  // namespace

void PruningTrainer::Impl::update_freeze(const std::vector<float>& p) {
  for (size_t e = 0; e < p.size(); ++e) {
    if (frozen[e] >= 0) continue;
    const bool near = p[e] < cfg.freeze_eps || p[e] > 1 - cfg.freeze_eps;
    near_count[e] = near ? near_count[e] + 1 : 0;
    if (near_count[e] >= cfg.freeze_after) frozen[e] = p[e] > 0.5f ? 1 : 0;
  }
}

void PruningTrainer::Impl::trpo_update(const EdgeBatch& E, const torch::Tensor& A1,
                                       const torch::Tensor& A0, StepStats& st) {
  std::vector<torch::Tensor> params = net->parameters();
  const torch::Tensor theta_old = flat_params(params);
  torch::Tensor p_old;
  {
    torch::NoGradGuard no_grad;
    p_old = torch::sigmoid(logits_of(E)).clamp(1e-6, 1 - 1e-6);
  }
  auto surrogate = [&](const torch::Tensor& p) {
    const torch::Tensor ent = -(p * torch::log(p) + (1 - p) * torch::log(1 - p)).mean();
    return (A1 * p / p_old + A0 * (1 - p) / (1 - p_old)).sum() + cfg.entropy_coef * ent;
  };
  auto mean_kl = [&](const torch::Tensor& p) {
    return (p_old * torch::log(p_old / p) + (1 - p_old) * torch::log((1 - p_old) / (1 - p))).mean();
  };
  torch::Tensor p_cur = torch::sigmoid(logits_of(E)).clamp(1e-6, 1 - 1e-6);
  const torch::Tensor L0 = surrogate(p_cur);
  const torch::Tensor g = flat_grad(L0, params, false);
  {
    torch::NoGradGuard no_grad;
    st.entropy =
        (-(p_old * torch::log(p_old) + (1 - p_old) * torch::log(1 - p_old)).mean()).item<double>();
  }
  // Fisher-vector products by double backpropagation of the mean KL, then conjugate gradient.
  auto fvp = [&](const std::vector<double>& v) {
    const torch::Tensor p = torch::sigmoid(logits_of(E)).clamp(1e-6, 1 - 1e-6);
    const torch::Tensor kl = mean_kl(p);
    const torch::Tensor gkl = flat_grad(kl, params, true);
    const torch::Tensor vt = to_tensor(v);
    const torch::Tensor hv = flat_grad((gkl * vt).sum(), params, false);
    std::vector<double> out = tensor_values<double>(hv);
    for (size_t i = 0; i < out.size(); ++i) out[i] += cfg.cg_damping * v[i];
    return out;
  };
  const std::vector<double> gv = tensor_values<double>(g);
  const std::vector<double> x = conjugate_gradient(fvp, gv, cfg.cg_iters);
  const std::vector<double> Fx = fvp(x);
  const double xFx = std::inner_product(x.begin(), x.end(), Fx.begin(), 0.0);
  const double scale = xFx > 0 ? std::sqrt(2 * cfg.max_kl / xFx) : 0.0;
  const torch::Tensor full_step = to_tensor(x) * static_cast<float>(scale);
  const double L_old = L0.item<double>();
  // Backtracking line search: the first step within the KL limit that improves the surrogate.
  double frac = 1.0;
  for (int i = 0; i < cfg.line_search_steps && scale > 0; ++i, frac *= 0.5) {
    set_flat_params(params, theta_old + full_step * static_cast<float>(frac));
    torch::NoGradGuard no_grad;
    const torch::Tensor p = torch::sigmoid(logits_of(E)).clamp(1e-6, 1 - 1e-6);
    const double kl = mean_kl(p).item<double>();
    const double L = surrogate(p).item<double>();
    if (kl <= cfg.max_kl && L > L_old) {
      st.accepted = true;
      st.kl = kl;
      st.surrogate_gain = L - L_old;
      break;
    }
  }
  if (!st.accepted) set_flat_params(params, theta_old);
}

StepStats PruningTrainer::step() {
  Impl& m = *impl_;
  StepStats st;
  st.step = ++m.steps;

  // 1. Episodes with the current policy on a random batch of training queries.
  const size_t nq = std::min(m.cfg.episodes_per_step, m.train.size());
  std::vector<size_t> pick(nq);
  for (size_t& i : pick) i = m.rng() % m.train.size();
  const QuerySet batch = m.train.subset(pick);
  const std::vector<float> p_old_all = m.probabilities();
  const auto episodes = m.env.run_batch(batch, p_old_all, true, m.rng());

  // 2. Advantages per (edge, action).
  const auto agg = aggregate_advantages(m.baseline, pick, episodes, st);
  std::vector<float> p_new = p_old_all;
  if (!agg.empty()) {  // else nothing is left to learn on this batch
    std::vector<int64_t> edges;
    std::vector<float> a1, a0;
    for (const auto& kv : agg) {
      edges.push_back(kv.first);
      // The degree budget: keeping the edge costs lambda, however often the batch used it (a
      // cost per use would weigh most on the edges every search needs, the entry's first).
      a1.push_back(static_cast<float>((kv.second.keep - m.lambda) / nq));
      a0.push_back(static_cast<float>(kv.second.drop / nq));
    }
    const Impl::EdgeBatch E = m.batch_of(
        torch::from_blob(edges.data(), {static_cast<int64_t>(edges.size())}, torch::kLong).clone());
    const torch::Tensor A1 = torch::from_blob(a1.data(), {static_cast<int64_t>(a1.size())}).clone();
    const torch::Tensor A0 = torch::from_blob(a0.data(), {static_cast<int64_t>(a0.size())}).clone();
    // 3. TRPO.
    m.trpo_update(E, A1, A0, st);
    p_new = m.probabilities();
  }

  // 4. Freeze edges that stay confidently kept or dropped (freezing pins p at 0 or 1 on the
  //    side of 0.5 it was on).
  m.update_freeze(p_new);
  for (float p : p_new) st.kept_edges += p > 0.5f;
  for (int8_t f : m.frozen) st.frozen_edges += f >= 0;
  st.degree = static_cast<double>(st.kept_edges) / m.live;
  // 5. Dual ascent on the degree budget: up by the relative excess; below the target, released
  //    in proportion (the policy follows lambda a few steps late, and an additive release let
  //    the degree fall far below the target before lambda came down).
  if (m.cfg.target_degree > 0) {
    const double excess = (st.degree - m.cfg.target_degree) / m.cfg.target_degree;
    m.lambda =
        excess > 0 ? m.lambda + m.cfg.degree_step * excess : m.lambda * std::max(0.0, 1 + excess);
  }
  st.lambda = m.lambda;
  return st;
}

double PruningTrainer::imitate(const std::vector<uint8_t>& mask, int iterations, double smoothing) {
  Impl& m = *impl_;
  const int64_t E = m.src.size(0);
  WP_THROW_IF_NOT(static_cast<int64_t>(mask.size()) == E, "imitation mask has ", mask.size(),
                  " entries for ", E, " edges");
  WP_THROW_IF_NOT(smoothing >= 0 && smoothing < 0.5, "smoothing must be in [0, 0.5), got ",
                  smoothing);
  std::vector<float> y(mask.size());
  for (size_t e = 0; e < mask.size(); ++e) {
    y[e] = static_cast<float>(mask[e] ? 1 - smoothing : smoothing);
  }
  const torch::Tensor target = torch::from_blob(y.data(), {E}).clone();
  torch::optim::Adam opt(m.net->parameters(), torch::optim::AdamOptions(1e-2));
  // Mini-batches of edges drawn with the trainer's generator (all of them on a small graph): a
  // full pass over Fashion-MNIST's 1.7M edges took seconds per iteration.
  constexpr int64_t kBatch = 1 << 16;
  std::vector<int64_t> pick(std::min(E, kBatch));
  for (int it = 0; it < iterations; ++it) {
    if (E <= kBatch) {
      std::iota(pick.begin(), pick.end(), 0);
    } else {
      for (int64_t& e : pick) e = static_cast<int64_t>(m.rng() % static_cast<uint64_t>(E));
    }
    const torch::Tensor edges =
        torch::from_blob(pick.data(), {static_cast<int64_t>(pick.size())}, torch::kLong).clone();
    opt.zero_grad();
    const torch::Tensor logits = m.logits_of(m.batch_of(edges));
    const torch::Tensor loss =
        torch::binary_cross_entropy_with_logits(logits, target.index_select(0, edges));
    loss.backward();
    opt.step();
  }
  const std::vector<float> p = m.probabilities();
  size_t agree = 0;
  for (int64_t e = 0; e < E; ++e) agree += (p[e] > 0.5f) == (mask[e] != 0);
  return E ? static_cast<double>(agree) / E : 1.0;
}

std::string PruningTrainer::state() const {
  const Impl& m = *impl_;
  torch::serialize::OutputArchive ar;
  m.net->save(ar);
  ar.write("steps", torch::tensor(static_cast<int64_t>(m.steps)));
  ar.write("lambda", torch::tensor(m.lambda, torch::kDouble));
  ar.write("edges", torch::tensor(static_cast<int64_t>(m.frozen.size())));
  ar.write("frozen", torch::from_blob(const_cast<int8_t*>(m.frozen.data()),
                                      {static_cast<int64_t>(m.frozen.size())}, torch::kChar)
                         .clone());
  ar.write("near", torch::from_blob(const_cast<int32_t*>(m.near_count.data()),
                                    {static_cast<int64_t>(m.near_count.size())}, torch::kInt)
                       .clone());
  std::ostringstream out;
  ar.save_to(out);
  return out.str();
}

void PruningTrainer::restore(const std::string& state) {
  Impl& m = *impl_;
  torch::serialize::InputArchive ar;
  std::istringstream in(state);
  try {
    ar.load_from(in);
  } catch (const c10::Error& e) {
    throw UserError(std::string("not a pruning trainer state: ") + e.what_without_backtrace());
  }
  torch::Tensor steps, edges, frozen, near;
  ar.read("edges", edges);
  WP_THROW_IF_NOT(edges.item<int64_t>() == static_cast<int64_t>(m.frozen.size()),
                  "the trainer state is for a graph of ", edges.item<int64_t>(),
                  " edges, this one has ", m.frozen.size());
  // Module::load replaces parameters whatever their shape: check, and restore on a mismatch.
  std::vector<torch::Tensor> saved;
  for (const auto& p : m.net->parameters()) saved.push_back(p.detach().clone());
  bool ok = true;
  try {
    m.net->load(ar);
    const auto now = m.net->parameters();
    for (size_t i = 0; i < now.size() && ok; ++i) ok = now[i].sizes() == saved[i].sizes();
  } catch (const c10::Error&) {
    ok = false;
  }
  if (!ok) {
    torch::NoGradGuard no_grad;
    const auto params = m.net->parameters();
    for (size_t i = 0; i < params.size(); ++i) params[i].set_(saved[i]);
    throw UserError(
        "the trainer state does not match this policy (different hidden size or input "
        "dimension)");
  }
  ar.read("steps", steps);
  torch::Tensor lambda;
  ar.read("lambda", lambda);
  ar.read("frozen", frozen);
  ar.read("near", near);
  m.steps = static_cast<int>(steps.item<int64_t>());
  m.lambda = lambda.item<double>();
  std::copy(frozen.data_ptr<int8_t>(), frozen.data_ptr<int8_t>() + frozen.numel(),
            m.frozen.begin());
  std::copy(near.data_ptr<int32_t>(), near.data_ptr<int32_t>() + near.numel(),
            m.near_count.begin());
}

void PruningTrainer::save_checkpoint(const std::string& path) const {
  write_file_atomically(path, state());
}

void PruningTrainer::load_checkpoint(const std::string& path) {
  try {
    restore(read_file(path));
  } catch (const UserError& e) {
    throw UserError("checkpoint '" + path + "': " + e.what());
  }
}

}  // namespace wp::learn
