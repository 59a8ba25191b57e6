#include "learn/train_pruner.h"

#include <chrono>
#include <filesystem>
#include <limits>
#include <numeric>

#include "engine/learned_index.h"
#include "index/dataset.h"
#include "index/error.h"
#include "index/graph_index.h"
#include "index/omp_team.h"
#include "index/vamana.h"
#include "index/vector_io.h"
#include "learn/checkpoint.h"
#include "learn/torch_runtime.h"

namespace wp::learn {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

/// Training and validation queries that are never evaluation queries: the dataset's learn set;
/// else Fashion-MNIST's query_all.fvecs beyond the first 1000 evaluation queries; else the base
/// vectors beyond `limit` (limit_base) when there are enough; else leave-one-out base points
/// (leave_one_out_queries).
QuerySet training_queries(const index::Dataset& ds, const index::Matrix& full_base, size_t limit,
                          const std::string& dir, const index::HnswIndex& h, size_t n, size_t k,
                          uint64_t seed, std::string* source) {
  if (ds.learn.n >= n) {
    *source = "learn.fvecs";
    index::Matrix m(n, ds.learn.d);
    std::copy(ds.learn.data.begin(), ds.learn.data.begin() + n * ds.learn.d, m.data.begin());
    return query_set(h, std::move(m), k);
  }
  const fs::path all = fs::path(dir) / "query_all.fvecs";
  if (fs::exists(all)) {
    const index::Matrix q = index::read_fvecs(all.string());
    if (q.n >= ds.query.n + n) {
      *source = "query_all.fvecs rows " + std::to_string(ds.query.n) + "..";
      index::Matrix m(n, q.d);
      std::copy(q.row(ds.query.n), q.row(ds.query.n) + n * q.d, m.data.begin());
      return query_set(h, std::move(m), k);
    }
  }
  const size_t beyond =
      full_base.n > limit ? full_base.n - limit : 0;  // base vectors not in the graph (limit_base)
  if (beyond >= std::min<size_t>(n, 200)) {
    n = std::min(n, beyond);
    *source = "base rows " + std::to_string(limit) + ".." + std::to_string(limit + n - 1);
    index::Matrix m(n, full_base.d);
    std::copy(full_base.row(limit), full_base.row(limit) + n * full_base.d, m.data.begin());
    return query_set(h, std::move(m), k);
  }
  *source = "leave-one-out base points";
  return leave_one_out_queries(h, n, k, seed, h.fixed_entry_slot());
}

/// The best validated graph so far: its DCS at the target recall, its mask, its step.
struct BestGraph {
  double dcs = 0;
  std::vector<uint8_t> mask;
  int step = 0;  ///< 0: the initial graph
};

/// One learning over a built initial graph: its training and validation queries, the calibrated
/// environment, and the TRPO loop that validates every few steps.
class PrunerJob {
 public:
  /// Draws the queries (entered as o.entry says), builds the pool for "pool", and calibrates the
  /// environment.
  PrunerJob(const index::HnswIndex& h, const TrainPrunerOptions& o, const QuerySource& queries,
            Clock::time_point started);

  const index::Level0Graph& initial() const { return initial_; }

  /// Trains from `resume` (or from scratch), telling `observer`; fills result's set-up, steps,
  /// best step and learnt DCS, and returns the best validated mask.
  std::vector<uint8_t> train(const PrunerObserver& observer, const PrunerCheckpoint* resume,
                             TrainPrunerResult* result) const;

 private:
  void draw_queries(const QuerySource& queries);
  /// initial "pool": replaces the initial graph by the pool and sets the warm start (warm_).
  void build_pool();
  void calibrate();
  BestGraph initial_best(const PrunerCheckpoint* resume) const;
  /// The guarded graph of policy `p`: its DCS at the target recall over the sweep.
  double validate(const PruningEnv& env, const std::vector<float>& p, std::vector<uint8_t>* mask,
                  size_t* restored) const;

