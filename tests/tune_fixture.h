#pragma once
// The tuner's tests share a small real problem: 2000 SIFT10K rows as base, 100 other rows as
// queries with exact ground truth, and a run of a strategy at recall@10 >= 0.9 on it.
#include <functional>
#include <string>

#include "engine/tune.h"
#include "index/dataset.h"
#include "test_util.h"

namespace wp::test {

struct SmallTuning {
  index::Matrix base, queries;
  index::IntMatrix gt;

  SmallTuning() {
    const index::Dataset ds = load_test_data("siftsmall");
    base = index::Matrix(2000, ds.base.d);
    queries = index::Matrix(100, ds.base.d);
    std::copy_n(ds.base.data.begin(), base.data.size(), base.data.begin());
    std::copy_n(ds.base.data.begin() + static_cast<long>(base.data.size()), queries.data.size(),
                queries.data.begin());
    gt = index::exact_knn(base, queries, 10, index::Metric::kL2);
  }

  engine::tune::EnvironmentOptions options() const {
    engine::tune::EnvironmentOptions eo;
    eo.repeats = 1;
    eo.min_seconds = 0;
    return eo;
  }

  /// The reward of these runs: QPS against `env`'s exact search, at recall@10 >= 0.9.
  static engine::tune::RewardSpec reward(engine::tune::Environment& env) {
    engine::tune::RewardSpec r;
    r.recall_target = 0.9;
    r.reference_qps = env.exact_qps();
    return r;
  }
  /// `trials` trials at recall@10 >= 0.9.
  static engine::tune::TuneOptions tune_options(size_t trials) {
    engine::tune::TuneOptions to;
    to.recall = 0.9;
    to.trials = trials;
    return to;
  }

  /// `trials` of the registered strategy `name` over hnsw and lsh at recall@10 >= 0.9.
  engine::tune::StrategyResult run(
      const std::string& name, uint64_t seed, size_t trials,
      const std::function<void(const engine::tune::Trial&)>& on_trial = {}) const {
    using namespace engine::tune;
    Environment env(base, index::Metric::kL2, queries, gt, options());
    const Space s = Space::standard({"hnsw", "lsh"});
    auto strat = (*strategy(name))(s, seed);
    return run_strategy(name, *strat, env, s, reward(env), tune_options(trials), on_trial);
  }
};

}  // namespace wp::test
