#include <gtest/gtest.h>

#include "index/error.h"
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
