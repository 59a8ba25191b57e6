#pragma once
/**
 * @file train_pruner.h
 * The job behind `waypoint train-pruner`: builds the initial graph (HNSW level 0, medoid entry)
 * over a dataset, trains the pruning agent with TRPO on training queries that are never the
 * evaluation queries, validates on held-out training queries every few steps (an ef sweep of the
 * guarded graph, read at the target recall) keeping the policy with the fewest distance
 * computations there, and returns the learnt graph (an `rl` index).
 *
 * The job reads its dataset and writes nothing: it tells a PrunerObserver of its set-up, of every
 * step and of its checkpoint state at every validation, and returns the graph with the per-step
 * records. The command (learn/cli) draws the progress bar, writes the CSV log, plots, checkpoint
 * files and the index, and resumes by handing a decoded checkpoint back.
 */
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "index/dataset.h"
#include "index/graph_index.h"
#include "learn/job_observer.h"
#include "learn/pruner.h"

namespace wp::learn {

struct TrainPrunerOptions {
  std::string dataset;           ///< dataset folder (base.fvecs, ...)
  std::string initial = "pool";  ///< "hnsw" (level 0), "vamana" (alpha 1.2, R = 2M),
                                 ///< "complete" (raises M to fit n - 1), or "pool" (below)
  /**
   * "pool": the candidates good graphs are made of, at most 2M per vertex: a Vamana graph at the
   * compared degree (R = `degree`, slack `alpha`; the warm start), a wider one (R = M, alpha 1.2),
   * the `degree` nearest neighbours, and navigation edges (where a training search on the narrow
   * graph ended without a true neighbour, the edge from the result nearest to it to it). The
   * policy first imitates the narrow graph, which is also the best graph to beat at the start;
   * the degree budget (trainer.target_degree) is `degree`.
   */
  double degree = 0;  ///< pool: the compared degree (0: M)
  /// pool: the warm-start Vamana's slack; 0: the best of 1.2, 1.3 and 1.4 on the validation
  /// queries (DCS at target_recall)
  float alpha = 0;
  int imitate_iterations = 300;  ///< pool: Adam steps fitting the warm start
  /// Where searches enter the graph while it is trained, validated and served: "hnsw" (HNSW's
  /// upper levels, as `waypoint bench --entry hnsw` and served rl indexes do) or "medoid".
  std::string entry = "hnsw";
  size_t M = 16;
  size_t ef_construction = 200;
  size_t ef_search = 64;  ///< the learnt graph's default beam width when served
  size_t limit_base = 0;  ///< use only the first n base vectors (0: all)
  /// Evaluation queries held out of the base first (index::hold_out; the same split as
  /// `waypoint bench --holdout N --holdout-seed S`): 0 keeps the base whole.
  size_t holdout = 0;
  uint64_t holdout_seed = 7;
  EnvConfig env;  ///< ef (0: where the initial graph reaches target_recall), k, max_dcs (0:
                  ///< budget x the initial graph's mean DCS at that ef)
  /**
   * Sets the reward's exchange rate of recall for distance computations: max_dcs = DCS + budget
   * x (flat - DCS), with DCS the initial graph's at the training ef and flat the budget at which
   * the reward is flat along the initial graph's own recall/DCS curve (flat_reward_budget).
   * budget 1 pays nothing for moving along that curve and, since randomly dropped edges cost
   * more recall than they save, teaches the agent to keep every edge; a small budget pays for
   * trading recall away (the paper's 1.1 x DCS is about 0.01 on SIFT10K). Measured on SIFT10K:
   * 0.09 (max_dcs 1000) learns a graph with 36% fewer DCS at recall 0.95 than HNSW level 0 at
   * the medoid. From a warm start ("pool") a small budget only trades recall away along a worse
   * curve (docs/rl.md). 0: 1 for "pool", 0.09 otherwise.
   */
  double budget = 0;
  double target_recall = 0.95;  ///< validation keeps the policy with the fewest DCS at this recall
  size_t min_degree = 4;        ///< guard of the served graph (guarded_mask)
  PrunerConfig trainer;
  size_t steps = 50;
  double max_minutes = 0;  ///< stop after this long (0: no limit)
  size_t train_queries = 4000;
  size_t val_queries = 500;
  int validate_every = 5;
  int threads = 0;

