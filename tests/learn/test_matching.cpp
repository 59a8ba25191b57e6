// Matching network for learned hashing: episodic training raises accuracy on a tiny seeded set
// (scored on rows of the training classes it never trained on); the exported model (embedding +
// planes) loads into LshIndex and hashes what the trainer embeds.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "index/error.h"
#include "index/lsh_index.h"
#include "learn/matching.h"
#include "learn/torch_runtime.h"
#include "test_util.h"

using namespace wp::learn;

namespace {
LabelledSet digits() {
  return load_labelled(wp::test::data_dir() + "/digits");
}
MatchingConfig small_config() {
  MatchingConfig c;
  c.hidden = {64};
  c.embed = 32;
  c.n_way = 5;
  c.k_shot = 1;
  c.queries = 5;
  c.episodes_per_step = 8;
  c.lr = 2e-3;
  c.seed = 3;
  return c;
}
/// Seeded evaluation episodes: N-way K-shot, 5 queries per class, 100 episodes.
EvalSpec episodes(int n_way, int k_shot, const std::string& code = "cosine", size_t bits = 0) {
  EvalSpec e;
  e.n_way = n_way;
  e.k_shot = k_shot;
  e.queries = 5;
  e.episodes = 100;
  e.code = code;
  e.bits = bits;
  e.seed = 11;
  return e;
}
}  // namespace