  const Clock::time_point started_;  ///< when the job began (its set-up time is reported)
  const index::HnswIndex& h_;
  const TrainPrunerOptions& o_;
  index::Level0Graph initial_;
  const uint32_t entry_;
  const std::vector<size_t> sweep_;
  std::vector<uint8_t> warm_;     ///< "pool": the warm-start graph's edges; else empty
  std::vector<uint8_t> sources_;  ///< "pool": EdgeSource bits per edge; else empty
  QuerySet train_q_, val_q_;
  EnvConfig env_cfg_;
  PrunerSetup setup_;
};

PrunerJob::PrunerJob(const index::HnswIndex& h, const TrainPrunerOptions& o,
                     const QuerySource& queries, Clock::time_point started)
    : started_(started),
      h_(h),
      o_(o),
      initial_(h.export_level0()),
      entry_(h.fixed_entry_slot()),
      sweep_(default_ef_sweep(o.env.k)),
      env_cfg_(o.env) {
  draw_queries(queries);
  if (o.entry == "hnsw") {
    enter_through_upper_levels(train_q_, h_);
    enter_through_upper_levels(val_q_, h_);
  }
  if (o.initial == "pool") build_pool();
  setup_.vertices = initial_.num_vertices();
  setup_.edges = initial_.num_edges();
  setup_.initial_degree = static_cast<double>(initial_.num_edges()) / initial_.num_vertices();
  calibrate();
}

void PrunerJob::draw_queries(const QuerySource& queries) {
  std::string source;
  const QuerySet all_q = queries(h_, o_.train_queries + o_.val_queries, o_.env.k, &source);
  WP_THROW_IF_NOT(all_q.size() >= 2, "no training queries");
  const size_t n_val = std::min(o_.val_queries, all_q.size() / 2);
  train_q_ = all_q.slice(0, all_q.size() - n_val);
  val_q_ = all_q.slice(all_q.size() - n_val, n_val);
  setup_.query_source = source;
  setup_.train_queries = train_q_.size();
  setup_.val_queries = val_q_.size();
}

/// A graph in CSR form from per-slot lists.
index::Level0Graph to_csr(const std::vector<index::label_t>& labels,
                          const std::vector<std::vector<uint32_t>>& lists) {
  index::Level0Graph g;
  g.labels = labels;
  g.offsets.assign(1, 0);
  for (const auto& l : lists) {
    g.neighbors.insert(g.neighbors.end(), l.begin(), l.end());
    g.offsets.push_back(g.neighbors.size());
  }
  return g;
}

void PrunerJob::build_pool() {
  const size_t n = initial_.num_vertices(), cap = 2 * h_.params().M;
  const size_t D = static_cast<size_t>(std::lround(pool_degree(o_)));
  const uint64_t seed = o_.trainer.seed + 200;
  // The warm start: Vamana at the compared degree, over the same vectors and entry, with the
  // slack given or the one of 1.2, 1.3, 1.4 that needs the fewest DCS on the validation queries.
  std::vector<std::vector<uint32_t>> narrow;
  double best = std::numeric_limits<double>::infinity();
  // (Inner product has no slack: alpha 1, vamana.h's prune_rule.)
  const bool ip = h_.metric() == index::Metric::kInnerProduct;
  const std::vector<float> alphas = o_.alpha > 0 ? std::vector<float>{o_.alpha}
                                    : ip         ? std::vector<float>{1.0f}
                                                 : std::vector<float>{1.2f, 1.3f, 1.4f};
  for (const float alpha : alphas) {
    auto lists = index::vamana_lists(h_, index::random_lists(n, D, seed), entry_, D,
                                     std::max<size_t>(100, D), alpha, seed);
    double dcs = 0;
    if (alphas.size() > 1) {
      const index::Level0Graph g = to_csr(initial_.labels, lists);
      EnvConfig cfg = o_.env;
      cfg.ef = std::max(cfg.k, cfg.ef);
      const PruningEnv env(h_, g, entry_, cfg);
      dcs = dcs_at_recall(env.curve(val_q_, std::vector<float>(g.num_edges(), 1.0f), sweep_),
                          o_.target_recall);
    }
    if (narrow.empty() || dcs < best) {
      narrow = std::move(lists);
      best = dcs;
      setup_.warm_alpha = alpha;
    }
  }
  const std::vector<std::vector<uint32_t>> near =
      index::knn_lists(h_, D, std::max<size_t>(2 * D, 128));
  // Navigation edges: where a training search on the narrow graph (at beam width k) ended
  // without a true neighbour t, the edge from the result nearest to t to t.
  std::vector<std::vector<uint32_t>> nav(n);
  {
    EnvConfig cfg = o_.env;
    cfg.ef = cfg.k;
    cfg.max_dcs = 0;
    const index::Level0Graph g = to_csr(initial_.labels, narrow);
    const PruningEnv env(h_, g, entry_, cfg);
    const std::vector<Episode> eps =
        env.run_batch(train_q_, std::vector<float>(g.num_edges(), 1.0f), false, 0);
    for (size_t i = 0; i < eps.size(); ++i) {
      const std::vector<uint32_t>& found = eps[i].result;
      if (found.empty()) continue;
      for (size_t j = 0; j < cfg.k; ++j) {
        const uint32_t t = train_q_.knn[i * cfg.k + j];
        if (std::find(found.begin(), found.end(), t) != found.end()) continue;
        uint32_t from = found[0];
        float nearest = std::numeric_limits<float>::max();
        for (uint32_t r : found) {
          const float d = h_.distance_between(r, t);
          if (d < nearest) {
            nearest = d;
            from = r;
          }
        }
        nav[from].push_back(t);  // t is not among the results: never a self loop
      }
    }
  }
  // A wider Vamana graph (R = M, alpha 1.2; 1 for inner product).
  const std::vector<std::vector<uint32_t>> wide = index::vamana_lists(
      h_, index::random_lists(n, h_.params().M, seed + 1), entry_, h_.params().M,
      std::max<size_t>(100, h_.params().M), ip ? 1.0f : 1.2f, seed + 1);
  // The pool: the narrow graph's edges first (the warm start), then the wide graph's, the
  // nearest and the navigation edges, at most 2M per vertex.
  std::vector<std::vector<uint32_t>> lists(n);
  warm_.clear();
  sources_.clear();
  std::vector<uint8_t> from;
  for (size_t v = 0; v < n; ++v) {
    if (initial_.labels[v] == index::kNoLabel) continue;
    std::vector<uint32_t>& l = lists[v];
    from.clear();
    auto add = [&](uint32_t u, uint8_t source) {
      if (u == v) return;
      const auto at = std::find(l.begin(), l.end(), u);
      if (at != l.end()) {
        from[at - l.begin()] |= source;
      } else if (l.size() < cap) {
        l.push_back(u);
        from.push_back(source);
      }
    };
    for (uint32_t u : narrow[v]) add(u, kFromWarmStart);
    for (uint32_t u : wide[v]) add(u, kFromWide);
    for (uint32_t u : near[v]) add(u, kFromNearest);
    for (uint32_t u : nav[v]) add(u, kFromNavigation);
    for (uint8_t f : from) {
      warm_.push_back(f & kFromWarmStart ? 1 : 0);
      sources_.push_back(f);
    }
  }
  initial_ = to_csr(initial_.labels, lists);
}

void PrunerJob::calibrate() {
  // The initial graph's recall/DCS curve on the validation queries: where it reaches the target,
  // the training beam width (default: the first sweep point at the target) and the reward budget.
  // With a warm start, the training beam width and the reward are calibrated on it instead.
  const std::vector<float> all_edges(initial_.num_edges(), 1.0f);
  EnvConfig probe_cfg = env_cfg_;
  probe_cfg.ef = std::max(env_cfg_.k, env_cfg_.ef);
  PruningEnv probe(h_, initial_, entry_, probe_cfg);
  setup_.initial_dcs_at_target =
      dcs_at_recall(probe.curve(val_q_, all_edges, sweep_), o_.target_recall);
  const std::vector<float> start =
      warm_.empty() ? all_edges : std::vector<float>(warm_.begin(), warm_.end());
  const std::vector<CurvePoint> initial_curve = probe.curve(val_q_, start, sweep_);
  if (!warm_.empty()) {
    setup_.warm_dcs_at_target = dcs_at_recall(initial_curve, o_.target_recall);
    size_t kept = 0;
    for (uint8_t w : warm_) kept += w;
    setup_.warm_degree = static_cast<double>(kept) / initial_.num_vertices();
  }
  if (!env_cfg_.ef) {
    env_cfg_.ef = sweep_.back();
    for (const CurvePoint& pt : initial_curve) {
      if (pt.recall >= o_.target_recall) {
        env_cfg_.ef = pt.ef;
        break;
      }
    }
  }
  if (!env_cfg_.max_dcs) {
    const size_t ef2 = env_cfg_.ef + std::max<size_t>(env_cfg_.ef / 2, 1);
    const auto ab = probe.curve(val_q_, start, {env_cfg_.ef, ef2});
    setup_.flat_budget = flat_reward_budget(ab[0], ab[1]);
    const double budget = o_.budget > 0 ? o_.budget : warm_.empty() ? 0.09 : 1.0;
    env_cfg_.max_dcs =
        static_cast<uint64_t>(std::llround(ab[0].dcs + budget * (setup_.flat_budget - ab[0].dcs)));
  }
  setup_.train_ef = env_cfg_.ef;
  setup_.max_dcs = env_cfg_.max_dcs;
}

BestGraph PrunerJob::initial_best(const PrunerCheckpoint* resume) const {
  if (resume && resume->best_step > 0) {
    WP_THROW_IF_NOT(resume->best_mask.size() == initial_.num_edges(), "checkpoint's best_mask has ",
                    resume->best_mask.size(), " edges, the initial graph ", initial_.num_edges());
    return {resume->best_dcs_at_target, resume->best_mask, resume->best_step};
  }
  if (!warm_.empty()) return {setup_.warm_dcs_at_target, warm_, 0};
  return {setup_.initial_dcs_at_target, std::vector<uint8_t>(initial_.num_edges(), 1), 0};
}

double PrunerJob::validate(const PruningEnv& env, const std::vector<float>& p,
                           std::vector<uint8_t>* mask, size_t* restored) const {
  *mask = guarded_mask(initial_, entry_, p, o_.min_degree, restored);
  const std::vector<float> keep(mask->begin(), mask->end());
  return dcs_at_recall(env.curve(val_q_, keep, sweep_), o_.target_recall);
}

std::vector<uint8_t> PrunerJob::train(const PrunerObserver& observer,
                                      const PrunerCheckpoint* resume,
                                      TrainPrunerResult* result) const {
  PruningEnv env(h_, initial_, entry_, env_cfg_);
  PrunerConfig trainer_cfg = o_.trainer;
  if (!warm_.empty() && trainer_cfg.target_degree == 0) trainer_cfg.target_degree = pool_degree(o_);
  PruningTrainer trainer(env, train_q_, trainer_cfg, sources_);
  result->setup = setup_;
  if (resume) {
    trainer.restore(resume->trainer);
  } else if (!warm_.empty()) {
    result->setup.imitation_agreement = trainer.imitate(warm_, o_.imitate_iterations);
  }
  BestGraph best = initial_best(resume);
  result->setup.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
  if (observer.started) observer.started(result->setup);
  const auto t0 = Clock::now();
  for (size_t s = trainer.steps_done(); s < o_.steps; ++s) {
    const double minutes = std::chrono::duration<double>(Clock::now() - t0).count() / 60;
    if (o_.max_minutes > 0 && minutes >= o_.max_minutes) break;
    PrunerStepRecord rec;
    rec.stats = trainer.step();
    if (rec.stats.step % o_.validate_every == 0 || s + 1 == o_.steps) {
      std::vector<uint8_t> mask;
      rec.val_dcs_at_target = validate(env, trainer.probabilities(), &mask, &rec.restored_edges);
      if (rec.val_dcs_at_target < best.dcs) {
        best = {rec.val_dcs_at_target, std::move(mask), rec.stats.step};
      }
      if (observer.checkpoint) {
        PrunerCheckpoint ck;
        ck.trainer = trainer.state();
        ck.step = trainer.steps_done();
        ck.best_step = best.step;
        ck.best_dcs_at_target = best.dcs;
        if (best.step > 0) ck.best_mask = best.mask;
        observer.checkpoint(ck);
      }
    }
    rec.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    result->steps.push_back(rec);
    if (observer.step) observer.step(rec);
    if (observer.progress) observer.progress(s + 1, o_.steps);
  }
  result->best_step = best.step;
  result->learnt_dcs_at_target = best.dcs;
  return std::move(best.mask);
}

}  // namespace

