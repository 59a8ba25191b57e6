// Issue 16: named vectors (several vector spaces per collection, each with its own size,
// distance and index), `using`, with_vector by name, update and delete of named vectors, and the
// query family's prefetch with fusion (rrf, dbsf) or re-scoring, through the REST handlers.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <thread>
#include <tuple>

#include "api_fixture.h"

using nlohmann::json;
using wp::http::Response;
using wp::test::ApiTest;

namespace {

class NamedVectors : public ApiTest {
 protected:
  /// "nv": image (4-d, Euclid) and text (2-d, Cosine, m 8). Points 1, 4, 5 have both vectors,
  /// 2 only image, 3 only text; payload k is "a" on 1, 3, 4.
  void make() {
    ok("PUT", "/collections/nv",
       {{"vectors",
         {{"image", {{"size", 4}, {"distance", "Euclid"}}},
          {"text", {{"size", 2}, {"distance", "Cosine"}, {"hnsw_config", {{"m", 8}}}}}}}});
    ok("PUT", "/collections/nv/points?wait=true",
       {{"points",
         {{{"id", 1},
           {"vector", {{"image", {0, 0, 0, 0}}, {"text", {1, 0}}}},
           {"payload", {{"k", "a"}}}},
          {{"id", 2}, {"vector", {{"image", {1, 0, 0, 0}}}}, {"payload", {{"k", "b"}}}},
          {{"id", 3}, {"vector", {{"text", {0, 1}}}}, {"payload", {{"k", "a"}}}}}}});
    ok("PUT", "/collections/nv/points?wait=true",
       {{"batch",
         {{"ids", {4, 5}},
          {"vectors", {{"image", {{2, 0, 0, 0}, {3, 0, 0, 0}}}, {"text", {{1, 1}, {-1, 0}}}}},
          {"payloads", {{{"k", "a"}}, {{"k", "b"}}}}}}});
  }
  /// One field of every point of a query's answer, in order.
  template <typename T>
  std::vector<T> field_of_points(const json& body, const char* field) {
    std::vector<T> out;
    const json answer = ok("POST", "/collections/nv/points/query", body);
    for (const json& p : answer["points"]) out.push_back(p[field].get<T>());
    return out;
  }
  std::vector<int> ids(const json& body) { return field_of_points<int>(body, "id"); }
  std::vector<double> scores(const json& body) { return field_of_points<double>(body, "score"); }
  json vectors_of(int id, const json& with_vector = true) {
    return ok("POST", "/collections/nv/points",
              {{"ids", {id}}, {"with_vector", with_vector}})[0]["vector"];
  }
  size_t count() { return ok("POST", "/collections/nv/points/count", json::object())["count"]; }
  void expect_400(const std::string& method, const std::string& path, const json& body,
                  const std::string& field) {
    const Response r = call(method, path, body.dump());
    EXPECT_EQ(r.status, 400u) << body << " -> " << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << body << " -> " << r.body;
  }
  void wait_ready(const std::string& vector) {
    for (int i = 0; i < 500; ++i) {
      const json s = ok("GET", "/waypoint/collections/nv/vector_index?using=" + vector);
      if (s["state"] != "building") {
        EXPECT_EQ(s["state"], "ready") << s;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    FAIL() << "the build of " << vector << " never ended";
  }
};

const json kImageQuery = {0.9, 0, 0, 0};
const json kTextQuery = {1, 0};

}  // namespace

TEST_F(NamedVectors, EachSpaceIsSearchedWithItsOwnSizeDistanceAndPoints) {
  make();
  const json info = ok("GET", "/collections/nv");
  const json& params = info["config"]["params"]["vectors"];
  EXPECT_EQ(params["image"]["size"], 4);
  EXPECT_EQ(params["image"]["distance"], "Euclid");
  EXPECT_EQ(params["image"]["hnsw_config"]["m"], 16);
  EXPECT_EQ(params["text"]["distance"], "Cosine");
  EXPECT_EQ(params["text"]["hnsw_config"]["m"], 8);
  EXPECT_EQ(info["points_count"], 5);
  EXPECT_EQ(info["indexed_vectors_count"], 8);  // 4 image + 4 text
  // Found by fuzz_http_api: /metrics asked for the build state of the unnamed vector, a 500 once
  // a collection had only named ones.
  const Response metrics = call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200u) << metrics.body;
  EXPECT_NE(metrics.body.find("waypoint_points{collection=\"nv\"} 5"), std::string::npos);

  // Euclid on image (3 has none): distances 0.1, 0.9, 1.1, 2.1.
  EXPECT_EQ(ids({{"query", kImageQuery}, {"using", "image"}}), std::vector<int>({2, 1, 4, 5}));
  const std::vector<double> d = scores({{"query", kImageQuery}, {"using", "image"}});
  EXPECT_NEAR(d[0], 0.1, 1e-5);
  EXPECT_NEAR(d[3], 2.1, 1e-5);
  // Cosine on text (2 has none): 1, 0.707, 0, -1.
  EXPECT_EQ(ids({{"query", kTextQuery}, {"using", "text"}}), std::vector<int>({1, 4, 3, 5}));
  EXPECT_NEAR(scores({{"query", kTextQuery}, {"using", "text"}})[1], std::sqrt(0.5), 1e-5);
  // The older search route names the space in the vector; a point id queries by its vector of
  // the space used.
  const json old = ok("POST", "/collections/nv/points/search",
                      {{"vector", {{"name", "text"}, {"vector", kTextQuery}}}, {"limit", 2}});
  EXPECT_EQ(old[0]["id"], 1);
  EXPECT_EQ(old[1]["id"], 4);
  // By id: the nearest of point 5's image vector (3, 0, 0, 0), point 5 itself left out.
  EXPECT_EQ(ids({{"query", 5}, {"using", "image"}, {"limit", 2}}), std::vector<int>({4, 2}));
  expect_400("POST", "/collections/nv/points/query", {{"query", 2}, {"using", "text"}},
             "query: point 2 has no vector");

