#include <gtest/gtest.h>

#include <dlfcn.h>
#include <omp.h>
#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>

#include <xxhash.h>

#include "index/error.h"
#include "index/filter_cost.h"
#include "index/flat_index.h"
#include "index/hnsw_index.h"
#include "index/hnsw_search.h"
#include "index/omp_team.h"
#include "index/sorted_beam.h"
#include "test_util.h"

using namespace wp::index;

namespace {
/// Two OpenMP threads, in every build: the sanitizer builds use clang's libomp, which runs the
/// pragmas (clang compiles none for libgomp) and under TSan tells it of its barriers (Archer,
/// scripts/test.sh).
void use_two_openmp_threads() {
  omp_set_num_threads(2);
}

std::unique_ptr<HnswIndex> build(const Matrix& base, Metric metric = Metric::kL2,
                                 HnswParams p = {}) {
  auto idx = std::make_unique<HnswIndex>(base.d, metric, p);
  std::vector<label_t> ids(base.n);
  std::iota(ids.begin(), ids.end(), 0);
  idx->add(view(base), ids.data());
  return idx;
}

double recall_vs(const SearchResult& got, const SearchResult& truth) {
  size_t hits = 0, total = 0;
  for (size_t i = 0; i < got.n; ++i) {
    const auto b = truth.labels.begin() + i * truth.k;
    for (size_t j = 0; j < got.k; ++j) {
      if (truth.labels[i * truth.k + j] != kNoLabel) ++total;
      if (got.labels[i * got.k + j] != kNoLabel &&
          std::find(b, b + truth.k, got.labels[i * got.k + j]) != b + truth.k) {
        ++hits;
      }
    }
  }
  return total ? static_cast<double>(hits) / total : 1.0;
}
}  // namespace

TEST(HnswIndex, RecallFloorOnSiftsmall) {
  const Dataset ds = wp::test::load_test_data("siftsmall");
  auto idx = build(ds.base);
  EXPECT_EQ(idx->size(), ds.base.n);
  SearchParams p;
  p.ef = 64;
  const SearchResult r = idx->search(view(ds.query), 10, p);
  const double r64 = recall_at_k(ds.base, ds.query, ds.groundtruth, r.labels, 10, Metric::kL2);
  std::printf("recall@10 at ef 64: %.3f\n", r64);
  EXPECT_GE(r64, 0.98);  // measured 0.996-0.997
  // Far fewer distance computations than an exact scan, and every search counts its work.
  const double dcs = static_cast<double>(r.stats.distance_computations) / ds.query.n;
  EXPECT_GT(dcs, 64);
  EXPECT_LT(dcs, 0.2 * ds.base.n);
  EXPECT_GT(r.stats.hops, 0u);
  p.ef = 16;
  const SearchResult lo = idx->search(view(ds.query), 10, p);
  const double r16 = recall_at_k(ds.base, ds.query, ds.groundtruth, lo.labels, 10, Metric::kL2);
  std::printf("recall@10 at ef 16: %.3f\n", r16);
  EXPECT_GE(r16, 0.94);  // measured 0.965-0.970
  EXPECT_LT(lo.stats.distance_computations, r.stats.distance_computations);
}

TEST(HnswIndex, TieAwareRecallFloorOnDigits) {
  const Dataset ds = wp::test::load_test_data("digits");
  auto idx = build(ds.base, Metric::kL2, HnswParams{8, 100, 64, 7, 0.1});
  SearchParams p;
  p.ef = 48;
  const SearchResult r = idx->search(view(ds.query), 10, p);
  EXPECT_GE(recall_at_k(ds.base, ds.query, ds.groundtruth, r.labels, 10, Metric::kL2), 0.97);
}

TEST(HnswIndex, InnerProductAndCosineAgreeWithExactSearch) {
  const Matrix base = wp::test::random_matrix(3000, 24, 11);
  const Matrix q = wp::test::random_matrix(50, 24, 12);
  for (Metric m : {Metric::kInnerProduct, Metric::kCosine}) {
    auto idx = build(base, m);
    FlatIndex flat(base.d, m);
    std::vector<label_t> ids(base.n);
    std::iota(ids.begin(), ids.end(), 0);
    flat.add(view(base), ids.data());
    SearchParams p;
    p.ef = 128;
    const SearchResult got = idx->search(view(q), 10, p);
    const SearchResult truth = flat.search(view(q), 10);
    EXPECT_GE(recall_vs(got, truth), 0.9) << metric_name(m);
    // Distances are minus the similarity and come nearest first.
    for (size_t j = 1; j < 10; ++j) EXPECT_LE(got.distances[j - 1], got.distances[j]);
  }
}

TEST(HnswIndex, ParallelBatchSearchEqualsOneByOne) {
  const Dataset ds = wp::test::load_test_data("siftsmall");
  auto idx = build(ds.base);
  const SearchResult batch = idx->search(view(ds.query), 10);
  for (size_t i = 0; i < ds.query.n; ++i) {
    label_t l[10];
    float d[10];
    idx->search_one(ds.query.row(i), 10, {}, l, d);
    EXPECT_EQ(
        std::vector<label_t>(l, l + 10),
        std::vector<label_t>(batch.labels.begin() + i * 10, batch.labels.begin() + i * 10 + 10));
  }
}

TEST(HnswIndex, SaveLoadRoundTripGivesIdenticalResults) {
  const Dataset ds = wp::test::load_test_data("siftsmall");
  auto idx = build(ds.base);
  for (label_t id = 0; id < 200; id += 3) idx->remove(id);  // tombstones survive the round trip
  wp::test::TempDir tmp;
  idx->save(tmp.file("h.idx"));
  auto loaded = load_index(tmp.file("h.idx"));
  EXPECT_STREQ(loaded->type_name(), "hnsw");
  EXPECT_EQ(loaded->size(), idx->size());
  EXPECT_FALSE(loaded->contains(0));
  EXPECT_TRUE(loaded->contains(1));
  const SearchResult a = idx->search(view(ds.query), 10);
  const SearchResult b = loaded->search(view(ds.query), 10);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.distances, b.distances);
  EXPECT_EQ(a.stats.distance_computations, b.stats.distance_computations);
  // The loaded index still takes inserts.
  const label_t id = 123456;
  loaded->add(view_rows(ds.query, 0, 1), &id);
  label_t out[1];
  float dist[1];
  loaded->search_one(ds.query.row(0), 1, {}, out, dist);
  EXPECT_EQ(out[0], id);
}

