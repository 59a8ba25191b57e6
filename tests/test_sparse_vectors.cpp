// Sparse vectors (Qdrant's sparse_vectors): the inverted index against a brute-force dot product,
// the stored record, and through the REST handlers a hybrid collection (a dense and two sparse
// spaces, one weighed by idf) and a sparse-only one, each answer checked against the test's own
// scoring of the points it wrote.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "engine/point_store.h"
#include "engine/sparse_vector.h"
#include "index/error.h"
#include "ranked_answers.h"

using nlohmann::json;
using wp::engine::SparseIndex;
using wp::engine::SparseVector;
using wp::http::Response;
using wp::test::ranked;
using wp::test::RankedApiTest;
using wp::test::Want;

namespace {

/// A random sparse vector of 1..max_size dimensions below `dims`, small integer values (sums of
/// them are exact in floats, so ties are ties and orders are comparable), in random order.
SparseVector random_sparse(std::mt19937& rng, uint32_t dims, size_t max_size) {
  std::uniform_int_distribution<size_t> size(1, max_size);
  std::uniform_int_distribution<uint32_t> dim(0, dims - 1);
  std::uniform_int_distribution<int> value(1, 5);
  std::set<uint32_t> chosen;
  const size_t n = size(rng);
  while (chosen.size() < n) chosen.insert(dim(rng));
  SparseVector v;
  for (uint32_t d : chosen) {
    v.indices.push_back(d);
    v.values.push_back(static_cast<float>(value(rng)));
  }
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  SparseVector shuffled;
  for (size_t i : order) {
    shuffled.indices.push_back(v.indices[i]);
    shuffled.values.push_back(v.values[i]);
  }
  return shuffled;
}

bool shares_a_dimension(const SparseVector& a, const SparseVector& b) {
  for (uint32_t d : a.indices) {
    if (std::find(b.indices.begin(), b.indices.end(), d) != b.indices.end()) return true;
  }
  return false;
}

json to_json(const SparseVector& v) {
  return {{"indices", v.indices}, {"values", v.values}};
}

TEST(SparseVector, SortingChecksLengthsRepeatsAndValuesAndSortsByIndex) {
  SparseVector v{{7, 2, 5}, {0.5f, -1.0f, 2.0f}};
  wp::engine::sort_sparse(v, "v");
  EXPECT_EQ(v.indices, (std::vector<uint32_t>{2, 5, 7}));
  EXPECT_EQ(v.values, (std::vector<float>{-1.0f, 2.0f, 0.5f}));
  SparseVector empty;
  wp::engine::sort_sparse(empty, "v");  // an empty vector is a vector
  auto refused = [](SparseVector x, const std::string& says) {
    try {
      wp::engine::sort_sparse(x, "points[0].vector.text");
      ADD_FAILURE() << "accepted; expected " << says;
    } catch (const wp::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("points[0].vector.text"), std::string::npos) << e.what();
    }
  };
  refused({{1, 2}, {1.0f}}, "one value per index");
  refused({{3, 1, 3}, {1, 2, 3}}, "index 3 is given twice");
  refused({{1, 4, 4}, {1, 2, 3}}, "index 4 is given twice");
  refused({{1}, {std::nanf("")}}, "values[0]");
  refused({{1, 2}, {1.0f, INFINITY}}, "values[1]");
  EXPECT_DOUBLE_EQ(wp::engine::sparse_dot({{1, 3, 9}, {2, 3, 4}}, {{0, 3, 9, 10}, {5, 6, 7, 8}}),
                   3.0 * 6 + 4.0 * 7);
  EXPECT_DOUBLE_EQ(wp::engine::sparse_dot({{1}, {2}}, {{2}, {3}}), 0.0);
}