  // with_vector: every vector a point has, or those named.
  EXPECT_EQ(vectors_of(1), json({{"image", {0, 0, 0, 0}}, {"text", {1, 0}}}));
  EXPECT_EQ(vectors_of(2), json({{"image", {1, 0, 0, 0}}}));
  EXPECT_EQ(vectors_of(1, {"text"}), json({{"text", {1, 0}}}));
  EXPECT_EQ(vectors_of(2, {"text"}), json::object());
  const json hit =
      ok("POST", "/collections/nv/points/query",
         {{"query", kTextQuery}, {"using", "text"}, {"limit", 1}, {"with_vector", {"image"}}});
  EXPECT_EQ(hit["points"][0]["vector"], json({{"image", {0, 0, 0, 0}}}));
}

TEST_F(NamedVectors, BadNamesAndDimensionsAre400sNamingTheFieldAndWriteNothing) {
  make();
  const std::string points = "/collections/nv/points?wait=true";
  expect_400("PUT", points, {{"points", {{{"id", 9}, {"vector", {{"image", {1, 2, 3}}}}}}}},
             "points[0].vector.image: expected dimension 4, got 3");
  expect_400("PUT", points,
             {{"points",
               {{{"id", 9}, {"vector", {{"image", {1, 2, 3, 4}}}}},
                {{"id", 10}, {"vector", {{"audio", {1}}}}}}}},
             "points[1].vector: Not existing vector name error: audio");
  expect_400("PUT", points, {{"points", {{{"id", 9}, {"vector", {1, 2, 3, 4}}}}}},
             "Not existing vector name error: ");
  expect_400(
      "PUT", points,
      {{"points", {{{"id", 9}, {"vector", {{"text", {{"indices", {1}}, {"values", {1}}}}}}}}}},
      "is a dense vector: give it as an array of 2 numbers");
  expect_400("PUT", points,
             {{"batch", {{"ids", {9, 10}}, {"vectors", {{"image", {{1, 2, 3, 4}}}}}}}},
             "batch.vectors.image: expected an array of 2 vectors");
  expect_400("PUT", "/collections/nv/points/vectors",
             {{"points", {{{"id", 1}, {"vector", {{"text", {1, 2, 3}}}}}}}},
             "points[0].vector.text: expected dimension 2");
  expect_400("PUT", "/collections/nv/points/vectors",
             {{"points", {{{"id", 1}, {"vector", json::object()}}}}},
             "points[0].vector: expected at least one vector");
  expect_400("POST", "/collections/nv/points/vectors/delete",
             {{"points", {1}}, {"vector", {"image", "audio"}}},
             "vector: Not existing vector name error: audio");
  expect_400("POST", "/collections/nv/points/query", {{"query", kTextQuery}, {"using", "audio"}},
             "using: Not existing vector name error: audio");
  expect_400("POST", "/collections/nv/points/query", {{"query", kTextQuery}},
             "Not existing vector name error: ");
  expect_400("POST", "/collections/nv/points/query", {{"query", kImageQuery}, {"using", "text"}},
             "vector: expected dimension 2, got 4 (vector");
  expect_400("POST", "/collections/nv/points/search",
             {{"vector", {{"name", "audio"}, {"vector", {1}}}}, {"limit", 1}}, "audio");
  expect_400("POST", "/collections/nv/points", {{"ids", {1}}, {"with_vector", {"audio"}}},
             "with_vector: Not existing vector name error: audio");
  expect_400("POST", "/collections/nv/points", {{"ids", {1}}, {"with_vector", "image"}},
             "with_vector: expected true, false or a list of vector names");
  // Nothing was written by any of them.
  EXPECT_EQ(count(), 5u);
  EXPECT_EQ(vectors_of(1), json({{"image", {0, 0, 0, 0}}, {"text", {1, 0}}}));
  // Creating: every vector's params are checked by name.
  for (const auto& [body, field] : std::vector<std::pair<json, std::string>>{
           {{{"vectors", json::object()}}, "vectors: expected"},
           {{{"vectors", {{"a", {{"size", 0}, {"distance", "Dot"}}}}}}, "vectors.a.size"},
           {{{"vectors", {{"a", {{"size", 2}}}}}}, "vectors.a.distance: missing"},
           {{{"vectors", {{"a", {{"size", 2}, {"distance", "Dot"}, {"colour", 1}}}}}},
            "vectors.a.colour"},
           {{{"vectors", {{"a", {{"size", 2}, {"distance", "Dot"}, {"datatype", "uint8"}}}}}},
            "vectors.a.datatype"},
           {{{"vectors", {{"a", {{"size", 2}, {"distance", "Dot"}, {"hnsw_config", {{"m", 1}}}}}}}},
            "vectors.a.hnsw_config.m"},
           {{{"vectors", {{"a", {{"size", 2}, {"distance", "Dot"}}}}},
             {"sparse_vectors", {{"a", json::object()}}}},
            "is already the name of a dense vector"},
       }) {
    expect_400("PUT", "/collections/bad", body, field);
  }
  EXPECT_EQ(ok("GET", "/collections/bad/exists")["exists"], false);
}

TEST_F(NamedVectors, UpdateAndDeleteTouchOnlyTheNamedVectorsAndSurviveARestart) {
  make();
  // Update: point 2 gains a text vector and keeps its image vector and payload.
  ok("PUT", "/collections/nv/points/vectors?wait=true",
     {{"points", {{{"id", 2}, {"vector", {{"text", {0, -1}}}}}}}});
  EXPECT_EQ(vectors_of(2), json({{"image", {1, 0, 0, 0}}, {"text", {0, -1}}}));
  EXPECT_EQ(ids({{"query", {0, -1}}, {"using", "text"}, {"limit", 1}}), std::vector<int>({2}));
  // Delete: point 1 loses its image vector (not the point, nor its text vector).
  ok("POST", "/collections/nv/points/vectors/delete?wait=true",
     {{"points", {1}}, {"vector", {"image"}}});
  EXPECT_EQ(vectors_of(1), json({{"text", {1, 0}}}));
  EXPECT_EQ(ids({{"query", kImageQuery}, {"using", "image"}}), std::vector<int>({2, 4, 5}));
  EXPECT_EQ(ids({{"query", kTextQuery}, {"using", "text"}, {"limit", 1}}), std::vector<int>({1}));
  EXPECT_EQ(count(), 5u);
  // By filter, inside a batch: the text vectors of every point with k = "b" (2 and 5).
  ok("POST", "/collections/nv/points/batch?wait=true",
     {{"operations",
       {{{"delete_vectors",
          {{"filter", {{"must", {{{"key", "k"}, {"match", {{"value", "b"}}}}}}}},
           {"vector", {"text"}}}}}}}});
  EXPECT_EQ(vectors_of(5), json({{"image", {3, 0, 0, 0}}}));
  EXPECT_EQ(ids({{"query", kTextQuery}, {"using", "text"}}), std::vector<int>({1, 4, 3}));
  // An upsert replaces the whole point: vectors it does not give are gone.
  ok("PUT", "/collections/nv/points?wait=true",
     {{"points", {{{"id", 4}, {"vector", {{"text", {1, 1}}}}}}}});
  const float unit = std::sqrt(0.5f);  // cosine vectors are stored normalised
  EXPECT_EQ(vectors_of(4), json({{"text", {unit, unit}}}));
  EXPECT_EQ(ok("GET", "/collections/nv")["indexed_vectors_count"], 5);  // image 2, 5; text 1, 3, 4

  // PATCH rebuilds one space's index with its own parameters; the other keeps its own.
  ok("PATCH", "/collections/nv", {{"vectors", {{"text", {{"hnsw_config", {{"m", 12}}}}}}}});
  wait_ready("text");
  json params = ok("GET", "/collections/nv")["config"]["params"]["vectors"];
  EXPECT_EQ(params["text"]["hnsw_config"]["m"], 12);
  EXPECT_EQ(params["image"]["hnsw_config"]["m"], 16);
  expect_400("PATCH", "/collections/nv", {{"vectors", {{"audio", {{"hnsw_config", {{"m", 12}}}}}}}},
             "vectors: Not existing vector name error: audio");

  const json before_text = ok("POST", "/collections/nv/points/query",
                              {{"query", kTextQuery}, {"using", "text"}, {"with_vector", true}});
  restart();
  EXPECT_EQ(ok("POST", "/collections/nv/points/query",
               {{"query", kTextQuery}, {"using", "text"}, {"with_vector", true}}),
            before_text);
  EXPECT_EQ(ids({{"query", kImageQuery}, {"using", "image"}}), std::vector<int>({2, 5}));
  params = ok("GET", "/collections/nv")["config"]["params"]["vectors"];
  EXPECT_EQ(params["text"]["hnsw_config"]["m"], 12);
  EXPECT_EQ(vectors_of(1), json({{"text", {1, 0}}}));
}

// Qdrant's has_vector condition: a point passes where it holds the named vector ("" the unnamed
// one), asked of the collection's indexes for stored points and of the write for points a batch
// has just written; in every route that filters (count, scroll, search, delete by filter).
TEST_F(NamedVectors, HasVectorFiltersByTheVectorsEachPointHolds) {
  make();  // image: 1, 2, 4, 5; text: 1, 3, 4, 5
  auto has = [](const std::string& name) { return json{{"has_vector", name}}; };
  auto counted = [&](const json& filter) {
    return ok("POST", "/collections/nv/points/count", {{"filter", filter}})["count"].get<int>();
  };
  auto scrolled = [&](const json& filter) {
    const json page =
        ok("POST", "/collections/nv/points/scroll", {{"filter", filter}, {"limit", 100}});
    std::vector<int> out;
    for (const json& p : page["points"]) out.push_back(p["id"].get<int>());
    return out;
  };
  EXPECT_EQ(scrolled({{"must", {has("image")}}}), std::vector<int>({1, 2, 4, 5}));
  EXPECT_EQ(scrolled({{"must", {has("text")}}}), std::vector<int>({1, 3, 4, 5}));
  EXPECT_EQ(scrolled({{"must_not", {has("text")}}}), std::vector<int>({2}));
  EXPECT_EQ(scrolled({{"must", {has("text"), {{"key", "k"}, {"match", {{"value", "a"}}}}}}}),
            std::vector<int>({1, 3, 4}));
  EXPECT_EQ(counted({{"should", {has("image"), has("text")}}}), 5);
  EXPECT_EQ(counted({{"must", {has("audio")}}}), 0);  // an unknown name: no point (as Qdrant)
  EXPECT_EQ(counted({{"must", {has("")}}}), 0);       // no unnamed vector here
  // A search of one space filtered by another: image distances 0.9 (1), 1.1 (4), 2.1 (5).
  EXPECT_EQ(ids({{"query", kImageQuery}, {"using", "image"}, {"filter", {{"must", has("text")}}}}),
            std::vector<int>({1, 4, 5}));
  const json old = ok("POST", "/collections/nv/points/search",
                      {{"vector", {{"name", "text"}, {"vector", kTextQuery}}},
                       {"filter", {{"must_not", has("image")}}},
                       {"limit", 5}});
  ASSERT_EQ(old.size(), 1u) << old;
  EXPECT_EQ(old[0]["id"], 3);

  // A vector deleted leaves the filter's answer; so does one a batch deletes before a later
  // operation of the same batch selects by has_vector (6 upserted with only an image vector).
  ok("POST", "/collections/nv/points/vectors/delete?wait=true",
     {{"points", {1}}, {"vector", {"image"}}});
  EXPECT_EQ(scrolled({{"must", {has("image")}}}), std::vector<int>({2, 4, 5}));
  ok("POST", "/collections/nv/points/batch?wait=true",
     {{"operations",
       {{{"upsert", {{"points", {{{"id", 6}, {"vector", {{"image", {5, 0, 0, 0}}}}}}}}}},
        {{"delete", {{"filter", {{"must_not", {has("text")}}}}}}}}}});
  EXPECT_EQ(scrolled(json::object()), std::vector<int>({1, 3, 4, 5}));
  restart();  // the indexes read from their files answer alike
  EXPECT_EQ(scrolled({{"must", {has("image")}}}), std::vector<int>({4, 5}));
  EXPECT_EQ(scrolled({{"must", {has("text")}}}), std::vector<int>({1, 3, 4, 5}));

  expect_400("POST", "/collections/nv/points/count", {{"filter", {{"must", {{"has_vector", 1}}}}}},
             "filter.must.has_vector: expected a vector's name (a string), got 1");
  expect_400(
      "POST", "/collections/nv/points/scroll",
      {{"filter", {{"must", {{"nested", {{"key", "a"}, {"filter", {{"must", has("x")}}}}}}}}}},
      "has_vector is not supported inside a nested condition");

  // A collection without names: "" names its vector, which every point holds.
  ok("PUT", "/collections/plain", {{"vectors", {{"size", 2}, {"distance", "Dot"}}}});
  ok("PUT", "/collections/plain/points?wait=true",
     {{"points", {{{"id", 1}, {"vector", {1, 0}}}, {{"id", 2}, {"vector", {0, 1}}}}}});
  EXPECT_EQ(
      ok("POST", "/collections/plain/points/count", {{"filter", {{"must", has("")}}}})["count"], 2);
  EXPECT_EQ(ok("POST", "/collections/plain/points/count",
               {{"filter", {{"must", has("image")}}}})["count"],
            0);
}

// A graph search filtered by has_vector: half of 3,000 points hold a second vector; the walk (or
// the scan it chooses) tests each point's vectors as it tests payloads, and finds the nearest of
// those holding it as an exact scan of them does.
TEST_F(ApiTest, HasVectorFiltersAGraphSearchAgainstTheExactNearest) {
  ok("PUT", "/collections/hv",
     {{"vectors",
       {{"a", {{"size", 8}, {"distance", "Euclid"}}}, {"b", {{"size", 2}, {"distance", "Dot"}}}}}});
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0, 1);
  const size_t n = 3000;
  std::vector<std::vector<float>> v(n, std::vector<float>(8));
  for (size_t start = 0; start < n; start += 500) {
    json points = json::array();
    for (size_t i = start; i < start + 500; ++i) {
      for (float& x : v[i]) x = g(rng);
      json vectors = {{"a", v[i]}};
      if (i % 2 == 0) vectors["b"] = {1, 0};
      points.push_back({{"id", i}, {"vector", vectors}});
    }
    ok("PUT", "/collections/hv/points?wait=true", {{"points", points}});
  }
  double found = 0;
  const int queries = 20;
  for (int q = 0; q < queries; ++q) {
    std::vector<float> query(8);
    for (float& x : query) x = g(rng);
    std::vector<std::pair<double, size_t>> even;
    for (size_t i = 0; i < n; i += 2) {
      double d = 0;
      for (size_t j = 0; j < 8; ++j) d += (v[i][j] - query[j]) * (v[i][j] - query[j]);
      even.emplace_back(d, i);
    }
    std::sort(even.begin(), even.end());
    const json got = ok("POST", "/collections/hv/points/query",
                        {{"query", query},
                         {"using", "a"},
                         {"limit", 10},
                         {"filter", {{"must", {{{"has_vector", "b"}}}}}},
                         {"params", {{"hnsw_ef", 64}}}})["points"];
    ASSERT_EQ(got.size(), 10u);
    for (const json& p : got) {
      const size_t id = p["id"].get<size_t>();
      EXPECT_EQ(id % 2, 0u) << "point " << id << " holds no vector b";
      for (size_t k = 0; k < 10; ++k) found += even[k].second == id;
    }
  }
  EXPECT_GE(found / (10.0 * queries), 0.9);
}