TEST(HnswIndex, CorruptOrTruncatedFilesAreRejected) {
  const Dataset ds = wp::test::load_test_data("digits");
  auto idx = build(ds.base);
  wp::test::TempDir tmp;
  idx->save(tmp.file("h.idx"));
  const size_t size = std::filesystem::file_size(tmp.file("h.idx"));
  std::mt19937 rng(5);
  for (int trial = 0; trial < 20; ++trial) {
    std::filesystem::copy_file(tmp.file("h.idx"), tmp.file("c.idx"),
                               std::filesystem::copy_options::overwrite_existing);
    const size_t off = rng() % size;
    std::fstream f(tmp.file("c.idx"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(off);
    char c;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x21);
    f.seekp(off);
    f.write(&c, 1);
    f.close();
    EXPECT_THROW(load_index(tmp.file("c.idx")), wp::UserError) << "offset " << off;
  }
  std::filesystem::copy_file(tmp.file("h.idx"), tmp.file("t.idx"));
  std::filesystem::resize_file(tmp.file("t.idx"), size / 2);
  EXPECT_THROW(load_index(tmp.file("t.idx")), wp::UserError);
}

// A file whose records hold one label twice is refused (the label table is loaded in bulk and
// compares the labels it places): the label of one record rewritten to another's, the checksum
// made right again.
TEST(HnswIndex, AFileHoldingALabelTwiceIsRefused) {
  const Matrix x = wp::test::random_matrix(500, 8, 3);
  auto idx = build(x);
  wp::test::TempDir tmp;
  idx->save(tmp.file("h.idx"));
  EXPECT_EQ(load_index(tmp.file("h.idx"))->size(), 500u);
  std::string file = wp::test::read_file(tmp.file("h.idx"));
  // Record of label 321: its vector, then its label (8 bytes).
  std::string record(reinterpret_cast<const char*>(x.row(321)), 8 * sizeof(float));
  uint64_t label = 321;
  record.append(reinterpret_cast<const char*>(&label), sizeof label);
  const size_t at = file.find(record);
  ASSERT_NE(at, std::string::npos);
  label = 42;
  std::memcpy(&file[at + 8 * sizeof(float)], &label, sizeof label);
  const uint64_t sum = XXH3_64bits(file.data() + 32, file.size() - 32);
  std::memcpy(&file[24], &sum, sizeof sum);
  std::ofstream(tmp.file("twice.idx"), std::ios::binary) << file;
  try {
    load_index(tmp.file("twice.idx"));
    FAIL() << "a file holding label 42 twice loaded";
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("duplicate id"), std::string::npos) << e.what();
  }
}

TEST(HnswIndex, InvalidParametersAreRejectedWithClearMessages) {
  auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const wp::UserError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { HnswIndex(8, Metric::kL2, HnswParams{1}); }).find("M must be in 2..1024"),
            std::string::npos);
  EXPECT_NE(message([] { HnswIndex(0, Metric::kL2); }).find("dimension"), std::string::npos);
  HnswParams bad_ef;
  bad_ef.ef_construction = 0;
  EXPECT_NE(message([&] { HnswIndex(8, Metric::kL2, bad_ef); }).find("ef_construction"),
            std::string::npos);

  HnswIndex idx(4, Metric::kL2);
  const float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const label_t ids[2] = {1, 2};
  EXPECT_NE(message([&] {
              idx.add(MatrixView{v, 2, 3}, ids);
            }).find("dimension 3"),
            std::string::npos);
  float nan_v[8] = {1, 2, 3, 4, 5, 6, std::numeric_limits<float>::quiet_NaN(), 8};
  EXPECT_NE(message([&] { idx.add(MatrixView{nan_v, 2, 4}, ids); }).find("[1]"), std::string::npos);
  EXPECT_EQ(idx.size(), 0u);  // nothing of the bad batch was added
  idx.add(MatrixView{v, 2, 4}, ids);
  EXPECT_NE(message([&] {
              idx.search(MatrixView{v, 1, 4}, 0);
            }).find("k must be"),
            std::string::npos);
  label_t out[1];
  float d[1];
  EXPECT_THROW(idx.search_one(v, 0, {}, out, d), wp::UserError);
  EXPECT_THROW(idx.search(MatrixView{v, 1, 4}, kMaxK + 1), wp::UserError);
  EXPECT_THROW(idx.search(MatrixView{nan_v + 4, 1, 4}, 1), wp::UserError);
  HnswIndex cos(2, Metric::kCosine);
  const float zero[2] = {0, 0};
  EXPECT_THROW(cos.add(MatrixView{zero, 1, 2}, ids), wp::UserError);
}

TEST(HnswIndex, EmptyIndexAndSmallK) {
  HnswIndex idx(3, Metric::kL2);
  const float q[3] = {0, 0, 0};
  label_t out[5];
  float d[5];
  idx.search_one(q, 5, {}, out, d);
  for (label_t l : out) EXPECT_EQ(l, kNoLabel);
  const float v[6] = {1, 0, 0, 0, 1, 0};
  const label_t ids[2] = {7, 9};
  idx.add(MatrixView{v, 2, 3}, ids);
  idx.search_one(q, 5, {}, out, d);
  EXPECT_EQ(std::count(out, out + 5, kNoLabel), 3);
  EXPECT_TRUE(out[0] == 7 || out[0] == 9);
}

// A bitset made from sorted ids holds the same set and count as one set id by id, ids at or
// past the capacity left out.
TEST(BitsetFilter, MadeFromSortedIdsAsIfSetOneByOne) {
  std::mt19937 rng(3);
  for (uint32_t capacity : {1u, 63u, 64u, 65u, 1000u, 4096u}) {
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < capacity + 100; ++i) {
      if (rng() % 3 == 0) ids.push_back(i);
    }
    BitsetFilter one(capacity);
    for (uint32_t id : ids) one.set(id);
    const BitsetFilter sorted(capacity, ids.data(), ids.size());
    EXPECT_EQ(sorted.count(), one.count()) << capacity;
    for (uint32_t i = 0; i < capacity + 100; ++i) {
      ASSERT_EQ(sorted.contains(i), one.contains(i)) << capacity << " " << i;
    }
  }
}

class FilteredSearch : public ::testing::TestWithParam<double> {};