TEST(SparseVector, TheIndexScoresAsABruteForceDotProductThroughChanges) {
  std::mt19937 rng(19);
  SparseIndex index;
  std::map<uint64_t, SparseVector> live;  // what the index should hold
  const uint32_t dims = 120;
  auto check = [&](int round) {
    ASSERT_EQ(index.size(), live.size());
    size_t nonempty = 0;
    std::map<uint32_t, size_t> df;
    for (const auto& [id, v] : live) {
      const SparseVector* held = index.get(id);
      ASSERT_TRUE(held) << id;
      EXPECT_EQ(*held, v);
      nonempty += v.size() > 0;
      for (uint32_t d : v.indices) ++df[d];
    }
    for (uint32_t d : {0u, 7u, 50u, 119u, 500u}) {
      const double n = static_cast<double>(df[d]), total = static_cast<double>(nonempty);
      EXPECT_NEAR(index.idf(d), std::log((total - n + 0.5) / (n + 0.5) + 1.0), 1e-12) << d;
    }
    for (int qi = 0; qi < 40; ++qi) {
      SparseVector q = random_sparse(rng, dims, 6);
      wp::engine::sort_sparse(q, "q");
      const bool filtered = qi % 2 == 1;
      const float threshold = 12.0f;
      const bool thresholded = qi % 4 == 3;
      std::vector<std::pair<float, uint64_t>> expected;
      for (const auto& [id, v] : live) {
        if (!shares_a_dimension(q, v) || (filtered && id % 3 == 0)) continue;
        const float score = static_cast<float>(wp::engine::sparse_dot(q, v));
        if (thresholded && score < threshold) continue;
        expected.emplace_back(-score, id);
      }
      std::sort(expected.begin(), expected.end());
      if (expected.size() > 10) expected.resize(10);
      const auto hits = index.search(
          q, 10,
          filtered ? std::function<bool(uint64_t)>([](uint64_t id) { return id % 3 != 0; })
                   : nullptr,
          thresholded ? &threshold : nullptr);
      ASSERT_EQ(hits.size(), expected.size()) << "round " << round << " query " << qi;
      for (size_t j = 0; j < hits.size(); ++j) {
        EXPECT_EQ(hits[j].id, expected[j].second) << "round " << round << " query " << qi;
        EXPECT_EQ(hits[j].score, -expected[j].first);
      }
    }
  };
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 400; ++i) {
      const uint64_t id = rng() % 500;
      const int what = static_cast<int>(rng() % 10);
      if (what < 6) {
        SparseVector v = random_sparse(rng, dims, 12);
        wp::engine::sort_sparse(v, "v");
        live[id] = v;
        index.set(id, v);
      } else if (what < 7) {
        live[id] = SparseVector();
        index.set(id, SparseVector());
      } else {
        EXPECT_EQ(index.remove(id), live.erase(id) == 1);
      }
    }
    check(round);
  }
  EXPECT_GT(index.memory_bytes(), live.size() * 8);
  for (const auto& [id, v] : live) index.remove(id);
  EXPECT_EQ(index.size(), 0u);
  SparseVector q{{1, 2, 3}, {1, 1, 1}};
  EXPECT_TRUE(index.search(q, 10, nullptr).empty());
}

TEST(SparseVector, ARecordKeepsItsSparseVectorsBesideItsDenseOnes) {
  wp::engine::PointStore::Record r;
  r.id = wp::engine::PointId::number(42);
  r.internal = 7;
  r.vectors["img"] = {1, 2, 3};
  r.sparse["text"] = {{1, 5, 9}, {0.5f, 1.5f, -2}};
  r.sparse["empty"] = {};
  r.payload = {{"k", "v"}};
  const std::string value = wp::engine::PointStore::encode(r);
  const auto back = wp::engine::PointStore::decode("p:" + r.id.key(), value);
  EXPECT_EQ(back.vectors, r.vectors);
  EXPECT_EQ(back.sparse, r.sparse);
  EXPECT_EQ(back.payload, r.payload);
  EXPECT_EQ(back.internal, 7u);
  // The unnamed vector with a sparse one, and a point with only sparse vectors.
  r.vectors = {{"", {4, 5}}};
  EXPECT_EQ(
      wp::engine::PointStore::decode("p:" + r.id.key(), wp::engine::PointStore::encode(r)).sparse,
      r.sparse);
  r.vectors.clear();
  const auto only =
      wp::engine::PointStore::decode("p:" + r.id.key(), wp::engine::PointStore::encode(r));
  EXPECT_TRUE(only.vectors.empty());
  EXPECT_EQ(only.sparse, r.sparse);
  EXPECT_EQ(only.payload, r.payload);
  // Every cut of a record with sparse vectors is refused, never read past its end.
  r.vectors["img"] = {1, 2, 3};
  const std::string whole = wp::engine::PointStore::encode(r);
  size_t refused = 0;
  for (size_t cut = 0; cut < whole.size(); ++cut) {
    try {
      wp::engine::PointStore::decode("p:" + r.id.key(), whole.substr(0, cut));
    } catch (const std::exception&) {  // the layout (InternalError) or the payload refused
      ++refused;
    }
  }
  EXPECT_EQ(refused, whole.size());
}

