#include "engine/tune_strategy.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "engine/learn_module.h"
#include "index/error.h"

namespace wp::engine::tune {

namespace {

std::mutex registry_mu;
std::map<std::string, StrategyFactory>& registry();

/// Uniform over types, then over each choice; never proposes a configuration twice while
/// unproposed ones remain.
class RandomSearch : public Strategy {
 public:
  RandomSearch(const Space& s, uint64_t seed) : s_(s), rng_(seed) {}
  Config propose() override {
    Config c;
    for (int attempt = 0; attempt < 1000; ++attempt) {
      c.type = std::uniform_int_distribution<size_t>(0, s_.kinds.size() - 1)(rng_);
      c.picks.clear();
      for (const Choice& ch : s_.choices[c.type]) {
        c.picks.push_back(std::uniform_int_distribution<size_t>(0, ch.values.size() - 1)(rng_));
      }
      if (seen_.insert(c).second) break;
    }
    return c;
  }
  void observe(const Config&, double, bool) override {}

 private:
  const Space& s_;
  std::mt19937_64 rng_;
  std::set<Config> seen_;
};

/**
 * Coordinate search in the manner of FAISS's AutoTune: from the middle value of every choice,
 * sweep one choice at a time over all its values (the others fixed; the search-time choice
 * first) and move to the best; the types take turns, a sweep each. Values are ordered so that
 * larger means slower and more accurate; as AutoTune does with its Pareto bound, a sweep skips
 * values that monotonicity already rules out: below a value that missed the target, and above the
 * first value that met it (a larger one can only be slower).
 */
class CoordinateSearch : public Strategy {
 public:
  CoordinateSearch(const Space& s, uint64_t) : s_(s) {
    for (size_t t = 0; t < s.kinds.size(); ++t) {
      Config c{t, {}};
      for (const Choice& ch : s.choices[t]) c.picks.push_back(ch.values.size() / 2);
      current_.push_back(c);
      best_.push_back(-1e300);
      coordinate_.push_back(0);
      // The search-time choice (ef, candidates) first, as AutoTune sweeps search parameters.
      std::vector<size_t> order;
      for (size_t j = 0; j < s.choices[t].size(); ++j) {
        if (s.choices[t][j].search_time) order.push_back(j);
      }
      for (size_t j = 0; j < s.choices[t].size(); ++j) {
        if (!s.choices[t][j].search_time) order.push_back(j);
      }
      order_.push_back(order);
    }
  }

  Config propose() override {
    for (int guard = 0; guard < 10000; ++guard) {
      if (queue_.empty()) next_sweep();
      const Config c = queue_.front();
      queue_.erase(queue_.begin());
      if (tried_.insert(c).second) return c;
    }
    return current_[0];  // everything tried: repeats end the run
  }

  void observe(const Config& c, double reward, bool feasible) override {
    // Feasible configurations first, then by reward.
    if (feasible) reward += 1e12;
    if (reward > best_[c.type]) {
      best_[c.type] = reward;
      current_[c.type] = c;
    }
    // Monotonicity (larger = slower and more accurate): once the sweep's coordinate meets the
    // target, larger values of it cannot be faster; below one that misses, smaller cannot reach.
    if (sweep_type_ != c.type || queue_.empty()) return;
    const size_t j = sweep_coordinate_;
    const size_t v = c.picks[j];
    std::vector<Config> kept;
    for (const Config& q : queue_) {
      const bool larger = q.picks[j] > v, smaller = q.picks[j] < v;
      if ((feasible && larger) || (!feasible && smaller)) continue;
      kept.push_back(q);
    }
    queue_ = std::move(kept);
  }

 private:
  void next_sweep() {
    const size_t t = turn_++ % s_.kinds.size();
    const size_t j = order_[t][coordinate_[t]++ % order_[t].size()];
    sweep_type_ = t;
    sweep_coordinate_ = j;
    // Outward from the current value: up to the first that meets the target, down to the first
    // that misses it (observe() prunes the rest).
    const size_t n = s_.choices[t][j].values.size(), at = current_[t].picks[j];
    for (size_t d = 0; d < n; ++d) {
      for (long sign : {1L, -1L}) {
        const long v = static_cast<long>(at) + sign * static_cast<long>(d);
        if (v < 0 || v >= static_cast<long>(n) || (d == 0 && sign < 0)) continue;
        Config c = current_[t];
        c.picks[j] = static_cast<size_t>(v);
        queue_.push_back(c);
      }
    }
  }