TEST_P(FilteredSearch, ReturnsOnlyMatchesAndKOfThem) {
  const double selectivity = GetParam();
  static const Dataset ds = wp::test::load_test_data("siftsmall");
  static const std::unique_ptr<HnswIndex> idx = build(ds.base);
  std::mt19937_64 rng(static_cast<uint64_t>(selectivity * 1000));
  BitsetFilter bits(ds.base.n);
  std::vector<label_t> allowed;
  for (label_t id = 0; id < ds.base.n; ++id) {
    if (std::uniform_real_distribution<double>(0, 1)(rng) < selectivity) {
      bits.set(id);
      allowed.push_back(id);
    }
  }
  ASSERT_GE(allowed.size(), 10u);
  // Exact answer: flat search over the allowed points only.
  FlatIndex flat(ds.base.d, Metric::kL2);
  for (label_t id : allowed) flat.add(view_rows(ds.base, id, 1), &id);
  const SearchResult truth = flat.search(view(ds.query), 10);

  SearchParams p;
  p.ef = 64;
  p.filter = &bits;
  const SearchResult got = idx->search(view(ds.query), 10, p);
  for (label_t l : got.labels) {
    ASSERT_NE(l, kNoLabel) << "fewer than k results at selectivity " << selectivity;
    ASSERT_TRUE(bits.contains(l));
  }
  EXPECT_GE(recall_vs(got, truth), 0.95) << "selectivity " << selectivity;

  // The same filter as an opaque predicate (count unknown): still only matches, still k.
  PredicateFilter pred([&](uint64_t id) { return bits.contains(id); });
  p.filter = &pred;
  const SearchResult got2 = idx->search(view(ds.query), 10, p);
  for (label_t l : got2.labels) {
    ASSERT_NE(l, kNoLabel);
    ASSERT_TRUE(bits.contains(l));
  }
  EXPECT_GE(recall_vs(got2, truth), 0.9) << "selectivity " << selectivity;
}

INSTANTIATE_TEST_SUITE_P(Selectivity, FilteredSearch, ::testing::Values(0.01, 0.1, 0.5));

TEST(HnswIndex, FilterMatchingFewerThanKReturnsAllOfThem) {
  const Dataset ds = wp::test::load_test_data("digits");
  auto idx = build(ds.base);
  BitsetFilter bits(ds.base.n);
  bits.set(5);
  bits.set(900);
  bits.set(1500);
  SearchParams p;
  p.filter = &bits;
  label_t out[10];
  float d[10];
  idx->search_one(ds.query.row(0), 10, p, out, d);
  std::vector<label_t> got(out, out + 3);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<label_t>{5, 900, 1500}));
  EXPECT_EQ(std::count(out, out + 10, kNoLabel), 7);
}

namespace {
/// A filter whose test is costly (as a payload's) and whose matches are estimated, counting the
/// tests the index makes.
class CostlyFilter : public IdFilter {
 public:
  CostlyFilter(std::function<bool(uint64_t)> pred, int64_t estimate)
      : pred_(std::move(pred)), estimate_(estimate) {}
  bool contains(uint64_t id) const override {
    ++tests;
    return pred_(id);
  }
  int64_t estimate() const override { return estimate_; }
  bool costly() const override { return true; }
  mutable size_t tests = 0;

 private:
  std::function<bool(uint64_t)> pred_;
  int64_t estimate_;
};
}  // namespace

// A costly test that many ids pass is made only of the vertices the walk reaches; one that few
// are estimated to pass is made of every vertex by a scan; and a walk that finds fewer than k
// (the estimate was wrong) falls back to the scan. Each answers as the exact filtered search.
TEST(HnswIndex, ACostlyFilterIsTestedAlongTheWalkWhereManyIdsPass) {
  static const Dataset ds = wp::test::load_test_data("siftsmall");
  static const std::unique_ptr<HnswIndex> idx = build(ds.base);
  const size_t n = ds.base.n;
  auto exact = [&](const IdFilter& f, size_t q) {
    SearchParams p;
    p.exact = true;
    p.filter = &f;
    std::vector<label_t> out(10);
    std::vector<float> d(10);
    idx->search_one(ds.query.row(q), 10, p, out.data(), d.data());
    return out;
  };
  auto search = [&](const IdFilter& f, size_t q) {
    SearchParams p;
    p.ef = 64;
    p.filter = &f;
    std::vector<label_t> out(10);
    std::vector<float> d(10);
    idx->search_one(ds.query.row(q), 10, p, out.data(), d.data());
    return out;
  };
  auto even = [](uint64_t id) { return id % 2 == 0; };
  size_t hits = 0, total = 0;
  for (size_t q = 0; q < 20; ++q) {
    CostlyFilter walked(even, static_cast<int64_t>(n / 2));
    const std::vector<label_t> got = search(walked, q);
    EXPECT_LT(walked.tests, n / 10) << "query " << q;  // the walk's few hundred, not a scan
    CostlyFilter listed(even, static_cast<int64_t>(n / 2));
    const std::vector<label_t> truth = exact(listed, q);
    for (label_t l : got) {
      ASSERT_NE(l, kNoLabel);
      ASSERT_TRUE(even(l));
      hits += std::count(truth.begin(), truth.end(), l);
    }
    total += truth.size();
  }
  EXPECT_GE(static_cast<double>(hits) / total, 0.95);

  // One in ten: a walk reaches about ef / 10% = 640 vertices before it has ef matches, where a
  // cheap test would be made by a scan of the matches (1,000 distances).
  auto tenth = [](uint64_t id) { return id % 10 == 0; };
  CostlyFilter tenths(tenth, static_cast<int64_t>(n / 10));
  const std::vector<label_t> some = search(tenths, 1);
  EXPECT_LT(tenths.tests, n / 3);
  for (label_t l : some) ASSERT_TRUE(l != kNoLabel && tenth(l));

  // Estimated to be rare (10 of 10,000): the scan tests every vertex once.
  auto rare = [](uint64_t id) { return id % 500 == 7; };
  CostlyFilter scanned(rare, 10);
  const std::vector<label_t> got = search(scanned, 0);
  EXPECT_EQ(scanned.tests, n);
  CostlyFilter listed(rare, 10);
  EXPECT_EQ(got, exact(listed, 0));

  // Estimated at half but 5 pass: the walk finds fewer than k and the scan finds all 5.
  auto five = [](uint64_t id) { return id % 2000 == 3; };
  CostlyFilter wrong(five, static_cast<int64_t>(n / 2));
  std::vector<label_t> all5 = search(wrong, 0);
  EXPECT_GE(wrong.tests, n);
  EXPECT_EQ(std::count(all5.begin(), all5.end(), kNoLabel), 5);
  all5.resize(5);
  std::sort(all5.begin(), all5.end());
  EXPECT_EQ(all5, (std::vector<label_t>{3, 2003, 4003, 6003, 8003}));
}