/// The test's own model of a collection's sparse space: the points' vectors and what a query
/// should answer.
struct SparseModel {
  std::map<int, SparseVector> vectors;
  bool idf = false;
  double weight(uint32_t d) const {
    if (!idf) return 1.0;
    double n = 0, total = 0;
    for (const auto& [id, v] : vectors) {
      total += v.size() > 0;
      n += std::find(v.indices.begin(), v.indices.end(), d) != v.indices.end();
    }
    return std::log((total - n + 0.5) / (n + 0.5) + 1.0);
  }
  /// (id, score) of the best `limit` points from `offset` among `among` (all when empty) that
  /// `keep` admits, highest first, ties by id; `overlap`: only points sharing a dimension (a
  /// search; a rescoring scores every point holding the vector).
  Want answer(const SparseVector& query, size_t limit, size_t offset,
              const std::function<bool(int)>& keep, const std::set<int>& among = {},
              bool overlap = true) const {
    SparseVector q = query;
    wp::engine::sort_sparse(q, "q");
    for (size_t j = 0; j < q.size(); ++j) {
      q.values[j] = static_cast<float>(q.values[j] * weight(q.indices[j]));
    }
    std::vector<std::pair<int, double>> scored;
    for (const auto& [id, v] : vectors) {
      if (!among.empty() && !among.count(id)) continue;
      if ((overlap && !shares_a_dimension(q, v)) || !keep(id)) continue;
      scored.emplace_back(id, wp::engine::sparse_dot(q, v));
    }
    return ranked(std::move(scored), limit, offset);
  }
};
class SparseVectors : public RankedApiTest {};

