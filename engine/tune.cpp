#include "engine/tune.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "index/dataset.h"
#include "index/error.h"
#include "index/hnsw_index.h"
#include "index/index_factory.h"

namespace wp::engine::tune {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

const std::vector<double> kEf{10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};

}  // namespace

Space Space::standard(const std::vector<std::string>& types) {
  Space s;
  for (const std::string& t : types) {
    std::vector<Choice> c;
    if (t == "hnsw" || t == "graph") {
      c.push_back({"m", {4, 8, 12, 16, 24, 32, 48}, {}, false});
      c.push_back({"ef_construct", {32, 64, 128, 256, 512}, {}, false});
      c.push_back({"quantization", {0, 1}, {"none", "sq8"}, false});
      // RobustPrune's slack: 1 is HNSW's own heuristic; larger keeps longer edges.
      if (t == "graph") c.push_back({"alpha", {1.0, 1.1, 1.2, 1.3, 1.5}, {}, false});
      c.push_back({"ef", kEf, {}, true});
    } else if (t == "lsh") {
      c.push_back({"bits", {64, 128, 256, 512, 1024}, {}, false});
      c.push_back({"tables", {0, 4, 8, 16}, {}, false});
      c.push_back({"probes", {4, 16, 64}, {}, false});
      c.push_back({"candidates", {50, 100, 200, 500, 1000, 2000, 5000}, {}, true});
    } else if (t == "rl") {
      c.push_back({"ef", kEf, {}, true});
    } else {
      throw UserError("types: \"" + t + "\" cannot be tuned; expected hnsw, lsh, graph or rl");
    }
    s.types.push_back(t);
    s.choices.push_back(std::move(c));
  }
  WP_THROW_IF_NOT(!s.types.empty(), "types: give at least one index type to tune");
  WP_THROW_IF_NOT(std::set<std::string>(types.begin(), types.end()).size() == types.size(),
                  "types: each type at most once");
  return s;
}

size_t Space::type_index(const std::string& type) const {
  for (size_t i = 0; i < types.size(); ++i) {
    if (types[i] == type) return i;
  }
  throw UserError("type: \"" + type + "\" is not in the tuned space");
}

size_t Space::max_values() const {
  size_t m = types.size();
  for (const auto& cs : choices) {
    for (const Choice& c : cs) m = std::max(m, c.values.size());
  }
  return m;
}

bool valid(const Space& s, const Config& c) {
  if (c.type >= s.types.size() || c.picks.size() != s.choices[c.type].size()) return false;
  for (size_t i = 0; i < c.picks.size(); ++i) {
    if (c.picks[i] >= s.choices[c.type][i].values.size()) return false;
  }
  return true;
}

std::optional<double> value(const Space& s, const Config& c, const std::string& name) {
  const std::vector<Choice>& cs = s.choices.at(c.type);
  for (size_t i = 0; i < cs.size(); ++i) {
    if (cs[i].name == name) return cs[i].values.at(c.picks.at(i));
  }
  return std::nullopt;
}

std::string describe(const Space& s, const Config& c) {
  WP_THROW_INTERNAL_IF_NOT(valid(s, c), "configuration off its space");
  std::string out = s.types[c.type];
  const std::vector<Choice>& cs = s.choices[c.type];
  for (size_t i = 0; i < cs.size(); ++i) {
    out += " " + cs[i].name + "=" +
           (cs[i].labels.empty() ? number(cs[i].values[c.picks[i]]) : cs[i].labels[c.picks[i]]);
  }
  return out;
}

json to_request(const Space& s, const Config& c) {
  WP_THROW_INTERNAL_IF_NOT(valid(s, c), "configuration off its space");
  json j{{"type", s.types[c.type]}};
  const std::vector<Choice>& cs = s.choices[c.type];
  for (size_t i = 0; i < cs.size(); ++i) {
    const double v = cs[i].values[c.picks[i]];
    if (cs[i].labels.empty() && v == std::floor(v)) {
      j[cs[i].name] = static_cast<int64_t>(v);
    } else if (cs[i].labels.empty()) {
      j[cs[i].name] = v;
    } else {
      j[cs[i].name] = cs[i].labels[c.picks[i]];
    }
  }
  return j;
}

Config from_request(const Space& s, const json& body) {
  WP_THROW_IF_NOT(body.is_object() && body.contains("type") && body["type"].is_string(),
                  "type: expected a string");
  Config c;
  c.type = s.type_index(body["type"].get<std::string>());
  for (const Choice& ch : s.choices[c.type]) {
    WP_THROW_IF_NOT(body.contains(ch.name), ch.name, ": missing");
    const json& v = body[ch.name];
    size_t pick = ch.values.size();
    for (size_t i = 0; i < ch.values.size(); ++i) {
      const bool match = ch.labels.empty() ? v.is_number() && v.get<double>() == ch.values[i]
                                           : v.is_string() && v.get<std::string>() == ch.labels[i];
      if (match) pick = i;
    }
    WP_THROW_IF_NOT(pick < ch.values.size(), ch.name, ": ", v.dump(), " is not a tuned value");
    c.picks.push_back(pick);
  }
  return c;
}

