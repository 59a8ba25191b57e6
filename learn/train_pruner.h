#pragma once
/**
 * @file train_pruner.h
 * `waypoint train-pruner`: builds the initial graph (HNSW level 0, medoid entry) over a dataset,
 * trains the pruning agent with TRPO on training queries that are never the evaluation queries,
 * validates on held-out training queries every few steps (an ef sweep of the guarded graph,
 * read at the target recall) keeping the policy with the fewest distance computations there, and
 * writes the learnt graph as an `rl` index file. Logs a CSV row per step and plots the curves
 * (PNG); checkpoints after every validation and resumes from one.
 */
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "index/graph_index.h"
#include "learn/pruner.h"

namespace wp::learn {

struct TrainPrunerOptions {
  std::string dataset;           ///< dataset folder (base.fvecs, ...)
  std::string out;               ///< rl index file to write
  std::string initial = "hnsw";  ///< "hnsw" (level 0), "vamana" (alpha 1.2, R = 2M), or
                                 ///< "complete" (raises M to fit n - 1)
  size_t M = 16;
  size_t ef_construction = 200;
  size_t limit_base = 0;  ///< use only the first n base vectors (0: all)
  EnvConfig env;          ///< ef (0: where the initial graph reaches target_recall), k, max_dcs (0:
                          ///< budget x the initial graph's mean DCS at that ef)
  /**
   * Sets the reward's exchange rate of recall for distance computations: max_dcs = DCS + budget
   * x (flat - DCS), with DCS the initial graph's at the training ef and flat the budget at which
   * the reward is flat along the initial graph's own recall/DCS curve (flat_reward_budget).
   * budget 1 pays nothing for moving along that curve and, since randomly dropped edges cost
   * more recall than they save, teaches the agent to keep every edge; a small budget pays for
   * trading recall away (the paper's 1.1 x DCS is about 0.01 on SIFT10K). Measured on SIFT10K:
   * 0.09 (max_dcs 1000) learns a graph with 36% fewer DCS at recall 0.95.
   */
  double budget = 0.09;
  double target_recall = 0.95;  ///< validation keeps the policy with the fewest DCS at this recall
  size_t min_degree = 4;        ///< guard of the served graph (guarded_mask)
  PrunerConfig trainer;
  size_t steps = 50;
  double max_minutes = 0;  ///< stop after this long (0: no limit)
  size_t train_queries = 4000;
  size_t val_queries = 500;
  int validate_every = 5;
  std::string log_csv;     ///< default: <out>.csv
  std::string plot_png;    ///< default: <out>.png
  std::string checkpoint;  ///< default: <out>.ckpt
  std::string graph_png;   ///< optional: the learnt graph drawn in 2-D (PCA), colour = label,
                           ///< size = in-degree (small graphs: the toy example)
  bool resume = false;
  bool quiet = false;
  int threads = 0;
};

/// What the job measured on its validation queries (never the evaluation queries).
struct TrainPrunerResult {
  double initial_dcs_at_target = 0;  ///< the initial graph's mean DCS at target recall
  double learnt_dcs_at_target = 0;   ///< the written graph's
  double initial_degree = 0, learnt_degree = 0;
  size_t train_ef = 0;
  uint64_t max_dcs = 0;
  int best_step = 0;         ///< 0: no step beat the initial graph, which is then written unpruned
  std::string query_source;  ///< where the training queries came from
};

/// `waypoint train-pruner`: loads the dataset, learns, writes the index, its log, curves and
/// checkpoint (default paths beside --out) and, when asked, the drawing of the graph.
TrainPrunerResult train_pruner(const TrainPrunerOptions& o);

/// Training and validation queries for a graph: (its HNSW, how many, k, out: where they came from).
using QuerySource = std::function<QuerySet(const index::HnswIndex&, size_t, size_t, std::string*)>;

/**
 * The learning itself, on vectors in memory: builds the initial graph over `base` (row i gets
 * id ids[i]), trains with queries from `queries`, validates, and returns the learnt graph with
 * the best validated mask applied. Writes the CSV log, checkpoint and curves only where their
 * paths in `o` are set (o.out is not used). `on_step` gets the fraction of steps done.
 */
std::unique_ptr<index::GraphIndex> learn_pruned_graph(
    const index::Matrix& base, const index::label_t* ids, index::Metric metric,
    const TrainPrunerOptions& o, const QuerySource& queries, TrainPrunerResult* result,
    const std::function<void(double)>& on_step);

/// Lets collections build index type "rl" (engine/learned_index.h): the same job on the
/// collection's points with leave-one-out queries, in the background of PUT .../index.
void register_learned_indexes();

/// The same with leave-one-out queries drawn from `base` itself (a collection has no query set).
std::unique_ptr<index::GraphIndex> learn_pruned_graph(const index::Matrix& base,
                                                      const index::label_t* ids,
                                                      index::Metric metric,
                                                      const TrainPrunerOptions& o,
                                                      TrainPrunerResult* result,
                                                      const std::function<void(double)>& on_step);

}  // namespace wp::learn
