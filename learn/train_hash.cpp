#include "learn/train_hash.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "engine/command/plot.h"
#include "engine/command/progress.h"
#include "index/dataset.h"
#include "index/error.h"
#include "index/vector_io.h"
#include "learn/torch_runtime.h"

namespace wp::learn {

namespace fs = std::filesystem;
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

struct RunLog {
  std::string name;  ///< "dqn run 2", "lr 0.001"
  cli::Series val_acc, val_loss;
};

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

/// The itq task: fits ITQ planes to the base vectors, logs the loss per iteration, writes the
/// model.
TrainHashResult train_itq(const TrainHashOptions& o) {
  const index::Matrix base = index::read_vectors(o.dataset + "/base.fvecs");
  std::ofstream log(o.log_csv, std::ios::trunc);
  WP_THROW_IF_NOT(log.good(), "cannot write '", o.log_csv, "'");
  log << "iteration,quantisation_loss\n";
  cli::Progress progress("train-hash itq", static_cast<size_t>(o.itq.iterations), o.quiet);
  cli::Series curve{"quantisation loss", {}, {}};
  const ItqResult fit = fit_itq(base, o.itq, [&](int it, double loss) {
    log << it + 1 << ',' << loss << '\n';
    curve.x.push_back(it + 1);
    curve.y.push_back(loss);
    progress.update(static_cast<size_t>(it) + 1);
  });
  progress.finish();
  fit.model.save(o.out);
  if (!o.plot_png.empty()) {
    cli::PlotSpec plot;
    plot.title = "train-hash itq: " + std::to_string(o.itq.bits) + " bits";
    plot.xlabel = "iteration";
    plot.ylabel = "mean squared quantisation loss";
    plot.series.push_back(std::move(curve));
    cli::write_png_plot(o.plot_png, plot);
  }
  if (!o.quiet) {
    std::fprintf(stderr,
                 "train-hash itq: %zu bits keep %.1f%% of the variance; quantisation loss %.4f -> "
                 "%.4f; wrote %s, %s, %s\n",
                 o.itq.bits, 100 * fit.explained_variance, fit.loss.front(), fit.loss.back(),
                 o.out.c_str(), o.log_csv.c_str(), o.plot_png.c_str());
  }
  TrainHashResult result;
  result.steps_run = fit.loss.size();
  result.best_step = fit.loss.size();
  return result;
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

TrainHashResult train_hash(const TrainHashOptions& opts) {
  TrainHashOptions o = opts;
  WP_THROW_IF_NOT(!o.out.empty(), "--out is required");
  WP_THROW_IF_NOT(o.steps >= 1, "steps must be at least 1");
  WP_THROW_IF_NOT(o.validate_every >= 1 && o.val_episodes >= 1,
                  "validate_every and val_episodes must be >= 1");
  WP_THROW_IF_NOT(o.controller == "none" || o.controller == "dqn",
                  "controller must be none or dqn, got '", o.controller, "'");
  WP_THROW_IF_NOT(!(o.resume && o.controller == "dqn"),
                  "--resume is not supported with --controller dqn (its runs restart together)");
  o.cfg.validate();
  if (o.controller == "dqn") o.dqn.validate();
  if (o.log_csv.empty()) o.log_csv = o.out + ".csv";
  if (o.plot_png.empty()) o.plot_png = o.out + ".png";
  if (o.checkpoint.empty()) o.checkpoint = o.out + ".ckpt";
  if (o.study_md.empty()) o.study_md = o.out + ".study.md";
  init_torch(o.threads, o.cfg.seed);
  if (o.task == "itq") {
    WP_THROW_IF_NOT(!o.resume && o.controller == "none",
                    "--resume and --controller apply to the matching network, not to --task itq");
    return train_itq(o);
  }

  // Splits by class: train on some, validate and test on the others.
  WP_THROW_IF_NOT(o.task == "classes" || o.task == "neighbours",
                  "task must be classes, neighbours or itq, got '", o.task, "'");
  const bool by_neighbours = o.task == "neighbours";
  const LabelledSet all = by_neighbours
                              ? neighbourhoods(index::read_vectors(o.dataset + "/base.fvecs"),
                                               o.anchors, o.neighbours, o.cfg.seed + 3)
                              : load_labelled(o.dataset);
  const std::vector<int> classes = all.classes();
  TrainHashResult result;
  result.train_classes = o.train_classes;
  if (result.train_classes.empty()) {
    const size_t train = by_neighbours ? classes.size() * 4 / 5 : (classes.size() + 1) / 2;
    result.train_classes.assign(classes.begin(), classes.begin() + train);
  }
  for (int c : result.train_classes) {
    WP_THROW_IF_NOT(std::binary_search(classes.begin(), classes.end(), c), "train class ", c,
                    " is not a label of '", o.dataset, "'");
  }
  for (int c : classes) {
    if (std::find(result.train_classes.begin(), result.train_classes.end(), c) ==
        result.train_classes.end()) {
      result.unseen_classes.push_back(c);
    }
  }
  WP_THROW_IF_NOT(result.train_classes.size() >= static_cast<size_t>(o.cfg.n_way),
                  "training episodes are ", o.cfg.n_way, "-way but only ",
                  result.train_classes.size(), " training classes are given");
  WP_THROW_IF_NOT(result.unseen_classes.size() >= 2, "need at least 2 classes left unseen, got ",
                  result.unseen_classes.size());
  const LabelledSet unseen = all.subset(result.unseen_classes);
  const LabelledSet queries = by_neighbours ? LabelledSet{} : load_labelled_queries(o.dataset);
  LabelledSet seen, seen_test, val, test;
  if (queries.x.n > 0) {
    seen = all.subset(result.train_classes);
    seen_test = queries.subset(result.train_classes);
    val = cap_per_class(unseen, 300);
    test = queries.subset(result.unseen_classes);
  } else {
    const LabelledSet train_rows = all.subset(result.train_classes);
    // Neighbourhoods are small: train on all of them (the seen test then overlaps training).
    seen = by_neighbours ? train_rows : train_rows.half(0);
    seen_test = train_rows.half(1);
    val = cap_per_class(unseen.half(0), 300);
    test = unseen.half(1);
  }
  WP_THROW_IF_NOT(o.validate_on == "unseen" || o.validate_on == "seen",
                  "validate_on must be unseen or seen, got '", o.validate_on, "'");
  if (o.validate_on == "seen") {
    val = cap_per_class(seen.select([](size_t i, int) { return i % 10 == 9; }), 300);
    seen = seen.select([](size_t i, int) { return i % 10 != 9; });
  }
  EvalSpec val_spec;
  val_spec.n_way = std::min<int>(o.cfg.n_way, static_cast<int>(val.classes().size()));
  val_spec.k_shot = o.cfg.k_shot;
  val_spec.episodes = o.val_episodes;
  val_spec.code = natural_code(o.cfg);
  val_spec.seed = 12345;
  if (!o.quiet) {
    std::fprintf(stderr,
                 "train-hash: %zu training rows (%zu classes), validation %zu rows and test %zu "
                 "rows of %zu unseen classes; %d-way %d-shot, score %s%s\n",
                 seen.x.n, result.train_classes.size(), val.x.n, test.x.n,
                 result.unseen_classes.size(), o.cfg.n_way, o.cfg.k_shot, o.cfg.score.c_str(),
                 o.cfg.score == "bits"
                     ? (" (" + o.cfg.planes + " planes, " + o.cfg.relax + ")").c_str()
                     : "");
  }

  // Runs: one; or the DQN's runs (the last is kept); then fixed-lr baselines if asked.
  const int kept_runs = o.controller == "dqn" ? o.dqn.runs : 1;
  const int runs = kept_runs + static_cast<int>(o.baseline_lrs.size());
  std::unique_ptr<QanController> qan;
  if (o.controller == "dqn") {
    DqnConfig d = o.dqn;
    d.seed = o.cfg.seed + d.seed;
    qan = std::make_unique<QanController>(d, result.train_classes.size());
  }
  const bool fresh_log = !(o.resume && fs::exists(o.log_csv) && fs::exists(o.checkpoint));
  std::ofstream log(o.log_csv, fresh_log ? std::ios::trunc : std::ios::app);
  WP_THROW_IF_NOT(log.good(), "cannot write log '", o.log_csv, "'");
  if (fresh_log) log << "run,step,loss,accuracy,lr,hard_mix,val_loss,val_accuracy,seconds\n";
  const auto t0 = Clock::now();
  std::unique_ptr<MatchingTrainer> kept;
  std::string best_state;
  int bad_validations = 0;
  std::vector<RunLog> curves;
  const std::string best_path = o.checkpoint + ".best";
  const std::string meta_path = o.checkpoint + ".meta";

  cli::Progress progress("train-hash", o.steps * static_cast<size_t>(runs), o.quiet);
  for (int run = 0; run < runs; ++run) {
    const bool final_run = run + 1 == kept_runs;
    const bool baseline = run >= kept_runs;
    MatchingConfig cfg = o.cfg;
    if (baseline) cfg.lr = o.baseline_lrs[static_cast<size_t>(run - kept_runs)];
    auto trainer = std::make_unique<MatchingTrainer>(seen, cfg);
    if (final_run && o.resume && fs::exists(o.checkpoint)) {
      trainer->load(o.checkpoint);
      std::ifstream meta(meta_path);
      meta >> result.best_step >> result.best_val_accuracy >> result.best_val_loss >>
          bad_validations;
      if (fs::exists(best_path)) {
        MatchingTrainer b(seen, o.cfg);
        b.load(best_path);
        best_state = b.state();
      }
      if (!o.quiet) {
        std::fprintf(stderr, "train-hash: resumed at step %zu (best validation %.3f at %zu)\n",
                     trainer->steps_done(), result.best_val_accuracy, result.best_step);
      }
    }
    RunLog curve;
    curve.name = kept_runs > 1 && !baseline
                     ? "dqn run " + std::to_string(run + 1) + (final_run ? " (kept)" : "")
                     : "lr " + fmt(cfg.lr);
    RunSummary summary;
    summary.name = curve.name;
    QanController* control = baseline ? nullptr : qan.get();
    if (control) control->begin_run(run, o.steps, *trainer);
    double last_loss = 0;
    bool stopped = false;
    for (size_t s = trainer->steps_done(); s < o.steps && !stopped; ++s) {
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      if (o.max_minutes > 0 && secs >= o.max_minutes * 60) break;
      QanDecision dec;
      if (control) control->before_step(s, last_loss, *trainer, &dec);
      const MatchingStep st = trainer->step();
      last_loss = st.loss;
      double vl = -1, va = -1;
      if ((s + 1) % static_cast<size_t>(o.validate_every) == 0 || s + 1 == o.steps) {
        const MatchingStep v = trainer->evaluate(val, val_spec);
        vl = v.loss;
        va = v.accuracy;
        curve.val_acc.x.push_back(static_cast<double>(s + 1));
        curve.val_acc.y.push_back(va);
        curve.val_loss.x.push_back(static_cast<double>(s + 1));
        curve.val_loss.y.push_back(vl);
        if (va > summary.best_val_accuracy) {
          summary.best_val_accuracy = va;
          summary.best_val_loss = vl;
        }
        summary.last_val_loss = vl;
        summary.last_val_accuracy = va;
        if (final_run) {
          if (best_state.empty() || va > result.best_val_accuracy) {
            result.best_val_accuracy = va;
            result.best_val_loss = vl;
            result.best_step = s + 1;
            best_state = trainer->state();
            bad_validations = 0;
            if (o.controller == "none") {
              trainer->save(best_path);
            }
          } else if (o.patience > 0 && ++bad_validations >= o.patience) {
            stopped = true;  // early stopping
          }
          if (o.controller == "none") {
            trainer->save(o.checkpoint);
            std::ofstream meta(meta_path, std::ios::trunc);
            meta << result.best_step << " " << result.best_val_accuracy << " "
                 << result.best_val_loss << " " << bad_validations << "\n";
          }
        }
      }
      log << run << "," << s + 1 << "," << st.loss << "," << st.accuracy << ","
          << trainer->learning_rate() << "," << (control && dec.hard_mix ? 1 : 0) << "," << vl
          << "," << va << "," << std::chrono::duration<double>(Clock::now() - t0).count() << "\n";
      log.flush();
      if (final_run) result.steps_run = s + 1;
      progress.update(static_cast<size_t>(run) * o.steps + s + 1);
    }
    if (control) control->end_run(*trainer);
    curves.push_back(std::move(curve));
    result.runs.push_back(summary);
    if (final_run) kept = std::move(trainer);
  }
  progress.finish();
  log.close();

  // The kept model: the best validated weights.
  if (!best_state.empty()) kept->restore(best_state);
  kept->save(o.out + ".pt");
  if (o.cfg.encoder == "mlp") kept->export_model(o.export_bits, o.cfg.seed + 99).save(o.out);
  EvalSpec test_spec = val_spec;
  test_spec.episodes = std::max(o.val_episodes, 600);
  test_spec.seed = 777;
  result.test_accuracy = kept->accuracy(test, test_spec);
  if (o.study) {
    result.study = lsh_study(*kept, test, seen_test, o.study_bits, o.study_episodes, 4242);
    std::ofstream md(o.study_md, std::ios::trunc);
    md << study_table(result.study);
  }

  // Curves: every run's validation accuracy and loss, and the kept run's training loss.
  if (!o.plot_png.empty()) {
    cli::PlotSpec plot;
    plot.title = "train-hash: validation on " + o.validate_on + " classes (" +
                 std::to_string(val_spec.n_way) + "-way " + std::to_string(val_spec.k_shot) +
                 "-shot, " + val_spec.code + ")";
    plot.xlabel = "training step";
    plot.ylabel = "accuracy / loss";
    // The kept run and the baselines (the DQN's exploring runs are in the CSV).
    for (size_t i = static_cast<size_t>(kept_runs - 1); i < curves.size(); ++i) {
      const RunLog& c = curves[i];
      plot.series.push_back({c.name + ": validation accuracy", c.val_acc.x, c.val_acc.y});
      plot.series.push_back({c.name + ": validation loss", c.val_loss.x, c.val_loss.y});
    }
    cli::write_png_plot(o.plot_png, plot);
  }
  if (!o.quiet) {
    std::fprintf(stderr,
                 "train-hash: best validation accuracy %.3f (loss %.3f) at step %zu; test "
                 "accuracy %.3f; wrote %s%s, %s.pt, %s, %s%s%s\n",
                 result.best_val_accuracy, result.best_val_loss, result.best_step,
                 result.test_accuracy, o.cfg.encoder == "mlp" ? o.out.c_str() : "",
                 o.cfg.encoder == "mlp" ? "" : "(conv: no HashModel)", o.out.c_str(),
                 o.log_csv.c_str(), o.plot_png.c_str(), o.study ? ", " : "",
                 o.study ? o.study_md.c_str() : "");
  }
  return result;
}

}  // namespace wp::learn