  /// Throws UserError naming the field out of range (learn_pruned_graph calls it first).
  void validate() const;
};

/// The TRPO step (max KL) that `train-pruner` and the collection's rl job take from the pool's
/// warm start (docs/rl.md: 0.01 left the warm graph for worse within 20 steps).
inline constexpr double kPoolMaxKl = 0.002;

/// The degree "pool" compares at: o.degree, or M.
double pool_degree(const TrainPrunerOptions& o);

/// The job's set-up, measured before the first step on the validation queries.
struct PrunerSetup {
  size_t vertices = 0, edges = 0;  ///< the initial graph
  double initial_degree = 0;
  size_t train_queries = 0, val_queries = 0;
  std::string query_source;          ///< where the training queries came from
  double initial_dcs_at_target = 0;  ///< the initial graph's mean DCS at target recall
  size_t train_ef = 0;
  uint64_t max_dcs = 0;
  /// "pool": the warm-start graph's DCS at target recall and degree, and the share of edges on
  /// which the imitating policy agrees with it (0 without a warm start).
  double warm_dcs_at_target = 0, warm_degree = 0, imitation_agreement = 0;
  float warm_alpha = 0;    ///< its slack (chosen on the validation queries when alpha is 0)
  double seconds = 0;      ///< the set-up's time: graphs, pool, queries, calibration, imitation
  double flat_budget = 0;  ///< flat_reward_budget at the training ef (0 when max_dcs was given)
};

/// One TRPO step as the job saw it: one row of `train-pruner`'s CSV log.
struct PrunerStepRecord {
  StepStats stats;                ///< stats.step counts every step, across resumes
  double val_dcs_at_target = -1;  ///< validation DCS at target recall; -1: not validated
  size_t restored_edges = 0;      ///< edges the guard put back at that validation
  double seconds = 0;             ///< since this run started
};

/**
 * What a run resumes from: the trainer's state and the best validated graph so far. Its bytes
 * are learn's checkpoint format (learn/checkpoint.h); where they are kept is the caller's.
 */
struct PrunerCheckpoint {
  std::string trainer;             ///< PruningTrainer::state()
  int step = 0;                    ///< TRPO steps done
  int best_step = 0;               ///< 0: no validation has beaten the initial graph yet
  double best_dcs_at_target = 0;   ///< the best validated graph's (with best_step > 0)
  std::vector<uint8_t> best_mask;  ///< its edges over the initial graph (with best_step > 0)

  /// The state in learn's checkpoint format.
  std::string encode() const;
  /// Reads encode()'s output; throws UserError naming what is missing or damaged.
  static PrunerCheckpoint decode(const std::string& bytes);
};

/// Told of a run as it goes: started once the initial graph is measured, step after every TRPO
/// step, checkpoint after every validation, progress in steps.
using PrunerObserver = JobObserver<PrunerSetup, PrunerStepRecord, PrunerCheckpoint>;

/// What the job measured on its validation queries (never the evaluation queries).
struct TrainPrunerResult {
  PrunerSetup setup;
  double learnt_dcs_at_target = 0;  ///< the returned graph's mean DCS at target recall
  double learnt_degree = 0;
  int best_step = 0;  ///< 0: no step beat the initial graph (the warm start for "pool"), which is
                      ///< then returned
  std::vector<PrunerStepRecord> steps;  ///< this run's steps, in order
};

/// A learnt graph and how it was learnt.
struct PrunedGraph {
  std::unique_ptr<index::GraphIndex> graph;  ///< the initial graph, best validated mask applied
  TrainPrunerResult result;
};

/// train_pruner's output: the learnt graph and the data it was learnt over.
struct TrainedPruner {
  PrunedGraph learnt;
  index::Dataset data;  ///< the dataset with its base cut to limit_base rows (graph slot i = row i)
};

/// Training and validation queries for a graph: (its HNSW, how many, k, out: where they came from).
using QuerySource = std::function<QuerySet(const index::HnswIndex&, size_t, size_t, std::string*)>;

/**
 * `waypoint train-pruner`'s job: loads the dataset, draws training queries that are never its
 * evaluation queries, learns (learn_pruned_graph). `resume`: a checkpoint of the same options to
 * continue from, or null.
 */
TrainedPruner train_pruner(const TrainPrunerOptions& o, const PrunerObserver& observer = {},
                           const PrunerCheckpoint* resume = nullptr);

/**
 * The learning itself, on vectors in memory: builds the initial graph over `base` (row i gets
 * id ids[i]), trains with queries from `queries`, validates, and returns the learnt graph with
 * the best validated mask applied (o.dataset and o.limit_base are not used).
 */
PrunedGraph learn_pruned_graph(const index::Matrix& base, const index::label_t* ids,
                               index::Metric metric, const TrainPrunerOptions& o,
                               const QuerySource& queries, const PrunerObserver& observer = {},
                               const PrunerCheckpoint* resume = nullptr);

/// The same with leave-one-out queries drawn from `base` itself (a collection has no query set).
PrunedGraph learn_pruned_graph(const index::Matrix& base, const index::label_t* ids,
                               index::Metric metric, const TrainPrunerOptions& o,
                               const PrunerObserver& observer = {});

/// Lets collections build index type "rl" (engine/learned_index.h): the same job on the
/// collection's points with leave-one-out queries, in the background of PUT .../index.
void register_learned_indexes();

}  // namespace wp::learn