// Qdrant's lookup_from: example ids read in another collection's vector (Qdrant's
// test_multicollection_reco): the same answers as the vectors given inline, those points not left
// out of the searched collection's answer, every route and every level of a query; a collection
// or vector that is not there, or of another dimension, refused naming it.
TEST_F(ApiTest, LookupFromReadsExampleIdsInAnotherCollection) {
  ok("PUT", "/collections/items", {{"vectors", {{"size", 4}, {"distance", "Cosine"}}}});
  json points = json::array();
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0, 1);
  for (int i = 1; i <= 60; ++i) {
    points.push_back({{"id", i}, {"vector", {g(rng), g(rng), g(rng), g(rng)}}});
  }
  ok("PUT", "/collections/items/points?wait=true", {{"points", points}});
  ok("PUT", "/collections/lookup",
     {{"vectors",
       {{"other", {{"size", 4}, {"distance", "Dot"}}},
        {"wide", {{"size", 5}, {"distance", "Dot"}}}}}});
  const json a = {1.0, 0.0, 0.0, 0.0}, b = {0.0, 0.0, 0.0, 2.0}, c = {0.0, 3.0, -1.0, 0.5};
  ok("PUT", "/collections/lookup/points?wait=true",
     {{"points",
       {{{"id", 1}, {"vector", {{"other", a}, {"wide", {1, 0, 0, 0, 0}}}}},
        {{"id", 2}, {"vector", {{"other", b}}}},
        {{"id", "00000000-0000-0000-0000-000000000000"}, {"vector", {{"other", c}}}}}}});
  ok("POST", "/collections/aliases",
     {{"actions",
       {{{"create_alias", {{"collection_name", "lookup"}, {"alias_name", "elsewhere"}}}}}}});
  const json from = {{"collection", "lookup"}, {"vector", "other"}};
  auto points_of = [&](const std::string& route, const json& body) {
    const json r = ok("POST", "/collections/items/points/" + route, body);
    return r.is_array() ? r : r["points"];
  };
  auto expect_same = [&](const std::string& route, const json& by_id, const json& by_vector) {
    const json got = points_of(route, by_id), want = points_of(route, by_vector);
    ASSERT_EQ(got.size(), want.size()) << by_id.dump();
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i]["id"], want[i]["id"]) << by_id.dump() << " " << i;
      EXPECT_NEAR(got[i]["score"].get<double>(), want[i]["score"].get<double>(), 1e-5);
    }
  };
  // Recommendations (every strategy), the query's recommend, nearest and plain id forms: ids
  // 1 and 2 of `lookup` are points 1 and 2 of `items` too, which stay in the answer.
  for (const std::string strategy : {"average_vector", "best_score", "sum_scores"}) {
    expect_same("recommend",
                {{"positive", {1}},
                 {"negative", {2}},
                 {"strategy", strategy},
                 {"limit", 10},
                 {"lookup_from", from}},
                {{"positive", {a}}, {"negative", {b}}, {"strategy", strategy}, {"limit", 10}});
  }
  expect_same(
      "query",
      {{"query", {{"recommend", {{"positive", {1, "00000000-0000-0000-0000-000000000000"}}}}}},
       {"limit", 8},
       {"lookup_from", {{"collection", "elsewhere"}, {"vector", "other"}}}},
      {{"query", {{"recommend", {{"positive", {a, c}}}}}}, {"limit", 8}});
  expect_same("query", {{"query", 2}, {"limit", 5}, {"lookup_from", from}},
              {{"query", b}, {"limit", 5}});
  const json near_1 =
      points_of("query", {{"query", {{"nearest", 1}}}, {"limit", 60}, {"lookup_from", from}});
  EXPECT_EQ(near_1.size(), 60u) << "point 1 of items is not the example: it stays";
  expect_same("discover",
              {{"target", 2},
               {"context", {{{"positive", 1}, {"negative", 2}}}},
               {"limit", 6},
               {"lookup_from", from}},
              {{"target", b}, {"context", {{{"positive", a}, {"negative", b}}}}, {"limit", 6}});
  expect_same("query",
              {{"query", {{"context", {{{"positive", 1}, {"negative", 2}}}}}},
               {"limit", 6},
               {"lookup_from", from}},
              {{"query", {{"context", {{{"positive", a}, {"negative", b}}}}}}, {"limit", 6}});
  // A prefetch's own lookup_from; batches and groups read it too.
  expect_same("query",
              {{"prefetch", {{{"query", 1}, {"limit", 20}, {"lookup_from", from}}}},
               {"query", {{"fusion", "rrf"}}},
               {"limit", 5}},
              {{"prefetch", {{{"query", a}, {"limit", 20}}}},
               {"query", {{"fusion", "rrf"}}},
               {"limit", 5}});
  const json batch =
      ok("POST", "/collections/items/points/query/batch",
         {{"searches",
           {{{"query", 1}, {"limit", 3}, {"lookup_from", from}}, {{"query", a}, {"limit", 3}}}}});
  EXPECT_EQ(batch[0]["points"], batch[1]["points"]);
  // Without lookup_from the id is items' own point, left out of the answer.
  const json own = points_of("query", {{"query", 1}, {"limit", 60}});
  EXPECT_EQ(own.size(), 59u);
  for (const json& p : own) EXPECT_NE(p["id"], 1);
  // lookup_from naming the searched collection itself: its points still left out.
  const json itself =
      points_of("query", {{"query", 1}, {"limit", 60}, {"lookup_from", {{"collection", "items"}}}});
  EXPECT_EQ(itself, own);

  for (const auto& [route, body, status, message] :
       std::vector<std::tuple<std::string, json, unsigned, std::string>>{
           {"query",
            {{"query", 1}, {"lookup_from", {{"collection", "nowhere"}}}},
            404,
            "Collection `nowhere` doesn't exist!"},
           {"query", {{"query", a}, {"lookup_from", {{"collection", "nowhere"}}}}, 404, "nowhere"},
           {"query",
            {{"query", 1}, {"lookup_from", {{"collection", "lookup"}, {"vector", "x"}}}},
            400,
            "lookup_from.vector"},
           // Recommend reads the unnamed vector unless one is named: lookup has none.
           {"recommend",
            {{"positive", {1}}, {"lookup_from", {{"collection", "lookup"}}}},
            400,
            "lookup_from.vector"},
           {"query",
            {{"query", 1}, {"lookup_from", {{"collection", "lookup"}, {"vector", "wide"}}}},
            400,
            "query: expected dimension 4, got 5"},
           {"query", {{"query", 7}, {"lookup_from", from}}, 404, "Point with id 7 does not exists"},
           {"query",
            {{"query", 2}, {"lookup_from", {{"collection", "lookup"}, {"vector", "wide"}}}},
            400,
            "query: point 2 has no vector"},
           {"query", {{"query", 1}, {"lookup_from", "lookup"}}, 400, "lookup_from: expected"},
           {"query",
            {{"query", 1}, {"lookup_from", {{"collection", "lookup"}, {"x", 1}}}},
            400,
            "lookup_from.x: unknown field"},
           {"query",
            {{"query", 1}, {"lookup_from", {{"collection", "lookup"}, {"shard_key", "k"}}}},
            400,
            "lookup_from.shard_key"},
           {"query/batch",
            {{"searches",
              {{{"query", a}}, {{"query", 1}, {"lookup_from", {{"collection", "no"}}}}}}},
            404,
            "no"},
           {"query",
            {{"prefetch", {{"query", 1}, {"lookup_from", {{"collection", 5}}}}}, {"query", a}},
            400,
            "prefetch.lookup_from.collection"},
       }) {
    const Response r = call("POST", "/collections/items/points/" + route, body.dump());
    EXPECT_EQ(r.status, status) << body.dump() << " -> " << r.body;
    EXPECT_NE(r.body.find(message), std::string::npos) << body.dump() << " -> " << r.body;
  }
}