TEST_F(SparseVectors, AHybridCollectionAnswersAsTheDotProductsOfItsPoints) {
  ok("PUT", "/collections/h",
     {{"vectors", {{"img", {{"size", 4}, {"distance", "Dot"}}}}},
      {"sparse_vectors",
       {{"text", json::object()},
        {"bm25", {{"modifier", "idf"}, {"index", {{"on_disk", false}}}}}}}});
  const json info = ok("GET", "/collections/h");
  EXPECT_EQ(info["config"]["params"]["sparse_vectors"],
            json({{"text", {{"modifier", "none"}}}, {"bm25", {{"modifier", "idf"}}}}));
  EXPECT_EQ(info["config"]["params"]["vectors"]["img"]["size"], 4);

  std::mt19937 rng(7);
  SparseModel text, bm25;
  bm25.idf = true;
  std::map<int, std::vector<float>> img;
  std::map<int, int> group;
  // 300 points: 200 by "points" (text unsorted as given), 100 by "batch"; some without text.
  json points = json::array();
  for (int id = 0; id < 200; ++id) {
    json vector = json::object();
    std::vector<float> d(4);
    for (float& x : d) x = static_cast<float>(static_cast<int>(rng() % 7) - 3);
    vector["img"] = d;
    img[id] = d;
    if (id % 10 != 0) {
      const SparseVector t = random_sparse(rng, 60, 8);
      vector["text"] = to_json(t);
      text.vectors[id] = t;
      wp::engine::sort_sparse(text.vectors[id], "t");
    }
    const SparseVector b = random_sparse(rng, 40, 5);
    vector["bm25"] = to_json(b);
    bm25.vectors[id] = b;
    wp::engine::sort_sparse(bm25.vectors[id], "b");
    group[id] = id % 4;
    points.push_back({{"id", id}, {"vector", vector}, {"payload", {{"g", id % 4}}}});
  }
  ok("PUT", "/collections/h/points?wait=true", {{"points", points}});
  json ids = json::array(), texts = json::array(), bms = json::array(), imgs = json::array(),
       payloads = json::array();
  for (int id = 200; id < 300; ++id) {
    SparseVector t = random_sparse(rng, 60, 8), b = random_sparse(rng, 40, 5);
    ids.push_back(id);
    texts.push_back(to_json(t));
    bms.push_back(to_json(b));
    std::vector<float> d{1, 0, 0, static_cast<float>(id % 3)};
    imgs.push_back(d);
    img[id] = d;
    payloads.push_back({{"g", id % 4}});
    group[id] = id % 4;
    wp::engine::sort_sparse(t, "t");
    wp::engine::sort_sparse(b, "b");
    text.vectors[id] = t;
    bm25.vectors[id] = b;
  }
  ok("PUT", "/collections/h/points?wait=true",
     {{"batch",
       {{"ids", ids},
        {"vectors", {{"img", imgs}, {"text", texts}, {"bm25", bms}}},
        {"payloads", payloads}}}});
  EXPECT_EQ(ok("POST", "/collections/h/points/count", json::object())["count"], 300);

  auto all = [](int) { return true; };
  auto g1 = [&](int id) { return group.at(id) == 1; };
  const json g1_filter{{"must", {{{"key", "g"}, {"match", {{"value", 1}}}}}}};
  // The searches, every way of asking.
  auto check_searches = [&](const std::string& when) {
    std::mt19937 qrng(3);
    for (int i = 0; i < 12; ++i) {
      const SparseVector q = random_sparse(qrng, 60, 6);
      const SparseVector qb = random_sparse(qrng, 40, 4);
      expect_same(
          hits_of(ok("POST", "/collections/h/points/search",
                     {{"vector", {{"name", "text"}, {"vector", to_json(q)}}}, {"limit", 10}})),
          text.answer(q, 10, 0, all), when + " search " + std::to_string(i));
      expect_same(hits_of(ok("POST", "/collections/h/points/query",
                             {{"query", to_json(q)},
                              {"using", "text"},
                              {"limit", 7},
                              {"offset", 3},
                              {"filter", g1_filter}})),
                  text.answer(q, 7, 3, g1), when + " filtered query " + std::to_string(i));
      expect_same(
          hits_of(ok("POST", "/collections/h/points/query",
                     {{"query", {{"nearest", to_json(qb)}}}, {"using", "bm25"}, {"limit", 10}})),
          bm25.answer(qb, 10, 0, all), when + " idf query " + std::to_string(i));
    }
    // A score threshold keeps the scores at or above it.
    const SparseVector q{{1, 2, 3, 4, 5, 6, 7, 8}, {1, 1, 1, 1, 1, 1, 1, 1}};
    const Want every = text.answer(q, 300, 0, all);
    ASSERT_GT(every.top.size(), 20u);
    const double threshold = every.top[12].second;
    Want above = every;
    above.top.clear();
    for (const auto& h : every.top) {
      if (h.second >= threshold && above.top.size() < 100) above.top.push_back(h);
    }
    expect_same(hits_of(ok("POST", "/collections/h/points/query",
                           {{"query", to_json(q)},
                            {"using", "text"},
                            {"limit", 100},
                            {"score_threshold", threshold}})),
                above, when + " threshold");
  };
  check_searches("written");
  // From here on the filter on g is served by a payload index (above, by testing payloads).
  ok("PUT", "/collections/h/index?wait=true", {{"field_name", "g"}, {"field_schema", "integer"}});

  // Dense prefetch rescored by a sparse query: the prefetched points holding the vector, each
  // scored by its dot product (no shared dimension scores 0).
  {
    const std::vector<float> at{1, 1, 0, 0};
    std::vector<std::pair<float, int>> dense;
    for (const auto& [id, v] : img) dense.emplace_back(-(v[0] * at[0] + v[1] * at[1]), id);
    std::sort(dense.begin(), dense.end());
    std::set<int> prefetched;
    const json pre =
        ok("POST", "/collections/h/points/query", {{"query", at}, {"using", "img"}, {"limit", 40}});
    for (const json& p : pre["points"]) prefetched.insert(p["id"].get<int>());
    ASSERT_EQ(prefetched.size(), 40u);
    const SparseVector q = random_sparse(rng, 60, 10);
    expect_same(hits_of(ok("POST", "/collections/h/points/query",
                           {{"prefetch", {{"query", at}, {"using", "img"}, {"limit", 40}}},
                            {"query", to_json(q)},
                            {"using", "text"},
                            {"limit", 15}})),
                text.answer(q, 15, 0, all, prefetched, false), "rescored prefetch");
    // Fused with a sparse prefetch: every point of the answer is one of the two lists'.
    const json fused = ok("POST", "/collections/h/points/query",
                          {{"prefetch",
                            {{{"query", at}, {"using", "img"}, {"limit", 20}},
                             {{"query", to_json(q)}, {"using", "text"}, {"limit", 20}}}},
                           {"query", {{"fusion", "rrf"}}},
                           {"limit", 10}});
    ASSERT_EQ(fused["points"].size(), 10u);
    const auto sparse_top = text.answer(q, 20, 0, all).top;
    for (const json& p : fused["points"]) {
      const int id = p["id"];
      const bool in_sparse = std::any_of(sparse_top.begin(), sparse_top.end(),
                                         [&](const auto& h) { return h.first == id; });
      EXPECT_TRUE(prefetched.count(id) || in_sparse) << id;
    }
  }

  // A point id as the query: its own vector, the point left out.
  {
    const int id = 17;
    auto others = [&](int x) { return x != id; };
    expect_same(hits_of(ok("POST", "/collections/h/points/query",
                           {{"query", id}, {"using", "text"}, {"limit", 5}})),
                text.answer(text.vectors.at(id), 5, 0, others), "by id");
  }

  // Grouped by a payload key: each group's hits are that group's best.
  {
    const SparseVector q{{1, 2, 3, 4, 5}, {1, 2, 1, 2, 1}};
    const json groups = ok("POST", "/collections/h/points/query/groups",
                           {{"query", to_json(q)},
                            {"using", "text"},
                            {"group_by", "g"},
                            {"group_size", 2},
                            {"limit", 4}})["groups"];
    ASSERT_EQ(groups.size(), 4u) << groups;
    for (const json& g : groups) {
      const int gid = g["id"];
      expect_same(hits_of(g["hits"]),
                  text.answer(q, 2, 0, [&](int id) { return group.at(id) == gid; }),
                  "group " + std::to_string(gid));
    }
  }

  // Read back: sorted by index, values with them; the dense one beside it.
  {
    const json got =
        ok("POST", "/collections/h/points", {{"ids", {201}}, {"with_vector", true}})[0]["vector"];
    EXPECT_EQ(got["text"], to_json(text.vectors.at(201)));
    EXPECT_EQ(got["bm25"], to_json(bm25.vectors.at(201)));
    EXPECT_EQ(got["img"], json(img.at(201)));
    const json only = ok("POST", "/collections/h/points",
                         {{"ids", {10}}, {"with_vector", {"text", "img"}}})[0]["vector"];
    EXPECT_FALSE(only.contains("text")) << only;  // point 10 has none
    EXPECT_FALSE(only.contains("bm25")) << only;
    EXPECT_TRUE(only.contains("img")) << only;
  }

  // has_vector sees sparse vectors; update_vectors and delete_vectors change them.
  auto count_with = [&](const std::string& name) {
    return ok("POST", "/collections/h/points/count",
              {{"filter", {{"must", {{{"has_vector", name}}}}}}})["count"]
        .get<size_t>();
  };
  EXPECT_EQ(count_with("text"), text.vectors.size());
  const SparseVector fresh{{59, 3}, {4, 2}};
  ok("PUT", "/collections/h/points/vectors?wait=true",
     {{"points", {{{"id", 10}, {"vector", {{"text", to_json(fresh)}}}}}}});
  text.vectors[10] = {{3, 59}, {2, 4}};
  ok("POST", "/collections/h/points/vectors/delete?wait=true",
     {{"points", {20, 21, 22}}, {"vector", {"text"}}});
  for (int id : {20, 21, 22}) text.vectors.erase(id);
  EXPECT_EQ(count_with("text"), text.vectors.size());
  ok("POST", "/collections/h/points/delete?wait=true", {{"points", {30, 31}}});
  for (int id : {30, 31}) {
    text.vectors.erase(id);
    bm25.vectors.erase(id);
    img.erase(id);
  }
  // Upserting a point again replaces its sparse vectors (one left out: gone).
  {
    json point{{"id", 40}, {"vector", {{"img", {0, 0, 0, 1}}, {"bm25", to_json(fresh)}}}};
    ok("PUT", "/collections/h/points?wait=true", {{"points", json::array({point})}});
  }
  text.vectors.erase(40);
  bm25.vectors[40] = {{3, 59}, {2, 4}};
  img[40] = {0, 0, 0, 1};
  EXPECT_EQ(count_with("text"), text.vectors.size());
  EXPECT_EQ(count_with("bm25"), bm25.vectors.size());
  check_searches("changed");
  restart();
  EXPECT_EQ(count_with("text"), text.vectors.size());
  check_searches("restarted");
  // Qdrant's collection update turns idf on for "text": the next queries weigh by it, and so
  // after a restart.
  ok("PATCH", "/collections/h", {{"sparse_vectors", {{"text", {{"modifier", "idf"}}}}}});
  EXPECT_EQ(ok("GET", "/collections/h")["config"]["params"]["sparse_vectors"]["text"],
            json({{"modifier", "idf"}}));
  text.idf = true;
  check_searches("text weighed by idf");
  restart();
  check_searches("text weighed by idf, restarted");
  expect_400("PATCH", "/collections/h", {{"sparse_vectors", {{"img", {{"modifier", "idf"}}}}}},
             "sparse_vectors: Not existing vector name error: img");
  expect_400("PATCH", "/collections/h", {{"sparse_vectors", {{"text", {{"modifier", "tfidf"}}}}}},
             "sparse_vectors.text.modifier");

  // Refused, naming the field.
  expect_400(
      "PUT", "/collections/h/points",
      {{"points", {{{"id", 1}, {"vector", {{"text", {{"indices", {1, 2}}, {"values", {1}}}}}}}}}},
      "points[0].vector.text");
  expect_400("PUT", "/collections/h/points",
             {{"points",
               {{{"id", 1}, {"vector", {{"text", {{"indices", {1, 1}}, {"values", {1, 2}}}}}}}}}},
             "index 1 is given twice");
  expect_400(
      "PUT", "/collections/h/points",
      {{"points", {{{"id", 1}, {"vector", {{"text", {{"indices", {-1}}, {"values", {1}}}}}}}}}},
      "points[0].vector.text.indices[0]");
  expect_400(
      "PUT", "/collections/h/points",
      {{"points", {{{"id", 1}, {"vector", {{"img", {{"indices", {1}}, {"values", {1}}}}}}}}}},
      "a dense vector");
  expect_400("PUT", "/collections/h/points",
             {{"points", {{{"id", 1}, {"vector", {{"text", {1, 2, 3, 4}}}}}}}}, "text");
  expect_400("POST", "/collections/h/points/query", {{"query", {1, 2, 3, 4}}, {"using", "text"}},
             "is a sparse vector");
  expect_400("POST", "/collections/h/points/query", {{"query", to_json(fresh)}, {"using", "img"}},
             "is a dense vector");
  expect_400("POST", "/collections/h/points/query",
             {{"query", {{"recommend", {{"positive", {1}}}}}}, {"using", "text"}},
             "is a sparse vector");
  expect_400("POST", "/collections/h/points/query",
             {{"query", {{"indices", {1}}, {"values", {1}}, {"x", 1}}}, {"using", "text"}},
             "query");
  EXPECT_EQ(count_with("text"), text.vectors.size());  // nothing refused was written
}