// The exact scan of a filter that lists its ids looks them up in batches, reading each record a
// few ids ahead: every match is measured once, across the batches' edges (256 ids a batch), as a
// plain loop over the vectors finds them.
TEST(HnswIndex, AnExactScanOfListedIdsAnswersAsALoopOverTheVectors) {
  static const Dataset ds = wp::test::load_test_data("siftsmall");
  static const std::unique_ptr<HnswIndex> idx = build(ds.base);
  const size_t d = ds.base.d;
  for (const size_t matches : {1, 255, 256, 257, 513, 2000}) {
    std::vector<uint32_t> ids;  // every fifth id, then the rest of the first ones
    for (uint32_t i = 0; ids.size() < matches; i += 5) ids.push_back(i);
    const BitsetFilter listed(ds.base.n, ids.data(), ids.size());
    ASSERT_EQ(listed.count(), static_cast<int64_t>(matches));
    for (size_t q = 0; q < 5; ++q) {
      const float* query = ds.query.row(q);
      std::vector<std::pair<float, label_t>> all;
      for (const uint32_t i : ids) {
        all.push_back({static_cast<float>(wp::test::l2(query, ds.base.row(i), d)), i});
      }
      std::sort(all.begin(), all.end());
      SearchParams p;
      p.exact = true;
      p.filter = &listed;
      std::vector<label_t> got(10);
      std::vector<float> dist(10);
      const SearchStats st = idx->search_one(query, 10, p, got.data(), dist.data());
      EXPECT_EQ(st.distance_computations, matches) << matches << " matches";
      for (size_t j = 0; j < 10; ++j) {
        if (j >= all.size()) {
          EXPECT_EQ(got[j], kNoLabel);
          continue;
        }
        // SIFT's integer components can tie: the same distance at each rank, each answer a
        // listed id at its own distance.
        ASSERT_TRUE(listed.contains(got[j])) << matches << " matches, query " << q;
        EXPECT_NEAR(dist[j], all[j].first, 1e-3f * std::max(1.0f, all[j].first))
            << matches << " matches, query " << q << ", rank " << j;
        EXPECT_NEAR(dist[j], wp::test::l2(query, ds.base.row(got[j]), d),
                    1e-3f * std::max(1.0f, dist[j]));
      }
      std::vector<label_t> unique(got.begin(), got.begin() + std::min<size_t>(10, matches));
      std::sort(unique.begin(), unique.end());
      EXPECT_EQ(std::unique(unique.begin(), unique.end()), unique.end());
    }
  }
}

namespace {
/// The shape of a filtered search (ef 64) of an index as `build` makes it (M 16: a level-0
/// record of a count, 32 links, the vector and the id; the 8-bit code beside it for sq8), with
/// `matching` of its `n` points estimated to pass.
FilteredSearchShape shape_of(double n, double matching, size_t dim, bool sq8 = false) {
  FilteredSearchShape s;
  s.live = n;
  s.matching = matching;
  s.ef = 64;
  s.scan_bytes = dim * sizeof(float);
  s.walk_bytes = sq8 ? dim : s.scan_bytes;
  s.vertex_bytes = 4 + 32 * 4 + s.scan_bytes + 8 + (sq8 ? (dim + 63) / 64 * 64 : 0);
  return s;
}
}  // namespace

// The choice between the walk and the scan, at the rows measured on the development machine
// (docs/hnsw.md, "Walk or scan, fitted"): each is the faster of the two as measured there, ef 64.
// `filter_walk` (the index alone, a random bitset, listed by the scan below a quarter of the
// points) and `bench_filtered` (a payload test along the walk or of every point in a scan; an
// indexed range tested by its numbers, not listed).
TEST(FilteredSearchCost, ChoosesTheFasterWayAtEachMeasuredRow) {
  struct Row {
    double n, selectivity;
    size_t dim;
    bool sq8, costly, listed, scan;
    const char* measured;
  };
  const Row rows[] = {
      {60000, 0.10, 32, false, false, true, true, "scan 117 us, walk 156"},
      {60000, 0.10, 128, false, false, true, false, "walk 180 us, scan 247"},
      {60000, 0.10, 512, false, false, true, false, "walk 323 us, scan 796"},
      {60000, 0.10, 128, true, false, true, false, "walk 224 us (8-bit codes), scan 279"},
      {60000, 0.03, 128, false, false, true, true, "scan 57 us, walk 646"},
      {60000, 0.03, 512, false, false, true, true, "scan 149 us, walk 1,080"},
      {60000, 0.30, 32, false, false, false, false, "walk 58 us, scan of every vertex 528"},
      {200000, 0.03, 128, false, false, true, true, "scan 286 us, walk 940"},
      {200000, 0.10, 128, false, false, true, false, "walk 256 us, scan 2,306"},
      {60000, 0.001, 128, false, true, false, true, "payloads: scan 1.2 ms, walk ~23 ms"},
      {60000, 0.01, 128, false, true, false, true, "payloads: scan 1.5 ms, walk 5.7 ms"},
      {60000, 0.01, 256, false, true, false, true, "payloads: scan 1.5 ms, walk 6.9 ms"},
      {60000, 0.01, 512, false, true, false, true, "payloads: scan 1.6 ms, walk ~8 ms"},
      {60000, 0.01, 784, false, true, false, true, "Fashion-MNIST: scan 2 ms, walk 8 ms"},
      {60000, 0.10, 128, false, true, false, false, "payloads: walk 0.52 ms, scan 2.5 ms"},
      {60000, 0.10, 512, false, true, false, false, "payloads: walk 0.75 ms, scan 3.2 ms"},
      {60000, 0.10, 784, false, true, false, false, "Fashion-MNIST: walk 1.1 ms"},
      {60000, 0.10, 128, false, false, false, false, "indexed range: walk 0.22 ms, scan 0.68"},
      {60000, 0.50, 512, false, true, false, false, "payloads: walk 0.33 ms, scan 6.4 ms"},
      {1000000, 0.01, 32, false, false, true, true, "scan 595 us, walk 4,351"},
      {1000000, 0.03, 32, false, false, true, false, "walk 1,400 us, scan 3,919"},
      {1000000, 0.10, 32, false, false, true, false, "walk 358 us, scan 13,606"},
  };
  for (const Row& r : rows) {
    FilteredSearchShape s = shape_of(r.n, r.n * r.selectivity, r.dim, r.sq8);
    s.listed = r.listed;
    s.costly = r.costly;
    const FilteredSearchCost c = filtered_search_cost(s);
    EXPECT_EQ(c.prefers_scan(), r.scan)
        << r.n << " points, " << r.selectivity * 100 << "%, " << r.dim << " dimensions: measured "
        << r.measured << "; the model says walk " << c.walk_ns / 1e3 << " us, scan "
        << c.scan_ns / 1e3 << " us";
    EXPECT_NEAR(c.hops, std::min(r.n, 64 / r.selectivity), 1e-6);
  }
  // Nothing estimated to pass: the walk would expand every vertex; the scan has nothing to do.
  const FilteredSearchShape none = shape_of(1000, 0, 32);
  EXPECT_TRUE(filtered_search_cost(none).prefers_scan());
  EXPECT_EQ(filtered_search_cost(none).hops, 1000);
}

