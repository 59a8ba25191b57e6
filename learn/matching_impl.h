#pragma once
/**
 * @file matching_impl.h
 * MatchingTrainer's state (the network, planes, optimiser and sampler) and the episode machinery
 * that training (matching.cpp) and evaluation (matching_eval.cpp) share. Private to those two
 * files, which include <torch/torch.h> before it: LibTorch is included by learn/'s .cpp files
 * only, and learn/matching.h keeps it out of its users.
 */
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <utility>
#include <vector>

#include "learn/matching.h"

namespace wp::learn {
namespace detail {

/// Rows of one episode: support and query rows, with labels 0..N-1 in episode order.
struct Episode {
  std::vector<int64_t> support, query;
  std::vector<int64_t> support_label, query_label;
  std::vector<int> classes;  ///< the dataset class of episode label c
};

/// Draws N classes (weighted without replacement by `weights`, keyed like by_class's order, when
/// given) with K + Q rows each.
Episode sample_episode(const std::map<int, std::vector<int64_t>>& by_class, int n_way, int k_shot,
                       int queries, const std::vector<double>& weights, std::mt19937_64& rng);

/// The rows of each class, ascending.
std::map<int, std::vector<int64_t>> rows_by_class(const LabelledSet& s);

/// Ridge one-vs-rest separators: columns of [W; b] fitting +1 / -1 targets per class, shape
/// [E + 1, C], from rows x [n, E] with episode labels y [n] in 0..C-1.
torch::Tensor ridge_separators(const torch::Tensor& x, const torch::Tensor& y, int64_t classes,
                               double lambda);

/// A copy of m as an [n, d] float tensor.
inline torch::Tensor to_tensor(const index::Matrix& m) {
  return torch::from_blob(const_cast<float*>(m.data.data()),
                          {static_cast<int64_t>(m.n), static_cast<int64_t>(m.d)}, torch::kFloat32)
      .clone();
}

/// Row indices (or labels) as an int64 tensor.
inline torch::Tensor ids(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::TensorOptions().dtype(torch::kInt64));
}

}  // namespace detail

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

  /// The network's parameters, and the planes when they are trained.
  std::vector<torch::Tensor> trained_parameters() const;

  /// Projections on the planes, [n, P].
  torch::Tensor project(const torch::Tensor& f) const { return f.matmul(planes.t()) + offsets; }

  /// The training score of queries against supports, [Q, S], in [-1, 1].
  torch::Tensor score(const torch::Tensor& fq, const torch::Tensor& fs) const;

  /// Loss per query ([Q]) and the attention's class probabilities ([Q, N]) of embedded queries
  /// against embedded supports.
  std::pair<torch::Tensor, torch::Tensor> attention(const torch::Tensor& fq,
                                                    const torch::Tensor& fs,
                                                    const detail::Episode& e) const;

  /// The same for an episode's rows of `inputs`, embedded here.
  std::pair<torch::Tensor, torch::Tensor> episode(const torch::Tensor& inputs,
                                                  const detail::Episode& e) const;

  /// One-vs-rest planes: a ridge separator per training class on the current embeddings of up
  /// to 100 rows per class.
  void refit_ovr();

  /// trained_parameters(), detached and concatenated.
  torch::Tensor flat() const;
};

}  // namespace wp::learn
