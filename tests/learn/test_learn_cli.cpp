// `waypoint train-pruner` and `waypoint train-hash` end to end: the real binary writes the model,
// the CSV log (a row per step), the plots and the checkpoint beside --out, --resume continues the
// log, and --quiet silences the messages.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "index/graph_index.h"
#include "index/index.h"
#include "index/lsh_index.h"
#include "test_util.h"

namespace {

/// What a run of the binary printed, stdout and stderr apart.
struct CliResult {
  int code = -1;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Runs `waypoint <args>` with its output in files of `tmp`.
CliResult waypoint(const wp::test::TempDir& tmp, const std::string& args) {
  const std::string out = tmp.file("stdout.txt"), err = tmp.file("stderr.txt");
  const std::string cmd = std::string(WAYPOINT_BIN) + " " + args + " >" + out + " 2>" + err;
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

size_t lines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  std::string l;
  while (std::getline(in, l)) ++n;
  return n;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const std::string kDigits = wp::test::data_dir() + "/digits";
const std::string kHashSmall = " --hidden 32 --embed 16 --episodes 4 --seed 5 --validate-every 5" +
                               std::string(" --val-episodes 40 --threads 2");

}  // namespace

// The README's toy example, short.
TEST(TrainPrunerCli, WritesIndexLogPlotsAndCheckpointAndResumes) {
  wp::test::TempDir tmp;
  const std::string toy = "train-pruner --dataset " + kDigits +
                          " --limit-base 100 --initial complete --max-dcs 200 --episodes 64"
                          " --validate-every 4 --threads 2 --out " +
                          tmp.file("toy.rl");
  CliResult r = waypoint(tmp, toy + " --steps 8 --graph-png " + tmp.file("toy-graph.png"));
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"toy.rl", "toy.rl.csv", "toy.rl.png", "toy.rl.ckpt", "toy-graph.png"}) {
    EXPECT_TRUE(std::filesystem::exists(tmp.file(f))) << f;
  }
  EXPECT_EQ(lines(tmp.file("toy.rl.csv")), 9u);  // header + a row per step
  EXPECT_EQ(slurp(tmp.file("toy.rl.csv")).substr(0, 31), "step,reward,recall,dcs,kl,entro");
  EXPECT_TRUE(contains(r.out, "learnt graph written to " + tmp.file("toy.rl")));
  EXPECT_TRUE(contains(r.err, "train-pruner: 100 vertices, 9900 edges")) << r.err;
  EXPECT_TRUE(contains(r.err, "train-pruner: wrote ")) << r.err;
  auto index = wp::index::load_index(tmp.file("toy.rl"));
  ASSERT_NE(dynamic_cast<wp::index::GraphIndex*>(index.get()), nullptr);
  EXPECT_EQ(index->size(), 100u);
  // --resume continues from the checkpoint of step 8 and appends to the same log; --quiet.
  r = waypoint(tmp, toy + " --steps 12 --resume --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(tmp.file("toy.rl.csv")), 13u);
  EXPECT_EQ(r.err, "");
  // Without --resume the log starts again.
  r = waypoint(tmp, toy + " --steps 2 --quiet --log " + tmp.file("other.csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(tmp.file("other.csv")), 3u);
}

TEST(TrainHashCli, WritesModelLogPlotAndCheckpointAndResumes) {
  wp::test::TempDir tmp;
  const std::string run =
      "train-hash --dataset " + kDigits + kHashSmall + " --out " + tmp.file("d.hash");
  CliResult r = waypoint(tmp, run + " --steps 10 --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"d.hash", "d.hash.pt", "d.hash.csv", "d.hash.png", "d.hash.ckpt"}) {
    EXPECT_TRUE(std::filesystem::exists(tmp.file(f))) << f;
  }
  EXPECT_EQ(lines(tmp.file("d.hash.csv")), 11u);  // header + a row per step
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(contains(r.out, "hash model written to " + tmp.file("d.hash")));
  const wp::index::HashModel m = wp::index::HashModel::load(tmp.file("d.hash"));
  EXPECT_EQ(m.input_dim, 64u);
  EXPECT_EQ(m.bits, 256u);
  // Resume continues at step 10 and appends to the same log.
  r = waypoint(tmp, run + " --steps 20 --resume");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(tmp.file("d.hash.csv")), 21u);
  EXPECT_TRUE(contains(r.err, "train-hash: resumed at step 10")) << r.err;
  EXPECT_TRUE(contains(r.err, "train-hash: 451 training rows (5 classes)")) << r.err;
}

TEST(TrainHashCli, StudyWritesItsTable) {
  wp::test::TempDir tmp;
  CliResult r = waypoint(tmp, "train-hash --dataset " + kDigits + kHashSmall +
                                  " --steps 20 --score bits --bits 32 --study --study-bits 16,1024"
                                  " --study-episodes 150 --quiet --out " +
                                  tmp.file("s.hash"));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string md = slurp(tmp.file("s.hash.study.md"));
  EXPECT_TRUE(contains(md, "| embedding, its learned planes (32 bits) |")) << md;
  EXPECT_TRUE(contains(r.out, md));
}

TEST(TrainHashCli, DqnLogsEveryRunAndRefusesResume) {
  wp::test::TempDir tmp;
  const std::string run = "train-hash --dataset " + kDigits + kHashSmall +
                          " --steps 20 --controller dqn --dqn-runs 2 --dqn-interval 4"
                          " --baseline-lrs 1e-3 --validate-on seen --quiet --out " +
                          tmp.file("q.hash");
  CliResult r = waypoint(tmp, run);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(tmp.file("q.hash.csv")), 61u);  // 3 runs x 20 steps + header
  EXPECT_FALSE(std::filesystem::exists(tmp.file("q.hash.ckpt")));
  EXPECT_TRUE(contains(r.out, "run dqn run 2 (kept)"));
  r = waypoint(tmp, run + " --resume");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--resume")) << r.err;
  EXPECT_EQ(lines(tmp.file("q.hash.csv")), 61u);  // refused before touching the log
}

TEST(TrainHashCli, ItqWritesPlanesLogAndPlot) {
  wp::test::TempDir tmp;
  const std::string run = "train-hash --dataset " + wp::test::data_dir() +
                          "/siftsmall --task itq --bits 64 --itq-iterations 30 --threads 2 --out " +
                          tmp.file("itq.hash");
  CliResult r = waypoint(tmp, run);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(tmp.file("itq.hash.png")));
  EXPECT_TRUE(contains(r.err, "train-hash itq: 64 bits keep")) << r.err;
  std::ifstream csv(tmp.file("itq.hash.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "iteration,quantisation_loss");
  double previous = 1e300;
  size_t rows = 0;
  while (std::getline(csv, line)) {
    const double loss = std::stod(line.substr(line.find(',') + 1));
    EXPECT_LE(loss, previous * (1 + 1e-9)) << "iteration " << rows + 1;
    previous = loss;
    ++rows;
  }
  EXPECT_EQ(rows, 30u);
  EXPECT_EQ(wp::index::HashModel::load(tmp.file("itq.hash")).bits, 64u);
  r = waypoint(tmp, run + " --resume");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "--resume")) << r.err;
}

