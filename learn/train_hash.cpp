#include "learn/train_hash.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include "index/dataset.h"
#include "index/error.h"
#include "index/vector_io.h"
#include "learn/checkpoint.h"
#include "learn/torch_runtime.h"

namespace wp::learn {

using Clock = std::chrono::steady_clock;

namespace {

/// At most `per_class` rows of every class (the first ones): validation stays cheap.
LabelledSet cap_per_class(const LabelledSet& s, size_t per_class) {
  std::map<int, size_t> taken;
  return s.select([&](size_t, int c) { return taken[c]++ < per_class; });
}

/// How a model matches a query to supports when it is validated and tested.
std::string natural_code(const MatchingConfig& c) {
  if (c.score == "cosine") return "cosine";
  return c.planes == "ovr" ? "ovr" : "planes";
}

std::string fmt(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

/// The neighbours task's labelled set: class c = anchor c and its `k` exact nearest neighbours in
/// `base` (rows may repeat across classes); anchors are distinct seeded base rows.
LabelledSet neighbourhoods(const index::Matrix& base, size_t anchors, size_t k, uint64_t seed) {
  WP_THROW_IF_NOT(base.n > k + 1, "the neighbours task needs more than ", k + 1, " vectors");
  anchors = std::min(anchors, base.n);
  std::vector<size_t> rows(base.n);
  for (size_t i = 0; i < base.n; ++i) rows[i] = i;
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < anchors; ++i) {
    std::uniform_int_distribution<size_t> pick(i, base.n - 1);
    std::swap(rows[i], rows[pick(rng)]);
  }
  index::Matrix a(anchors, base.d);
  for (size_t i = 0; i < anchors; ++i) {
    std::copy(base.row(rows[i]), base.row(rows[i]) + base.d, a.row(i));
  }
  const index::IntMatrix nn = index::exact_knn(base, a, k + 1, index::Metric::kL2);
  LabelledSet out;
  out.x = index::Matrix(0, base.d);
  for (size_t i = 0; i < anchors; ++i) {
    out.x.data.insert(out.x.data.end(), a.row(i), a.row(i) + base.d);
    out.y.push_back(static_cast<int>(i));
    size_t added = 0;
    for (size_t j = 0; j < nn.d && added < k; ++j) {
      const size_t r = static_cast<size_t>(nn.row(i)[j]);
      if (r == rows[i]) continue;  // the anchor itself
      out.x.data.insert(out.x.data.end(), base.row(r), base.row(r) + base.d);
      out.y.push_back(static_cast<int>(i));
      ++added;
    }
  }
  out.x.n = out.y.size();
  return out;
}

/// The itq task: fits ITQ planes to the base vectors.
TrainHashResult train_itq(const TrainHashOptions& o, const HashObserver& observer) {
  const index::Matrix base = index::read_vectors(o.dataset + "/base.fvecs");
  const size_t total = static_cast<size_t>(o.itq.iterations);
  ItqResult fit = fit_itq(base, o.itq, [&](int it, double) {
    if (observer.progress) observer.progress(static_cast<size_t>(it) + 1, total);
  });
  TrainHashResult result;
  result.steps_run = fit.loss.size();
  result.best_step = fit.loss.size();
  result.itq_loss = std::move(fit.loss);
  result.itq_explained_variance = fit.explained_variance;
  result.model = std::move(fit.model);
  return result;
}

/// The rows a matching task trains on (`seen`), validates on (`val`) and tests on (`test` for
/// unseen classes, `seen_test` for the training classes), as the file comment says.
struct HashData {
  LabelledSet seen, seen_test, val, test;
};

/// Loads and splits the data; sets result's training and unseen classes.
HashData split_data(const TrainHashOptions& o, TrainHashResult* result) {
  const bool by_neighbours = o.task == "neighbours";
  const LabelledSet all = by_neighbours
                              ? neighbourhoods(index::read_vectors(o.dataset + "/base.fvecs"),
                                               o.anchors, o.neighbours, o.cfg.seed + 3)
                              : load_labelled(o.dataset);
  const std::vector<int> classes = all.classes();
  result->split.train_classes = o.train_classes;
  if (result->split.train_classes.empty()) {
    const size_t train = by_neighbours ? classes.size() * 4 / 5 : (classes.size() + 1) / 2;
    result->split.train_classes.assign(classes.begin(), classes.begin() + train);
  }
  for (int c : result->split.train_classes) {
    WP_THROW_IF_NOT(std::binary_search(classes.begin(), classes.end(), c), "train class ", c,
                    " is not a label of '", o.dataset, "'");
  }
  for (int c : classes) {
    if (std::find(result->split.train_classes.begin(), result->split.train_classes.end(), c) ==
        result->split.train_classes.end()) {
      result->split.unseen_classes.push_back(c);
    }
  }
  WP_THROW_IF_NOT(result->split.train_classes.size() >= static_cast<size_t>(o.cfg.n_way),
                  "training episodes are ", o.cfg.n_way, "-way but only ",
                  result->split.train_classes.size(), " training classes are given");
  WP_THROW_IF_NOT(result->split.unseen_classes.size() >= 2,
                  "need at least 2 classes left unseen, got ", result->split.unseen_classes.size());
  const LabelledSet unseen = all.subset(result->split.unseen_classes);
  const LabelledSet queries = by_neighbours ? LabelledSet{} : load_labelled_queries(o.dataset);
  HashData d;
  if (queries.x.n > 0) {
    d.seen = all.subset(result->split.train_classes);
    d.seen_test = queries.subset(result->split.train_classes);
    d.val = cap_per_class(unseen, 300);
    d.test = queries.subset(result->split.unseen_classes);
  } else {
    const LabelledSet train_rows = all.subset(result->split.train_classes);
    // Neighbourhoods are small: train on all of them (the seen test then overlaps training).
    d.seen = by_neighbours ? train_rows : train_rows.half(0);
    d.seen_test = train_rows.half(1);
    d.val = cap_per_class(unseen.half(0), 300);
    d.test = unseen.half(1);
  }
  if (o.validate_on == "seen") {
    d.val = cap_per_class(d.seen.select([](size_t i, int) { return i % 10 == 9; }), 300);
    d.seen = d.seen.select([](size_t i, int) { return i % 10 != 9; });
  }
  return d;
}

/// A matching task's runs: one; or the DQN's runs (the last is kept); then fixed-lr baselines.
/// Keeps the kept run's best validated state and tells the observer of every step.
class HashJob {
 public:
  HashJob(const TrainHashOptions& o, const HashObserver& observer, HashData data,
          TrainHashResult* result);
  /// Every run; the kept one from `resume` when given.
  void train(const HashCheckpoint* resume);
  /// The kept model with its best weights: its state, planes, test accuracy and study.
  void finish();