  const Space& s_;
  std::vector<Config> current_;
  std::vector<double> best_;
  std::vector<size_t> coordinate_;
  std::vector<std::vector<size_t>> order_;  ///< per type: the sweep order of its choices
  size_t turn_ = 0, sweep_type_ = 0, sweep_coordinate_ = 0;
  std::vector<Config> queue_;
  std::set<Config> tried_;
};

std::map<std::string, StrategyFactory>& registry() {
  static std::map<std::string, StrategyFactory> r{
      {"random",
       [](const Space& s, uint64_t seed) { return std::make_unique<RandomSearch>(s, seed); }},
      {"coordinate",
       [](const Space& s, uint64_t seed) { return std::make_unique<CoordinateSearch>(s, seed); }},
  };
  return r;
}

}  // namespace

void register_strategy(const std::string& name, StrategyFactory factory) {
  std::lock_guard<std::mutex> g(registry_mu);
  registry()[name] = std::move(factory);
}

namespace {
const StrategyFactory* find_strategy(const std::string& name) {
  std::lock_guard<std::mutex> g(registry_mu);
  auto& r = registry();
  auto it = r.find(name);
  return it == r.end() ? nullptr : &it->second;
}
}  // namespace

const StrategyFactory* strategy(const std::string& name) {
  if (const StrategyFactory* f = find_strategy(name)) return f;
  // "controller" is the module's. Every caller has a way without it (auto tuning falls back to
  // coordinate search, `tune` lists what it has), so a module that cannot be loaded means none.
  try {
    return load_learn_module() ? find_strategy(name) : nullptr;
  } catch (const std::exception&) {
    return nullptr;
  }
}

std::vector<StrategyResult> run_strategies(
    const std::vector<std::pair<std::string, Strategy*>>& strategies, Environment& env,
    const Space& space, const RewardSpec& reward, const TuneOptions& opts,
    const std::function<void(size_t, const Trial&)>& on_trial) {
  struct Run {
    std::map<Config, std::pair<double, bool>> seen;
    size_t proposals = 0;
    double seconds = 0;
    bool done = false;
  };
  std::vector<StrategyResult> out(strategies.size());
  std::vector<Run> runs(strategies.size());
  for (size_t i = 0; i < strategies.size(); ++i) out[i].name = strategies[i].first;
  // One trial of each strategy in turn, so that drift in the machine's speed touches all alike.
  for (size_t left = strategies.size(); left > 0;) {
    for (size_t i = 0; i < strategies.size(); ++i) {
      Run& run = runs[i];
      StrategyResult& res = out[i];
      Strategy& strategy = *strategies[i].second;
      if (run.done) continue;
      const auto t0 = Clock::now();
      std::optional<Trial> trial;
      while (!trial && run.proposals < opts.trials * opts.max_proposals_per_trial) {
        const Config c = strategy.propose();
        WP_THROW_INTERNAL_IF_NOT(valid(space, c), "strategy ", res.name,
                                 " proposed an invalid config");
        ++run.proposals;
        if (auto it = run.seen.find(c); it != run.seen.end()) {
          // A repeat: told again, not measured, not a trial.
          strategy.observe(c, it->second.first, it->second.second);
          continue;
        }
        Trial t;
        t.config = c;
        t.m = env.measure(space, c);
        t.reward = reward.reward(t.m);
        t.feasible = reward.feasible(t.m);
        run.seen[c] = {t.reward, t.feasible};
        strategy.observe(c, t.reward, t.feasible);
        t.trial = res.trials.size() + 1;
        t.proposals = run.proposals;
        if (t.feasible && (!res.best || t.reward > res.trials[*res.best].reward)) {
          res.best = res.trials.size();
        }
        t.best_reward = !res.best                        ? 0
                        : *res.best == res.trials.size() ? t.reward
                                                         : res.trials[*res.best].reward;
        trial = t;
      }
      run.seconds += seconds_since(t0);
      if (trial) {
        trial->seconds = run.seconds;
        res.trials.push_back(*trial);
        if (on_trial) on_trial(i, res.trials.back());
      }
      run.done = !trial || res.trials.size() >= opts.trials ||
                 (opts.max_minutes > 0 && run.seconds > opts.max_minutes * 60);
      if (run.done) --left;
    }
  }
  return out;
}

StrategyResult run_strategy(const std::string& name, Strategy& strategy, Environment& env,
                            const Space& space, const RewardSpec& reward, const TuneOptions& opts,
                            const std::function<void(const Trial&)>& on_trial) {
  return run_strategies({{name, &strategy}}, env, space, reward, opts,
                        [&](size_t, const Trial& t) {
                          if (on_trial) on_trial(t);
                        })
      .front();
}

}  // namespace wp::engine::tune
