// Multivectors (Qdrant's multivector_config, ColBERT's late interaction): MaxSim and the checks of
// a multivector against a brute-force computation in doubles, and through the REST handlers a
// collection of a dense and a multivector space (Dot, Euclid) and one of an unnamed Cosine
// multivector alone, each answer checked against the test's own MaxSim of the points it wrote.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <random>
#include <set>

#include "engine/multi_vector.h"
#include "index/error.h"
#include "ranked_answers.h"

using nlohmann::json;
using wp::engine::MultiVector;
using wp::http::Response;
using wp::index::Metric;
using wp::test::ranked;
using wp::test::RankedApiTest;
using wp::test::Want;

namespace {

using Rows = std::vector<std::vector<double>>;

/// `n` rows of `dim` random integers in lo..hi, none of them the zero vector.
Rows random_rows(std::mt19937& rng, size_t n, size_t dim, int lo = -3, int hi = 3) {
  std::uniform_int_distribution<int> value(lo, hi);
  Rows rows(n, std::vector<double>(dim));
  for (auto& row : rows) {
    do {
      for (double& x : row) x = value(rng);
    } while (std::all_of(row.begin(), row.end(), [](double x) { return x == 0; }));
  }
  return rows;
}

MultiVector to_multi(const Rows& rows) {
  MultiVector m;
  m.dim = rows.empty() ? 0 : rows[0].size();
  for (const auto& r : rows) {
    for (double x : r) m.values.push_back(static_cast<float>(x));
  }
  return m;
}

/// The similarity of two rows as Qdrant's MaxSim takes it: the dot product (of the rows made
/// unit vectors for Cosine) or the negated squared Euclidean distance.
double similarity(const std::vector<double>& a, const std::vector<double>& b,
                  const std::string& distance) {
  double dot = 0, aa = 0, bb = 0, sq = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
    sq += (a[i] - b[i]) * (a[i] - b[i]);
  }
  if (distance == "Euclid") return -sq;
  if (distance == "Cosine") return dot / std::sqrt(aa * bb);
  return dot;
}

double max_sim(const Rows& query, const Rows& point, const std::string& distance) {
  double sum = 0;
  for (const auto& q : query) {
    double best = -INFINITY;
    for (const auto& p : point) best = std::max(best, similarity(q, p, distance));
    sum += best;
  }
  return sum;
}

TEST(MultiVector, MaxSimIsTheSumOfEachQueryRowsBestSimilarity) {
  std::mt19937 rng(23);
  std::normal_distribution<double> normal(0.0, 1.0);
  const std::pair<Metric, const char*> metrics[] = {
      {Metric::kInnerProduct, "Dot"}, {Metric::kCosine, "Cosine"}, {Metric::kL2, "Euclid"}};
  for (const auto& [metric, distance] : metrics) {
    for (int round = 0; round < 200; ++round) {
      const size_t dim = 1 + rng() % 9;
      Rows q(1 + rng() % 6, std::vector<double>(dim)), p(1 + rng() % 8, std::vector<double>(dim));
      for (Rows* rows : {&q, &p}) {
        for (auto& row : *rows) {
          for (double& x : row) x = static_cast<float>(normal(rng));
        }
      }
      MultiVector mq = to_multi(q), mp = to_multi(p);
      wp::engine::check_multi(mq, dim, metric, "q");  // normalises the rows for Cosine
      wp::engine::check_multi(mp, dim, metric, "p");
      if (metric == Metric::kCosine) {
        for (size_t r = 0; r < mp.rows(); ++r) {
          double norm = 0;
          for (size_t i = 0; i < dim; ++i) norm += double{mp.row(r)[i]} * mp.row(r)[i];
          EXPECT_NEAR(norm, 1.0, 1e-5) << "row " << r << " is not stored as a unit vector";
        }
      } else {
        EXPECT_EQ(mp, to_multi(p)) << distance << ": only Cosine rows are normalised";
      }
      const double want = max_sim(q, p, distance);
      const float got = wp::engine::max_sim(mq, mp.values.data(), mp.rows(), metric);
      EXPECT_NEAR(got, want, 1e-4 * std::max(1.0, std::abs(want)))
          << distance << " round " << round << " dim " << dim;
    }
  }
  // Exact small cases: Euclid is the negated squared distance (no square root, higher is
  // closer), each query row takes its own best point row.
  const MultiVector point{2, {2, 3, 4, 4}};
  EXPECT_EQ(wp::engine::max_sim({2, {0, 0}}, point.values.data(), 2, Metric::kL2), -13.0f);
  EXPECT_EQ(wp::engine::max_sim({2, {0, 0, 4, 4}}, point.values.data(), 2, Metric::kL2), -13.0f);
  EXPECT_EQ(wp::engine::max_sim({2, {1, 0, 0, 1}}, point.values.data(), 2, Metric::kInnerProduct),
            4.0f + 4.0f);
  EXPECT_EQ(wp::engine::max_sim({2, {-1, 0}}, point.values.data(), 2, Metric::kInnerProduct),
            -2.0f);  // the best of negative similarities, not 0
}