void TrainPrunerOptions::validate() const {
  WP_THROW_IF_NOT(steps >= 1, "steps must be at least 1");
  WP_THROW_IF_NOT(target_recall > 0 && target_recall <= 1, "target_recall must be in (0, 1]");
  WP_THROW_IF_NOT(budget >= 0 && budget <= 1, "budget must be in [0, 1] (0: auto), got ", budget);
  WP_THROW_IF_NOT(validate_every >= 1, "validate_every must be at least 1, got ", validate_every);
  WP_THROW_IF_NOT(
      initial == "hnsw" || initial == "vamana" || initial == "complete" || initial == "pool",
      "initial must be hnsw, vamana, complete or pool, got '", initial, "'");
  WP_THROW_IF_NOT(entry == "hnsw" || entry == "medoid", "entry must be hnsw or medoid, got '",
                  entry, "'");
  WP_THROW_IF_NOT(degree == 0 || (degree >= 2 && degree <= static_cast<double>(M)),
                  "degree must be 0 (M) or in 2..M (", M, "), got ", degree);
  WP_THROW_IF_NOT(alpha == 0 || (alpha >= 1 && alpha <= 4),
                  "alpha must be 0 (chosen from the data) or in 1..4, got ", alpha);
  WP_THROW_IF_NOT(imitate_iterations >= 0 && imitate_iterations <= 100000,
                  "imitate_iterations must be in 0..100000, got ", imitate_iterations);
  trainer.validate();
}