// train-hash's options each reach the run: the class split (--train-classes), the episode shape
// (--way/--shot), the exported bits (--export-bits of --bits), the steps (--steps: a log row
// each); the neighbours task's --anchors and --neighbours make its pseudo-classes, and too few
// neighbours for an episode is refused naming the option; --itq-iterations sets ITQ's log rows
// (--itq-rows is accepted). The optimiser's options (--lr, --weight-decay, --dropout, --scale,
// --beta, --relax,
// --planes, --standardise, --patience, --max-minutes) are accepted on the same run.
TEST(TrainHashCli, TakesItsOptions) {
  wp::test::TempDir tmp;
  CliResult r = waypoint(
      tmp, "train-hash --dataset " + kDigits +
               " --task classes --train-classes 0,1,2,3,4,5 --encoder mlp --hidden 64 --embed 32"
               " --way 3 --shot 2 --queries 3 --episodes 8 --lr 2e-3 --weight-decay 1e-4"
               " --dropout 0.1 --scale 8 --planes fixed --relax ste --bits 128 --beta 0.5"
               " --standardise global --steps 6 --validate-every 3 --val-episodes 20 --patience 5"
               " --export-bits 64 --max-minutes 1 --seed 3 --threads 1 --out " +
               tmp.file("c.hash"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "542 training rows (6 classes)")) << r.err;
  EXPECT_TRUE(contains(r.err, "of 4 unseen classes; 3-way 2-shot")) << r.err;
  EXPECT_EQ(lines(tmp.file("c.hash.csv")), 7u);
  const wp::index::HashModel m = wp::index::HashModel::load(tmp.file("c.hash"));
  EXPECT_EQ(m.bits, 64u);
  EXPECT_EQ(m.input_dim, 64u);

  const std::string neighbours = "train-hash --dataset " + wp::test::data_dir() +
                                 "/siftsmall --task neighbours --anchors 500 --hidden 32"
                                 " --embed 16 --steps 2 --validate-every 1 --val-episodes 10"
                                 " --bits 32 --seed 3 --threads 1 --out " +
                                 tmp.file("n.hash");
  r = waypoint(tmp, neighbours + " --neighbours 10");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "4400 training rows (400 classes)")) << r.err;  // 4/5 of 500 x 11
  r = waypoint(tmp, neighbours + " --neighbours 5");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "neighbours must be at least 10")) << r.err;

  r = waypoint(tmp,
               "train-hash --dataset " + wp::test::data_dir() +
                   "/siftsmall --task itq --bits 32 --itq-iterations 5 --itq-rows 2000 --out " +
                   tmp.file("i.hash"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "ITQ, 32 bits, 5 iterations")) << r.out;
  EXPECT_EQ(lines(tmp.file("i.hash.csv")), 6u);
}
