#include "engine/tune_environment.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "engine/index_request.h"
#include "engine/learned_index.h"
#include "index/dataset.h"
#include "index/error.h"
#include "index/index_spec.h"

namespace wp::engine::tune {

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
  std::string key = s.type_name(c.type);
  const std::vector<Choice>& cs = s.choices[c.type];
  for (size_t i = 0; i < cs.size(); ++i) {
    if (!cs[i].search_time) key += " " + std::to_string(c.picks[i]);
  }
  return key;
}

}  // namespace

nlohmann::json request_body(const Space& s, const Config& c, const EnvironmentOptions& opts) {
  nlohmann::json body = to_request(s, c);
  if (s.kinds[c.type] == index::IndexKind::kRl && opts.rl_graph.empty()) {
    // Steps as many as the minutes allow: the job keeps its best validated step.
    body.update({{"steps", static_cast<size_t>(kRlSteps.hi)},
                 {"max_minutes", opts.rl_minutes},
                 {"target_recall", opts.rl_target_recall}});
  }
  return body;
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
  std::vector<index::label_t> ids(base.n);
  std::iota(ids.begin(), ids.end(), index::label_t{0});
  // The configuration as the index request it stands for, so that tuning builds exactly what
  // `build --config` and PUT .../vector_index would build from the same body.
  index::IndexSpec defaults;
  defaults.metric = metric;
  defaults.hnsw.seed = opts.seed;
  defaults.lsh.seed = opts.seed;
  if (s.kinds[c.type] == index::IndexKind::kRl && opts.rl_graph.empty()) {
    const IndexRequest r = IndexRequest::parse(request_body(s, c, opts), defaults);
    return build_learned_index(r.spec, r.learned, base, ids);
  }
  if (s.kinds[c.type] == index::IndexKind::kRl) {
    auto idx = index::load_index(opts.rl_graph);
    WP_THROW_IF_NOT(idx->dim() == base.d && idx->size() == base.n, "the rl graph '", opts.rl_graph,
                    "' holds ", idx->size(), " x ", idx->dim(), ", not the ", base.n, " x ", base.d,
                    " base");
    return idx;
  }
  const index::IndexSpec spec = IndexRequest::parse(to_request(s, c), defaults).spec;
  auto idx = index::make_index(spec, base.d);
  index::add_all(*idx, index::view(base), ids.data(), 0);  // one batch, every thread
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
  spec.kind = index::IndexKind::kFlat;
  spec.metric = metric_;
  auto flat = index::make_index(spec, base_.d);
  std::vector<index::label_t> ids(base_.n);
  std::iota(ids.begin(), ids.end(), index::label_t{0});
  flat->add(index::view(base_), ids.data());
  exact_qps_ = search(*flat, 0, base_, queries_, gt_, opts_).qps;
  return exact_qps_;
}

HeldOut hold_out(const index::Matrix& x, size_t count, uint64_t seed) {
  index::RowSplit split = index::split_rows(x, count, seed);
  return HeldOut{std::move(split.rest), std::move(split.drawn)};
}

}  // namespace wp::engine::tune
