#pragma once
/**
 * @file train_hash.h
 * The job behind `waypoint train-hash`: trains a matching network (learn/matching.h) on the
 * training classes of a labelled dataset, validates on unseen classes every few steps keeping the
 * best weights (early stopping after `patience` validations without improvement), optionally
 * steered by the DQN controller (learn/qan.h), and returns the embedding + planes as a HashModel
 * that LshIndex loads (`waypoint build --index lsh --hash-model FILE`); can run the LSH study
 * (5-way 1- and 10-shot accuracy on the unseen classes' test rows by cosine, by XNOR of
 * 100..2000 random planes, and by the model's own planes). The itq task fits ITQ planes instead.
 *
 * The job reads its dataset and writes nothing: it tells a HashObserver of its data split, of
 * every step and of its checkpoint state at every validation, and returns the model, the trainer
 * state and the per-step records. The command (learn/cli) draws the progress bar, writes the CSV
 * log, plots, checkpoint and model files, and resumes by handing a decoded checkpoint back.
 *
 * Splits: unseen classes = those not trained on. With query labels (Fashion-MNIST): training =
 * every base row of the training classes, validation = unseen classes' base rows, test = the
 * query rows (unseen classes; the training classes' query rows are the study's "seen" rows).
 * Without (digits): even rows train, odd rows of the training classes are the seen test, and the
 * unseen classes' rows alternate between validation and test. Validation and test rows are
 * disjoint; model selection sees the unseen classes, never the test rows.
 */
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "learn/itq.h"
#include "learn/job_observer.h"
#include "learn/matching.h"
#include "learn/qan.h"

namespace wp::learn {

struct TrainHashOptions {
  std::string dataset;             ///< dataset folder (labelled, but for the itq task)
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
  int threads = 0;

  /// Throws UserError naming the field no job accepts (train_hash calls it first).
  void validate() const;
};

/// One row of the study: an evaluation code and its accuracy at 1 and 10 shots, on unseen
/// classes and on held-out rows of the training classes.
struct StudyRow {
  std::string name;
  double one_shot = 0, ten_shot = 0;            ///< unseen classes
  double seen_one_shot = 0, seen_ten_shot = 0;  ///< training classes, rows never trained on
};

/// What a run is for: the DQN's exploring runs, the kept one, the fixed-lr baselines.
enum class RunRole { kExplore, kKept, kBaseline };

/// A run's validation: its best accuracy (and the loss there) and its last loss.
struct RunSummary {
  std::string name;  ///< "dqn run 2 (kept)", "lr 0.001"
  RunRole role = RunRole::kKept;
  double best_val_accuracy = 0, best_val_loss = 0, last_val_loss = 0, last_val_accuracy = 0;
};

/// The classes and rows the matching tasks train, validate and test on, known before the first
/// step.
struct HashSplit {
  std::vector<int> train_classes;   ///< the classes trained on
  std::vector<int> unseen_classes;  ///< the others: validation (by default) and test
  size_t train_rows = 0, val_rows = 0, test_rows = 0;
  /// How validation matches: the training episodes' shape (n_way capped by the validation
  /// classes) and the model's natural code.
  EvalSpec validation;
};

/// One training step of a matching task: one row of `train-hash`'s CSV log.
struct HashStepRecord {
  int run = 0;                              ///< index into TrainHashResult::runs
  size_t step = 0;                          ///< 1-based within the run, across resumes
  double loss = 0, accuracy = 0;            ///< the step's training episodes
  double lr = 0;                            ///< the learning rate after the step
  bool hard_mix = false;                    ///< the DQN drew hard classes for this step
  bool validated = false;                   ///< the run was validated after this step
  double val_loss = -1, val_accuracy = -1;  ///< -1 when not validated
  double seconds = 0;                       ///< since the job started
};

/**
 * What the kept run resumes from (controller "none"): the trainer's state, the best validated
 * one and the early-stopping count. Its bytes are learn's checkpoint format (learn/checkpoint.h);
 * where they are kept is the caller's.
 */
struct HashCheckpoint {
  std::string trainer;  ///< MatchingTrainer::state()
  std::string best;     ///< the state at the best validation so far (empty: none yet)
  size_t step = 0;      ///< steps done
  size_t best_step = 0;
  double best_val_accuracy = 0, best_val_loss = 0;
  int bad_validations = 0;  ///< validations since the best one

  /// The state in learn's checkpoint format.
  std::string encode() const;
  /// Reads encode()'s output; throws UserError naming what is missing or damaged.
  static HashCheckpoint decode(const std::string& bytes);
};

/// Told of a job as it goes: started once the data is split, step after every training step of
/// every run, checkpoint after every validation of the kept run with controller "none" (the
/// DQN's runs restart together), progress in steps of all runs or in ITQ iterations. The itq task
/// reports progress only.
using HashObserver = JobObserver<HashSplit, HashStepRecord, HashCheckpoint>;

/// What the job measured and made.
struct TrainHashResult {
  size_t steps_run = 0;  ///< the kept run's steps (itq: iterations)
  size_t best_step = 0;
  double best_val_accuracy = 0, best_val_loss = 0;
  double test_accuracy = 0;  ///< N-way K-shot of the training config, on the test rows
  HashSplit split;
  std::vector<StudyRow> study;
  std::vector<RunSummary> runs;       ///< every run, in order (DQN runs, then baselines)
  std::vector<HashStepRecord> steps;  ///< every step of every run, in order
  /// The planes to serve: MLP encoders and itq (a conv encoder exports none).
  std::optional<index::HashModel> model;
  /// Matching tasks: the kept trainer's state with its best validated weights.
  std::string trainer_state;
  std::vector<double> itq_loss;  ///< itq: quantisation loss per iteration (fit_itq)
  double itq_explained_variance = 0;
};

/**
 * `waypoint train-hash`'s job: loads and splits the dataset, trains (or fits ITQ) telling
 * `observer`, and returns the model. `resume`: a checkpoint of the same options to continue the
 * kept run from, or null (check_resumable says when there can be one).
 */
TrainHashResult train_hash(const TrainHashOptions& o, const HashObserver& observer = {},
                           const HashCheckpoint* resume = nullptr);

/// Throws UserError when a job of `o` cannot resume from a checkpoint: the itq task keeps no
/// trainer state, and the DQN's runs restart together.
void check_resumable(const TrainHashOptions& o);

/// The study's rows for a trained model on `test` (unseen classes) and `seen` (held-out rows of
/// the training classes), 5-way, 1 and 10 shots: input cosine and SimHash, embedding cosine and
/// SimHash at each bit count, the model's planes and episode one-vs-rest separators.
std::vector<StudyRow> lsh_study(const MatchingTrainer& t, const LabelledSet& test,
                                const LabelledSet& seen, const std::vector<size_t>& bits,
                                int episodes, uint64_t seed);

/// The study as a markdown table.
std::string study_table(const std::vector<StudyRow>& rows);

}  // namespace wp::learn