// The index follows that choice: a costly filter half the ids pass is tested along the walk (the
// vertices it reaches alone), one a fifth or a fiftieth pass is scanned (every vertex tested
// once, the answer the exact one), at 32 and 784 dimensions, as the costs say (at 2,000 points
// both ways take tens of microseconds).
TEST(HnswIndex, ACostlyFilterIsWalkedOrScannedAsItsCostsSay) {
  const size_t n = 2000;
  for (const size_t dim : {32, 784}) {
    const Matrix base = wp::test::random_matrix(n, dim, 5);
    const Matrix queries = wp::test::random_matrix(3, dim, 6);
    const auto idx = build(base);
    for (const size_t every : {2, 5, 50}) {
      auto pass = [every](uint64_t id) { return id % every == 0; };
      FilteredSearchShape s = shape_of(n, static_cast<double>(n / every), dim);
      s.costly = true;
      const bool scan = filtered_search_cost(s).prefers_scan();
      EXPECT_EQ(scan, every != 2) << dim << " dimensions, 1 in " << every;
      for (size_t q = 0; q < queries.n; ++q) {
        CostlyFilter f(pass, static_cast<int64_t>(n / every));
        SearchParams p;
        p.ef = 64;
        p.filter = &f;
        std::vector<label_t> got(10);
        std::vector<float> d(10);
        idx->search_one(queries.row(q), 10, p, got.data(), d.data());
        if (scan) {
          EXPECT_EQ(f.tests, n) << "query " << q;  // a scan: each vertex tested once
          CostlyFilter listed(pass, static_cast<int64_t>(n / every));
          SearchParams exact;
          exact.exact = true;
          exact.filter = &listed;
          std::vector<label_t> truth(10);
          idx->search_one(queries.row(q), 10, exact, truth.data(), d.data());
          EXPECT_EQ(got, truth);
        } else {
          EXPECT_LT(f.tests, n / 2) << "query " << q;  // the walk's vertices alone
        }
        for (const label_t l : got) ASSERT_TRUE(l != kNoLabel && pass(l));
      }
    }
  }
}

// Matches that lie away from the query (a filter that goes with the vectors): the walk, chosen
// for the ~ef / 60% expansions a filter of 60% takes at random, would take in every vertex of the
// query's own cluster first (2,400 here). It is probed once it has tested 53 vertices (32 matches'
// worth at random) and at twice as many each time after. At 16 dimensions the scan costs less
// than 8 times the expected walk: having met no match (under a quarter of those expected), it is
// stopped at the first probe. At 384 the scan costs 10 times the expected walk: the walk is
// stopped at the probe where the tests it still needs for ef matches at the rate seen (16
// matches' worth added as a prior) cost more than the scan, the fourth, long before its budget.
// With the query's 16 nearest points among the matches (and 16 far ones fewer, so that the same
// count is estimated) the first probes see those and pass, and a later one stops the walk; with
// its 60 nearest (4 short of ef) every probe sees matches enough to go on, and the budget stops
// it; with its 80 nearest it holds ef matches and ends as usual. Wherever it stops, the scan
// answers, exactly; the same count of random ids is walked to the end.
TEST(HnswIndex, AWalkThatFindsTheMatchesFarAwayIsStoppedAndScanned) {
  const size_t n = 6000, near = 2400;  // the first 2,400 points near the origin
  for (const size_t dim : {16, 384}) {
    std::mt19937 rng(3);
    std::normal_distribution<float> g(0.0f, 1.0f);
    Matrix base(n, dim);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < dim; ++j) {
        base.data[i * dim + j] = g(rng) + (i < near ? 0.0f : 40.0f);
      }
    }
    const auto idx = build(base);
    BitsetFilter far(n), random(n);
    for (size_t i = near; i < n; ++i) far.set(i);
    for (size_t i = 0; i < n; ++i) {
      if (i % 5 < 3) random.set(i);
    }
    ASSERT_EQ(far.count(), random.count());
    const FilteredSearchCost c =
        filtered_search_cost(shape_of(n, static_cast<double>(far.count()), dim));
    ASSERT_FALSE(c.prefers_scan());
    const double scan_over_walk = c.scan_ns / c.walk_ns;
    const bool cheap_scan = dim == 16;
    ASSERT_EQ(scan_over_walk < 8, cheap_scan) << "scan / walk " << scan_over_walk;
    EXPECT_NEAR(c.hop_budget, c.hops * std::max(2.0, scan_over_walk) + 4 * 64, 1e-6);
    EXPECT_NEAR(c.probe_tests, 32 / 0.6, 1e-6);  // tests for 32 matches at random
    EXPECT_NEAR(c.probe_rate, cheap_scan ? 0.6 / 4 : 0, 1e-6);
    EXPECT_NEAR(c.prior_matches, 16, 1e-6);
    EXPECT_NEAR(c.prior_tests, 16 / 0.6, 1e-6);
    EXPECT_NEAR(c.scan_tests, scan_over_walk * 1.3 * c.hops, 1e-6);
    for (size_t q = 0; q < 5; ++q) {
      std::vector<float> query(dim);
      for (float& x : query) x = g(rng);  // near the origin: the far points are the matches
      SearchParams p;
      p.ef = 64;
      std::vector<label_t> got(10);
      std::vector<float> d(10);
      // The exact answer under `filter`, as the scan gives it.
      auto exact_answer = [&](const IdFilter& filter) {
        SearchParams exact;
        exact.exact = true;
        exact.filter = &filter;
        std::vector<label_t> truth(10);
        std::vector<float> dt(10);
        idx->search_one(query.data(), 10, exact, truth.data(), dt.data());
        return truth;
      };
      // The query's `count` nearest points among the matches in place of the `count` far points
      // farthest from it, which no walk from the query meets early.
      std::vector<std::pair<float, size_t>> nearest, farthest;
      for (size_t i = 0; i < n; ++i) {
        (i < near ? nearest : farthest).push_back({l2sqr(query.data(), base.row(i), dim), i});
      }
      std::partial_sort(nearest.begin(), nearest.begin() + 80, nearest.end());
      std::partial_sort(farthest.begin(), farthest.begin() + 80, farthest.end(), std::greater<>());
      auto with_nearest = [&](size_t count) {
        std::vector<bool> dropped(n);
        for (size_t j = 0; j < count; ++j) dropped[farthest[j].second] = true;
        BitsetFilter f(n);
        for (size_t i = near; i < n; ++i) {
          if (!dropped[i]) f.set(i);
        }
        for (size_t j = 0; j < count; ++j) f.set(nearest[j].second);
        EXPECT_EQ(f.count(), far.count());
        return f;
      };
      // A filtered search under `f`: its stats; the answer the scan's where the walk was
      // stopped (`scanned`), else matches alone (a walk's answer is approximate).
      auto search = [&](const BitsetFilter& f, const char* what, bool scanned) {
        p.filter = &f;
        const SearchStats st = idx->search_one(query.data(), 10, p, got.data(), d.data());
        EXPECT_LE(st.hops, c.hop_budget + 10) << what << ", " << dim << " dimensions, query " << q;
        if (scanned) {
          EXPECT_GE(st.distance_computations, far.count()) << what << ", query " << q;
          EXPECT_EQ(got, exact_answer(f)) << what << ", " << dim << " dimensions, query " << q;
        } else {
          EXPECT_LT(st.distance_computations, far.count()) << what << ", query " << q;
          for (const label_t l : got) EXPECT_TRUE(l != kNoLabel && f.contains(l)) << what;
        }
        return st;
      };
      // No match met: stopped at the first probe, within its first few expansions, where the
      // scan is cheap; else at a later one (the fourth: 427 tests); then the scan.
      const SearchStats none = search(far, "far", true);
      if (cheap_scan) {
        EXPECT_LE(none.hops, c.hops / 8) << "query " << q;
      } else {
        EXPECT_GT(none.hops, c.hops / 8) << "query " << q;
        EXPECT_LT(none.hops, c.hop_budget / 4) << "query " << q;
      }
      // The 16 nearest met first: the first probes pass (or the first stops it, where the walk
      // has not met them all yet), a later one stops it, before a quarter of the budget.
      const SearchStats few = search(with_nearest(16), "16 nearest", true);
      EXPECT_GE(few.hops, none.hops) << dim << " dimensions, query " << q;
      EXPECT_LT(few.hops, c.hop_budget / 4) << dim << " dimensions, query " << q;
      // The 60 nearest: where the scan is cheap, a probe stops the walk once under a quarter of
      // the expected matches have passed (after about 400 tests); else every probe sees matches
      // enough to go on, and the budget stops it (a few hops more on the upper levels).
      const SearchStats most = search(with_nearest(60), "60 nearest", true);
      if (cheap_scan) {
        EXPECT_GT(most.hops, few.hops) << "query " << q;
        EXPECT_LT(most.hops, c.hop_budget / 4) << "query " << q;
      } else {
        EXPECT_GE(most.hops + 2, c.hop_budget) << "query " << q;
      }
      // The 80 nearest (more than ef): ef matches held, the walk ends as usual, no scan.
      search(with_nearest(80), "80 nearest", false);
      // At random the walk takes in about its expected expansions and no scan follows.
      const SearchStats walked = search(random, "random", false);
      EXPECT_LT(walked.hops, c.hop_budget / 2) << dim << " dimensions, query " << q;
    }
  }
}