TEST(MultiVector, CheckingRefusesWhatIsNotRowsOfTheDimensionNamingTheField) {
  auto refused = [](MultiVector v, size_t dim, Metric metric, const std::string& says) {
    try {
      wp::engine::check_multi(v, dim, metric, "points[3].vector.colbert");
      ADD_FAILURE() << "accepted; expected " << says;
    } catch (const wp::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("points[3].vector.colbert"), std::string::npos)
          << e.what();
    }
  };
  refused({3, {1, 2, 3}}, 4, Metric::kInnerProduct, "dimension 4");
  refused({4, {}}, 4, Metric::kInnerProduct, "at least one vector");
  refused({4, {1, 2, 3, 4, 5, 6}}, 4, Metric::kInnerProduct, "not rows of 4");
  refused({2, {1, 2, 3, std::nanf("")}}, 2, Metric::kInnerProduct, "colbert[1]");
  refused({2, {INFINITY, 2, 3, 4}}, 2, Metric::kL2, "colbert[0]");
  refused({2, {1, 2, 0, 0}}, 2, Metric::kCosine, "colbert[1]: the zero vector");
  refused({1, std::vector<float>(wp::engine::kMaxMultiValues + 1, 1.0f)}, 1, Metric::kL2, "exceed");
  MultiVector zero{2, {1, 2, 0, 0}};
  wp::engine::check_multi(zero, 2, Metric::kInnerProduct, "v");  // a zero row is a Dot row
  EXPECT_EQ(zero.values, (std::vector<float>{1, 2, 0, 0}));
  MultiVector cosine{2, {3, 4, 0, -2}};
  wp::engine::check_multi(cosine, 2, Metric::kCosine, "v");
  EXPECT_NEAR(cosine.values[0], 0.6f, 1e-6);
  EXPECT_NEAR(cosine.values[1], 0.8f, 1e-6);
  EXPECT_NEAR(cosine.values[3], -1.0f, 1e-6);
}

TEST(MultiVector, ASpaceHoldsScoresAndDropsEachPointsRows) {
  wp::engine::MultiVectorSpace space(2, Metric::kL2);
  space.set(5, {1, 1, 3, 3});
  space.set(2, {0, 0});
  EXPECT_EQ(space.size(), 2u);
  EXPECT_FALSE(space.contains(0));
  EXPECT_FALSE(space.contains(100));
  EXPECT_EQ(space.score({2, {3, 4}}, 5), -1.0f);
  space.set(5, {9, 9});  // replaced, still one point
  EXPECT_EQ(space.size(), 2u);
  EXPECT_EQ(*space.get(5), (std::vector<float>{9, 9}));
  EXPECT_EQ(space.max_values(), 4u);
  EXPECT_TRUE(space.remove(5));
  EXPECT_FALSE(space.remove(5));
  EXPECT_EQ(space.get(5), nullptr);
  EXPECT_EQ(space.size(), 1u);
}

