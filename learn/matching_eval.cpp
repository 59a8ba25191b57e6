// MatchingTrainer's evaluation: episode accuracy (usually on unseen classes) by several codes,
// embeddings, and the export of the embedding and planes as a HashModel that LshIndex loads.
// Training is in matching.cpp.
#include "learn/matching.h"

#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "index/error.h"
#include "learn/matching_impl.h"
#include "learn/tensor_values.h"

namespace wp::learn {

namespace F = torch::nn::functional;

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

namespace {
/// XNOR similarity of sign codes: the number of equal signs, [Q, S].
torch::Tensor sign_agreement(const torch::Tensor& aq, const torch::Tensor& as) {
  const torch::Tensor sq = (aq >= 0).to(torch::kFloat32) * 2 - 1,
                      ss = (as >= 0).to(torch::kFloat32) * 2 - 1;
  return (sq.matmul(ss.t()) + aq.size(1)) / 2;
}
}  // namespace

index::Matrix MatchingTrainer::embed(const index::Matrix& x) const {
  torch::NoGradGuard no_grad;
  impl_->net->eval();
  const torch::Tensor e = impl_->forward(impl_->standardise(detail::to_tensor(x))).contiguous();
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
  const torch::Tensor inputs = m.standardise(detail::to_tensor(data.x));
  torch::Tensor f;
  if (spec.raw) {
    f = detail::to_tensor(data.x);  // the vectors as stored (what LshIndex hashes without a model)
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
  const auto by_class = detail::rows_by_class(data);
  std::mt19937_64 rng(spec.seed);
  double correct = 0, total = 0, loss = 0;
  for (int ep = 0; ep < spec.episodes; ++ep) {
    const detail::Episode e =
        detail::sample_episode(by_class, spec.n_way, spec.k_shot, spec.queries, {}, rng);
    const torch::Tensor s_idx = detail::ids(e.support), q_idx = detail::ids(e.query);
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
      const torch::Tensor w =
          detail::ridge_separators(fs, detail::ids(e.support_label), spec.n_way, 1.0);
      const auto proj = [&](const torch::Tensor& z) {
        return torch::cat({z, torch::ones({z.size(0), 1})}, 1).matmul(w);
      };
      sim = sign_agreement(proj(fq), proj(fs));
    } else {
      sim = m.score(fq, fs);
    }
    // The label of the best-matching support (first on ties).
    const torch::Tensor best = sim.argmax(1);
    const torch::Tensor pred = detail::ids(e.support_label).index_select(0, best);
    correct += pred.eq(detail::ids(e.query_label)).sum().item<double>();
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
    index::HashModel::Layer layer;
    layer.in = static_cast<uint32_t>(w.size(1));
    layer.out = static_cast<uint32_t>(w.size(0));
    layer.relu = i + 1 < linears.size();
    layer.w = tensor_values<float>(w);
    layer.b = tensor_values<float>(b);
    h.layers.push_back(std::move(layer));
  }
  if (m.cfg.score == "bits") {
    h.bits = static_cast<size_t>(m.planes.size(0));
    h.planes = tensor_values<float>(m.planes.detach());
    h.offsets = tensor_values<float>(m.offsets.detach());
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

}  // namespace wp::learn
