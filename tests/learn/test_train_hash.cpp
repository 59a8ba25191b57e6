// `waypoint train-hash` as a job: files written, validation keeps the best step, checkpoint and
// resume continue the same run, the study table has every row, the DQN controller runs its runs,
// and the neighbours task writes planes that LshIndex loads.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "index/error.h"
#include "index/lsh_index.h"
#include "learn/train_hash.h"
#include "test_util.h"

using namespace wp::learn;

namespace {
TrainHashOptions small(const std::string& out) {
  TrainHashOptions o;
  o.dataset = wp::test::data_dir() + "/digits";
  o.out = out;
  o.cfg.hidden = {32};
  o.cfg.embed = 16;
  o.cfg.episodes_per_step = 4;
  o.cfg.seed = 5;
  o.steps = 20;
  o.validate_every = 5;
  o.val_episodes = 40;
  o.quiet = true;
  o.threads = 2;
  return o;
}
size_t lines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  std::string l;
  while (std::getline(in, l)) ++n;
  return n;
}
}  // namespace

TEST(TrainHash, WritesTheModelLogPlotAndResumes) {
  wp::test::TempDir tmp;
  TrainHashOptions o = small(tmp.file("d.hash"));
  o.steps = 10;
  const TrainHashResult first = train_hash(o);
  EXPECT_EQ(first.steps_run, 10u);
  EXPECT_EQ(first.train_classes, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(first.unseen_classes, (std::vector<int>{5, 6, 7, 8, 9}));
  EXPECT_GT(first.best_val_accuracy, 0.2);  // above 5-way chance
  for (const char* f : {"d.hash", "d.hash.pt", "d.hash.csv", "d.hash.png", "d.hash.ckpt"}) {
    EXPECT_TRUE(std::filesystem::exists(tmp.file(f))) << f;
  }
  EXPECT_EQ(lines(tmp.file("d.hash.csv")), 11u);  // header + a row per step
  const wp::index::HashModel m = wp::index::HashModel::load(tmp.file("d.hash"));
  EXPECT_EQ(m.input_dim, 64u);
  EXPECT_EQ(m.bits, 256u);
  // Resume continues at step 10 and appends to the same log.
  o.steps = 20;
  o.resume = true;
  const TrainHashResult second = train_hash(o);
  EXPECT_EQ(second.steps_run, 20u);
  EXPECT_EQ(lines(tmp.file("d.hash.csv")), 21u);
  EXPECT_GE(second.best_val_accuracy, first.best_val_accuracy);
}

TEST(TrainHash, StudyTableHasEveryCodeAndMoreBitsApproachCosine) {
  wp::test::TempDir tmp;
  TrainHashOptions o = small(tmp.file("s.hash"));
  o.cfg.score = "bits";
  o.cfg.bits = 32;
  o.study = true;
  o.study_bits = {16, 1024};
  o.study_episodes = 150;
  const TrainHashResult r = train_hash(o);
  // input cosine, 2 x input simhash, embedding cosine, 2 x embedding simhash, planes, ovr.
  ASSERT_EQ(r.study.size(), 8u);
  EXPECT_TRUE(std::filesystem::exists(tmp.file("s.hash.study.md")));
  // On the raw digits, 1024 sign bits come within a few points of cosine and beat 16.
  EXPECT_GT(r.study[2].ten_shot, r.study[1].ten_shot);
  EXPECT_NEAR(r.study[2].ten_shot, r.study[0].ten_shot, 0.06);
  EXPECT_NE(study_table(r.study).find("learned planes (32 bits)"), std::string::npos);
}

TEST(TrainHash, DqnControllerRunsItsRunsBesideTheBaselines) {
  wp::test::TempDir tmp;
  TrainHashOptions o = small(tmp.file("q.hash"));
  o.controller = "dqn";
  o.dqn.runs = 2;
  o.dqn.interval = 4;
  o.baseline_lrs = {1e-3};
  o.validate_on = "seen";
  const TrainHashResult r = train_hash(o);
  ASSERT_EQ(r.runs.size(), 3u);
  EXPECT_EQ(r.runs[1].name, "dqn run 2 (kept)");
  EXPECT_EQ(r.runs[2].name, "lr 0.001");
  EXPECT_EQ(lines(tmp.file("q.hash.csv")), 61u);  // 3 runs x 20 steps + header
  o.resume = true;
  EXPECT_THROW(train_hash(o), wp::UserError);
}

TEST(TrainHash, NeighboursTaskWritesPlanesForRetrieval) {
  wp::test::TempDir tmp;
  TrainHashOptions o = small(tmp.file("n.hash"));
  o.task = "neighbours";
  o.anchors = 200;
  o.cfg.score = "bits";
  o.cfg.bits = 64;
  o.cfg.hidden = {};
  o.cfg.n_way = 8;
  o.cfg.queries = 1;
  const TrainHashResult r = train_hash(o);
  EXPECT_EQ(r.train_classes.size(), 160u);  // 80% of the anchors' neighbourhoods
  EXPECT_GT(r.best_val_accuracy, 0.5);      // 8-way chance is 0.125
  const wp::index::HashModel m = wp::index::HashModel::load(tmp.file("n.hash"));
  EXPECT_EQ(m.bits, 64u);
  EXPECT_EQ(m.layers.size(), 1u);  // one linear layer, then the planes
}

TEST(TrainHash, RejectsBadOptions) {
  wp::test::TempDir tmp;
  TrainHashOptions o = small(tmp.file("x.hash"));
  o.train_classes = {0, 1, 2, 3, 4, 42};
  EXPECT_THROW(train_hash(o), wp::UserError);
  o = small(tmp.file("x.hash"));
  o.train_classes = {0, 1};  // 5-way episodes need 5 training classes
  EXPECT_THROW(train_hash(o), wp::UserError);
  o = small(tmp.file("x.hash"));
  o.cfg.relax = "cubic";
  EXPECT_THROW(train_hash(o), wp::UserError);
  o = small(tmp.file("x.hash"));
  o.dataset = wp::test::data_dir() + "/siftsmall";  // no labels
  EXPECT_THROW(train_hash(o), wp::UserError);
}

// ITQ planes for retrieval: the quantisation loss never rises, and at 64 bits on SIFT10K they
// find more true neighbours among the same number of re-ranked candidates than random planes
// (measured 0.81 against 0.67 at 100 candidates).
TEST(TrainHash, ItqPlanesBeatRandomPlanesAtEqualBitsAndCandidates) {
  wp::test::TempDir tmp;
  TrainHashOptions o = small(tmp.file("itq.hash"));
  o.dataset = wp::test::data_dir() + "/siftsmall";
  o.task = "itq";
  o.itq.bits = 64;
  o.itq.iterations = 30;
  const TrainHashResult r = train_hash(o);
  EXPECT_EQ(r.steps_run, 30u);
  std::ifstream csv(tmp.file("itq.hash.csv"));
  std::string line;
  std::getline(csv, line);
  double previous = 1e300;
  size_t rows = 0;
  while (std::getline(csv, line)) {
    const double loss = std::stod(line.substr(line.find(',') + 1));
    EXPECT_LE(loss, previous * (1 + 1e-9)) << "iteration " << rows + 1;
    previous = loss;
    ++rows;
  }
  EXPECT_EQ(rows, 30u);

  const wp::index::Dataset ds = wp::test::load_test_data("siftsmall");
  wp::index::LshParams p;
  p.bits = 64;
  const auto recall = [&](wp::index::HashModel model) {
    wp::index::LshIndex idx(ds.base.d, wp::index::Metric::kL2, p, std::move(model));
    std::vector<wp::index::label_t> ids(ds.base.n);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = i;
    idx.add(wp::index::view(ds.base), ids.data());
    wp::index::SearchParams sp;
    sp.ef = 100;
    const wp::index::SearchResult res = idx.search(wp::index::view(ds.query), 10, sp);
    return wp::index::recall_at_k(ds.base, ds.query, ds.groundtruth, res.labels, 10,
                                  wp::index::Metric::kL2);
  };
  const double itq = recall(wp::index::HashModel::load(tmp.file("itq.hash")));
  const double random = recall(wp::index::HashModel::random(ds.base.d, 64, 1));
  EXPECT_GT(itq, random + 0.05) << "itq " << itq << ", random " << random;

  o.itq.bits = 129;  // more bits than SIFT's 128 dimensions
  EXPECT_THROW(train_hash(o), wp::UserError);
  o.itq.bits = 64;
  o.resume = true;
  EXPECT_THROW(train_hash(o), wp::UserError);
}