double pool_degree(const TrainPrunerOptions& o) {
  return o.degree > 0 ? o.degree : static_cast<double>(o.M);
}

std::string PrunerCheckpoint::encode() const {
  CheckpointFields f("pruner");
  f.set("trainer", trainer);
  f.set_number("step", step);
  f.set_number("best_step", best_step);
  f.set_number("best_dcs_at_target", best_dcs_at_target);
  f.set("best_mask", std::string(best_mask.begin(), best_mask.end()));
  return f.encode();
}

PrunerCheckpoint PrunerCheckpoint::decode(const std::string& bytes) {
  const CheckpointFields f = CheckpointFields::decode(bytes, "pruner");
  PrunerCheckpoint c;
  c.trainer = f.get("trainer");
  c.step = static_cast<int>(f.number("step"));
  c.best_step = static_cast<int>(f.number("best_step"));
  c.best_dcs_at_target = f.number("best_dcs_at_target");
  const std::string& mask = f.get("best_mask");
  c.best_mask.assign(mask.begin(), mask.end());
  return c;
}

PrunedGraph learn_pruned_graph(const index::Matrix& base, const index::label_t* ids,
                               index::Metric metric, const TrainPrunerOptions& o,
                               const QuerySource& queries, const PrunerObserver& observer,
                               const PrunerCheckpoint* resume) {
  o.validate();
  WP_THROW_IF_NOT(base.n >= 2 * o.env.k + 2, "need at least ", 2 * o.env.k + 2,
                  " vectors to learn a pruned graph, got ", base.n);
  init_torch(o.threads, o.trainer.seed);
  const auto started = Clock::now();

  // The initial graph, entered at the medoid: HNSW level 0 or the complete graph (GraphIndex with
  // pruning "none"), or a Vamana graph (alpha 1.2, R = 2M; what `bench` calls vamana-1.2). The
  // pool starts from HNSW level 0 too: the job replaces it by the pool (Vamana graphs built there
  // with every thread).
  index::HnswParams hnsw;
  index::GraphParams spec;
  const bool vamana = o.initial == "vamana";
  hnsw.M = o.initial == "complete" ? std::max(o.M, base.n / 2) : o.M;
  hnsw.ef_construction = o.ef_construction;
  hnsw.ef_search = o.ef_search;
  hnsw.seed = o.trainer.seed + 100;
  spec.initial = vamana                ? index::InitialGraph::kRandom
                 : o.initial == "pool" ? index::InitialGraph::kHnsw
                                       : index::parse_initial_graph(o.initial, "initial");
  spec.pruning = vamana ? index::Pruning::kVamana : index::Pruning::kNone;
  spec.alpha = metric == index::Metric::kInnerProduct ? 1.0f : 1.2f;
  spec.entry = index::GraphEntry::kMedoid;
  auto graph_ptr = std::make_unique<index::GraphIndex>(base.d, metric, hnsw, spec);
  index::GraphIndex& graph = *graph_ptr;
  {
    // One build thread: the parallel build is not deterministic, and a single-threaded one is
    // what `waypoint bench --build-threads 1` rebuilds for hnsw-l0 and the non-learned prunings,
    // so that they are compared on the very same initial graph.
    // Slot i holds row i (one batch into an empty index).
    // (Vamana is deterministic at any thread count; its HNSW gives only the vectors and, with
    // entry "hnsw", the upper levels every search descends: built with one thread then too.)
    const index::OmpTeamScope team(!vamana || o.entry == "hnsw" ? 1 : 0);
    graph.add(index::view(base), ids);
  }
  const PrunerJob job(graph.graph(), o, queries, started);
  PrunedGraph out;
  const std::vector<uint8_t> best_mask = job.train(observer, resume, &out.result);

  // The learnt graph: the best validated policy's guarded mask (the initial graph, or the warm
  // start, if none beat it), entered as it was trained.
  graph.apply_mask(job.initial(), best_mask);
  graph.set_entry(o.entry == "hnsw" ? index::GraphEntry::kHnsw : index::GraphEntry::kMedoid);
  out.result.learnt_degree = graph.info().average_degree;
  out.graph = std::move(graph_ptr);
  return out;
}

