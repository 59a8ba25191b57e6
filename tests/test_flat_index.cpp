#include <gtest/gtest.h>

#include <memory>
#include <numeric>

#include "index/distance.h"
#include "index/error.h"
#include "index/flat_index.h"
#include "test_util.h"

using namespace wp::index;

TEST(FlatIndex, MatchesGroundTruthOnSiftsmall) {
  const Dataset ds = wp::test::load_test_data("siftsmall");
  FlatIndex flat(ds.base.d, Metric::kL2);
  std::vector<label_t> ids(ds.base.n);
  std::iota(ids.begin(), ids.end(), 0);
  flat.add(view(ds.base), ids.data());
  const SearchResult r = flat.search(view(ds.query), 10);
  EXPECT_DOUBLE_EQ(recall_at_k(ds.base, ds.query, ds.groundtruth, r.labels, 10, Metric::kL2), 1.0);
  EXPECT_EQ(r.stats.distance_computations, ds.base.n * ds.query.n);
  // Distances are squared L2, nearest first.
  for (size_t j = 1; j < 10; ++j) EXPECT_LE(r.distances[j - 1], r.distances[j]);
  EXPECT_NEAR(r.distances[0], l2sqr(ds.query.row(0), ds.base.row(r.labels[0]), ds.base.d), 1e-2);
}

namespace {
/// A flat index of m's rows with ids 1000, 1001, ...
std::unique_ptr<FlatIndex> ids_from_1000(const Matrix& m, Metric metric) {
  auto flat = std::make_unique<FlatIndex>(m.d, metric);
  std::vector<label_t> ids(m.n);
  std::iota(ids.begin(), ids.end(), 1000);
  flat->add(view(m), ids.data());
  return flat;
}
}  // namespace

TEST(FlatIndex, RemoveFilterAndSaveLoad) {
  const Matrix m = wp::test::random_matrix(50, 8, 3);
  const auto index = ids_from_1000(m, Metric::kInnerProduct);
  FlatIndex& flat = *index;
  label_t out[3];
  float dist[3];
  flat.search_one(m.row(7), 1, {}, out, dist);
  const label_t best = out[0];
  EXPECT_TRUE(flat.remove(best));
  EXPECT_FALSE(flat.remove(best));
  EXPECT_FALSE(flat.contains(best));
  EXPECT_EQ(flat.size(), 49u);
  flat.search_one(m.row(7), 3, {}, out, dist);
  for (label_t l : out) EXPECT_NE(l, best);

  BitsetFilter even(2000);
  for (label_t id = 1000; id < 1050; id += 2) even.set(id);
  SearchParams p;
  p.filter = &even;
  flat.search_one(m.row(3), 3, p, out, dist);
  for (label_t l : out) EXPECT_EQ(l % 2, 0u);

  wp::test::TempDir tmp;
  flat.save(tmp.file("f.idx"));
  auto loaded = load_index(tmp.file("f.idx"));
  EXPECT_STREQ(loaded->type_name(), "flat");
  EXPECT_EQ(loaded->size(), 49u);
  label_t out2[3];
  float dist2[3];
  loaded->search_one(m.row(3), 3, p, out2, dist2);
  EXPECT_EQ(std::vector<label_t>(out, out + 3), std::vector<label_t>(out2, out2 + 3));
}

TEST(FlatIndex, AddingAnIdThatIsThereReplacesItsVector) {
  const Matrix m = wp::test::random_matrix(50, 8, 3);
  const auto index = ids_from_1000(m, Metric::kL2);
  FlatIndex& flat = *index;
  label_t out[2];
  float dist[2];
  const label_t replaced = 1003;
  flat.add(view_rows(m, 10, 1), &replaced);  // 1003 takes row 10's vector
  EXPECT_EQ(flat.size(), 50u);
  std::vector<float> got(8);
  ASSERT_TRUE(flat.get_vector(replaced, got.data()));
  EXPECT_EQ(got, std::vector<float>(m.row(10), m.row(10) + 8));
  flat.search_one(m.row(3), 1, {}, out, dist);  // row 3's old vector is gone
  EXPECT_NE(out[0], replaced);
  EXPECT_GT(dist[0], 0.0f);
  flat.search_one(m.row(10), 2, {}, out, dist);  // row 10's vector is there twice
  std::sort(out, out + 2);
  EXPECT_EQ(std::vector<label_t>(out, out + 2), (std::vector<label_t>{1003, 1010}));
  EXPECT_EQ(dist[0], 0.0f);
  EXPECT_EQ(dist[1], 0.0f);
}

TEST(FlatIndex, CosineNormalisesAndRejectsBadVectors) {
  FlatIndex flat(2, Metric::kCosine);
  const float x[4] = {10, 0, 0, 0.1f};
  const label_t ids[2] = {1, 2};
  flat.add(MatrixView{x, 2, 2}, ids);
  const float q[2] = {0, 5};
  label_t out[1];
  float dist[1];
  flat.search_one(q, 1, {}, out, dist);
  EXPECT_EQ(out[0], 2u);
  EXPECT_NEAR(dist[0], -1.0f, 1e-5);  // minus the cosine similarity
  const float bad[2] = {1, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_THROW(flat.add(MatrixView{bad, 1, 2}, ids), wp::UserError);
  EXPECT_THROW(flat.add(MatrixView{x, 1, 3}, ids), wp::UserError);
}
