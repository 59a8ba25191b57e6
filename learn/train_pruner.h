#pragma once
/**
 * @file train_pruner.h
 * `waypoint train-pruner`: builds the initial graph (HNSW level 0, medoid entry) over a dataset,
 * trains the pruning agent with TRPO on training queries that are never the evaluation queries,
 * validates on held-out training queries every few steps keeping the policy with the fewest
 * distance computations at a recall no lower than the initial graph's, and writes the
 * learnt graph as an `rl` index file. Logs a CSV row per step and plots the curves (PNG);
 * checkpoints after every validation and resumes from one.
 */
#include <cstdint>
#include <string>

#include "learn/pruner.h"

namespace wp::learn {

struct TrainPrunerOptions {
  std::string dataset;  ///< dataset folder (base.fvecs, ...)
  std::string out;      ///< rl index file to write
  size_t M = 16;
  size_t ef_construction = 200;
  size_t limit_base = 0;  ///< use only the first n base vectors (0: all)
  EnvConfig env;          ///< ef, k, max_dcs (0: 1.5 x the initial graph's mean DCS)
  PrunerConfig trainer;
  size_t steps = 50;
  double max_minutes = 0;  ///< stop after this long (0: no limit)
  size_t train_queries = 4000;
  size_t val_queries = 500;
  int validate_every = 5;
  std::string log_csv;     ///< default: <out>.csv
  std::string plot_png;    ///< default: <out>.png
  std::string checkpoint;  ///< default: <out>.ckpt
  bool resume = false;
  bool quiet = false;
  int threads = 0;
};

/// Runs the whole job; returns the validation stats of the written graph.
EvalStats train_pruner(const TrainPrunerOptions& o);

}  // namespace wp::learn
