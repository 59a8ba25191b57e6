#pragma once
/**
 * @file matching.h
 * Matching networks (Vinyals et al., NeurIPS 2016) for learned hashing, behind a plain header
 * (LibTorch lives in matching.cpp, which trains, and matching_eval.cpp, which evaluates and
 * exports; the labelled data is learn/labelled_set.h).
 *
 * An embedding network f (an MLP, or a small conv net for square images) is trained episodically:
 * an episode draws N classes, K support and Q query examples per class; a query attends over the
 * supports by softmax(scale * s(f(q), f(s_i))), P(class c) = the attention on c's supports, and
 * the loss is the cross-entropy of the true class. The score s is
 *  - "cosine": cos(f(q), f(s));
 *  - "bits" (LSH-aware): a soft agreement of P sign bits a_p(x) = w_p . f(x) + b_p, relaxed as
 *    the mean over planes of 2 sigmoid(beta a_p(q) a_p(s)) - 1 ("sigmoid"), of tanh(beta a_p(q))
 *    tanh(beta a_p(s)) ("tanh"), or of sign(a_p(q)) sign(a_p(s)) with the tanh's gradient
 *    (straight-through, "ste"); projections are scaled by their detached batch deviation, which
 *    leaves every sign unchanged. The planes are trained ("learned"), random and frozen ("fixed"),
 *    or one ridge separator per training class refitted every few steps ("ovr", one-vs-rest).
 * Train on some classes, evaluate on unseen ones (EvalSpec): a query takes the label of its
 * best-matching support by cosine, by XNOR of random sign bits (SimHash) of the embeddings, by
 * XNOR of the model's own planes, or by one-vs-rest separators fitted on the episode's supports.
 */
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/hash_model.h"
#include "index/matrix.h"
#include "learn/labelled_set.h"

namespace wp::learn {

struct MatchingConfig {
  std::string encoder = "mlp";     ///< "mlp", or "conv" (square images: d = s * s, s % 4 == 0)
  std::vector<int> hidden{256};    ///< hidden widths of the MLP (ReLU); may be empty (linear)
  int embed = 64;                  ///< embedding dimension
  int n_way = 5, k_shot = 1;       ///< training episodes
  int queries = 5;                 ///< queries per class per episode
  int episodes_per_step = 16;      ///< episodes averaged per optimiser step
  double lr = 1e-3;                ///< Adam
  double weight_decay = 0;         ///< L2 on every weight (Adam's)
  double dropout = 0;              ///< after each hidden layer, while training
  double scale = 10;               ///< softmax temperature on scores in [-1, 1]
  std::string score = "cosine";    ///< "cosine" or "bits"
  std::string planes = "learned";  ///< with score "bits": "learned", "fixed" or "ovr"
  std::string relax = "tanh";      ///< with score "bits": "sigmoid", "tanh" or "ste"
  int bits = 256;                  ///< planes with score "bits" (ovr: one per training class)
  double beta = 1;                 ///< sharpness of the relaxation
  int ovr_every = 25;              ///< steps between refits of one-vs-rest planes
  /// Input scaling: "feature" (per-feature deviation, floored at the mean deviation) or "global"
  /// (one deviation for all features: keeps L2 geometry, for retrieval)
  std::string standardise = "feature";
  uint64_t seed = 0;

  /// Throws UserError naming the field.
  void validate() const;
};

/// What one optimiser step (or an evaluation) did: means over its episodes.
struct MatchingStep {
  double loss = 0, accuracy = 0;
};

/// Episodes for evaluation, and how a query is matched to the supports.
struct EvalSpec {
  int n_way = 5, k_shot = 1, queries = 5, episodes = 200;
  /// "cosine" (of the embeddings), "simhash" (XNOR of `bits` random sign bits of the normalised
  /// embeddings), "planes" (XNOR of the model's planes; score "bits" only), "ovr" (XNOR of one
  /// ridge separator per class fitted on the episode's support embeddings), "score" (the
  /// training score, soft)
  std::string code = "cosine";
  size_t bits = 0;    ///< simhash planes
  bool raw = false;   ///< the input vectors instead of the embeddings (cosine, simhash)
  uint64_t seed = 1;  ///< episodes and simhash planes

  /// Throws UserError naming the field.
  void validate() const;
};

/// Episodic training of a matching network (above), its evaluation and its export.
class MatchingTrainer {
 public:
  /// Trains on `train` (its classes); inputs are standardised by train's mean and deviation.
  MatchingTrainer(const LabelledSet& train, const MatchingConfig& cfg);
  ~MatchingTrainer();
  MatchingTrainer(const MatchingTrainer&) = delete;
  MatchingTrainer& operator=(const MatchingTrainer&) = delete;

  const MatchingConfig& config() const;
  /// One optimiser step on episodes_per_step fresh training episodes.
  MatchingStep step();
  size_t steps_done() const;
  /// Adam's current learning rate; set_learning_rate changes it for the next steps.
  double learning_rate() const;
  void set_learning_rate(double lr);
  /// Relative sampling weights of the training classes (train.classes() order) for the classes
  /// of the next episodes; empty = uniform.
  void set_class_mix(const std::vector<double>& weights);
  /// Per training class (train.classes() order): a moving average of its queries' loss.
  std::vector<double> class_losses() const;
  /// Mean, deviation, mean |w| and max |w| of the first layer's weights.
  std::vector<double> first_layer_stats() const;
  /// Every trained parameter, flattened; set_anchor(p, mu) adds mu * |theta - p|^2 to the
  /// training loss ("meta-momentum"; mu = 0 removes it).
  std::vector<float> flat_parameters() const;
  void set_anchor(const std::vector<float>& params, double mu);

  /// Embeddings (rows) of x, standardised inside.
  index::Matrix embed(const index::Matrix& x) const;

  /// Episode accuracy on `data` (usually unseen classes), and the training loss on the same
  /// episodes (code "score" gives the training score's argmax accuracy).
  MatchingStep evaluate(const LabelledSet& data, const EvalSpec& spec) const;
  double accuracy(const LabelledSet& data, const EvalSpec& spec) const {
    return evaluate(data, spec).accuracy;
  }

  /**
   * The embedding (standardisation folded into the first layer) and planes, as a HashModel that
   * LshIndex loads: the model's own planes with score "bits" (`bits` ignored), else `bits` random
   * planes through the origin (SimHash of the embedding). MLP encoders only.
   */
  index::HashModel export_model(size_t bits, uint64_t seed) const;

  /// The whole training state (weights, planes, optimiser, sampler, step count) as bytes.
  std::string state() const;
  /// Takes a state() of a trainer with the same configuration; throws UserError if it does not fit.
  void restore(const std::string& state);
  /// state() written to, or restored from, a file.
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wp::learn