// A restart reads each space's index file (written at the close) beside the store; a space whose
// file fails its checks is rebuilt from the vectors read from the store then, and the other keeps
// its file. Either way every answer, with its vectors, is what it was.
TEST_F(NamedVectors, ARestartRebuildsOnlyTheSpaceWhoseIndexFileFails) {
  make();
  auto answers = [&] {
    json out;
    for (const auto& [space, query] : {std::pair{"image", kImageQuery}, {"text", kTextQuery}}) {
      out[space] = ok("POST", "/collections/nv/points/query",
                      {{"query", query}, {"using", space}, {"with_vector", true}});
    }
    return out;
  };
  const json before = answers();
  ASSERT_EQ(before["image"]["points"].size(), 4u);  // 1, 2, 4, 5
  ASSERT_EQ(before["text"]["points"].size(), 4u);   // 1, 3, 4, 5
  restart();
  EXPECT_TRUE(engine_->collection("nv")->index_loaded_from_file());
  EXPECT_EQ(answers(), before);
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(engine_->collection("nv")->dir())) {
    if (e.path().extension() == ".wpi") files.push_back(e.path());
  }
  ASSERT_EQ(files.size(), 2u);
  for (const auto& broken : files) {
    api_.reset();
    engine_.reset();
    {
      std::fstream f(broken, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(64);
      f.write("garbage!", 8);
    }
    restart();
    EXPECT_FALSE(engine_->collection("nv")->index_loaded_from_file()) << broken;
    EXPECT_EQ(answers(), before) << broken;
    EXPECT_EQ(count(), 5u);
    restart();  // the files saved at that close are good
    EXPECT_TRUE(engine_->collection("nv")->index_loaded_from_file()) << broken;
    EXPECT_EQ(answers(), before) << broken;
  }
}