// Every vertex of a batch built on two threads is reachable: a search for its own vector (with a
// beam as wide as the index) answers it first, and it has in-edges at level 0. Small, uniform,
// low-dimensional data is where the neighbour heuristic prunes hardest.
TEST(HnswIndex, EveryVertexOfAParallelBuildIsFoundByItsOwnVector) {
  use_two_openmp_threads();
  for (uint64_t seed : {1, 2, 3, 4, 5, 6, 7, 8}) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(0.0f, 10.0f);
    Matrix base(400, 8);
    for (float& v : base.data) v = u(rng);
    HnswParams hp;
    hp.M = 16;
    hp.ef_construction = 100;
    auto idx = build(base, Metric::kL2, hp);
    const Level0Graph g = idx->export_level0();
    std::vector<size_t> in_degree(g.num_vertices());
    for (uint32_t t : g.neighbors) ++in_degree[t];
    SearchParams p;
    p.ef = base.n;
    const SearchResult r = idx->search(view(base), 1, p);
    for (size_t i = 0; i < base.n; ++i) {
      EXPECT_EQ(r.labels[i], i) << "seed " << seed << ": vertex " << i << " in-degree "
                                << in_degree[i];
    }
  }
}

// Searches walk the graph while placed vertices are linked in (Index::place, then link): every
// answer meanwhile is whole (each label one the index holds, with the distance of its stored
// vector, nearest first), and afterwards the index finds what one add() would. Vertices placed
// into an empty graph are found by the scan before any is linked. Run under TSan too
// (scripts/test.sh --sanitize thread), which checks that the lists and the entry are read whole.
TEST(HnswIndex, SearchesRunWhileVerticesAreLinkedIn) {
  use_two_openmp_threads();
  constexpr size_t d = 16, k = 10;
  const Matrix first = wp::test::random_matrix(1000, d, 1);
  const Matrix more = wp::test::random_matrix(5000, d, 2);
  const Matrix queries = wp::test::random_matrix(64, d, 3);
  HnswParams hp;
  hp.M = 8;
  hp.ef_construction = 64;
  HnswIndex idx(d, Metric::kL2, hp);
  FlatIndex flat(d, Metric::kL2);
  std::vector<label_t> ids(first.n + more.n);
  std::iota(ids.begin(), ids.end(), 0);
  SearchParams p;
  p.ef = 48;

  idx.place(view(first), ids.data());
  flat.add(view(first), ids.data());
  EXPECT_EQ(idx.search(view(queries), k, p).labels, flat.search(view(queries), k).labels)
      << "placed, not linked: found by the scan";
  idx.link(0);

  idx.place(view(more), ids.data() + first.n);
  flat.add(view(more), ids.data() + first.n);
  const DistanceFn l2 = distance_fn(Metric::kL2, d);
  std::atomic<bool> linked{false};
  std::atomic<size_t> answers{0}, broken{0};
  std::mutex first_mu;
  std::string first_broken;
  auto searcher = [&](size_t q) {
    std::vector<label_t> labels(k);
    std::vector<float> distances(k), v(d);
    do {
      const float* query = queries.row(q++ % queries.n);
      idx.search_one(query, k, p, labels.data(), distances.data());
      for (size_t j = 0; j < k; ++j) {
        const bool whole = labels[j] < ids.size() && idx.get_vector(labels[j], v.data()) &&
                           l2(query, v.data(), d) == distances[j] &&
                           (j == 0 || distances[j - 1] <= distances[j]);
        if (!whole && broken.fetch_add(1) == 0) {
          std::lock_guard<std::mutex> hold(first_mu);
          first_broken = "result " + std::to_string(j) + ": label " + std::to_string(labels[j]) +
                         ", distance " + std::to_string(distances[j]);
        }
      }
      ++answers;
    } while (!linked.load());
  };
  std::thread a(searcher, 0), b(searcher, 32);
  idx.link(0);
  linked = true;
  a.join();
  b.join();
  EXPECT_EQ(broken.load(), 0u) << "of " << answers.load() << " answers; first " << first_broken;
  EXPECT_EQ(idx.size(), ids.size());
  const SearchResult truth = flat.search(view(queries), k);
  EXPECT_GE(recall_vs(idx.search(view(queries), k, p), truth), 0.9);
}