 private:
  /// What one run's steps share.
  struct Run {
    int index = 0;
    bool kept = false;
    QanController* control = nullptr;  ///< null: a fixed learning rate
    MatchingTrainer* trainer = nullptr;
    RunSummary summary;
    double last_loss = 0;
  };
  /// Runs run `index` to its end (or early stop); returns its trainer.
  std::unique_ptr<MatchingTrainer> train_run(int index, const HashCheckpoint* resume);
  /// One step of `run` at 0-based step `s`; returns true when early stopping ends the run.
  bool step(Run* run, size_t s);
  /// The kept run's validation at `rec`: keeps the best state, counts towards early stopping,
  /// hands the checkpoint out; returns true when the run should stop.
  bool keep_best(const MatchingTrainer& trainer, const HashStepRecord& rec);

  const TrainHashOptions& o_;
  const HashObserver& observer_;
  const HashData data_;
  TrainHashResult* result_;
  const int kept_runs_, runs_;
  std::unique_ptr<QanController> qan_;
  std::unique_ptr<MatchingTrainer> kept_;
  std::string best_state_;
  int bad_validations_ = 0;
  Clock::time_point t0_ = Clock::now();
};

HashJob::HashJob(const TrainHashOptions& o, const HashObserver& observer, HashData data,
                 TrainHashResult* result)
    : o_(o),
      observer_(observer),
      data_(std::move(data)),
      result_(result),
      kept_runs_(o.controller == "dqn" ? o.dqn.runs : 1),
      runs_(kept_runs_ + static_cast<int>(o.baseline_lrs.size())) {
  EvalSpec& v = result_->split.validation;
  v.n_way = std::min<int>(o.cfg.n_way, static_cast<int>(data_.val.classes().size()));
  v.k_shot = o.cfg.k_shot;
  v.episodes = o.val_episodes;
  v.code = natural_code(o.cfg);
  v.seed = 12345;
  result_->split.train_rows = data_.seen.x.n;
  result_->split.val_rows = data_.val.x.n;
  result_->split.test_rows = data_.test.x.n;
  if (o.controller == "dqn") {
    DqnConfig d = o.dqn;
    d.seed = o.cfg.seed + d.seed;
    qan_ = std::make_unique<QanController>(d, result_->split.train_classes.size());
  }
}

void HashJob::train(const HashCheckpoint* resume) {
  if (observer_.started) observer_.started(result_->split);
  t0_ = Clock::now();
  for (int run = 0; run < runs_; ++run) {
    std::unique_ptr<MatchingTrainer> trainer = train_run(run, resume);
    if (run + 1 == kept_runs_) kept_ = std::move(trainer);
  }
}

std::unique_ptr<MatchingTrainer> HashJob::train_run(int index, const HashCheckpoint* resume) {
  const bool baseline = index >= kept_runs_;
  MatchingConfig cfg = o_.cfg;
  if (baseline) cfg.lr = o_.baseline_lrs[static_cast<size_t>(index - kept_runs_)];
  auto trainer = std::make_unique<MatchingTrainer>(data_.seen, cfg);
  Run run;
  run.index = index;
  run.kept = index + 1 == kept_runs_;
  run.control = baseline ? nullptr : qan_.get();
  run.trainer = trainer.get();
  if (run.kept && resume) {
    trainer->restore(resume->trainer);
    result_->best_step = resume->best_step;
    result_->best_val_accuracy = resume->best_val_accuracy;
    result_->best_val_loss = resume->best_val_loss;
    bad_validations_ = resume->bad_validations;
    best_state_ = resume->best;
  }
  run.summary.name = kept_runs_ > 1 && !baseline
                         ? "dqn run " + std::to_string(index + 1) + (run.kept ? " (kept)" : "")
                         : "lr " + fmt(cfg.lr);
  run.summary.role = baseline ? RunRole::kBaseline : run.kept ? RunRole::kKept : RunRole::kExplore;
  if (run.control) run.control->begin_run(index, o_.steps, *trainer);
  for (size_t s = trainer->steps_done(); s < o_.steps; ++s) {
    const double secs = std::chrono::duration<double>(Clock::now() - t0_).count();
    if (o_.max_minutes > 0 && secs >= o_.max_minutes * 60) break;
    if (step(&run, s)) break;
  }
  if (run.control) run.control->end_run(*trainer);
  result_->runs.push_back(run.summary);
  return trainer;
}

bool HashJob::step(Run* run, size_t s) {
  MatchingTrainer& trainer = *run->trainer;
  QanDecision dec;
  if (run->control) run->control->before_step(s, run->last_loss, trainer, &dec);
  const MatchingStep st = trainer.step();
  run->last_loss = st.loss;
  HashStepRecord rec;
  rec.run = run->index;
  rec.step = s + 1;
  rec.loss = st.loss;
  rec.accuracy = st.accuracy;
  rec.lr = trainer.learning_rate();
  rec.hard_mix = run->control && dec.hard_mix;
  bool stop = false;
  if ((s + 1) % static_cast<size_t>(o_.validate_every) == 0 || s + 1 == o_.steps) {
    const MatchingStep v = trainer.evaluate(data_.val, result_->split.validation);
    rec.validated = true;
    rec.val_loss = v.loss;
    rec.val_accuracy = v.accuracy;
    RunSummary& summary = run->summary;
    if (v.accuracy > summary.best_val_accuracy) {
      summary.best_val_accuracy = v.accuracy;
      summary.best_val_loss = v.loss;
    }
    summary.last_val_loss = v.loss;
    summary.last_val_accuracy = v.accuracy;
    if (run->kept) stop = keep_best(trainer, rec);
  }
  rec.seconds = std::chrono::duration<double>(Clock::now() - t0_).count();
  result_->steps.push_back(rec);
  if (observer_.step) observer_.step(rec);
  if (run->kept) result_->steps_run = s + 1;
  if (observer_.progress) {
    observer_.progress(static_cast<size_t>(run->index) * o_.steps + s + 1,
                       o_.steps * static_cast<size_t>(runs_));
  }
  return stop;
}

bool HashJob::keep_best(const MatchingTrainer& trainer, const HashStepRecord& rec) {
  bool stop = false;
  if (best_state_.empty() || rec.val_accuracy > result_->best_val_accuracy) {
    result_->best_val_accuracy = rec.val_accuracy;
    result_->best_val_loss = rec.val_loss;
    result_->best_step = rec.step;
    best_state_ = trainer.state();
    bad_validations_ = 0;
  } else if (o_.patience > 0 && ++bad_validations_ >= o_.patience) {
    stop = true;  // early stopping
  }
  // The DQN's runs restart together: only a single fixed-controller run resumes.
  if (o_.controller == "none" && observer_.checkpoint) {
    HashCheckpoint ck;
    ck.trainer = trainer.state();
    ck.best = best_state_;
    ck.step = trainer.steps_done();
    ck.best_step = result_->best_step;
    ck.best_val_accuracy = result_->best_val_accuracy;
    ck.best_val_loss = result_->best_val_loss;
    ck.bad_validations = bad_validations_;
    observer_.checkpoint(ck);
  }
  return stop;
}

void HashJob::finish() {
  if (!best_state_.empty()) kept_->restore(best_state_);
  result_->trainer_state = kept_->state();
  if (o_.cfg.encoder == "mlp") {
    result_->model = kept_->export_model(o_.export_bits, o_.cfg.seed + 99);
  }
  EvalSpec test_spec = result_->split.validation;
  test_spec.episodes = std::max(o_.val_episodes, 600);
  test_spec.seed = 777;
  result_->test_accuracy = kept_->accuracy(data_.test, test_spec);
  if (o_.study) {
    result_->study =
        lsh_study(*kept_, data_.test, data_.seen_test, o_.study_bits, o_.study_episodes, 4242);
  }
}

}  // namespace

std::vector<StudyRow> lsh_study(const MatchingTrainer& t, const LabelledSet& test,
                                const LabelledSet& seen, const std::vector<size_t>& bits,
                                int episodes, uint64_t seed) {
  std::vector<StudyRow> rows;
  auto add = [&](const std::string& name, const std::string& code, size_t b, bool raw) {
    StudyRow r;
    r.name = name;
    for (const LabelledSet* set : {&test, &seen}) {
      for (int shots : {1, 10}) {
        EvalSpec e;
        e.n_way = std::min<int>(5, static_cast<int>(set->classes().size()));
        e.k_shot = shots;
        e.queries = 5;
        e.episodes = episodes;
        e.code = code;
        e.bits = b;
        e.raw = raw;
        e.seed = seed;
        const double a = t.accuracy(*set, e);
        if (set == &test) {
          (shots == 1 ? r.one_shot : r.ten_shot) = a;
        } else {
          (shots == 1 ? r.seen_one_shot : r.seen_ten_shot) = a;
        }
      }
    }
    rows.push_back(r);
  };
  add("input, cosine", "cosine", 0, true);
  for (size_t b : bits) add("input, " + std::to_string(b) + " random planes", "simhash", b, true);
  add("embedding, cosine", "cosine", 0, false);
  for (size_t b : bits) {
    add("embedding, " + std::to_string(b) + " random planes", "simhash", b, false);
  }
  if (t.config().score == "bits") {
    add(t.config().planes == "ovr"
            ? std::string("embedding, its one-vs-rest planes (one per training class)")
            : "embedding, its " + t.config().planes + " planes (" +
                  std::to_string(t.config().bits) + " bits)",
        "planes", 0, false);
  }
  add("embedding, episode one-vs-rest planes", "ovr", 0, false);
  return rows;
}

std::string study_table(const std::vector<StudyRow>& rows) {
  std::ostringstream s;
  s << "| matching by | unseen 1-shot | unseen 10-shot | seen 1-shot | seen 10-shot |\n"
       "|---|---:|---:|---:|---:|\n";
  char buf[96];
  for (const StudyRow& r : rows) {
    std::snprintf(buf, sizeof buf, "| %.3f | %.3f | %.3f | %.3f |", r.one_shot, r.ten_shot,
                  r.seen_one_shot, r.seen_ten_shot);
    s << "| " << r.name << " " << buf << "\n";
  }
  return s.str();
}

std::string HashCheckpoint::encode() const {
  CheckpointFields f("matching");
  f.set("trainer", trainer);
  f.set("best", best);
  f.set_number("step", static_cast<double>(step));
  f.set_number("best_step", static_cast<double>(best_step));
  f.set_number("best_val_accuracy", best_val_accuracy);
  f.set_number("best_val_loss", best_val_loss);
  f.set_number("bad_validations", bad_validations);
  return f.encode();
}

HashCheckpoint HashCheckpoint::decode(const std::string& bytes) {
  const CheckpointFields f = CheckpointFields::decode(bytes, "matching");
  HashCheckpoint c;
  c.trainer = f.get("trainer");
  c.best = f.get("best");
  c.step = static_cast<size_t>(f.number("step"));
  c.best_step = static_cast<size_t>(f.number("best_step"));
  c.best_val_accuracy = f.number("best_val_accuracy");
  c.best_val_loss = f.number("best_val_loss");
  c.bad_validations = static_cast<int>(f.number("bad_validations"));
  return c;
}

void TrainHashOptions::validate() const {
  const TrainHashOptions& o = *this;
  WP_THROW_IF_NOT(o.steps >= 1, "steps must be at least 1");
  WP_THROW_IF_NOT(o.validate_every >= 1 && o.val_episodes >= 1,
                  "validate_every and val_episodes must be >= 1");
  WP_THROW_IF_NOT(o.controller == "none" || o.controller == "dqn",
                  "controller must be none or dqn, got '", o.controller, "'");
  o.cfg.validate();
  if (o.controller == "dqn") o.dqn.validate();
  WP_THROW_IF_NOT(o.task == "classes" || o.task == "neighbours" || o.task == "itq",
                  "task must be classes, neighbours or itq, got '", o.task, "'");
  // A neighbours pseudo-class (an anchor and its neighbours, consecutive rows) of the unseen
  // classes is split between validation and test by row parity: the larger part, half rounded up,
  // must still fill an episode's class.
  const size_t episode_rows = static_cast<size_t>(o.cfg.k_shot + o.cfg.queries);
  WP_THROW_IF_NOT(o.task != "neighbours" || (o.neighbours + 2) / 2 >= episode_rows,
                  "neighbours must be at least ", 2 * episode_rows - 2,
                  " for shot + queries = ", episode_rows,
                  " (an unseen anchor's neighbours + 1 rows are split between "
                  "validation and test), got ",
                  o.neighbours);
  WP_THROW_IF_NOT(o.task != "itq" || o.controller == "none",
                  "controller applies to the matching network, not to task itq");
  WP_THROW_IF_NOT(o.validate_on == "unseen" || o.validate_on == "seen",
                  "validate_on must be unseen or seen, got '", o.validate_on, "'");
}

void check_resumable(const TrainHashOptions& o) {
  WP_THROW_IF_NOT(o.task != "itq", "task itq keeps no trainer state to resume from");
  WP_THROW_IF_NOT(o.controller != "dqn",
                  "controller dqn cannot resume (its runs restart together)");
}

TrainHashResult train_hash(const TrainHashOptions& o, const HashObserver& observer,
                           const HashCheckpoint* resume) {
  o.validate();
  if (resume) check_resumable(o);
  init_torch(o.threads, o.cfg.seed);
  if (o.task == "itq") return train_itq(o, observer);
  TrainHashResult result;
  HashData data = split_data(o, &result);
  HashJob job(o, observer, std::move(data), &result);
  job.train(resume);
  job.finish();
  return result;
}

}  // namespace wp::learn
