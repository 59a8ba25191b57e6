#pragma once
/**
 * @file train_hash.h
 * `waypoint train-hash`: trains a matching network (learn/matching.h) on the training classes of
 * a labelled dataset, validates on unseen classes every few steps keeping the best weights
 * (early stopping after `patience` validations without improvement), optionally steered by the
 * DQN controller (learn/qan.h), and writes the embedding + planes as a HashModel file that
 * LshIndex loads (`waypoint build --index lsh --hash-model FILE`). Logs a CSV row per step, plots
 * the curves (PNG), checkpoints after every validation and resumes from one, and can run the LSH
 * study (5-way 1- and 10-shot accuracy on the unseen classes' test rows by cosine, by XNOR of
 * 100..2000 random planes, and by the model's own planes).
 *
 * Splits: unseen classes = those not trained on. With query labels (Fashion-MNIST): training =
 * every base row of the training classes, validation = unseen classes' base rows, test = the
 * query rows (unseen classes; the training classes' query rows are the study's "seen" rows).
 * Without (digits): even rows train, odd rows of the training classes are the seen test, and the
 * unseen classes' rows alternate between validation and test. Validation and test rows are
 * disjoint; model selection sees the unseen classes, never the test rows.
 */
#include <cstdint>
#include <string>
#include <vector>

#include "learn/itq.h"
#include "learn/matching.h"
#include "learn/qan.h"

namespace wp::learn {

struct TrainHashOptions {
  std::string dataset;
  std::string out;                 ///< HashModel file (MLP encoders); <out>.pt: the trainer state
  std::vector<int> train_classes;  ///< empty: the lower half of the classes
  /// "classes" (the dataset's labels), or "neighbours": pseudo-classes made of an anchor base
  /// vector and its exact nearest neighbours, so that bits learn to keep neighbours together
  /// (planes for retrieval; 80% of the anchors train, the rest validate and test); or "itq":
  /// unsupervised iterative quantisation of the base vectors (learn/itq.h), planes for retrieval
  /// without an embedding (`itq` below; the CSV logs the quantisation loss per iteration)
  std::string task = "classes";
  ItqConfig itq;           ///< the itq task's settings
  size_t anchors = 4000;   ///< neighbours task: anchors drawn from the base vectors
  size_t neighbours = 10;  ///< neighbours task: neighbours per anchor
  MatchingConfig cfg;
  size_t steps = 500;
  double max_minutes = 0;
  int validate_every = 25;
  int val_episodes = 300;
  /// "unseen": validate on unseen classes (the default); "seen": on every 10th row of the
  /// training classes, which is then held out of training (how well the training task is learnt)
  std::string validate_on = "unseen";
  int patience = 0;                 ///< validations without improvement before stopping (0: never)
  size_t export_bits = 256;         ///< random planes on a cosine-trained embedding
  std::string controller = "none";  ///< "none" or "dqn"
  DqnConfig dqn;
  /// Runs with these fixed learning rates after the kept run, same steps, logged and plotted
  /// beside it (what the DQN is compared against); not kept.
  std::vector<double> baseline_lrs;
  bool study = false;
  std::vector<size_t> study_bits{100, 200, 500, 1000, 2000};
  int study_episodes = 600;
  std::string log_csv, plot_png, checkpoint, study_md;  ///< defaults beside out
  bool resume = false;
  bool quiet = false;
  int threads = 0;
};

/// One row of the study: an evaluation code and its accuracy at 1 and 10 shots, on unseen
/// classes and on held-out rows of the training classes.
struct StudyRow {
  std::string name;
  double one_shot = 0, ten_shot = 0;            ///< unseen classes
  double seen_one_shot = 0, seen_ten_shot = 0;  ///< training classes, rows never trained on
};

/// A run's validation: its best accuracy (and the loss there) and its last loss.
struct RunSummary {
  std::string name;
  double best_val_accuracy = 0, best_val_loss = 0, last_val_loss = 0, last_val_accuracy = 0;
};

struct TrainHashResult {
  size_t steps_run = 0;
  size_t best_step = 0;
  double best_val_accuracy = 0, best_val_loss = 0;
  double test_accuracy = 0;  ///< N-way K-shot of the training config, on the test rows
  std::vector<int> train_classes, unseen_classes;
  std::vector<StudyRow> study;
  std::vector<RunSummary> runs;  ///< every run, in order (DQN runs, then baselines)
};

TrainHashResult train_hash(const TrainHashOptions& o);

/// The study's rows for a trained model on `test` (unseen classes) and `seen` (held-out rows of
/// the training classes), 5-way, 1 and 10 shots: input cosine and SimHash, embedding cosine and
/// SimHash at each bit count, the model's planes and episode one-vs-rest separators.
std::vector<StudyRow> lsh_study(const MatchingTrainer& t, const LabelledSet& test,
                                const LabelledSet& seen, const std::vector<size_t>& bits,
                                int episodes, uint64_t seed);

/// The study as a markdown table.
std::string study_table(const std::vector<StudyRow>& rows);

}  // namespace wp::learn