// A bound of one thread builds the graph add() builds on one thread, though OpenMP would use two
// (whose graph depends on the order the threads take): link(1) (a server's writes link on
// Collection::link_threads()), and max_insert_threads (a collection's
// hnsw_config.max_indexing_threads), which bounds every insert whatever add() or link() asks.
TEST(HnswIndex, OneThreadBoundsBuildWhatOneThreadBuilds) {
  const Matrix base = wp::test::random_matrix(2000, 16, 5);
  const Matrix more = wp::test::random_matrix(2000, 16, 6);
  std::vector<label_t> ids(base.n + more.n);
  std::iota(ids.begin(), ids.end(), 0);
  HnswParams hp;
  hp.M = 8;
  hp.ef_construction = 64;
  omp_set_num_threads(1);
  HnswIndex one(16, Metric::kL2, hp), linked(16, Metric::kL2, hp), bounded(16, Metric::kL2, hp);
  one.add(view(base), ids.data());
  linked.add(view(base), ids.data());
  one.add(view(more), ids.data() + base.n);
  use_two_openmp_threads();
  linked.place(view(more), ids.data() + base.n);
  linked.link(1);
  EXPECT_EQ(bounded.max_insert_threads(), 0u);
  bounded.set_max_insert_threads(1);
  bounded.add(view(base), ids.data());
  bounded.place(view(more), ids.data() + base.n);
  bounded.link(0);
  const Level0Graph a = one.export_level0();
  for (const HnswIndex* built : {&linked, &bounded}) {
    const Level0Graph b = built->export_level0();
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.offsets, b.offsets);
    EXPECT_EQ(a.neighbors, b.neighbors) << (built == &linked ? "link(1)" : "bounded to 1");
  }
}

