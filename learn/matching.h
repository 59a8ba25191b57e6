#pragma once
/**
 * @file matching.h
 * Matching networks (Vinyals et al., NeurIPS 2016) for learned hashing, behind a plain header
 * (LibTorch lives in matching.cpp).
 *
 * An embedding MLP f is trained episodically: an episode draws N classes, K support and Q query
 * examples per class; a query attends over the supports by softmax(scale * cos(f(q), f(s_i))),
 * P(class c) = the attention on c's supports, and the loss is the cross-entropy of the true class.
 * Train on some classes, evaluate on unseen ones. Evaluation labels a query with the label of its
 * best-matching support, by cosine or by XNOR similarity of P random sign bits (SimHash) of the
 * embeddings: the LSH study of issue 5.
 */
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/lsh_index.h"
#include "index/matrix.h"

namespace wp::learn {

struct MatchingConfig {
  std::vector<int> hidden{256};  ///< hidden widths of the embedding MLP (ReLU)
  int embed = 64;                ///< embedding dimension
  int n_way = 5, k_shot = 1;     ///< training episodes
  int queries = 5;               ///< queries per class per episode
  int episodes_per_step = 16;    ///< episodes averaged per optimiser step
  double lr = 1e-3;              ///< Adam
  double scale = 10;             ///< softmax temperature on cosines
  uint64_t seed = 0;

  void validate() const;
};

/// Labelled vectors: row i of x has class y[i].
struct LabelledSet {
  index::Matrix x;
  std::vector<int> y;

  /// Rows whose class is in `classes`.
  LabelledSet subset(const std::vector<int>& classes) const;
  /// The distinct classes, ascending.
  std::vector<int> classes() const;
};

/// What one optimiser step did (means over its episodes).
struct MatchingStep {
  double loss = 0, accuracy = 0;
};

class MatchingTrainer {
 public:
  /// Trains on `train` (its classes); inputs are standardised by train's mean and deviation.
  MatchingTrainer(const LabelledSet& train, const MatchingConfig& cfg);
  ~MatchingTrainer();
  MatchingTrainer(const MatchingTrainer&) = delete;
  MatchingTrainer& operator=(const MatchingTrainer&) = delete;

  MatchingStep step();
  void set_learning_rate(double lr);

  /// Embeddings (rows) of x, standardised inside.
  index::Matrix embed(const index::Matrix& x) const;

  /**
   * Episode accuracy on `data` (usually unseen classes): `episodes` N-way K-shot episodes with
   * `queries` queries per class, seeded; a query takes the label of its best support by cosine
   * (bits = 0) or by XNOR similarity of `bits` random sign bits (SimHash, seeded) of the
   * embeddings. With `raw`, the input vectors instead of the embeddings (the untrained baseline).
   */
  double accuracy(const LabelledSet& data, int n_way, int k_shot, int queries, int episodes,
                  size_t bits, uint64_t seed, bool raw = false) const;

  /// The embedding (standardisation folded into the first layer) and `bits` random planes
  /// through the origin, as a HashModel that LshIndex loads.
  index::HashModel export_model(size_t bits, uint64_t seed) const;

  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Loads a dataset folder's base vectors and their labels (base_labels.ivecs or labels.ivecs).
LabelledSet load_labelled(const std::string& dir, size_t limit = static_cast<size_t>(-1));

}  // namespace wp::learn