/// The test's own model of a multivector space: the rows each point was given.
struct MultiModel {
  std::string distance;
  std::map<int, Rows> points;
  Want answer(const Rows& q, size_t limit, size_t offset, const std::function<bool(int)>& keep,
              const std::set<int>* among = nullptr, double threshold = -INFINITY) const {
    std::vector<std::pair<int, double>> scored;
    for (const auto& [id, rows] : points) {
      if ((among && !among->count(id)) || !keep(id)) continue;
      const double s = max_sim(q, rows, distance);
      if (s >= threshold) scored.emplace_back(id, s);
    }
    return ranked(std::move(scored), limit, offset);
  }
};

class MultiVectors : public RankedApiTest {
 protected:
  size_t count(const std::string& c, const json& filter = nullptr) {
    json body = json::object();
    if (!filter.is_null()) body["filter"] = filter;
    return ok("POST", "/collections/" + c + "/points/count", body)["count"].get<size_t>();
  }
  size_t count_with(const std::string& c, const std::string& name) {
    return count(c, {{"must", {{{"has_vector", name}}}}});
  }

  /// A collection "m" of a dense space "dense" (Dot) and a multivector "colbert" of `distance`,
  /// every answer against the model, through changes and a restart.
  void hybrid(const std::string& distance);
};

