#pragma once
// The REST API as a pure function (requests in, status and JSON out, no sockets): the fixture of
// the handler tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "http/api.h"
#include "test_util.h"

namespace wp::test {

using nlohmann::json;
using wp::http::Api;
using wp::http::Request;
using wp::http::Response;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = std::make_unique<wp::engine::Engine>(tmp_.file("data"));
    wp::http::ApiOptions o;
    o.max_body_bytes = 1 << 20;
    api_ = std::make_unique<Api>(*engine_, o);
  }
  Response call(const std::string& method, const std::string& target,
                const std::string& body = "") {
    return api_->handle(Request{method, target, body, "", ""});
  }
  json ok(const std::string& method, const std::string& target, const json& body = nullptr) {
    const Response r = call(method, target, body.is_null() ? "" : body.dump());
    EXPECT_EQ(r.status, 200u) << method << " " << target << ": " << r.body;
    const json j = json::parse(r.body);
    EXPECT_EQ(j["status"], "ok");
    return j["result"];
  }
  void make_points() {
    ok("PUT", "/collections/c", {{"vectors", {{"size", 3}, {"distance", "Euclid"}}}});
    ok("PUT", "/collections/c/points?wait=true",
       {{"points",
         {{{"id", 1}, {"vector", {0, 0, 0}}, {"payload", {{"color", "red"}, {"n", 1}}}},
          {{"id", 2}, {"vector", {1, 0, 0}}, {"payload", {{"color", "blue"}, {"n", 2}}}},
          {{"id", "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"},
           {"vector", {2, 0, 0}},
           {"payload", {{"color", "red"}, {"n", 3}}}}}}});
  }

  /// The ids (numbers, sorted) of the points of `collection` whose `key` holds every word of
  /// `words` (match `kind` "text"; or "text_any", "phrase"), asked through its indexes and
  /// through a test of every point (a should the indexes cannot narrow), each by scroll, count
  /// and a filtered search of vector `at`: every way must find the same points.
  std::vector<int> text_matches(const std::string& collection, const std::string& key,
                                const std::string& words, const json& at,
                                const std::string& kind = "text") {
    const json text{{"key", key}, {"match", {{kind, words}}}};
    const std::string path = "/collections/" + collection + "/points/";
    std::vector<std::vector<int>> ways;
    const json must{{"must", {text}}};
    const json unserved{{"should", {text, {{"key", "none"}, {"match", {{"value", 1}}}}}}};
    for (const json& filter : {must, unserved}) {
      std::vector<int> ids;
      const json page = ok("POST", path + "scroll", {{"filter", filter}, {"limit", 100}});
      for (const json& p : page["points"]) ids.push_back(p["id"]);
      ways.push_back(ids);
      EXPECT_EQ(ok("POST", path + "count", {{"filter", filter}})["count"], ids.size());
      std::vector<int> searched;
      const json hits =
          ok("POST", path + "search", {{"vector", at}, {"limit", 100}, {"filter", filter}});
      for (const json& h : hits) searched.push_back(h["id"]);
      std::sort(searched.begin(), searched.end());
      EXPECT_EQ(searched, ids) << key << " " << words;
    }
    EXPECT_EQ(ways[0], ways[1]) << key << " " << words << ": the index against every point tested";
    return ways[0];
  }

  /// Closes the engine and opens the data folder again (what a server restart does).
  void restart() {
    api_.reset();
    engine_.reset();  // the store's lock is released before it is opened again
    engine_ = std::make_unique<wp::engine::Engine>(tmp_.file("data"));
    api_ = std::make_unique<Api>(*engine_, wp::http::ApiOptions{});
  }

  wp::test::TempDir tmp_;
  std::unique_ptr<wp::engine::Engine> engine_;
  std::unique_ptr<Api> api_;
};

}  // namespace wp::test