// OmpTeamScope (index/omp_team.h), how the indexes that start their own regions keep to
// max_insert_threads and how the bench sets its threads: the calling thread's regions take its
// number, another thread's keep theirs, and the setting comes back at the end of the scope, after
// an exception too; 0 changes nothing.
TEST(OmpTeamScope, BoundsTheCallingThreadsRegionsAndPutsTheSettingBack) {
  const auto team = [] {
    int n = 0;
#pragma omp parallel
    {
#pragma omp single
      n = omp_get_num_threads();
    }
    return n;
  };
  const auto another_threads_setting = [] {
    int n = 0;
    std::thread([&n] { n = omp_get_max_threads(); }).join();
    return n;
  };
  use_two_openmp_threads();
  ASSERT_EQ(team(), 2);
  const int others = another_threads_setting();
  {
    const OmpTeamScope one(1);
    EXPECT_EQ(team(), 1);
    EXPECT_EQ(omp_get_max_threads(), 1);
    EXPECT_EQ(another_threads_setting(), others) << "another thread's regions are not bounded";
  }
  EXPECT_EQ(team(), 2);
  try {
    const OmpTeamScope one(1);
    throw std::runtime_error("out of the scope");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(omp_get_max_threads(), 2);
  {
    const OmpTeamScope unchanged(0);
    EXPECT_EQ(team(), 2);
  }
}

// One OpenMP runtime at work in a process. Debian's FAISS (compiled into our binaries) and
// OpenBLAS call libgomp's entry points; a g++ build's own loops do too, a clang build's call
// libomp's (__kmpc_*), which also exports libgomp's. Two runtimes at work would make two thread
// pools, each sized for every core. So every entry point the process resolves must come from the
// one library: libgomp for g++, libomp for clang (CMakeLists.txt), where libgomp.so.1 is mapped
// too (OpenBLAS needs it) but nothing binds to it.
TEST(HnswIndex, OneOpenMpRuntimeAnswersEveryCall) {
  int threads = 0;
#pragma omp parallel num_threads(2)
  {
#pragma omp single
    threads = omp_get_num_threads();
  }
  EXPECT_EQ(threads, 2) << "this build compiles no OpenMP (clang with -fopenmp=libgomp does not)";
  const auto library_of = [](const char* symbol) -> std::string {
    void* at = dlsym(RTLD_DEFAULT, symbol);
    Dl_info info{};
    if (!at || !dladdr(at, &info) || !info.dli_fname) return "";
    return info.dli_fname;
  };
  const std::string runtime = library_of("GOMP_parallel");
  ASSERT_FALSE(runtime.empty()) << "GOMP_parallel (what FAISS calls) is not resolved";
#if defined(__clang__)
  EXPECT_NE(runtime.find("/libomp.so"), std::string::npos) << runtime;
#else
  EXPECT_NE(runtime.find("/libgomp.so"), std::string::npos) << runtime;
#endif
  for (const char* symbol : {"omp_get_max_threads", "omp_set_num_threads", "omp_get_thread_num",
                             "GOMP_barrier", "GOMP_loop_dynamic_start", "GOMP_critical_start"}) {
    EXPECT_EQ(library_of(symbol), runtime) << symbol;
  }
  const std::string kmpc = library_of("__kmpc_fork_call");  // what clang's pragmas call
  EXPECT_TRUE(kmpc.empty() || kmpc == runtime) << kmpc;
}

namespace {

/// A graph query_walk can walk (what it reads of an HnswGraph), recording the order in which
/// the walk asks for lists: the order it expands vertices in.
struct ListGraph {
  std::vector<std::vector<uint32_t>> lists;  ///< each: its count, then its ids
  std::vector<uint8_t> removed;
  mutable std::vector<uint32_t> expanded;
  const uint32_t* links(uint32_t v, int) const {
    expanded.push_back(v);
    return lists[v].data();
  }
  uint8_t flags(uint32_t v) const { return removed[v]; }
  uint64_t label_of(uint32_t v) const { return v; }
};

/// A random graph of n vertices with `degree` links each (none removed).
ListGraph random_graph(size_t n, size_t degree, std::mt19937_64& rng) {
  ListGraph g;
  g.lists.resize(n);
  g.removed.resize(n);
  std::uniform_int_distribution<uint32_t> pick(0, n - 1);
  for (auto& l : g.lists) {
    l.push_back(degree);
    for (size_t j = 0; j < degree; ++j) l.push_back(pick(rng));
  }
  return g;
}

/// Distances given by a table.
struct TableDistance {
  const std::vector<float>* table;
  float operator()(uint32_t v) const { return (*table)[v]; }
  const void* address(uint32_t v) const { return table->data() + v; }
  size_t bytes() const { return sizeof(float); }
};

/// Distinct distances, 1 .. n in a random order.
std::vector<float> distinct_distances(size_t n, std::mt19937_64& rng) {
  std::vector<float> dist(n);
  std::iota(dist.begin(), dist.end(), 1.0f);
  std::shuffle(dist.begin(), dist.end(), rng);
  return dist;
}

/// hnswlib's walk: one frontier of every vertex taken (nearest first), a heap of the best ef
/// admissible ones; the order it expands vertices in, its distances computed and its best ef,
/// nearest first.
struct ReferenceWalk {
  std::vector<uint32_t> order;
  size_t dcs = 0;
  std::vector<Candidate> best;
};
ReferenceWalk hnswlib_walk(const ListGraph& g, const std::vector<float>& dist, uint32_t entry,
                           size_t ef, const std::function<bool(uint32_t)>& admissible) {
  ReferenceWalk w;
  std::vector<Candidate> frontier{{dist[entry], entry}}, top;
  if (admissible(entry)) top.push_back({dist[entry], entry});
  std::vector<bool> seen(dist.size());
  seen[entry] = true;
  while (!frontier.empty()) {
    const Candidate c = frontier.front();
    if (top.size() >= ef && c.distance > top.front().distance) break;
    std::pop_heap(frontier.begin(), frontier.end(), FartherFirst());
    frontier.pop_back();
    w.order.push_back(c.id);
    for (size_t j = 1; j <= g.lists[c.id][0]; ++j) {
      const uint32_t v = g.lists[c.id][j];
      if (seen[v]) continue;
      seen[v] = true;
      ++w.dcs;
      if (top.size() < ef || dist[v] < top.front().distance) {
        frontier.push_back({dist[v], v});
        std::push_heap(frontier.begin(), frontier.end(), FartherFirst());
        if (!admissible(v)) continue;
        top.push_back({dist[v], v});
        std::push_heap(top.begin(), top.end());
        if (top.size() > ef) {
          std::pop_heap(top.begin(), top.end());
          top.pop_back();
        }
      }
    }
  }
  std::sort_heap(top.begin(), top.end());
  w.best = top;
  return w;
}

}  // namespace

// The sorted beam of a query's walk expands the vertices hnswlib's two heaps expand, in the same
// order, and ends holding the same best ef (sorted_beam.h): a walk over a random graph of 3,000
// vertices with distances that never tie, both ways, at ef 1, 10, 64 and past the graph's size.
TEST(SortedBeam, ExpandsWhatTheTwoHeapsExpandInTheSameOrder) {
  std::mt19937_64 rng(7);
  const size_t n = 3000;
  const ListGraph g = random_graph(n, 12, rng);
  std::uniform_int_distribution<uint32_t> pick(0, n - 1);
  for (const size_t ef : {size_t{1}, size_t{10}, size_t{64}, size_t{4000}}) {
    for (int query = 0; query < 20; ++query) {
      const std::vector<float> dist = distinct_distances(n, rng);
      const uint32_t entry = pick(rng);
      const ReferenceWalk ref = hnswlib_walk(g, dist, entry, ef, [](uint32_t) { return true; });
      // The same walk on the beam.
      std::vector<uint32_t> beam_order;
      SortedBeam beam;
      beam.start(ef, dist[entry], entry);
      std::vector<bool> seen(n);
      seen[entry] = true;
      for (uint32_t c; beam.next(&c);) {
        beam_order.push_back(c);
        for (size_t j = 1; j <= g.lists[c][0]; ++j) {
          const uint32_t v = g.lists[c][j];
          if (seen[v]) continue;
          seen[v] = true;
          if (beam.admits(dist[v])) beam.insert(dist[v], v);
        }
      }
      ASSERT_EQ(beam_order, ref.order) << "ef " << ef << ", query " << query;
      ASSERT_EQ(beam.size(), ref.best.size());
      std::vector<Candidate> from_beam;
      beam.to_heap(from_beam);
      ASSERT_TRUE(std::is_heap(from_beam.begin(), from_beam.end()));
      for (size_t i = 0; i < ref.best.size(); ++i) {
        EXPECT_EQ(beam[i].id, ref.best[i].id) << "ef " << ef << ", rank " << i;
        EXPECT_TRUE(beam[i].expanded || ef >= n);
      }
    }
  }
}

// A query's walk with vertices that only route (outside a filter, removed, or both) expands what
// hnswlib's walk expands, one frontier of both kinds and a heap of the best ef admissible ones,
// in the same order, with the same distances computed and the same best ef (hnsw::query_walk):
// random graphs of 3,000 vertices, distinct distances, 30% in the filter, 10% removed.
TEST(SortedBeam, AWalkWithVerticesThatOnlyRouteExpandsWhatOneFrontierExpands) {
  std::mt19937_64 rng(11);
  const size_t n = 3000, degree = 12;
  ListGraph g = random_graph(n, degree, rng);
  std::uniform_int_distribution<uint32_t> pick(0, n - 1);
  std::bernoulli_distribution in_filter(0.3), removed(0.1);
  BitsetFilter filter(n);
  for (uint32_t v = 0; v < n; ++v) {
    g.removed[v] = removed(rng);
    if (in_filter(rng)) filter.set(v);
  }
  SearchContext ctx;
  for (int kind = 0; kind < 3; ++kind) {  // filtered, removed vertices, both
    const bool filtered = kind != 1, tombstones = kind != 0;
    for (const size_t ef : {size_t{1}, size_t{10}, size_t{64}}) {
      for (int query = 0; query < 20; ++query) {
        const std::vector<float> dist = distinct_distances(n, rng);
        const uint32_t entry = pick(rng);
        const ReferenceWalk ref = hnswlib_walk(g, dist, entry, ef, [&](uint32_t v) {
          return !(tombstones && g.removed[v]) && !(filtered && !filter.contains(v));
        });
        g.expanded.clear();
        ctx.start(n, degree);
        SearchStats st;
        const TableDistance d{&dist};
        const IdFilter* f = filtered ? &filter : nullptr;
        if (filtered && tombstones) {
          hnsw::query_walk<true, true>(g, d, entry, dist[entry], ef, 0, f, ctx, st);
        } else if (filtered) {
          hnsw::query_walk<true, false>(g, d, entry, dist[entry], ef, 0, f, ctx, st);
        } else {
          hnsw::query_walk<false, true>(g, d, entry, dist[entry], ef, 0, f, ctx, st);
        }
        ASSERT_EQ(g.expanded, ref.order) << "kind " << kind << ", ef " << ef << ", query " << query;
        EXPECT_EQ(st.hops, ref.order.size());
        EXPECT_EQ(st.distance_computations, ref.dcs);
        std::vector<Candidate> got = ctx.top;
        std::sort_heap(got.begin(), got.end());
        ASSERT_EQ(got.size(), ref.best.size());
        for (size_t i = 0; i < ref.best.size(); ++i) EXPECT_EQ(got[i].id, ref.best[i].id);
      }
    }
  }
}