void MultiVectors::hybrid(const std::string& distance) {
  ok("PUT", "/collections/m",
     {{"vectors",
       {{"dense", {{"size", 4}, {"distance", "Dot"}}},
        {"colbert",
         {{"size", 4},
          {"distance", distance},
          {"multivector_config", {{"comparator", "max_sim"}}}}}}}});
  const json params = ok("GET", "/collections/m")["config"]["params"]["vectors"];
  EXPECT_EQ(params["colbert"], json({{"size", 4},
                                     {"distance", distance},
                                     {"multivector_config", {{"comparator", "max_sim"}}}}));
  EXPECT_FALSE(params["dense"].contains("multivector_config")) << params;

  std::mt19937 rng(distance == "Euclid" ? 5 : 6);
  MultiModel colbert{distance, {}};
  std::map<int, std::vector<float>> dense;
  auto dense_of = [&](int id) {
    std::vector<float> d(4);
    for (float& x : d) x = static_cast<float>(static_cast<int>(rng() % 7) - 3);
    return dense[id] = d;
  };
  // 200 points: 150 by "points" (every seventh without the multivector), 50 by "batch".
  json points = json::array();
  for (int id = 0; id < 150; ++id) {
    json vector{{"dense", dense_of(id)}};
    if (id % 7 != 0) {
      colbert.points[id] = random_rows(rng, 1 + rng() % 5, 4);
      vector["colbert"] = colbert.points[id];
    }
    points.push_back({{"id", id}, {"vector", vector}, {"payload", {{"g", id % 4}}}});
  }
  ok("PUT", "/collections/m/points?wait=true", {{"points", points}});
  json ids = json::array(), denses = json::array(), multis = json::array(),
       payloads = json::array();
  for (int id = 150; id < 200; ++id) {
    ids.push_back(id);
    denses.push_back(dense_of(id));
    multis.push_back(colbert.points[id] = random_rows(rng, 1 + rng() % 5, 4));
    payloads.push_back({{"g", id % 4}});
  }
  ok("PUT", "/collections/m/points?wait=true",
     {{"batch",
       {{"ids", ids},
        {"vectors", {{"dense", denses}, {"colbert", multis}}},
        {"payloads", payloads}}}});
  EXPECT_EQ(count("m"), 200u);
  EXPECT_EQ(count_with("m", "colbert"), colbert.points.size());
  EXPECT_EQ(count_with("m", "dense"), 200u);

  auto all = [](int) { return true; };
  auto g1 = [](int id) { return id % 4 == 1; };
  const json g1_filter{{"must", {{{"key", "g"}, {"match", {{"value", 1}}}}}}};
  const std::string query = "/collections/m/points/query";
  auto check_searches = [&](const std::string& when) {
    std::mt19937 qrng(3);
    for (int i = 0; i < 10; ++i) {
      const std::string what = when + " #" + std::to_string(i);
      const Rows q = random_rows(qrng, 1 + qrng() % 3, 4);
      expect_same(hits_of(ok("POST", query, {{"query", q}, {"using", "colbert"}, {"limit", 10}})),
                  colbert.answer(q, 10, 0, all), what + " query");
      expect_same(hits_of(ok("POST", query,
                             {{"query", {{"nearest", q}}},
                              {"using", "colbert"},
                              {"limit", 7},
                              {"offset", 3},
                              {"filter", g1_filter}})),
                  colbert.answer(q, 7, 3, g1), what + " nearest, filtered, from 3");
      expect_same(hits_of(ok("POST", "/collections/m/points/search",
                             {{"vector", {{"name", "colbert"}, {"vector", q}}}, {"limit", 5}})),
                  colbert.answer(q, 5, 0, all), what + " legacy search");
      // A threshold keeps the scores at or above it (ties at it included).
      const Want every = colbert.answer(q, 1000, 0, all);
      const double threshold = every.top[15].second;
      expect_same(hits_of(ok("POST", query,
                             {{"query", q},
                              {"using", "colbert"},
                              {"limit", 100},
                              {"score_threshold", threshold}})),
                  colbert.answer(q, 100, 0, all, nullptr, threshold), what + " threshold");
    }
    // A point id as the query: its own rows, the point left out.
    auto others = [](int x) { return x != 17; };
    expect_same(hits_of(ok("POST", query, {{"query", 17}, {"using", "colbert"}, {"limit", 6}})),
                colbert.answer(colbert.points.at(17), 6, 0, others), when + " by id");
  };
  check_searches("written");

  // A dense prefetch rescored by MaxSim: only the prefetched points holding the multivector.
  const std::vector<float> at{1, 1, 0, 0};
  std::set<int> prefetched;
  const json dense30 = ok("POST", query, {{"query", at}, {"using", "dense"}, {"limit", 30}});
  for (const json& p : dense30["points"]) prefetched.insert(p["id"].get<int>());
  ASSERT_EQ(prefetched.size(), 30u) << dense30;
  const Rows q = random_rows(rng, 3, 4);
  expect_same(hits_of(ok("POST", query,
                         {{"prefetch", {{"query", at}, {"using", "dense"}, {"limit", 30}}},
                          {"query", q},
                          {"using", "colbert"},
                          {"limit", 12}})),
              colbert.answer(q, 12, 0, all, &prefetched), "rescored prefetch");
  {
    // rrf of a dense and a multivector prefetch: each point one of the two lists'.
    const json multi20 = ok("POST", query, {{"query", q}, {"using", "colbert"}, {"limit", 20}});
    expect_same(hits_of(multi20), colbert.answer(q, 20, 0, all), "top 20");
    std::set<int> either = prefetched;
    for (const auto& [id, s] : hits_of(multi20)) either.insert(id);
    const json fused = ok("POST", query,
                          {{"prefetch",
                            {{{"query", at}, {"using", "dense"}, {"limit", 30}},
                             {{"query", q}, {"using", "colbert"}, {"limit", 20}}}},
                           {"query", {{"fusion", "rrf"}}},
                           {"limit", 10}});
    ASSERT_EQ(fused["points"].size(), 10u) << fused;
    for (const json& p : fused["points"]) EXPECT_TRUE(either.count(p["id"].get<int>())) << p;
  }
  // Groups by g: each group's hits its best, the group of the best point first.
  {
    const json groups = ok("POST", query + "/groups",
                           {{"query", q},
                            {"using", "colbert"},
                            {"group_by", "g"},
                            {"group_size", 2},
                            {"limit", 4}})["groups"];
    ASSERT_EQ(groups.size(), 4u) << groups;
    double previous = INFINITY;
    for (const json& g : groups) {
      const int gid = g["id"];
      const auto hits = hits_of(g["hits"]);
      expect_same(hits, colbert.answer(q, 2, 0, [&](int id) { return id % 4 == gid; }),
                  "group " + std::to_string(gid));
      ASSERT_FALSE(hits.empty());
      EXPECT_LE(hits[0].second, previous) << groups;
      previous = hits[0].second;
    }
    EXPECT_NEAR(groups[0]["hits"][0]["score"].get<double>(),
                colbert.answer(q, 1, 0, all).top[0].second, 1e-5);
  }
  // Vectors read back: the rows as given (not normalised for Dot or Euclid), the dense one beside.
  auto rows_of = [&](int id) {
    return ok("POST", "/collections/m/points", {{"ids", {id}}, {"with_vector", true}})[0]["vector"];
  };
  EXPECT_EQ(rows_of(151)["colbert"], json(colbert.points.at(151)));
  EXPECT_EQ(rows_of(151)["dense"], json(dense.at(151)));
  EXPECT_FALSE(rows_of(14).contains("colbert")) << rows_of(14);
  const json shown = ok("POST", query,
                        {{"query", q},
                         {"using", "colbert"},
                         {"limit", 5},
                         {"with_vector", {"colbert"}},
                         {"with_payload", true}});
  ASSERT_EQ(shown["points"].size(), 5u) << shown;
  for (const json& hit : shown["points"]) {
    const int id = hit["id"];
    EXPECT_EQ(hit["vector"], json({{"colbert", colbert.points.at(id)}})) << hit;
    EXPECT_EQ(hit["payload"], json({{"g", id % 4}})) << hit;
  }

  // update_vectors replaces the multivector, keeping the dense one; delete_vectors and an
  // upsert without it drop it; deleted points go.
  colbert.points[7] = {{1, 2, 3, 3}};
  colbert.points[8] = {{-3, 0, 0, 1}, {2, 2, 2, 2}};
  ok("PUT", "/collections/m/points/vectors?wait=true",
     {{"points",
       {{{"id", 7}, {"vector", {{"colbert", colbert.points[7]}}}},
        {{"id", 8}, {"vector", {{"colbert", colbert.points[8]}}}}}}});
  EXPECT_EQ(rows_of(8), json({{"dense", dense.at(8)}, {"colbert", colbert.points[8]}}));
  ok("POST", "/collections/m/points/vectors/delete?wait=true",
     {{"points", {20, 22, 23}}, {"vector", {"colbert"}}});
  for (int id : {20, 22, 23}) colbert.points.erase(id);
  EXPECT_EQ(rows_of(22), json({{"dense", dense.at(22)}}));
  ok("PUT", "/collections/m/points?wait=true",
     {{"points", {{{"id", 40}, {"vector", {{"dense", {0, 0, 0, 1}}}}, {"payload", {{"g", 0}}}}}}});
  colbert.points.erase(40);
  ok("POST", "/collections/m/points/delete?wait=true", {{"points", {30, 31}}});
  colbert.points.erase(30);
  colbert.points.erase(31);
  EXPECT_EQ(count_with("m", "colbert"), colbert.points.size());
  EXPECT_EQ(count("m"), 198u);
  check_searches("changed");
  restart();
  EXPECT_EQ(count_with("m", "colbert"), colbert.points.size());
  EXPECT_EQ(ok("GET", "/collections/m")["config"]["params"]["vectors"]["colbert"],
            params["colbert"]);
  EXPECT_EQ(rows_of(8)["colbert"], json(colbert.points[8]));
  check_searches("restarted");

  // Refused, naming the field, and nothing of a refused write is written.
  const std::string put = "/collections/m/points?wait=true";
  const json good{{"id", 1000}, {"vector", {{"colbert", {{1, 2, 3, 4}}}}}};
  auto with = [&](const json& vector) {
    return json{{"points", {good, {{"id", 1001}, {"vector", vector}}}}};
  };
  expect_400("PUT", put, with({{"colbert", {{1, 2, 3, 4}, {1, 2, 3}}}}),
             "points[1].vector.colbert[1]");
  expect_400("PUT", put, with({{"colbert", {{1, 2, 3}, {1, 2, 3}}}}),
             "points[1].vector.colbert: expected vectors of dimension 4, got 3");
  expect_400("PUT", put, with({{"colbert", {1, 2, 3, 4}}}),
             "is a multivector: give it as an array of vectors of 4 numbers");
  expect_400("PUT", put, with({{"dense", {{1, 2, 3, 4}}}}),
             "is a dense vector: give it as an array of 4 numbers, not an array of vectors");
  expect_400("PUT", put, with({{"colbert", json::array()}}), "points[1].vector.colbert");
  expect_400("PUT", put, with({{"colbert", {{1, 2, 3, 4}, {1, 2, 1e39, 4}}}}),
             "points[1].vector.colbert[1][2]");
  expect_400("PUT", put, with({{"colbert", {{1, 2, 3, 4}, {1, 2, "x", 4}}}}),
             "points[1].vector.colbert[1][2]");
  expect_400("PUT", put, with({{"other", {{1, 2, 3, 4}}}}), "other");
  expect_400("PUT", put,
             {{"batch",
               {{"ids", {1000, 1001}},
                {"vectors", {{"colbert", {{{1, 2, 3, 4}}, {{1, 2, 3, 4}, {5, 6}}}}}}}}},
             "batch.vectors.colbert[1][1]");
  expect_400("PUT", "/collections/m/points/vectors?wait=true",
             {{"points",
               {{{"id", 8}, {"vector", {{"colbert", {{0, 0, 0, 0}}}}}},
                {{"id", 9}, {"vector", {{"colbert", {{1, 2}}}}}}}}},
             "points[1].vector.colbert");
  expect_400("POST", query, {{"query", {1, 2, 3, 4}}, {"using", "colbert"}}, "is a multivector");
  expect_400("POST", query, {{"query", {{1, 2, 3, 4}}}, {"using", "dense"}}, "is a dense vector");
  expect_400("POST", query, {{"query", {{1, 2, 3}}}, {"using", "colbert"}}, "dimension 4");
  expect_400("POST", query, {{"query", {{1, 2, 3, 4}, {1}}}, {"using", "colbert"}}, "query[1]");
  // A query's rows are bounded (a scan's work is its rows times the rows it reaches).
  const json longest(wp::engine::kMaxMultiQueryValues / 4, json{1, 0, 0, 0});
  ok("POST", query, {{"query", longest}, {"using", "colbert"}, {"limit", 1}});
  json too_long = longest;
  too_long.push_back({1, 0, 0, 0});
  expect_400("POST", query, {{"query", too_long}, {"using", "colbert"}},
             "values a multivector query may hold");
  expect_400("POST", query, {{"query", {{"recommend", {{"positive", {1}}}}}}, {"using", "colbert"}},
             "is a multivector");
  expect_400("POST", query,
             {{"query",
               {{"discover", {{"target", 1}, {"context", {{{"positive", 2}, {"negative", 3}}}}}}}},
              {"using", "colbert"}},
             "is a multivector");
  expect_400("POST", query, {{"query", 14}, {"using", "colbert"}}, "query");  // 14 has none
  expect_400("POST", "/collections/m/points/search",
             {{"vector", {{"name", "colbert"}, {"vector", {1, 2, 3, 4}}}}, {"limit", 3}},
             "is a multivector");
  EXPECT_EQ(count("m"), 198u);
  EXPECT_EQ(count_with("m", "colbert"), colbert.points.size());
  EXPECT_TRUE(ok("POST", "/collections/m/points", {{"ids", {1000, 1001}}}).empty());
  EXPECT_EQ(rows_of(8)["colbert"], json(colbert.points[8]));
}