bool RewardSpec::feasible(const Measurement& m) const {
  return m.recall >= recall_target && (latency_budget_us <= 0 || m.p99_us <= latency_budget_us);
}

double RewardSpec::shortfall(const Measurement& m) const {
  double factor = std::pow(std::min(1.0, m.recall / recall_target), penalty);
  if (latency_budget_us > 0 && m.p99_us > latency_budget_us) {
    factor *= std::pow(latency_budget_us / m.p99_us, penalty);
  }
  return factor;
}

double RewardSpec::reward(const Measurement& m) const {
  return m.qps / std::max(reference_qps, 1e-9) * shortfall(m);
}

namespace {

/// The build-time part of a configuration: configurations with equal keys share an index.
std::string build_key(const Space& s, const Config& c) {
  std::string key = s.types[c.type];
  const std::vector<Choice>& cs = s.choices[c.type];
  for (size_t i = 0; i < cs.size(); ++i) {
    if (!cs[i].search_time) key += " " + std::to_string(c.picks[i]);
  }
  return key;
}

}  // namespace

size_t search_ef(const Space& s, const Config& c) {
  if (auto ef = value(s, c, "ef")) return static_cast<size_t>(*ef);
  if (auto cand = value(s, c, "candidates")) return static_cast<size_t>(*cand);
  return 0;
}

Environment::Environment(const index::Matrix& base, index::Metric metric,
                         const index::Matrix& queries, const index::IntMatrix& groundtruth,
                         EnvironmentOptions opts)
    : base_(base), metric_(metric), queries_(queries), gt_(groundtruth), opts_(std::move(opts)) {
  WP_THROW_IF_NOT(base.n > opts_.k, "tuning needs more than k = ", opts_.k, " base vectors");
  WP_THROW_IF_NOT(queries.n > 0 && queries.d == base.d, "tuning needs queries of dimension ",
                  base.d);
  WP_THROW_IF_NOT(groundtruth.n == queries.n && groundtruth.d >= opts_.k,
                  "tuning needs k = ", opts_.k, " ground-truth neighbours per query");
  WP_THROW_IF_NOT(opts_.max_cached >= 1 && opts_.repeats >= 1, "bad environment options");
}

std::unique_ptr<index::Index> Environment::build(const Space& s, const Config& c,
                                                 const index::Matrix& base, index::Metric metric,
                                                 const EnvironmentOptions& opts) {
  WP_THROW_INTERNAL_IF_NOT(valid(s, c), "configuration off its space");
  const std::string& type = s.types[c.type];
  if (type == "rl") {
    WP_THROW_IF_NOT(!opts.rl_graph.empty(), "type rl: give a trained graph (--rl-graph FILE)");
    auto idx = index::load_index(opts.rl_graph);
    WP_THROW_IF_NOT(idx->dim() == base.d && idx->size() == base.n, "the rl graph '", opts.rl_graph,
                    "' holds ", idx->size(), " x ", idx->dim(), ", not the ", base.n, " x ", base.d,
                    " base");
    return idx;
  }
  index::IndexSpec spec;
  spec.type = type;
  spec.metric = metric;
  spec.hnsw.seed = opts.seed;
  spec.lsh.seed = opts.seed;
  if (type == "hnsw" || type == "graph") {
    if (type == "graph") spec.graph.alpha = static_cast<float>(*value(s, c, "alpha"));
    spec.hnsw.M = static_cast<size_t>(*value(s, c, "m"));
    spec.hnsw.ef_construction = static_cast<size_t>(*value(s, c, "ef_construct"));
    spec.hnsw.quantization =
        *value(s, c, "quantization") > 0 ? index::Quantization::kSq8 : index::Quantization::kNone;
    spec.hnsw.ef_search = search_ef(s, c);
  } else {
    spec.lsh.bits = static_cast<size_t>(*value(s, c, "bits"));
    spec.lsh.tables = static_cast<size_t>(*value(s, c, "tables"));
    spec.lsh.probes = static_cast<size_t>(*value(s, c, "probes"));
    spec.lsh.candidates = search_ef(s, c);
  }
  spec.validate();
  auto idx = index::make_index(spec, base.d);
  if (auto* h = dynamic_cast<index::HnswIndex*>(idx.get())) h->reserve(base.n);
  std::vector<index::label_t> ids(base.n);
  std::iota(ids.begin(), ids.end(), index::label_t{0});
  idx->add(index::view(base), ids.data());
  return idx;
}