TrainedPruner train_pruner(const TrainPrunerOptions& o, const PrunerObserver& observer,
                           const PrunerCheckpoint* resume) {
  TrainedPruner out;
  index::Dataset& ds = out.data;
  ds = index::load_dataset(o.dataset);
  if (o.holdout > 0) ds = index::hold_out(ds, o.holdout, o.holdout_seed);
  const size_t limit = o.limit_base && o.limit_base < ds.base.n ? o.limit_base : ds.base.n;
  index::Matrix full_base;  // rows beyond limit_base may serve as training queries
  if (limit < ds.base.n) {
    full_base = ds.base;
    ds.base.n = limit;
    ds.base.data.resize(limit * ds.base.d);
  } else {
    full_base.d = ds.base.d;  // nothing beyond: n = 0 rows
  }
  std::vector<index::label_t> ids(ds.base.n);
  std::iota(ids.begin(), ids.end(), 0);
  const QuerySource queries = [&](const index::HnswIndex& h, size_t n, size_t k,
                                  std::string* source) {
    return training_queries(ds, full_base, limit, o.dataset, h, n, k, o.trainer.seed, source);
  };
  out.learnt = learn_pruned_graph(ds.base, ids.data(), ds.metric, o, queries, observer, resume);
  return out;
}

PrunedGraph learn_pruned_graph(const index::Matrix& base, const index::label_t* ids,
                               index::Metric metric, const TrainPrunerOptions& o,
                               const PrunerObserver& observer) {
  const QuerySource loo = [&](const index::HnswIndex& h, size_t n, size_t k, std::string* source) {
    *source = "leave-one-out points";
    return leave_one_out_queries(h, std::min(n, base.n - 1), k, o.trainer.seed,
                                 h.fixed_entry_slot());
  };
  return learn_pruned_graph(base, ids, metric, o, loo, observer);
}