// Qdrant's hybrid query: prefetches over several spaces, fused by reciprocal rank (score of
// position i, 0-based: 1 / (i + k), k = 2) or by distribution (each list's scores mapped so that
// mean -+ 3 sample deviations are 0 and 1, small-better lists flipped, then summed); or the
// prefetched points re-scored by another vector. The expected values are computed here from those
// definitions.
TEST_F(NamedVectors, PrefetchesFuseByRankOrDistributionOrAreRescored) {
  make();
  const json image = {{"query", kImageQuery}, {"using", "image"}, {"limit", 3}};  // 2, 1, 4
  const json text = {{"query", kTextQuery}, {"using", "text"}, {"limit", 3}};     // 1, 4, 3
  const json rrf = {{"prefetch", {image, text}}, {"query", {{"fusion", "rrf"}}}};
  EXPECT_EQ(ids(rrf), std::vector<int>({1, 4, 2, 3}));
  std::vector<double> s = scores(rrf);
  EXPECT_NEAR(s[0], 1.0 / 3 + 1.0 / 2, 1e-6);  // 1: second of image, first of text
  EXPECT_NEAR(s[1], 1.0 / 4 + 1.0 / 3, 1e-6);
  EXPECT_NEAR(s[2], 1.0 / 2, 1e-6);
  EXPECT_NEAR(s[3], 1.0 / 4, 1e-6);
  // rrf with its own k and weights (weight w: 1 / ((i + 1) / w + k - 1)).
  json weighted = rrf;
  weighted["query"] = {{"rrf", {{"k", 10}, {"weights", {3, 1}}}}};
  s = scores(weighted);
  EXPECT_EQ(ids(weighted), std::vector<int>({1, 4, 2, 3}));
  EXPECT_NEAR(s[0], 1.0 / (2.0 / 3 + 9) + 1.0 / 10, 1e-6);
  EXPECT_NEAR(s[1], 1.0 / (3.0 / 3 + 9) + 1.0 / 11, 1e-6);
  EXPECT_NEAR(s[2], 1.0 / (1.0 / 3 + 9), 1e-6);
  // offset and limit apply after fusion.
  json page = rrf;
  page["offset"] = 1;
  page["limit"] = 2;
  EXPECT_EQ(ids(page), std::vector<int>({4, 2}));

  // dbsf: image distances 0.1, 0.9, 1.1 (smaller better); text similarities 1, 0.7071, 0.
  auto normalised = [](std::vector<double> x, bool small_better) {
    double mean = 0, var = 0;
    for (double v : x) mean += v / x.size();
    for (double v : x) var += (v - mean) * (v - mean) / (x.size() - 1);
    const double lo = mean - 3 * std::sqrt(var), hi = mean + 3 * std::sqrt(var);
    for (double& v : x) v = small_better ? (hi - v) / (hi - lo) : (v - lo) / (hi - lo);
    return x;
  };
  const std::vector<double> ni = normalised({0.1, 0.9, 1.1}, true);
  const std::vector<double> nt = normalised({1, std::sqrt(0.5), 0}, false);
  json dbsf = rrf;
  dbsf["query"] = {{"fusion", "dbsf"}};
  EXPECT_EQ(ids(dbsf), std::vector<int>({1, 4, 2, 3}));
  s = scores(dbsf);
  EXPECT_NEAR(s[0], ni[1] + nt[0], 1e-4);
  EXPECT_NEAR(s[1], ni[2] + nt[1], 1e-4);
  EXPECT_NEAR(s[2], ni[0], 1e-4);
  EXPECT_NEAR(s[3], nt[2], 1e-4);

  // The outer filter holds in the prefetches too: only k = "a" (1, 3, 4).
  json filtered = rrf;
  filtered["filter"] = {{"must", {{{"key", "k"}, {"match", {{"value", "a"}}}}}}};
  EXPECT_EQ(ids(filtered), std::vector<int>({1, 4, 3}));
  EXPECT_NEAR(scores(filtered)[0], 1.0, 1e-6);  // first in both lists

  // Re-scoring: text's candidates 1, 4, 3 by the image vector (3 has none).
  const json rescored = {{"prefetch", text}, {"query", kImageQuery}, {"using", "image"}};
  EXPECT_EQ(ids(rescored), std::vector<int>({1, 4}));
  EXPECT_NEAR(scores(rescored)[1], 1.1, 1e-5);
  // Nested: a fusion inside a prefetch, then re-scored.
  const json nested = {
      {"prefetch", {{"prefetch", {image, text}}, {"query", {{"fusion", "rrf"}}}, {"limit", 2}}},
      {"query", kTextQuery},
      {"using", "text"}};
  EXPECT_EQ(ids(nested), std::vector<int>({1, 4}));
  // One prefetch without a query passes its points on; payloads come with the final answer.
  const json passed = ok("POST", "/collections/nv/points/query",
                         {{"prefetch", image}, {"with_payload", true}, {"limit", 2}});
  EXPECT_EQ(passed["points"][0]["id"], 2);
  EXPECT_EQ(passed["points"][0]["payload"], json({{"k", "b"}}));

  const std::string q = "/collections/nv/points/query";
  expect_400("POST", q, {{"query", {{"fusion", "rrf"}}}}, "query: fusion combines prefetches");
  expect_400("POST", q, {{"prefetch", {image, text}}}, "several prefetches need a query");
  expect_400("POST", q, {{"prefetch", {image, text}}, {"query", {{"fusion", "max"}}}},
             "query.fusion: expected");
  expect_400("POST", q, {{"prefetch", {image, text}}, {"query", {{"rrf", {{"weights", {1}}}}}}},
             "query.rrf.weights: expected one weight per prefetch (2), got 1");
  expect_400("POST", q, {{"prefetch", {{"using", "image"}}}, {"query", {{"fusion", "rrf"}}}},
             "prefetch.query: a prefetch needs a query");
  expect_400("POST", q,
             {{"prefetch", {image, {{"query", kTextQuery}, {"using", "audio"}}}},
              {"query", {{"fusion", "rrf"}}}},
             "Not existing vector name error: audio");
  json deep = image;
  for (int i = 0; i < 5; ++i)
    deep = {{"prefetch", deep}, {"query", kImageQuery}, {"using", "image"}};
  expect_400("POST", q, deep, "prefetches nest at most 4 deep");
}