Measurement Environment::search(const index::Index& idx, size_t ef, const index::Matrix& base,
                                const index::Matrix& queries, const index::IntMatrix& groundtruth,
                                const EnvironmentOptions& opts) {
  index::SearchParams params;
  params.ef = std::max(ef, opts.k);
  std::vector<index::label_t> labels(queries.n * opts.k);
  std::vector<float> dist(queries.n * opts.k);
  std::vector<double> lat(queries.n), best_lat;
  Measurement m;
  double best = 1e300;
  uint64_t dcs = 0;
  const auto start = Clock::now();
  for (int r = 0; r < opts.repeats || (r < 200 && seconds_since(start) < opts.min_seconds); ++r) {
    const auto t0 = Clock::now();
    dcs = 0;
    for (size_t q = 0; q < queries.n; ++q) {
      const auto tq = Clock::now();
      dcs += idx.search_one(queries.row(q), opts.k, params, labels.data() + q * opts.k,
                            dist.data() + q * opts.k)
                 .distance_computations;
      lat[q] = seconds_since(tq) * 1e6;
    }
    const double secs = seconds_since(t0);
    if (secs < best) {
      best = secs;
      best_lat = lat;
    }
  }
  std::sort(best_lat.begin(), best_lat.end());
  m.qps = static_cast<double>(queries.n) / std::max(best, 1e-9);
  m.p50_us = best_lat[best_lat.size() / 2];
  m.p99_us = best_lat[std::min(best_lat.size() - 1, best_lat.size() * 99 / 100)];
  m.dcs = static_cast<double>(dcs) / static_cast<double>(queries.n);
  m.recall = index::recall_at_k(base, queries, groundtruth, labels, opts.k, idx.metric());
  m.memory_bytes = idx.memory_bytes();
  return m;
}

bool Environment::measured(const Space& s, const Config& c) const {
  return measured_.count(describe(s, c)) != 0;
}

Measurement Environment::measure(const Space& s, const Config& c) {
  const std::string name = describe(s, c);
  if (auto it = measured_.find(name); it != measured_.end()) return it->second;
  const std::string key = build_key(s, c);
  auto it =
      std::find_if(built_.begin(), built_.end(), [&](const auto& e) { return e.first == key; });
  if (it == built_.end()) {
    const auto t0 = Clock::now();
    auto idx = build(s, c, base_, metric_, opts_);
    const double secs = seconds_since(t0);
    ++builds_;
    built_.emplace_front(key, std::make_pair(std::move(idx), secs));
    while (built_.size() > opts_.max_cached) built_.pop_back();
  } else {
    built_.splice(built_.begin(), built_, it);
  }
  Measurement m =
      search(*built_.front().second.first, search_ef(s, c), base_, queries_, gt_, opts_);
  m.build_s = built_.front().second.second;
  measured_[name] = m;
  return m;
}

double Environment::exact_qps() {
  if (exact_qps_ > 0) return exact_qps_;
  index::IndexSpec spec;
  spec.type = "flat";
  spec.metric = metric_;
  auto flat = index::make_index(spec, base_.d);
  std::vector<index::label_t> ids(base_.n);
  std::iota(ids.begin(), ids.end(), index::label_t{0});
  flat->add(index::view(base_), ids.data());
  exact_qps_ = search(*flat, 0, base_, queries_, gt_, opts_).qps;
  return exact_qps_;
}

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
      c.type = std::uniform_int_distribution<size_t>(0, s_.types.size() - 1)(rng_);
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
    for (size_t t = 0; t < s.types.size(); ++t) {
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
    const size_t t = turn_++ % s_.types.size();
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

const StrategyFactory* strategy(const std::string& name) {
  std::lock_guard<std::mutex> g(registry_mu);
  auto& r = registry();
  auto it = r.find(name);
  return it == r.end() ? nullptr : &it->second;
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

HeldOut hold_out(const index::Matrix& x, size_t count, uint64_t seed) {
  WP_THROW_IF_NOT(count < x.n, "cannot hold out ", count, " of ", x.n, " vectors");
  std::vector<size_t> rows(x.n);
  std::iota(rows.begin(), rows.end(), size_t{0});
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < count; ++i) {
    std::swap(rows[i], rows[std::uniform_int_distribution<size_t>(i, x.n - 1)(rng)]);
  }
  std::sort(rows.begin() + static_cast<long>(count), rows.end());
  HeldOut out{index::Matrix(x.n - count, x.d), index::Matrix(count, x.d)};
  for (size_t i = 0; i < x.n; ++i) {
    float* to = i < count ? out.queries.row(i) : out.base.row(i - count);
    std::copy_n(x.row(rows[i]), x.d, to);
  }
  return out;
}

}  // namespace wp::engine::tune