TEST_F(MultiVectors, DenseAndEuclidMultivectorScoredByNegatedSquaredDistances) {
  hybrid("Euclid");
}

TEST_F(MultiVectors, DenseAndDotMultivectorScoredBySummedBestDotProducts) {
  hybrid("Dot");
}

TEST_F(MultiVectors, AnUnnamedCosineMultivectorAloneNormalisesItsRows) {
  const json mv{
      {"size", 3}, {"distance", "Cosine"}, {"multivector_config", {{"comparator", "max_sim"}}}};
  ok("PUT", "/collections/u", {{"vectors", mv}});
  EXPECT_EQ(ok("GET", "/collections/u")["config"]["params"]["vectors"], mv);
  std::mt19937 rng(29);
  MultiModel model{"Cosine", {}};
  json points = json::array();
  for (int id = 1; id <= 40; ++id) {
    model.points[id] = random_rows(rng, 1 + rng() % 4, 3);
    points.push_back({{"id", id}, {"vector", model.points[id]}, {"payload", {{"k", id % 3}}}});
  }
  ok("PUT", "/collections/u/points?wait=true", {{"points", points}});
  json ids = json::array(), vectors = json::array(), payloads = json::array();
  for (int id = 41; id <= 60; ++id) {
    ids.push_back(id);
    vectors.push_back(model.points[id] = random_rows(rng, 1 + rng() % 4, 3));
    payloads.push_back({{"k", id % 3}});
  }
  ok("PUT", "/collections/u/points?wait=true",
     {{"batch", {{"ids", ids}, {"vectors", vectors}, {"payloads", payloads}}}});
  EXPECT_EQ(count("u"), 60u);

  // Stored as unit rows: read back, each row is the given one divided by its norm.
  for (int id : {1, 45}) {
    const json got =
        ok("POST", "/collections/u/points", {{"ids", {id}}, {"with_vector", true}})[0]["vector"];
    const Rows& given = model.points.at(id);
    ASSERT_EQ(got.size(), given.size()) << got;
    for (size_t r = 0; r < given.size(); ++r) {
      double norm = 0;
      for (double x : given[r]) norm += x * x;
      ASSERT_EQ(got[r].size(), 3u) << got;
      for (size_t i = 0; i < 3; ++i) {
        EXPECT_NEAR(got[r][i].get<double>(), given[r][i] / std::sqrt(norm), 1e-6) << got;
      }
    }
  }
  auto all = [](int) { return true; };
  const json k0{{"must", {{{"key", "k"}, {"match", {{"value", 0}}}}}}};
  auto check = [&](const std::string& collection, const std::string& when) {
    const std::string path = "/collections/" + collection + "/points/";
    std::mt19937 qrng(4);
    for (int i = 0; i < 8; ++i) {
      const Rows q = random_rows(qrng, 1 + qrng() % 3, 3);  // not unit rows
      const std::string what = when + " #" + std::to_string(i);
      expect_same(hits_of(ok("POST", path + "query", {{"query", q}, {"limit", 8}})),
                  model.answer(q, 8, 0, all), what + " query");
      expect_same(hits_of(ok("POST", path + "query",
                             {{"query", {{"nearest", q}}}, {"limit", 5}, {"filter", k0}})),
                  model.answer(q, 5, 0, [](int id) { return id % 3 == 0; }), what + " filtered");
      expect_same(
          hits_of(ok("POST", path + "search", {{"vector", q}, {"limit", 4}, {"offset", 2}})),
          model.answer(q, 4, 2, all), what + " legacy search");
    }
    expect_same(hits_of(ok("POST", path + "query", {{"query", 5}, {"limit", 6}})),
                model.answer(model.points.at(5), 6, 0, [](int id) { return id != 5; }),
                when + " by id");
  };
  check("u", "written");
  // The exact case: a row parallel to the query's scores 1, whatever their lengths.
  ok("PUT", "/collections/u/points?wait=true",
     {{"points", {{{"id", 99}, {"vector", {{3, 4, 0}, {0, 0, -7}}}}}}});
  model.points[99] = {{3, 4, 0}, {0, 0, -7}};
  const json top =
      ok("POST", "/collections/u/points/query", {{"query", {{6, 8, 0}, {0, 0, -1}}}, {"limit", 1}});
  EXPECT_EQ(top["points"][0]["id"], 99) << top;
  EXPECT_NEAR(top["points"][0]["score"].get<double>(), 2.0, 1e-5) << top;

  // Refusals naming the field; nothing written.
  expect_400("PUT", "/collections/u/points?wait=true",
             {{"points",
               {{{"id", 200}, {"vector", {{1, 1, 1}}}},
                {{"id", 201}, {"vector", {{1, 2, 3}, {0, 0, 0}}}}}}},
             "points[1].vector[1]: the zero vector has no cosine direction");
  expect_400(
      "PUT", "/collections/u/points?wait=true",
      {{"points", {{{"id", 200}, {"vector", {1, 2, 3}}}}}},
      R"(points[0].vector: \"\" is a multivector: give it as an array of vectors of 3 numbers)");
  expect_400("PUT", "/collections/u/points?wait=true",
             {{"batch", {{"ids", {200, 201}}, {"vectors", {{{1, 2, 3}}, {{1, 2, 3}, {1, 2}}}}}}},
             "batch.vectors[1][1]");
  expect_400("POST", "/collections/u/points/query", {{"query", {1, 2, 3}}}, "is a multivector");
  expect_400("POST", "/collections/u/points/query", {{"query", {{0, 0, 0}}}}, "zero vector");
  EXPECT_EQ(count("u"), 61u);

  // Metrics, a snapshot recovered into another collection, a restart.
  const Response metrics = call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200u);
  EXPECT_NE(metrics.body.find("waypoint_points{collection=\"u\"} 61"), std::string::npos)
      << metrics.body;
  const std::string snapshot = ok("POST", "/collections/u/snapshots?wait=true")["name"];
  ok("PUT", "/collections/u2/snapshots/recover",
     {{"location", "file://" + engine_->snapshots_dir() + "/u/" + snapshot}});
  EXPECT_EQ(ok("GET", "/collections/u2")["config"]["params"]["vectors"], mv);
  check("u2", "recovered");
  restart();
  EXPECT_EQ(ok("GET", "/collections/u")["config"]["params"]["vectors"], mv);
  check("u", "restarted");

  // Configurations refused, naming the field.
  auto colbert = [](const json& config) {
    return json{
        {"vectors",
         {{"dense", {{"size", 2}, {"distance", "Dot"}}},
          {"colbert", {{"size", 2}, {"distance", "Dot"}, {"multivector_config", config}}}}}};
  };
  expect_400("PUT", "/collections/bad", colbert({{"comparator", "dot"}}),
             "vectors.colbert.multivector_config.comparator");
  expect_400("PUT", "/collections/bad", colbert({{"comparator", "max_sim"}, {"x", 1}}),
             "vectors.colbert.multivector_config");
  expect_400("PUT", "/collections/bad", colbert(json::object()),
             "vectors.colbert.multivector_config.comparator");
  expect_400("PUT", "/collections/bad", colbert("max_sim"), "vectors.colbert.multivector_config");
  expect_400("PUT", "/collections/bad",
             {{"vectors",
               {{"colbert",
                 {{"size", 2},
                  {"distance", "Dot"},
                  {"multivector_config", {{"comparator", "max_sim"}}}}}}},
              {"sparse_vectors", {{"colbert", json::object()}}}},
             "sparse_vectors.colbert");
  EXPECT_EQ(call("GET", "/collections/bad").status, 404u);
}

}  // namespace