TEST(MatchingNet, LoadsLabelsAndSplitsByClass) {
  const LabelledSet all = digits();
  ASSERT_EQ(all.x.n, 1797u);
  ASSERT_EQ(all.y.size(), 1797u);
  EXPECT_EQ(all.classes(), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  const LabelledSet low = all.subset({0, 1, 2, 3, 4});
  EXPECT_EQ(low.classes(), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_GT(low.x.n, 800u);
  EXPECT_THROW(load_labelled(wp::test::data_dir() + "/siftsmall"), wp::UserError);
}

TEST(MatchingNet, EpisodicTrainingRaisesEpisodeAccuracy) {
  init_torch(2, 1);
  const LabelledSet all = digits();
  // 7 training classes (episodes pick 5 of them), trained on half of their rows and scored on the
  // other half; 3 unseen classes evaluated 3-way.
  const LabelledSet seen = all.subset({0, 1, 2, 3, 4, 5, 6}), unseen = all.subset({7, 8, 9});
  const LabelledSet train = seen.half(0), held_out = seen.half(1);
  MatchingTrainer t(train, small_config());
  const double before_seen = t.accuracy(held_out, episodes(5, 1));
  double loss0 = 0, loss1 = 0;
  for (int s = 0; s < 60; ++s) {
    const MatchingStep st = t.step();
    if (s < 10) loss0 += st.loss / 10;
    if (s >= 50) loss1 += st.loss / 10;
  }
  const double after_seen = t.accuracy(held_out, episodes(5, 1));
  std::printf("held-out rows of the training classes: %.3f -> %.3f; loss %.3f -> %.3f\n",
              before_seen, after_seen, loss0, loss1);
  EXPECT_LT(loss1, loss0);
  EXPECT_GT(after_seen, 0.95);  // measured 0.984 (0.603 before training)
  EXPECT_GT(after_seen, before_seen + 0.3) << before_seen << " -> " << after_seen;
  // Unseen classes: not asserted against the raw input (seven 8x8-digit classes are too few to
  // generalise; see docs/lsh.md); above chance (1/3) all the same: measured 0.599.
  const double after_unseen = t.accuracy(unseen, episodes(3, 1));
  EXPECT_GT(after_unseen, 0.55);
  // Sign bits of the embedding approach its cosine as they grow (same episodes).
  const double lsh8 = t.accuracy(held_out, episodes(5, 1, "simhash", 8));
  const double lsh1024 = t.accuracy(held_out, episodes(5, 1, "simhash", 1024));
  std::printf("unseen 3-way %.3f; simhash 8 bits %.3f, 1024 bits %.3f\n", after_unseen, lsh8,
              lsh1024);
  EXPECT_GT(lsh1024, lsh8 + 0.15) << lsh8 << " vs " << lsh1024;  // measured 0.761 vs 0.982
  EXPECT_NEAR(lsh1024, after_seen, 0.03);                        // measured 0.982 vs 0.984
}

TEST(MatchingNet, ExportedModelLoadsIntoLshIndexAndHashesTheEmbedding) {
  init_torch(2, 1);
  const LabelledSet all = digits();
  MatchingTrainer t(all.subset({0, 1, 2, 3, 4}), small_config());
  for (int s = 0; s < 5; ++s) t.step();
  const wp::index::HashModel m = t.export_model(128, 5);
  wp::test::TempDir tmp;
  m.save(tmp.file("digits.hash"));
  wp::index::LshIndex idx(64, wp::index::Metric::kL2, wp::index::LshParams{},
                          wp::index::HashModel::load(tmp.file("digits.hash")));
  std::vector<wp::index::label_t> ids(200);
  std::iota(ids.begin(), ids.end(), 0);
  idx.add(wp::index::MatrixView{all.x.row(0), 200, 64}, ids.data());
  // The index's bits = signs of the planes on the trainer's own embedding (standardisation folded
  // into the first layer): all but a few float-rounding ties agree.
  wp::index::Matrix first(200, 64);
  std::copy(all.x.data.begin(), all.x.data.begin() + 200 * 64, first.data.begin());
  const wp::index::Matrix e = t.embed(first);
  size_t agree = 0;
  std::vector<uint64_t> code(2);
  for (size_t i = 0; i < 200; ++i) {
    idx.get_code(i, code.data());
    for (size_t p = 0; p < 128; ++p) {
      float proj = 0;
      for (size_t j = 0; j < e.d; ++j) proj += m.planes[p * e.d + j] * e.row(i)[j];
      agree += ((code[p >> 6] >> (p & 63)) & 1) == (proj >= 0 ? 1u : 0u);
    }
  }
  EXPECT_GE(agree, 200u * 128u - 20u);
}

TEST(MatchingNet, LshAwareTrainingLearnsPlanesThatLoadIntoLshIndex) {
  init_torch(2, 1);
  const LabelledSet all = digits();
  const LabelledSet seen = all.subset({0, 1, 2, 3, 4, 5, 6});
  const LabelledSet train = seen.half(0), held_out = seen.half(1);
  for (const std::string relax : {"tanh", "sigmoid", "ste"}) {
    MatchingConfig c = small_config();
    c.score = "bits";
    c.planes = "learned";
    c.relax = relax;
    c.bits = 64;
    MatchingTrainer t(train, c);
    const double before = t.accuracy(held_out, episodes(5, 1, "planes"));
    for (int s = 0; s < 60; ++s) t.step();
    const double after = t.accuracy(held_out, episodes(5, 1, "planes"));
    std::printf("%s: held-out rows, planes %.3f -> %.3f\n", relax.c_str(), before, after);
    // Measured 0.546 -> 0.986 (tanh), 0.979 (sigmoid), 0.985 (ste).
    EXPECT_GT(after, 0.95) << relax;
    EXPECT_GT(after, before + 0.35) << relax << ": " << before << " -> " << after;
    // The exported model carries the learned planes and offsets, not random ones.
    const wp::index::HashModel m = t.export_model(999, 1);
    EXPECT_EQ(m.bits, 64u);
    EXPECT_FALSE(m.fit_offsets);
    float offsets = 0;
    for (float o : m.offsets) offsets += std::abs(o);
    EXPECT_GT(offsets, 0.0f);
    wp::index::LshIndex idx(64, wp::index::Metric::kL2, wp::index::LshParams{}, m);
    std::vector<wp::index::label_t> ids(50);
    std::iota(ids.begin(), ids.end(), 0);
    idx.add(wp::index::MatrixView{seen.x.row(0), 50, 64}, ids.data());
    // Row 0 is its own nearest neighbour through the learned codes.
    wp::index::label_t label;
    float dist;
    wp::index::SearchParams sp;
    sp.ef = 5;
    idx.search_one(seen.x.row(0), 1, sp, &label, &dist);
    EXPECT_EQ(label, 0);
  }
}

TEST(MatchingNet, OneVsRestPlanesAndEpisodeSeparators) {
  init_torch(2, 1);
  const LabelledSet all = digits();
  MatchingConfig c = small_config();
  c.score = "bits";
  c.planes = "ovr";
  c.ovr_every = 10;
  const LabelledSet seen = all.subset({0, 1, 2, 3, 4, 5, 6});
  const LabelledSet train = seen.half(0), held_out = seen.half(1);
  MatchingTrainer t(train, c);
  for (int s = 0; s < 40; ++s) t.step();
  // One plane per training class; separators fitted on the episode's supports: 10-shot beats
  // 1-shot, and both beat chance (0.2) clearly (measured 0.936 and 0.968 on held-out rows).
  EXPECT_EQ(t.export_model(1, 1).bits, 7u);
  const double one = t.accuracy(held_out, episodes(5, 1, "ovr"));
  const double ten = t.accuracy(held_out, episodes(5, 10, "ovr"));
  std::printf("ovr on held-out rows: 1-shot %.3f, 10-shot %.3f\n", one, ten);
  EXPECT_GT(one, 0.9);
  EXPECT_GT(ten, one);
  EXPECT_THROW(MatchingTrainer(seen, small_config()).accuracy(seen, episodes(5, 1, "planes")),
               wp::UserError);
}

TEST(MatchingNet, StateRestoresTheExactTrainingTrajectory) {
  init_torch(1, 1);
  const LabelledSet seen = digits().subset({0, 1, 2, 3, 4, 5});
  MatchingTrainer a(seen, small_config());
  for (int s = 0; s < 5; ++s) a.step();
  const std::string saved = a.state();
  const double next_a = a.step().loss;
  MatchingConfig other = small_config();
  other.seed = 99;  // different initial weights and sampler: restore must replace both
  MatchingTrainer b(seen, other);
  b.restore(saved);
  EXPECT_EQ(b.steps_done(), 5u);
  EXPECT_DOUBLE_EQ(b.step().loss, next_a);
  EXPECT_THROW(b.restore("not a model"), wp::UserError);
}

TEST(MatchingNet, ConvEncoderTrainsOnImages) {
  init_torch(2, 1);
  const LabelledSet seen = digits().subset({0, 1, 2, 3, 4, 5, 6});
  const LabelledSet train = seen.half(0), held_out = seen.half(1);
  MatchingConfig c = small_config();
  c.encoder = "conv";
  c.hidden = {};
  MatchingTrainer t(train, c);
  const double before = t.accuracy(held_out, episodes(5, 1));
  for (int s = 0; s < 40; ++s) t.step();
  const double after = t.accuracy(held_out, episodes(5, 1));
  std::printf("conv: held-out rows %.3f -> %.3f\n", before, after);
  EXPECT_GT(after, 0.96);                              // measured 0.994
  EXPECT_GT(after, before + 0.3);                      // measured 0.646 before training
  EXPECT_THROW(t.export_model(64, 1), wp::UserError);  // LshIndex layers are dense only
  LabelledSet odd;
  odd.x = wp::index::Matrix(10, 60);
  odd.y.assign(10, 0);
  EXPECT_THROW(MatchingTrainer(odd, c), wp::UserError);  // 60 is not a square image
}
