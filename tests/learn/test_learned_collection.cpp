// PUT /waypoint/collections/{name}/vector_index {"type":"rl"}: the pruning agent's job on a
// collection's points in the background, swapped in when done, served, and kept across a restart.
#include <gtest/gtest.h>

#include "http/api.h"
#include "index/distance.h"
#include "learn/train_pruner.h"
#include "test_util.h"

using nlohmann::json;
using wp::http::Api;
using wp::http::Request;
using wp::http::Response;

namespace {

struct Server {
  std::unique_ptr<wp::engine::Engine> engine;
  std::unique_ptr<Api> api;
  explicit Server(const std::string& dir) {
    engine = std::make_unique<wp::engine::Engine>(dir);
    wp::http::ApiOptions o;
    o.max_body_bytes = 8 << 20;
    api = std::make_unique<Api>(*engine, o);
  }
  json ok(const std::string& method, const std::string& target, const json& body = nullptr) {
    const Response r =
        api->handle(Request{method, target, body.is_null() ? "" : body.dump(), "", ""});
    EXPECT_EQ(r.status, 200u) << method << " " << target << ": " << r.body;
    return json::parse(r.body)["result"];
  }
};

/// recall@10 of the collection's search against brute force over the first n base vectors.
double recall10(Server& s, const wp::index::Dataset& ds, size_t n) {
  size_t hits = 0;
  for (size_t q = 0; q < ds.query.n; ++q) {
    const json res =
        s.ok("POST", "/collections/d/points/search",
             {{"vector", std::vector<float>(ds.query.row(q), ds.query.row(q) + ds.query.d)},
              {"limit", 10}});
    std::vector<std::pair<float, size_t>> all;
    for (size_t i = 0; i < n; ++i) {
      all.push_back({wp::index::l2sqr(ds.query.row(q), ds.base.row(i), ds.base.d), i});
    }
    std::partial_sort(all.begin(), all.begin() + 10, all.end());
    for (const json& h : res) {
      for (size_t j = 0; j < 10; ++j) hits += h["id"].get<size_t>() == all[j].second;
    }
  }
  return static_cast<double>(hits) / (10.0 * ds.query.n);
}

}  // namespace

TEST(LearnedCollection, PutIndexRlTrainsInTheBackgroundServesAndSurvivesARestart) {
  wp::learn::register_learned_indexes();
  const auto ds = wp::test::load_test_data("digits");
  wp::test::TempDir tmp;
  const size_t n = 1200;
  {
    Server s(tmp.file("data"));
    s.ok("PUT", "/collections/d",
         {{"vectors", {{"size", 64}, {"distance", "Euclid"}}},
          {"hnsw_config", {{"m", 8}, {"ef_construct", 64}}}});
    json pts = json::array();
    for (size_t i = 0; i < n; ++i) {
      pts.push_back(
          {{"id", i}, {"vector", std::vector<float>(ds.base.row(i), ds.base.row(i) + 64)}});
    }
    s.ok("PUT", "/collections/d/points?wait=true", {{"points", pts}});
    const json started =
        s.ok("PUT", "/waypoint/collections/d/vector_index", {{"type", "rl"}, {"steps", 20}});
    EXPECT_TRUE(started["state"] == "building" || started["state"] == "ready") << started;
    s.engine->collection("d")->wait_for_build();
    const json done = s.ok("GET", "/waypoint/collections/d/vector_index");
    EXPECT_EQ(done["state"], "ready") << done;
    EXPECT_EQ(done["type"], "rl");
    // The learnt graph is served: default ef 64 on 1200 digits, measured 0.99+.
    const double r = recall10(s, ds, n);
    std::printf("recall@10 of the rl collection: %.3f\n", r);
    EXPECT_GE(r, 0.9);
    // Writes after the swap are linked in and found.
    s.ok("PUT", "/collections/d/points?wait=true",
         {{"points",
           {{{"id", 5000},
             {"vector", std::vector<float>(ds.query.row(0), ds.query.row(0) + 64)}}}}});
    const json hit =
        s.ok("POST", "/collections/d/points/search",
             {{"vector", std::vector<float>(ds.query.row(0), ds.query.row(0) + 64)}, {"limit", 1}});
    EXPECT_EQ(hit[0]["id"], 5000);
  }
  // Restart: the index type is stored, the learnt index file loads without training again.
  Server s(tmp.file("data"));
  EXPECT_EQ(s.ok("GET", "/waypoint/collections/d/vector_index")["type"], "rl");
  EXPECT_TRUE(s.engine->collection("d")->index_loaded_from_file());
  EXPECT_GE(recall10(s, ds, n), 0.9);
}
