// `waypoint train-hash` (built only with WAYPOINT_WITH_TORCH): options -> learn::train_hash,
// whose observer this file turns into the progress bar, the CSV log (a row per step), the
// checkpoint file and the messages; then the HashModel, the trainer state (.pt), the study table
// and the curves.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "engine/command/command.h"
#include "engine/command/plot.h"
#include "index/error.h"
#include "learn/checkpoint.h"
#include "learn/cli/training_output.h"
#include "learn/train_hash.h"

namespace wp::cli {

namespace {

learn::TrainHashOptions parse_hash_options(Args& args) {
  learn::TrainHashOptions o;
  o.dataset = args.required("dataset");
  if (args.has("train-classes")) {
    for (long long c : args.int_list("train-classes", "", -(1LL << 31), (1LL << 31) - 1)) {
      o.train_classes.push_back(static_cast<int>(c));
    }
  }
  o.task = args.str("task", "classes");
  o.anchors = static_cast<size_t>(args.integer("anchors", 4000, 10, 1LL << 30));
  o.neighbours = static_cast<size_t>(args.integer("neighbours", 10, 1, 1000));
  learn::MatchingConfig& c = o.cfg;
  c.encoder = args.str("encoder", "mlp");
  c.hidden.clear();
  const std::vector<std::string> hidden = args.list("hidden", "256");
  if (!(hidden.size() == 1 && hidden[0] == "none")) {
    for (const std::string& h : hidden) {
      try {
        c.hidden.push_back(std::stoi(h));
      } catch (const std::exception&) {
        throw UserError("--hidden: expected widths like 256,128 or 'none', got '" + h + "'");
      }
    }
  }
  c.embed = static_cast<int>(args.integer("embed", 64, 1, 8192));
  c.n_way = static_cast<int>(args.integer("way", 5, 2, 1000));
  c.k_shot = static_cast<int>(args.integer("shot", 1, 1, 1000));
  c.queries = static_cast<int>(args.integer("queries", 5, 1, 1000));
  c.episodes_per_step = static_cast<int>(args.integer("episodes", 16, 1, 1 << 20));
  c.lr = args.real("lr", 1e-3, 1e-8, 1);
  c.weight_decay = args.real("weight-decay", 0, 0, 0.99);
  c.dropout = args.real("dropout", 0, 0, 0.99);
  c.scale = args.real("scale", 10, 1e-3, 1e4);
  c.score = args.str("score", "cosine");
  c.planes = args.str("planes", "learned");
  c.relax = args.str("relax", "tanh");
  c.bits = static_cast<int>(args.integer("bits", 256, 1, 65536));
  c.beta = args.real("beta", 1, 1e-3, 1e3);
  c.ovr_every = static_cast<int>(args.integer("ovr-every", 25, 1, 1 << 30));
  c.standardise = args.str("standardise", o.task == "neighbours" ? "global" : "feature");
  c.seed = static_cast<uint64_t>(args.integer("seed", 0, 0, 1LL << 62));
  o.itq.bits = static_cast<size_t>(c.bits);
  o.itq.iterations = static_cast<int>(args.integer("itq-iterations", 50, 1, 100000));
  o.itq.max_rows = static_cast<size_t>(args.integer("itq-rows", 20000, 2, 1LL << 40));
  o.itq.seed = c.seed + 1;
  o.steps = static_cast<size_t>(args.integer("steps", 500, 1, 100000000));
  o.max_minutes = args.real("max-minutes", 0, 0, 1e6);
  o.validate_every = static_cast<int>(args.integer("validate-every", 25, 1, 1 << 30));
  o.val_episodes = static_cast<int>(args.integer("val-episodes", 300, 1, 1 << 24));
  o.validate_on = args.str("validate-on", "unseen");
  o.patience = static_cast<int>(args.integer("patience", 0, 0, 1 << 30));
  o.export_bits = static_cast<size_t>(args.integer("export-bits", 256, 1, 65536));
  o.controller = args.str("controller", "none");
  o.dqn.runs = static_cast<int>(args.integer("dqn-runs", 3, 1, 100));
  o.dqn.interval = static_cast<int>(args.integer("dqn-interval", 10, 1, 1 << 20));
  o.dqn.meta_momentum = args.real("meta-momentum", 1e-3, 0, 1e3);
  o.dqn.meta_fraction = args.real("meta-fraction", 0.3, 0, 1);
  o.dqn.epsilon_greedy = args.real("dqn-epsilon", 0, 0, 1);
  for (const std::string& lr : args.list("baseline-lrs", "")) {
    try {
      o.baseline_lrs.push_back(std::stod(lr));
    } catch (const std::exception&) {
      throw UserError("--baseline-lrs: expected numbers like 3e-4,1e-3, got '" + lr + "'");
    }
    WP_THROW_IF_NOT(o.baseline_lrs.back() > 0 && o.baseline_lrs.back() < 10,
                    "--baseline-lrs: each must be in (0, 10), got ", lr);
  }
  o.study = args.flag("study");
  o.study_bits.clear();
  for (long long b : args.int_list("study-bits", "100,200,500,1000,2000", 1, 65536)) {
    o.study_bits.push_back(static_cast<size_t>(b));
  }
  o.study_episodes = static_cast<int>(args.integer("study-episodes", 600, 1, 1 << 24));
  o.threads = static_cast<int>(args.integer("threads", 0, 0, 1024));
  return o;
}

/// The itq task's outputs: the log of the quantisation loss per iteration, its curve, the
/// planes.
void write_itq(const learn::TrainHashOptions& o, const TrainingOutput& files, std::ofstream& log,
               const learn::TrainHashResult& r) {
  Series curve{"quantisation loss", {}, {}};
  for (size_t i = 0; i < r.itq_loss.size(); ++i) {
    log << i + 1 << ',' << r.itq_loss[i] << '\n';
    curve.x.push_back(static_cast<double>(i + 1));
    curve.y.push_back(r.itq_loss[i]);
  }
  log.close();
  r.model->save(files.out);
  PlotSpec plot;
  plot.title = "train-hash itq: " + std::to_string(o.itq.bits) + " bits";
  plot.xlabel = "iteration";
  plot.ylabel = "mean squared quantisation loss";
  plot.series.push_back(std::move(curve));
  write_png_plot(files.plot_png, plot);
  if (!files.quiet) {
    std::fprintf(stderr,
                 "train-hash itq: %zu bits keep %.1f%% of the variance; quantisation loss %.4f -> "
                 "%.4f; wrote %s, %s, %s\n",
                 o.itq.bits, 100 * r.itq_explained_variance, r.itq_loss.front(), r.itq_loss.back(),
                 files.out.c_str(), files.log_csv.c_str(), files.plot_png.c_str());
  }
}

void write_log_row(std::ostream& log, const learn::HashStepRecord& r) {
  log << r.run << "," << r.step << "," << r.loss << "," << r.accuracy << "," << r.lr << ","
      << (r.hard_mix ? 1 : 0) << "," << r.val_loss << "," << r.val_accuracy << "," << r.seconds
      << "\n";
  log.flush();
}

/// Every run's validation accuracy and loss but the DQN's exploring runs' (those are in the CSV).
void plot_validation(const learn::TrainHashOptions& o, const std::string& png,
                     const learn::TrainHashResult& r) {
  const learn::EvalSpec& v = r.split.validation;
  PlotSpec plot;
  plot.title = "train-hash: validation on " + o.validate_on + " classes (" +
               std::to_string(v.n_way) + "-way " + std::to_string(v.k_shot) + "-shot, " + v.code +
               ")";
  plot.xlabel = "training step";
  plot.ylabel = "accuracy / loss";
  std::vector<Series> acc(r.runs.size()), loss(r.runs.size());
  for (const learn::HashStepRecord& s : r.steps) {
    if (!s.validated) continue;
    const size_t run = static_cast<size_t>(s.run);
    acc[run].x.push_back(static_cast<double>(s.step));
    acc[run].y.push_back(s.val_accuracy);
    loss[run].x.push_back(static_cast<double>(s.step));
    loss[run].y.push_back(s.val_loss);
  }
  for (size_t run = 0; run < r.runs.size(); ++run) {
    if (r.runs[run].role == learn::RunRole::kExplore) continue;
    acc[run].name = r.runs[run].name + ": validation accuracy";
    loss[run].name = r.runs[run].name + ": validation loss";
    plot.series.push_back(std::move(acc[run]));
    plot.series.push_back(std::move(loss[run]));
  }
  write_png_plot(png, plot);
}

/// The matching tasks' outputs after the job: the model, the trainer state, the study, the
/// curves.
void write_model(const learn::TrainHashOptions& o, const TrainingOutput& files,
                 const learn::TrainHashResult& r) {
  learn::write_file_atomically(files.out + ".pt", r.trainer_state);
  if (r.model) r.model->save(files.out);
  const std::string study_md = files.out + ".study.md";
  if (o.study) {
    std::ofstream md(study_md, std::ios::trunc);
    md << learn::study_table(r.study);
  }
  plot_validation(o, files.plot_png, r);
  if (!files.quiet) {
    std::fprintf(stderr,
                 "train-hash: best validation accuracy %.3f (loss %.3f) at step %zu; test "
                 "accuracy %.3f; wrote %s%s, %s.pt, %s, %s%s%s\n",
                 r.best_val_accuracy, r.best_val_loss, r.best_step, r.test_accuracy,
                 r.model ? files.out.c_str() : "", r.model ? "" : "(conv: no HashModel)",
                 files.out.c_str(), files.log_csv.c_str(), files.plot_png.c_str(),
                 o.study ? ", " : "", o.study ? study_md.c_str() : "");
  }
}

/// Trains a matching task, logging every step and saving every checkpoint as the job reports.
learn::TrainHashResult train_matching(const learn::TrainHashOptions& o, const TrainingOutput& files,
                                      std::ofstream& log,
                                      const std::optional<learn::HashCheckpoint>& resume) {
  JobProgress progress("train-hash", files.quiet);
  learn::HashObserver observer;
  observer.started = [&](const learn::HashSplit& s) {
    if (files.quiet) return;
    const learn::MatchingConfig& c = o.cfg;
    std::fprintf(stderr,
                 "train-hash: %zu training rows (%zu classes), validation %zu rows and test %zu "
                 "rows of %zu unseen classes; %d-way %d-shot, score %s%s\n",
                 s.train_rows, s.train_classes.size(), s.val_rows, s.test_rows,
                 s.unseen_classes.size(), c.n_way, c.k_shot, c.score.c_str(),
                 c.score == "bits" ? (" (" + c.planes + " planes, " + c.relax + ")").c_str() : "");
    if (resume) {
      std::fprintf(stderr, "train-hash: resumed at step %zu (best validation %.3f at %zu)\n",
                   resume->step, resume->best_val_accuracy, resume->best_step);
    }
  };
  observer.step = [&](const learn::HashStepRecord& r) { write_log_row(log, r); };
  observer.checkpoint = checkpoint_writer<learn::HashCheckpoint>(files);
  observer.progress = progress.reporter();
  learn::TrainHashResult r = learn::train_hash(o, observer, resume ? &*resume : nullptr);
  progress.finish();
  log.close();
  return r;
}

int cmd_train_hash(Args& args) {
  const learn::TrainHashOptions o = parse_hash_options(args);
  const TrainingOutput files = parse_training_output(args);
  args.finish();
  o.validate();
  if (files.resume) {
    try {
      learn::check_resumable(o);
    } catch (const UserError& e) {
      throw UserError(std::string("--resume: ") + e.what());
    }
  }
  const auto resume = checkpoint_to_resume<learn::HashCheckpoint>(files);
  if (o.task == "itq") {
    std::ofstream log = open_log(files.log_csv, false, "iteration,quantisation_loss\n");
    JobProgress progress("train-hash itq", files.quiet);
    learn::HashObserver observer;
    observer.progress = progress.reporter();
    const learn::TrainHashResult r = learn::train_hash(o, observer);
    progress.finish();
    write_itq(o, files, log, r);
    std::printf("hash model written to %s: ITQ, %zu bits, %zu iterations\n", files.out.c_str(),
                o.itq.bits, r.steps_run);
    return 0;
  }
  // A resumed run appends to the log it continues.
  const bool append = resume && std::filesystem::exists(files.log_csv);
  std::ofstream log = open_log(
      files.log_csv, append, "run,step,loss,accuracy,lr,hard_mix,val_loss,val_accuracy,seconds\n");
  const learn::TrainHashResult r = train_matching(o, files, log, resume);
  write_model(o, files, r);
  std::printf(
      "hash model written to %s: validation accuracy %.3f at step %zu, test accuracy %.3f\n",
      files.out.c_str(), r.best_val_accuracy, r.best_step, r.test_accuracy);
  for (const learn::RunSummary& s : r.runs) {
    std::printf("  run %-22s best validation accuracy %.3f (loss %.3f), last %.3f (loss %.3f)\n",
                s.name.c_str(), s.best_val_accuracy, s.best_val_loss, s.last_val_accuracy,
                s.last_val_loss);
  }
  if (!r.study.empty()) std::printf("\n%s", learn::study_table(r.study).c_str());
  return 0;
}

const CommandRegistration kTrainHash(
    {"train-hash",
     "--dataset DIR (labelled) --out FILE [--task classes|neighbours|itq] [--anchors 4000]\n"
     "          [--neighbours 10] [--train-classes lower half] [--encoder mlp|conv]\n"
     "          [--hidden 256|none] [--embed 64] [--way 5] [--shot 1] [--queries 5] "
     "[--episodes 16]\n"
     "          [--lr 1e-3] [--weight-decay 0] [--dropout 0] [--scale 10] [--score cosine|bits]\n"
     "          [--planes learned|fixed|ovr] [--relax tanh|sigmoid|ste] [--bits 256] [--beta 1]\n"
     "          [--standardise feature|global (neighbours: global)]\n"
     "          [--steps 500] [--max-minutes N] [--validate-every 25] [--val-episodes 300]\n"
     "          [--validate-on unseen|seen] [--patience 0] [--export-bits 256]\n"
     "          [--controller none|dqn] [--dqn-runs 3]\n"
     "          [--dqn-interval 10] [--meta-momentum 1e-3] [--baseline-lrs 3e-4,1e-3,...]\n"
     "          [--itq-iterations 50] [--itq-rows 20000]\n"
     "          [--study] [--study-bits 100,200,500,1000,2000] [--seed 0] [--log FILE.csv]\n"
     "          [--plot FILE.png] [--checkpoint FILE] [--resume] [--quiet]",
     70,
     {"quiet", "resume", "study"},
     &cmd_train_hash});

}  // namespace

}  // namespace wp::cli