// Recommendation strategies that score each point against the examples themselves: best_score
// (sigmoid of the best positive similarity when it beats the best negative one, else minus the
// sigmoid of the best negative; the best positive as it is without negatives) and sum_scores
// (positive similarities less negative ones). Expected values from those definitions.
TEST_F(NamedVectors, RecommendBestScoreAndSumScoresScoreAgainstEveryExample) {
  make();
  auto sigmoid = [](double x) { return 0.5 * (x / (1 + std::abs(x)) + 1); };
  const double c = std::sqrt(0.5);
  // Point 1's text vector [1, 0] is positive, [0, 1] negative; 1 itself is left out.
  auto recommend = [&](const std::string& strategy, const json& negative) {
    return json{
        {"query",
         {{"recommend", {{"positive", {1}}, {"negative", negative}, {"strategy", strategy}}}}},
        {"using", "text"}};
  };
  const json best = recommend("best_score", {{0, 1}});
  EXPECT_EQ(ids(best), std::vector<int>({5, 4, 3}));
  std::vector<double> s = scores(best);
  EXPECT_NEAR(s[0], -sigmoid(0), 1e-5);  // 5: best positive -1 < best negative 0
  EXPECT_NEAR(s[1], -sigmoid(c), 1e-5);  // 4: a tie goes to the negative
  EXPECT_NEAR(s[2], -sigmoid(1), 1e-5);
  const json sum = recommend("sum_scores", {{0, 1}});
  EXPECT_EQ(ids(sum)[0], 4);
  EXPECT_NEAR(scores(sum)[0], 0, 1e-5);
  EXPECT_NEAR(scores(sum)[1], -1, 1e-5);
  // Without negatives best_score is the best positive similarity as it is.
  const json two = {
      {"query", {{"recommend", {{"positive", {1, {0, 1}}}, {"strategy", "best_score"}}}}},
      {"using", "text"}};
  EXPECT_EQ(ids(two), std::vector<int>({3, 4, 5}));
  s = scores(two);
  EXPECT_NEAR(s[0], 1, 1e-5);
  EXPECT_NEAR(s[1], c, 1e-5);
  EXPECT_NEAR(s[2], 0, 1e-5);
  // The recommend route too; negatives alone are enough for a scoring strategy.
  const json only_negative =
      ok("POST", "/collections/nv/points/recommend",
         {{"negative", {{-1, 1}}}, {"strategy", "best_score"}, {"using", "text"}, {"limit", 1}});
  EXPECT_EQ(only_negative[0]["id"], 1);  // the furthest from [-1, 1]
  EXPECT_NEAR(only_negative[0]["score"].get<double>(), -sigmoid(-c), 1e-5);
  expect_400("POST", "/collections/nv/points/recommend",
             {{"negative", {{0, 1}}}, {"using", "text"}}, "positive: expected at least one");
  expect_400("POST", "/collections/nv/points/recommend",
             {{"positive", {1}}, {"strategy", "max"}, {"using", "text"}}, "strategy: expected");
}