TEST_F(SparseVectors, ASparseOnlyCollectionAndItsConfigurationErrors) {
  ok("PUT", "/collections/s", {{"sparse_vectors", {{"words", {{"modifier", "idf"}}}}}});
  const json info = ok("GET", "/collections/s");
  EXPECT_EQ(info["config"]["params"]["vectors"], json::object());
  SparseModel words;
  words.idf = true;
  std::mt19937 rng(11);
  json points = json::array();
  for (int id = 1; id <= 80; ++id) {
    SparseVector v = random_sparse(rng, 30, 6);
    points.push_back({{"id", id}, {"vector", {{"words", to_json(v)}}}});
    wp::engine::sort_sparse(v, "v");
    words.vectors[id] = v;
  }
  points.push_back(
      {{"id", 81},
       {"vector", {{"words", {{"indices", json::array()}, {"values", json::array()}}}}}});
  words.vectors[81] = SparseVector();  // held, in no posting, not counted by idf
  ok("PUT", "/collections/s/points?wait=true", {{"points", points}});
  const json empty = ok("POST", "/collections/s/points", {{"ids", {81}}, {"with_vector", true}});
  EXPECT_EQ(empty[0]["vector"]["words"],
            json({{"indices", json::array()}, {"values", json::array()}}));
  for (int i = 0; i < 10; ++i) {
    const SparseVector q = random_sparse(rng, 30, 4);
    expect_same(hits_of(ok("POST", "/collections/s/points/query",
                           {{"query", to_json(q)}, {"using", "words"}, {"limit", 10}})),
                words.answer(q, 10, 0, [](int) { return true; }), "query " + std::to_string(i));
  }
  expect_same(hits_of(ok("POST", "/collections/s/points/query",
                         {{"query", {{"indices", json::array()}, {"values", json::array()}}},
                          {"using", "words"}})),
              Want(), "an empty query finds nothing");
  // A collection without dense vectors: its metrics, a snapshot recovered into another
  // collection, and the dense-only index routes naming what is missing.
  EXPECT_NE(call("GET", "/metrics").body.find("waypoint_points{collection=\"s\"} 81"),
            std::string::npos);
  expect_400("GET", "/waypoint/collections/s/vector_index", json(), "Not existing vector name");
  const std::string snapshot = ok("POST", "/collections/s/snapshots?wait=true")["name"];
  ok("PUT", "/collections/s2/snapshots/recover",
     {{"location", "file://" + engine_->snapshots_dir() + "/s/" + snapshot}});
  {
    const SparseVector q{{1, 2, 3}, {1, 2, 3}};
    expect_same(hits_of(ok("POST", "/collections/s2/points/query",
                           {{"query", to_json(q)}, {"using", "words"}, {"limit", 10}})),
                words.answer(q, 10, 0, [](int) { return true; }), "recovered from a snapshot");
  }
  restart();
  const SparseVector q{{1, 2, 3}, {1, 2, 3}};
  expect_same(hits_of(ok("POST", "/collections/s/points/query",
                         {{"query", to_json(q)}, {"using", "words"}, {"limit", 10}})),
              words.answer(q, 10, 0, [](int) { return true; }), "restarted");

  // An answer's vectors are bounded by the largest sparse vector the space has held: 20,000
  // dimensions make 40,000 numbers a point, so 420 points with vectors exceed 2^24.
  {
    SparseVector big;
    for (uint32_t d = 0; d < 20000; ++d) {
      big.indices.push_back(d * 3);
      big.values.push_back(1);
    }
    ok("PUT", "/collections/s/points?wait=true",
       {{"points", json::array({{{"id", 500}, {"vector", {{"words", to_json(big)}}}}})}});
    const json body{{"query", to_json(q)}, {"using", "words"}, {"limit", 420}};
    json with = body;
    with["with_vector"] = true;
    expect_400("POST", "/collections/s/points/query", with, "vector values one answer may hold");
    EXPECT_FALSE(ok("POST", "/collections/s/points/query", body)["points"].empty());
  }
  expect_400("PUT", "/collections/bad",
             {{"vectors", {{"a", {{"size", 2}, {"distance", "Dot"}}}}},
              {"sparse_vectors", {{"a", json::object()}}}},
             "already the name of a dense vector");
  expect_400("PUT", "/collections/bad", {{"sparse_vectors", {{"a", {{"modifier", "bm25"}}}}}},
             "sparse_vectors.a.modifier");
  expect_400("PUT", "/collections/bad",
             {{"sparse_vectors", {{"a", {{"index", {{"datatype", "uint8"}}}}}}}},
             "sparse_vectors.a.index.datatype");
  expect_400("PUT", "/collections/bad", {{"sparse_vectors", {{"a", {{"size", 3}}}}}},
             "sparse_vectors.a");
  expect_400("PUT", "/collections/bad", json::object(), "vectors: missing");
  EXPECT_EQ(call("GET", "/collections/bad").status, 404u);
}

}  // namespace