void register_learned_indexes() {
  engine::register_learned_builder("rl", [](const engine::LearnedBuildRequest& r) {
    // The same job as `waypoint train-pruner`, on the collection's points with leave-one-out
    // queries, no files: the collection stores the learnt index itself.
    TrainPrunerOptions o;
    o.M = r.hnsw.M;
    o.ef_construction = r.hnsw.ef_construction;
    o.ef_search = r.hnsw.ef_search;  // served at the collection's (or the tuned) ef
    o.steps = r.params.value("steps", size_t{200});
    o.max_minutes = r.params.value("max_minutes", 0.0);
    o.target_recall = r.params.value("target_recall", 0.95);
    o.validate_every = 10;
    o.trainer.max_kl = kPoolMaxKl;  // the job's initial graph is the pool
    o.env.k = 10;
    o.train_queries = std::min<size_t>(4000, r.vectors->n * 4 / 5);
    o.val_queries = std::min<size_t>(500, r.vectors->n / 5);
    PrunerObserver observer;
    if (r.progress) {
      observer.progress = [&r](size_t done, size_t total) {
        r.progress(static_cast<double>(done) / total);
      };
    }
    std::unique_ptr<index::Index> g =
        learn_pruned_graph(*r.vectors, r.labels->data(), r.metric, o, observer).graph;
    return g;
  });
}

}  // namespace wp::learn