// On 400 random points the candidates (each example's nearest) hold the true best: the answer
// equals a scan of every point scored by the definition.
TEST_F(ApiTest, BestScoreRecommendationMatchesAScanOfEveryPoint) {
  ok("PUT", "/collections/r", {{"vectors", {{"size", 8}, {"distance", "Dot"}}}});
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0, 1);
  json points = json::array();
  std::vector<std::vector<float>> v(400, std::vector<float>(8));
  for (size_t i = 0; i < v.size(); ++i) {
    for (float& x : v[i]) x = g(rng);
    points.push_back({{"id", i}, {"vector", v[i]}});
  }
  ok("PUT", "/collections/r/points?wait=true", {{"points", points}});
  const std::vector<int> pos{3, 17, 250}, neg{8, 99};
  auto dot = [&](int a, int b) {
    double s = 0;
    for (size_t j = 0; j < 8; ++j) s += v[a][j] * v[b][j];
    return s;
  };
  for (const std::string strategy : {"best_score", "sum_scores"}) {
    std::vector<std::pair<double, int>> all;
    for (int i = 0; i < 400; ++i) {
      if (std::count(pos.begin(), pos.end(), i) || std::count(neg.begin(), neg.end(), i)) continue;
      double bp = -1e30, bn = -1e30, sum = 0;
      for (int p : pos) bp = std::max(bp, dot(p, i)), sum += dot(p, i);
      for (int n : neg) bn = std::max(bn, dot(n, i)), sum -= dot(n, i);
      const double best =
          bp > bn ? 0.5 * (bp / (1 + std::abs(bp)) + 1) : -0.5 * (bn / (1 + std::abs(bn)) + 1);
      all.emplace_back(strategy == "sum_scores" ? sum : best, i);
    }
    std::sort(all.rbegin(), all.rend());
    const json got =
        ok("POST", "/collections/r/points/recommend",
           {{"positive", pos}, {"negative", neg}, {"strategy", strategy}, {"limit", 10}});
    ASSERT_EQ(got.size(), 10u);
    for (size_t k = 0; k < 10; ++k) {
      EXPECT_NEAR(got[k]["score"].get<double>(), all[k].first, 1e-4) << strategy << " " << k;
    }
  }
}

