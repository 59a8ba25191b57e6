#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "index/distance.h"
#include "index/error.h"
#include "index/synthetic.h"
#include "test_util.h"

using namespace wp::index;

TEST(Dataset, LoadsSharedFolders) {
  const Dataset sift = wp::test::load_test_data("siftsmall");
  EXPECT_EQ(sift.base.n, 10000u);
  EXPECT_EQ(sift.query.n, 100u);
  EXPECT_EQ(sift.metric, Metric::kL2);
  const Dataset digits = wp::test::load_test_data("digits");
  EXPECT_EQ(digits.base.n, 1697u);
  EXPECT_EQ(digits.base.d, 64u);
  EXPECT_EQ(load_dataset(wp::test::data_dir() + "/digits", 10).query.n, 10u);
}

TEST(Dataset, RecallIsTieAware) {
  // digits has ties at the 10th neighbour: the exact answer of another tie-breaking rule must
  // still score 1.0, and ids that are really farther must not.
  const Dataset ds = wp::test::load_test_data("digits");
  const IntMatrix ours = exact_knn(ds.base, ds.query, 10, Metric::kL2);
  std::vector<label_t> ids(ours.data.begin(), ours.data.end());
  EXPECT_DOUBLE_EQ(recall_at_k(ds.base, ds.query, ds.groundtruth, ids, 10, Metric::kL2), 1.0);
  // Replace every 10th answer by the 100th true neighbour: 0.9 unless tied.
  for (size_t i = 0; i < ds.query.n; ++i) ids[i * 10 + 9] = ds.groundtruth.row(i)[99];
  const double r = recall_at_k(ds.base, ds.query, ds.groundtruth, ids, 10, Metric::kL2);
  EXPECT_GE(r, 0.9);
  EXPECT_LT(r, 0.92);
  std::vector<label_t> none(ds.query.n * 10, kNoLabel);
  EXPECT_EQ(recall_at_k(ds.base, ds.query, ds.groundtruth, none, 10, Metric::kL2), 0.0);
}

TEST(Dataset, MissingPiecesAreNamed) {
  wp::test::TempDir tmp;
  try {
    load_dataset(tmp.file(""));
    FAIL();
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("base.fvecs"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_dataset(tmp.file("nope")), wp::UserError);
}

// The held-out split of the RL comparison (docs/rl.md): base rows become queries never in the
// base, the ground truth is exact over what is left, and the same seed draws the same split.
TEST(Dataset, HoldOutMakesBaseRowsQueriesWithExactGroundTruth) {
  const Dataset ds = wp::test::load_test_data("digits");
  const Dataset h = hold_out(ds, 300, 7);
  ASSERT_EQ(h.query.n, 300u);
  ASSERT_EQ(h.base.n, ds.base.n - 300);
  EXPECT_EQ(h.groundtruth.n, 300u);
  EXPECT_EQ(h.groundtruth.d, 100u);
  // Every row of the old base is a query or a base row of the split, once.
  std::multiset<std::vector<float>> before, after;
  for (size_t i = 0; i < ds.base.n; ++i) before.emplace(ds.base.row(i), ds.base.row(i) + 64);
  for (const Matrix* m : {&h.base, &h.query}) {
    for (size_t i = 0; i < m->n; ++i) after.emplace(m->row(i), m->row(i) + 64);
  }
  EXPECT_EQ(before, after);
  // The ground truth is the nearest of the new base, checked by a scan here: the 10th true
  // distance bounds every other base row (ties allowed).
  for (size_t q = 0; q < 300; q += 37) {
    std::vector<float> dist;
    for (size_t i = 0; i < h.base.n; ++i) {
      dist.push_back(reported_distance(Metric::kL2, h.query.row(q), h.base.row(i), 64));
    }
    std::vector<float> sorted = dist;
    std::sort(sorted.begin(), sorted.end());
    for (size_t j = 0; j < 10; ++j) {
      EXPECT_NEAR(dist[h.groundtruth.row(q)[j]], sorted[j], 1e-3) << "query " << q << " rank " << j;
    }
  }
  // Labels follow their rows; the split is the seed's.
  ASSERT_EQ(h.labels.n, h.base.n);
  for (size_t i = 0; i < h.base.n; i += 101) {
    for (size_t r = 0; r < ds.base.n; ++r) {
      if (std::equal(h.base.row(i), h.base.row(i) + 64, ds.base.row(r))) {
        EXPECT_EQ(h.labels.row(i)[0], ds.labels.row(r)[0]) << "base row " << i;
        break;
      }
    }
  }
  EXPECT_EQ(hold_out(ds, 300, 7).query.data, h.query.data);
  EXPECT_NE(hold_out(ds, 300, 8).query.data, h.query.data);
  EXPECT_THROW(hold_out(ds, ds.base.n, 7), wp::UserError);
  // recall_per_query averages to recall_at_k.
  const IntMatrix found = exact_knn(h.base, h.query, 10, Metric::kL2);
  std::vector<label_t> ids(found.data.begin(), found.data.end());
  for (size_t q = 0; q < 300; q += 3) ids[q * 10] = kNoLabel;  // a miss in every third query
  const std::vector<double> per =
      recall_per_query(h.base, h.query, h.groundtruth, ids, 10, Metric::kL2);
  EXPECT_DOUBLE_EQ(per[0], 0.9);
  EXPECT_DOUBLE_EQ(per[1], 1.0);
  double sum = 0;
  for (const double r : per) sum += r;
  EXPECT_DOUBLE_EQ(sum / 300, recall_at_k(h.base, h.query, h.groundtruth, ids, 10, Metric::kL2));
}

// `waypoint synth`'s generator: row i depends on (spec, i) only, so any split of the rows, at any
// thread count, gives the same data; the rows cluster (a point's nearest neighbour is far nearer
// than a random point), and bad values are named.
TEST(Synthetic, RowsAreAFunctionOfTheirIndexAndCluster) {
  using namespace wp::index;
  SyntheticSpec spec;
  spec.d = 32;
  spec.clusters = 10;
  spec.local_dim = 4;
  const Matrix all = synthetic_rows(spec, 0, 600);
  const Matrix head = synthetic_rows(spec, 0, 250), tail = synthetic_rows(spec, 250, 350);
  ASSERT_EQ(all.n, 600u);
  ASSERT_EQ(all.d, 32u);
  EXPECT_TRUE(std::equal(head.data.begin(), head.data.end(), all.data.begin()));
  EXPECT_TRUE(std::equal(tail.data.begin(), tail.data.end(), all.data.begin() + 250 * 32));
  SyntheticSpec other = spec;
  other.seed = 2;
  EXPECT_NE(synthetic_rows(other, 0, 600).data, all.data);
  double nearest = 0, random = 0;
  for (size_t i = 0; i < all.n; ++i) {
    float best = std::numeric_limits<float>::max();
    for (size_t j = 0; j < all.n; ++j) {
      if (j != i) best = std::min(best, l2sqr(all.row(i), all.row(j), all.d));
    }
    nearest += std::sqrt(best);
    random += std::sqrt(l2sqr(all.row(i), all.row((i * 7919 + 13) % all.n), all.d));
  }
  std::printf("nearest / random distance: %.3f\n", nearest / random);
  // Measured: 0.127 (a Gaussian cloud of the full dimension, 600 x 32, gives 0.57).
  EXPECT_LT(nearest / random, 0.3);
  spec.local_dim = 33;
  try {
    synthetic_rows(spec, 0, 1);
    ADD_FAILURE() << "local_dim > d accepted";
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("local-dim"), std::string::npos) << e.what();
  }
}