// Qdrant's formula query (score boosting): the prefetched points scored by an expression of
// their prefetch scores, payload numbers, geo points, datetimes and conditions, with defaults.
// The expected scores are computed here from Qdrant's definitions, with the prefetches asked on
// their own and the payloads read back.
TEST_F(NamedVectors, FormulaScoresPrefetchedPointsByScoresPayloadsAndConditions) {
  ok("PUT", "/collections/f",
     {{"vectors",
       {{"image", {{"size", 4}, {"distance", "Euclid"}}},
        {"text", {{"size", 2}, {"distance", "Cosine"}}}}}});
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  const char* const tags[] = {"a", "b", "c"};
  json points = json::array();
  for (int id = 1; id <= 120; ++id) {
    json payload{{"tag", tags[id % 3]}};
    if (id % 4 != 0) payload["price"] = id % 5 == 0 ? json::array({id}) : json(id * 0.75);
    if (id % 3 != 0) payload["loc"] = {{"lon", 10 + u(rng) * 5}, {"lat", 50 + u(rng) * 5}};
    if (id % 2 == 0) payload["at"] = "2025-0" + std::to_string(1 + id % 9) + "-15T12:00:00Z";
    points.push_back(
        {{"id", id},
         {"vector", {{"image", {u(rng), u(rng), u(rng), u(rng)}}, {"text", {u(rng), u(rng)}}}},
         {"payload", payload}});
  }
  ok("PUT", "/collections/f/points?wait=true", {{"points", points}});

  const json image = {{"query", {0.5, 0, 0, 0}}, {"using", "image"}, {"limit", 40}};
  const json text = {{"query", {1, 0.3}}, {"using", "text"}, {"limit", 40}};
  const json origin{{"lon", 10}, {"lat", 50}};
  const json formula{
      {"sum",
       {{{"mult", {0.5, "$score[1]"}}},
        {{"neg", "$score"}},
        {{"mult", {0.25, {{"key", "tag"}, {"match", {{"any", {"a", "c"}}}}}}}},
        {{"exp_decay", {{"x", "price"}, {"target", 50}, {"scale", 20}}}},
        {{"gauss_decay",
          {{"x", {{"geo_distance", {{"origin", origin}, {"to", "loc"}}}}}, {"scale", 300000}}}},
        {{"lin_decay",
          {{"x", {{"datetime_key", "at"}}},
           {"target", {{"datetime", "2025-05-01T00:00:00Z"}}},
           {"scale", 86400 * 60},
           {"midpoint", 0.25}}}}}}};
  const json defaults{{"price", 0},
                      {"$score[0]", 5},
                      {"loc", {{"lon", 0}, {"lat", 0}}},
                      {"at", "2025-01-01T00:00:00Z"}};
  const json body{{"prefetch", {image, text}},
                  {"query", {{"formula", formula}, {"defaults", defaults}}},
                  {"limit", 20}};

  // The prefetches on their own, and every candidate's payload.
  std::vector<std::map<int, double>> lists;
  std::vector<int> candidates, image_order;
  for (const json& p : {image, text}) {
    std::map<int, double> list;
    const json answer = ok("POST", "/collections/f/points/query", p);
    for (const json& h : answer["points"]) {
      list[h["id"].get<int>()] = h["score"].get<double>();
      candidates.push_back(h["id"]);
      if (lists.empty()) image_order.push_back(h["id"]);
    }
    lists.push_back(list);
  }
  std::map<int, json> payload;
  for (const json& p :
       ok("POST", "/collections/f/points", {{"ids", candidates}, {"with_payload", true}})) {
    payload[p["id"].get<int>()] = p["payload"];
  }
  auto seconds = [](const std::string& at) {  // "2025-0M-15T12:00:00Z" or a day at midnight
    std::tm t{};
    t.tm_year = 125;
    t.tm_mon = std::stoi(at.substr(5, 2)) - 1;
    t.tm_mday = std::stoi(at.substr(8, 2));
    t.tm_hour = at.size() > 10 ? std::stoi(at.substr(11, 2)) : 0;
    return static_cast<double>(timegm(&t));
  };
  auto haversine = [](double lon1, double lat1, double lon2, double lat2) {
    const double r = 3.14159265358979323846 / 180, dlat = (lat2 - lat1) * r,
                 dlon = (lon2 - lon1) * r;
    const double h = std::pow(std::sin(dlat / 2), 2) +
                     std::cos(lat1 * r) * std::cos(lat2 * r) * std::pow(std::sin(dlon / 2), 2);
    return 2 * 6371008.8 * std::asin(std::sqrt(h));
  };
  std::vector<std::pair<double, int>> expected;
  for (const auto& [id, p] : payload) {
    const double s0 = lists[0].count(id) ? lists[0].at(id) : 5;
    const double s1 = lists[1].count(id) ? lists[1].at(id) : 0;
    const std::string tag = p["tag"];
    double price = 0;
    if (p.contains("price"))
      price = p["price"].is_array() ? p["price"][0].get<double>() : p["price"].get<double>();
    const double dist = p.contains("loc") ? haversine(10, 50, p["loc"]["lon"], p["loc"]["lat"])
                                          : haversine(10, 50, 0, 0);
    const double at = seconds(p.value("at", std::string("2025-01-01")));
    const double day_gap = std::abs(at - seconds("2025-05-01"));
    const double score = 0.5 * s1 - s0 + (tag == "a" || tag == "c" ? 0.25 : 0) +
                         std::exp(std::log(0.5) / 20 * std::abs(price - 50)) +
                         std::exp(std::log(0.5) / (300000.0 * 300000.0) * dist * dist) +
                         std::max(0.0, 1 - 0.75 / (86400 * 60) * day_gap);
    expected.emplace_back(score, id);
  }
  std::sort(expected.rbegin(), expected.rend());
  ASSERT_GE(expected.size(), 40u);

  const json answer = ok("POST", "/collections/f/points/query", body)["points"];
  ASSERT_EQ(answer.size(), 20u);
  for (size_t i = 0; i < answer.size(); ++i) {
    EXPECT_EQ(answer[i]["id"], expected[i].second) << i;
    EXPECT_NEAR(answer[i]["score"].get<double>(), expected[i].first,
                1e-5 * std::max(1.0, std::abs(expected[i].first)))
        << i;
  }
  // Offset and limit after scoring; the threshold keeps scores at or above it.
  json page = body;
  page["offset"] = 5;
  page["limit"] = 4;
  page["with_payload"] = true;
  const json paged = ok("POST", "/collections/f/points/query", page)["points"];
  ASSERT_EQ(paged.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(paged[i]["id"], expected[5 + i].second);
    EXPECT_EQ(paged[i]["payload"], payload.at(expected[5 + i].second));
  }
  json above = body;
  above["limit"] = 100;
  above["score_threshold"] = expected[9].first - 1e-4;
  EXPECT_EQ(ok("POST", "/collections/f/points/query", above)["points"].size(), 10u);
  // A formula inside a prefetch, fused there.
  const json inner = {{"prefetch",
                       {{{"prefetch", {image, text}},
                         {"query", {{"formula", formula}, {"defaults", defaults}}},
                         {"limit", 3}},
                        image}},
                      {"query", {{"fusion", "rrf"}}},
                      {"limit", 3}};
  std::map<int, double> rrf;  // 1 / (rank + 2) in each list
  for (size_t i = 0; i < 3; ++i) rrf[expected[i].second] += 1.0 / (i + 2);
  for (size_t i = 0; i < image_order.size(); ++i) rrf[image_order[i]] += 1.0 / (i + 2);
  std::vector<std::pair<double, int>> fused;
  for (const auto& [id, x] : rrf) fused.emplace_back(x, id);
  std::sort(fused.rbegin(), fused.rend());
  const json inner_answer = ok("POST", "/collections/f/points/query", inner)["points"];
  ASSERT_EQ(inner_answer.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(inner_answer[i]["score"], fused[i].first, 1e-6);

  const std::string q = "/collections/f/points/query";
  expect_400("POST", q, {{"query", {{"formula", formula}}}},
             "query: a formula scores the points of prefetches");
  // Without a default: a point without a price has no number there (every fourth point).
  expect_400("POST", q, {{"prefetch", {image, text}}, {"query", {{"formula", "price"}}}},
             "query.formula: no number at \\\"price\\\" for point");
  expect_400("POST", q,
             {{"prefetch", {{"prefetch", image}, {"query", {{"formula", {{"ln", -1}}}}}}},
              {"query", {{"fusion", "rrf"}}}},
             "prefetch.query.formula: ln(-1.0) is not a finite number");
  expect_400(
      "POST", q,
      {{"prefetch", image}, {"query", {{"formula", {{"exp_decay", {{"x", 1}, {"scale", -1}}}}}}}},
      "query.formula.exp_decay.scale: expected a number > 0, got -1");
  expect_400("POST", q, {{"prefetch", image}, {"query", {{"formula", 1}, {"weights", 2}}}},
             "query.weights: unknown field");
}
