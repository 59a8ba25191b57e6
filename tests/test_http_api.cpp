// The REST API as a pure function: requests in, status and JSON out, no sockets.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "api_fixture.h"
#include "http/api.h"
#include "index/distance.h"
#include "test_util.h"

using nlohmann::json;
using wp::http::Api;
using wp::http::Request;
using wp::http::Response;
using wp::test::ApiTest;

TEST_F(ApiTest, CollectionLifecycle) {
  EXPECT_EQ(ok("GET", "/collections")["collections"].size(), 0u);
  EXPECT_EQ(ok("PUT", "/collections/c",
               {{"vectors", {{"size", 4}, {"distance", "Cosine"}}},
                {"hnsw_config", {{"m", 8}, {"ef_construct", 64}}}}),
            true);
  EXPECT_EQ(ok("GET", "/collections")["collections"][0]["name"], "c");
  const json info = ok("GET", "/collections/c");
  EXPECT_EQ(info["status"], "green");
  EXPECT_EQ(info["config"]["params"]["vectors"]["size"], 4);
  EXPECT_EQ(info["config"]["params"]["vectors"]["distance"], "Cosine");
  EXPECT_EQ(info["config"]["hnsw_config"]["m"], 8);
  EXPECT_EQ(ok("GET", "/collections/c/exists")["exists"], true);
  EXPECT_EQ(ok("DELETE", "/collections/c"), true);
  EXPECT_EQ(ok("GET", "/collections/c/exists")["exists"], false);
}

TEST_F(ApiTest, PointsUpsertBothFormsSearchRetrieveCountScrollDelete) {
  make_points();
  ok("PUT", "/collections/c/points",
     {{"batch",
       {{"ids", {10, 11}},
        {"vectors", {{5, 5, 5}, {6, 6, 6}}},
        {"payloads", {{{"n", 10}}, {{"n", 11}}}}}}});
  EXPECT_EQ(ok("POST", "/collections/c/points/count", json::object())["count"], 5);

  const json hits = ok("POST", "/collections/c/points/search",
                       {{"vector", {0.9, 0, 0}}, {"limit", 2}, {"with_payload", true}});
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0]["id"], 2);
  EXPECT_NEAR(hits[0]["score"].get<double>(), 0.1, 1e-5);  // Euclidean distance, not squared
  EXPECT_EQ(hits[0]["payload"]["color"], "blue");
  EXPECT_TRUE(hits[0]["vector"].is_null());

  const json filtered =
      ok("POST", "/collections/c/points/search",
         {{"vector", {0.9, 0, 0}},
          {"limit", 5},
          {"filter", {{"must", {{{"key", "color"}, {"match", {{"value", "red"}}}}}}}},
          {"with_payload", {"n"}}});
  ASSERT_EQ(filtered.size(), 2u);
  for (const json& h : filtered) {
    EXPECT_FALSE(h["payload"].contains("color"));  // only the included key
    EXPECT_TRUE(h["payload"].contains("n"));
  }
  EXPECT_EQ(filtered[1]["id"], "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");

  const json batch =
      ok("POST", "/collections/c/points/search/batch",
         {{"searches",
           {{{"vector", {0, 0, 0}}, {"limit", 1}}, {{"vector", {6, 6, 6}}, {"limit", 1}}}}});
  EXPECT_EQ(batch[0][0]["id"], 1);
  EXPECT_EQ(batch[1][0]["id"], 11);

  const json q = ok("POST", "/collections/c/points/query", {{"query", {6, 6, 6}}, {"limit", 1}});
  EXPECT_EQ(q["points"][0]["id"], 11);
  // By a point's id: its vector's nearest, the point itself left out (as Qdrant leaves it out).
  const json by_id = ok("POST", "/collections/c/points/query", {{"query", 10}, {"limit", 2}});
  ASSERT_EQ(by_id["points"].size(), 2u);
  EXPECT_EQ(by_id["points"][0]["id"], 11);
  EXPECT_NE(by_id["points"][1]["id"], 10);

  const json one = ok("GET", "/collections/c/points/2");
  EXPECT_EQ(one["vector"], json({1.0, 0.0, 0.0}));
  EXPECT_EQ(one["payload"]["n"], 2);
  const json many =
      ok("POST", "/collections/c/points", {{"ids", {1, 99, 2}}, {"with_vector", true}});
  ASSERT_EQ(many.size(), 2u);
  EXPECT_EQ(many[1]["vector"], json({1.0, 0.0, 0.0}));

  const json page = ok("POST", "/collections/c/points/scroll", {{"limit", 2}});
  EXPECT_EQ(page["points"].size(), 2u);
  EXPECT_EQ(page["points"][0]["id"], 1);
  EXPECT_EQ(page["next_page_offset"], 10);

  EXPECT_EQ(ok("POST", "/collections/c/points/delete?wait=true", {{"points", {1, 2}}})["status"],
            "completed");
  ok("POST", "/collections/c/points/delete",
     {{"filter", {{"must", {{{"key", "n"}, {"range", {{"gte", 10}}}}}}}}});
  EXPECT_EQ(ok("POST", "/collections/c/points/count", json::object())["count"], 1);
  EXPECT_EQ(call("GET", "/collections/c/points/1").status, 404u);
}

TEST_F(ApiTest, BadInputTableAnswers4xxNamingTheField) {
  make_points();
  struct Case {
    const char* method;
    const char* target;
    std::string body;
    unsigned status;
    const char* mentions;
  };
  const std::string big(2 << 20, ' ');
  const std::vector<Case> cases{
      {"PUT", "/collections/c/points", "{\"points\": [", 400, "JSON"},
      {"PUT", "/collections/c/points", "[1,2]", 400, "JSON object"},
      {"PUT", "/collections/c/points", R"({"points":[{"id":1,"vector":"abc"}]})", 400,
       "points[0].vector"},
      {"PUT", "/collections/c/points", R"({"points":[{"id":1,"vector":[1,NaN,3]}]})", 400, "JSON"},
      {"PUT", "/collections/c/points", R"({"points":[{"id":1,"vector":[1,1e39,3]}]})", 400,
       "points[0].vector[1]"},
      {"PUT", "/collections/c/points", R"({"points":[{"id":1,"vector":[1,2]}]})", 400, "dimension"},
      {"PUT", "/collections/c/points", R"({"points":[{"id":-4,"vector":[1,2,3]}]})", 400,
       "points[0].id"},
      {"PUT", "/collections/c/points", R"({"points":[{"id":1,"vector":[1,2,3],"payload":[1]}]})",
       400, "payload"},
      {"PUT", "/collections/c/points", R"({"batch":{"ids":[1,2],"vectors":[[1,2,3]]}})", 400,
       "batch.vectors"},
      {"PUT", "/collections/c/points?wait=maybe", R"({"points":[]})", 400, "wait"},
      {"PUT", "/collections/c/points", big, 413, "too large"},
      {"POST", "/collections/nope/points/search", R"({"vector":[1,2,3],"limit":1})", 404, "nope"},
      {"PUT", "/collections/c", R"({"vectors":{"size":3,"distance":"Cosine"}})", 409,
       "already exists"},
      {"PUT", "/collections/d", R"({"vectors":{"size":0,"distance":"Cosine"}})", 400,
       "vectors.size"},
      {"PUT", "/collections/d", R"({"vectors":{"size":70000,"distance":"Cosine"}})", 400,
       "vectors.size"},
      {"PUT", "/collections/d", R"({"vectors":{"size":3,"distance":"Manhattan"}})", 400,
       "vectors.distance"},
      {"PUT", "/collections/d", R"({"vectors":{"size":3}})", 400, "vectors.distance"},
      {"POST", "/collections/c/points/search", R"({"vector":[1,2,3],"limit":-1})", 400, "limit"},
      {"POST", "/collections/c/points/search", R"({"vector":[1,2,3],"limit":20000})", 400, "limit"},
      {"POST", "/collections/c/points/search", R"({"vector":[1,2,3]})", 400, "limit"},
      {"POST", "/collections/c/points/search", R"({"vector":[1,2],"limit":1})", 400, "dimension"},
      {"POST", "/collections/c/points/search",
       R"({"vector":[1,2,3],"limit":1,"filter":{"must":[{"key":"n","range":{"gt":"x"}}]}})", 400,
       "filter.must[0].range"},
      {"POST", "/collections/c/points/search",
       R"({"vector":[1,2,3],"limit":1,"filter":{"oops":[]}})", 400, "filter"},
      {"POST", "/collections/c/points/search",
       R"({"vector":[1,2,3],"limit":1,"params":{"hnsw_ef":0}})", 400, "params.hnsw_ef"},
      {"POST", "/collections/c/points/search/batch",
       R"({"searches":[{"vector":[1,2,3],"limit":1},{"vector":[1],"limit":1}]})", 400, "dimension"},
      {"POST", "/collections/c/points/search/batch",
       R"({"searches":[{"vector":[1,2,3],"limit":"x"}]})", 400, "searches[0].limit"},
      {"POST", "/collections/c/points/scroll", R"({"limit":0})", 400, "limit"},
      {"POST", "/collections/c/points/delete", R"({"nothing":1})", 400, "filter"},
      {"GET", "/collections/c/points/not-a-uuid", "", 400, "id"},
      {"GET", "/no/such/route", "", 404, "no route"},
      {"DELETE", "/collections/c/points", "", 405, "not allowed"},
  };
  for (const Case& c : cases) {
    const Response r = call(c.method, c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " " << c.body.substr(0, 80)
                                  << " -> " << r.body;
    const json j = json::parse(r.body);
    ASSERT_TRUE(j["status"].is_object()) << r.body;
    const std::string msg = j["status"]["error"];
    EXPECT_NE(msg.find(c.mentions), std::string::npos)
        << "message '" << msg << "' should mention '" << c.mentions << "'";
  }
  // None of the bad writes changed anything.
  EXPECT_EQ(ok("POST", "/collections/c/points/count", json::object())["count"], 3);
}

namespace {
/// A concrete target for a route pattern: {name} is collection `c`, {id} point 1, {field_name}
/// the payload key "color" (all exist after make_points() and a payload index on "color").
std::string concrete(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size();) {
    if (pattern[i] != '{') {
      out += pattern[i++];
      continue;
    }
    const size_t end = pattern.find('}', i);
    const std::string param = pattern.substr(i + 1, end - i - 1);
    out += param == "name"            ? "c"
           : param == "id"            ? "1"
           : param == "field_name"    ? "color"
           : param == "snapshot_name" ? "s.snapshot"
           : param == "shard"         ? "0"
                                      : "?";
    EXPECT_TRUE(param == "name" || param == "id" || param == "field_name" ||
                param == "snapshot_name" || param == "shard")
        << "unknown path parameter {" << param << "} in " << pattern;
    i = end + 1;
  }
  return out;
}
}  // namespace

// Issue 20: every route of the table, walked: without a key a 401 and nothing done, with a
// wrong key a 403, unless the route is open (README: `/`, `/healthz`, `/livez`, `/readyz`).
TEST_F(ApiTest, ApiKeyGuardsEveryRouteButTheOpenOnes) {
  make_points();
  ok("PUT", "/collections/c/index", {{"field_name", "color"}, {"field_schema", "keyword"}});
  wp::http::ApiOptions o;
  o.api_key = "s3cret";
  Api guarded(*engine_, o);
  EXPECT_EQ(guarded.handle({"GET", "/collections", "", "", ""}).status, 401u);
  EXPECT_EQ(guarded.handle({"GET", "/collections", "", "wrong", ""}).status, 403u);
  EXPECT_EQ(guarded.handle({"GET", "/collections", "", "s3cret", ""}).status, 200u);
  EXPECT_EQ(guarded.handle({"GET", "/collections", "", "", "Bearer s3cret"}).status, 200u);
  EXPECT_EQ(guarded.handle({"GET", "/metrics", "", "", ""}).status, 401u);
  EXPECT_EQ(guarded.handle({"GET", "/healthz", "", "", ""}).status, 200u);

  // The open routes, written here from the README rather than read from the table.
  const std::set<std::string> open{"GET /", "GET /healthz", "GET /livez", "GET /readyz"};
  std::set<std::string> seen_open;
  size_t guarded_routes = 0;
  for (const auto& r : Api::routes()) {
    const std::string route = std::string(r.method) + " " + r.pattern;
    const std::string target = concrete(r.pattern);
    const std::string body = std::string(r.method) == "GET" ? "" : "{}";
    const Response none = guarded.handle({r.method, target, body, "", ""});
    const Response wrong = guarded.handle({r.method, target, body, "wrong", "Bearer wrong"});
    if (open.count(route)) {
      seen_open.insert(route);
      EXPECT_EQ(none.status, 200u) << route << " is open: " << none.body;
      EXPECT_EQ(wrong.status, 200u) << route << " is open: " << wrong.body;
    } else {
      ++guarded_routes;
      EXPECT_EQ(none.status, 401u) << route << " without a key: " << none.body;
      EXPECT_EQ(wrong.status, 403u) << route << " with a wrong key: " << wrong.body;
    }
  }
  EXPECT_EQ(seen_open, open);
  EXPECT_GE(guarded_routes, 30u);
  // Nothing any refused request asked for was done: the collection, its points and its payload
  // index are all there, and no other collection was made.
  EXPECT_EQ(ok("GET", "/collections")["collections"].size(), 1u);
  EXPECT_EQ(ok("POST", "/collections/c/points/count", json::object())["count"], 3);
  EXPECT_EQ(ok("GET", "/collections/c")["payload_schema"].size(), 1u);
}

// Issue 20: the routes the README promises, as a literal list written here (not the table the
// OpenAPI document is generated from): each is in /openapi.json and is answered by a handler
// (neither 404 nor 405) when called on things that exist.
TEST_F(ApiTest, OpenApiListsEveryPromisedRouteAndEachIsServed) {
  make_points();
  ok("PUT", "/collections/gone", {{"vectors", {{"size", 3}, {"distance", "Dot"}}}});
  ok("PUT", "/collections/c/index", {{"field_name", "color"}, {"field_schema", "keyword"}});
  const std::string snap = ok("POST", "/collections/c/snapshots")["name"];
  const std::string snap_file = wp::test::read_file(engine_->snapshot_file("c", snap));
  const std::string full = ok("POST", "/snapshots")["name"];
  struct Promised {
    std::string method;
    std::string path;    // as in the OpenAPI document
    std::string target;  // a call of it on things that exist
    std::string body;
    std::string type = "";  // Content-Type, when not JSON
  };
  const std::vector<Promised> promised{
      {"GET", "/", "/", ""},
      {"GET", "/healthz", "/healthz", ""},
      {"GET", "/livez", "/livez", ""},
      {"GET", "/readyz", "/readyz", ""},
      {"GET", "/metrics", "/metrics", ""},
      {"GET", "/openapi.json", "/openapi.json", ""},
      {"GET", "/issues", "/issues", ""},
      {"DELETE", "/issues", "/issues", ""},
      {"GET", "/collections", "/collections", ""},
      {"PUT", "/collections/{name}", "/collections/new",
       R"({"vectors": {"size": 3, "distance": "Cosine"}})"},
      {"GET", "/collections/{name}", "/collections/c", ""},
      {"PATCH", "/collections/{name}", "/collections/c", R"({"optimizers_config": {}})"},
      {"GET", "/collections/{name}/exists", "/collections/c/exists", ""},
      {"POST", "/collections/aliases", "/collections/aliases",
       R"({"actions": [{"create_alias": {"collection_name": "c", "alias_name": "al"}}]})"},
      {"GET", "/aliases", "/aliases", ""},
      {"GET", "/collections/{name}/aliases", "/collections/c/aliases", ""},
      {"PUT", "/collections/{name}/points", "/collections/c/points?wait=true",
       R"({"points": [{"id": 8, "vector": [8, 0, 0]}]})"},
      {"PUT", "/collections/{name}/points/vectors", "/collections/c/points/vectors",
       R"({"points": [{"id": 8, "vector": [8, 1, 0]}]})"},
      {"POST", "/collections/{name}/points/payload", "/collections/c/points/payload",
       R"({"payload": {"x": 1}, "points": [8]})"},
      {"PUT", "/collections/{name}/points/payload", "/collections/c/points/payload",
       R"({"payload": {"y": 1}, "points": [8]})"},
      {"POST", "/collections/{name}/points/payload/delete", "/collections/c/points/payload/delete",
       R"({"keys": ["y"], "points": [8]})"},
      {"POST", "/collections/{name}/points/payload/clear", "/collections/c/points/payload/clear",
       R"({"points": [8]})"},
      {"POST", "/collections/{name}/points/batch", "/collections/c/points/batch",
       R"({"operations": [{"set_payload": {"points": [8], "payload": {"b": 1}}}]})"},
      {"GET", "/collections/{name}/points/{id}", "/collections/c/points/1", ""},
      {"POST", "/collections/{name}/points", "/collections/c/points", R"({"ids": [1, 2]})"},
      {"POST", "/collections/{name}/points/count", "/collections/c/points/count", "{}"},
      {"POST", "/collections/{name}/points/scroll", "/collections/c/points/scroll",
       R"({"limit": 2})"},
      {"POST", "/collections/{name}/points/search", "/collections/c/points/search",
       R"({"vector": [1, 0, 0], "limit": 2})"},
      {"POST", "/collections/{name}/points/search/batch", "/collections/c/points/search/batch",
       R"({"searches": [{"vector": [1, 0, 0], "limit": 2}]})"},
      {"POST", "/collections/{name}/points/query", "/collections/c/points/query",
       R"({"query": [1, 0, 0], "limit": 2})"},
      {"POST", "/collections/{name}/points/query/batch", "/collections/c/points/query/batch",
       R"({"searches": [{"query": [1, 0, 0], "limit": 2}]})"},
      {"POST", "/collections/{name}/points/query/groups", "/collections/c/points/query/groups",
       R"({"query": [1, 0, 0], "group_by": "color"})"},
      {"POST", "/collections/{name}/points/search/groups", "/collections/c/points/search/groups",
       R"({"vector": [1, 0, 0], "group_by": "color", "limit": 2})"},
      {"POST", "/collections/{name}/points/recommend/groups",
       "/collections/c/points/recommend/groups",
       R"({"positive": [1], "group_by": "color", "limit": 2})"},
      {"POST", "/collections/{name}/points/recommend", "/collections/c/points/recommend",
       R"({"positive": [1], "limit": 2})"},
      {"POST", "/collections/{name}/points/recommend/batch",
       "/collections/c/points/recommend/batch", R"({"searches": [{"positive": [1], "limit": 2}]})"},
      {"POST", "/collections/{name}/points/discover", "/collections/c/points/discover",
       R"({"target": [1, 0, 0], "context": [{"positive": 1, "negative": 2}], "limit": 2})"},
      {"POST", "/collections/{name}/points/discover/batch", "/collections/c/points/discover/batch",
       R"({"searches": [{"context": [{"positive": 1, "negative": [0, 1, 0]}], "limit": 2}]})"},
      {"POST", "/collections/{name}/points/search/matrix/pairs",
       "/collections/c/points/search/matrix/pairs", R"({"sample": 3, "limit": 1})"},
      {"POST", "/collections/{name}/points/search/matrix/offsets",
       "/collections/c/points/search/matrix/offsets", R"({"sample": 3})"},
      {"POST", "/collections/{name}/facet", "/collections/c/facet", R"({"key": "color"})"},
      {"PUT", "/collections/{name}/index", "/collections/c/index",
       R"({"field_name": "n", "field_schema": "integer"})"},
      {"DELETE", "/collections/{name}/index/{field_name}", "/collections/c/index/n", ""},
      {"PUT", "/waypoint/collections/{name}/vector_index", "/waypoint/collections/c/vector_index",
       R"({"type": "flat"})"},
      {"GET", "/waypoint/collections/{name}/vector_index", "/waypoint/collections/c/vector_index",
       ""},
      {"POST", "/collections/{name}/points/delete", "/collections/c/points/delete?wait=true",
       R"({"points": [8]})"},
      {"POST", "/collections/{name}/snapshots", "/collections/c/snapshots", ""},
      {"GET", "/collections/{name}/snapshots", "/collections/c/snapshots", ""},
      {"GET", "/collections/{name}/snapshots/{snapshot_name}", "/collections/c/snapshots/" + snap,
       ""},
      {"PUT", "/collections/{name}/snapshots/recover", "/collections/c/snapshots/recover",
       json{{"location", "file://" + engine_->snapshot_file("c", snap)}}.dump()},
      {"POST", "/collections/{name}/snapshots/upload", "/collections/copy/snapshots/upload",
       "--B\r\nContent-Disposition: form-data; name=\"snapshot\"\r\n\r\n" + snap_file + "\r\n--B--",
       "multipart/form-data; boundary=B"},
      {"DELETE", "/collections/{name}/snapshots/{snapshot_name}",
       "/collections/c/snapshots/" + snap, ""},
      {"POST", "/snapshots", "/snapshots", ""},
      {"GET", "/snapshots", "/snapshots", ""},
      {"GET", "/snapshots/{snapshot_name}", "/snapshots/" + full, ""},
      {"DELETE", "/snapshots/{snapshot_name}", "/snapshots/" + full, ""},
      {"DELETE", "/collections/{name}", "/collections/gone", ""},
  };
  const json doc = json::parse(call("GET", "/openapi.json").body);
  for (const Promised& p : promised) {
    std::string method = p.method;
    for (char& ch : method) ch = static_cast<char>(std::tolower(ch));
    EXPECT_TRUE(doc["paths"].contains(p.path) && doc["paths"][p.path].contains(method))
        << p.method << " " << p.path << " is not in /openapi.json";
    engine_->collection("c")->wait_for_build();  // PUT vector_index may build in the background
    Request req{p.method, p.target, p.body, "", ""};
    req.content_type = p.type;
    const Response r = api_->handle(req);
    EXPECT_NE(r.status, 404u) << p.method << " " << p.target << ": " << r.body;
    EXPECT_NE(r.status, 405u) << p.method << " " << p.target << ": " << r.body;
    // All of them are well-formed calls on things that exist: each succeeds.
    EXPECT_EQ(r.status, 200u) << p.method << " " << p.target << ": " << r.body;
  }
  engine_->collection("c")->wait_for_build();
  EXPECT_EQ(call("GET", "/collections/gone").status, 404u);  // the DELETE did it
}

// Issue 15, security: Qdrant's read_only_api_key may call every route that reads and none that
// writes; the full key still calls all; keys are compared in constant time (api.cpp, same_key).
TEST_F(ApiTest, ReadOnlyKeyReadsButNeverWrites) {
  make_points();
  wp::http::ApiOptions o;
  o.api_key = "full-key";
  o.read_only_api_key = "ro-key";
  Api api(*engine_, o);
  const std::string up = R"({"points": [{"id": 9, "vector": [1, 2, 3]}]})";
  const auto as = [&](const std::string& key, const std::string& method, const std::string& target,
                      const std::string& body = "") {
    return api.handle(Request{method, target, body, key, ""}).status;
  };
  // Reads with the read-only key, by header and as a bearer token.
  EXPECT_EQ(as("ro-key", "GET", "/collections"), 200u);
  EXPECT_EQ(as("ro-key", "GET", "/collections/c"), 200u);
  EXPECT_EQ(
      as("ro-key", "POST", "/collections/c/points/search", R"({"vector": [1, 2, 3], "limit": 1})"),
      200u);
  EXPECT_EQ(as("ro-key", "POST", "/collections/c/points/count", "{}"), 200u);
  EXPECT_EQ(as("ro-key", "GET", "/metrics"), 200u);
  EXPECT_EQ(api.handle(Request{"GET", "/collections", "", "", "Bearer ro-key"}).status, 200u);
  // Every write is a 403 naming the route, and changes nothing.
  for (const auto& [method, target, body] : std::vector<std::array<std::string, 3>>{
           {"PUT", "/collections/c/points", up},
           {"POST", "/collections/c/points/delete", R"({"points": [1]})"},
           {"PUT", "/collections/d", R"({"vectors": {"size": 3, "distance": "Dot"}})"},
           {"DELETE", "/collections/c", ""},
           {"PUT", "/waypoint/collections/c/vector_index", R"({"type": "flat"})"}}) {
    const Response r = api.handle(Request{method, target, body, "ro-key", ""});
    EXPECT_EQ(r.status, 403u) << method << " " << target;
    EXPECT_NE(r.body.find("read-only api key may not call " + method), std::string::npos) << r.body;
  }
  EXPECT_EQ(ok("POST", "/collections/c/points/count", json::object())["count"], 3);
  EXPECT_EQ(ok("GET", "/collections")["collections"].size(), 1u);
  // The full key writes; a key that is a prefix or an extension of either is refused.
  EXPECT_EQ(as("full-key", "PUT", "/collections/c/points", up), 200u);
  EXPECT_EQ(as("full-ke", "GET", "/collections"), 403u);
  EXPECT_EQ(as("ro-key2", "GET", "/collections"), 403u);
  EXPECT_EQ(as("", "GET", "/collections"), 401u);
  // Only a read-only key: reads are guarded by it, writes refused to everyone.
  wp::http::ApiOptions only;
  only.read_only_api_key = "ro-key";
  Api ro(*engine_, only);
  EXPECT_EQ(ro.handle(Request{"GET", "/collections", "", "", ""}).status, 401u);
  EXPECT_EQ(ro.handle(Request{"GET", "/collections", "", "ro-key", ""}).status, 200u);
  EXPECT_EQ(ro.handle(Request{"PUT", "/collections/c/points", up, "ro-key", ""}).status, 403u);
}

// Every route says whether it writes, and the ones that change data say so (a new route that
// forgot would be open to the read-only key, or closed to it by kUnset).
TEST(ApiRoutes, EveryRouteStatesItsAccess) {
  for (const auto& r : Api::routes()) {
    EXPECT_NE(r.access, Api::Access::kUnset) << r.method << " " << r.pattern;
    const std::string m = r.method;
    if (m == "PUT" || m == "DELETE" || m == "PATCH") {
      EXPECT_EQ(r.access, Api::Access::kWrite) << r.method << " " << r.pattern;
    }
    if (m == "GET") {
      EXPECT_EQ(r.access, Api::Access::kRead) << r.pattern;
    }
  }
}

// Issue 15, defect 9: HEAD answered 405; it is answered as GET (the server drops the body).
TEST_F(ApiTest, HeadIsAnsweredAsGet) {
  make_points();
  EXPECT_EQ(call("HEAD", "/collections/c").status, 200u);
  EXPECT_EQ(call("HEAD", "/collections/nope").status, 404u);
  EXPECT_EQ(call("HEAD", "/collections/c/points/search/batch").status, 405u);
}

TEST_F(ApiTest, MetricsAndOpenApi) {
  make_points();
  call("GET", "/collections/nope");
  // A filter on a key without a payload index tests the payloads (the 3 points' here).
  ok("POST", "/collections/c/points/search",
     {{"vector", {0, 0, 0}},
      {"limit", 2},
      {"filter", {{"must", {{{"key", "color"}, {"match", {{"value", "red"}}}}}}}}});
  const Response m = call("GET", "/metrics");
  EXPECT_EQ(m.status, 200u);
  EXPECT_NE(m.content_type.find("text/plain"), std::string::npos);
  EXPECT_NE(m.body.find("waypoint_requests_total{route=\"/collections/{name}\",code=\"404\"} 1"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("waypoint_points{collection=\"c\"} 3"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("waypoint_filter_payload_tests_total{collection=\"c\"} 3"),
            std::string::npos)
      << m.body;
  EXPECT_NE(m.body.find("waypoint_request_duration_seconds_bucket{le=\"+Inf\"}"),
            std::string::npos);
  const Response o = call("GET", "/openapi.json");
  const json doc = json::parse(o.body);
  EXPECT_EQ(doc["openapi"], "3.0.3");
  for (const auto& r : Api::routes()) {
    std::string method = r.method;
    for (char& ch : method) ch = static_cast<char>(std::tolower(ch));
    EXPECT_TRUE(doc["paths"][r.pattern].contains(method)) << r.pattern;
  }
}

TEST_F(ApiTest, IndexRebuildInTheBackgroundSwapsWhenReady) {
  const auto ds = wp::test::load_test_data("siftsmall");
  ok("PUT", "/collections/s", {{"vectors", {{"size", 128}, {"distance", "Euclid"}}}});
  for (size_t b = 0; b < 3000; b += 1000) {  // the fixture's body limit is 1 MiB
    json pts = json::array();
    for (size_t i = b; i < b + 1000; ++i) {
      pts.push_back(
          {{"id", i}, {"vector", std::vector<float>(ds.base.row(i), ds.base.row(i) + 128)}});
    }
    ok("PUT", "/collections/s/points?wait=true", {{"points", pts}});
  }
  EXPECT_EQ(ok("GET", "/waypoint/collections/s/vector_index")["type"], "hnsw");

  const json started = ok("PUT", "/waypoint/collections/s/vector_index", {{"type", "flat"}});
  EXPECT_TRUE(started["state"] == "building" || started["state"] == "ready");
  // Searches keep answering while the build runs.
  const json query{{"vector", std::vector<float>(ds.query.row(0), ds.query.row(0) + 128)},
                   {"limit", 10}};
  EXPECT_EQ(ok("POST", "/collections/s/points/search", query).size(), 10u);
  engine_->collection("s")->wait_for_build();
  const json done = ok("GET", "/waypoint/collections/s/vector_index");
  EXPECT_EQ(done["state"], "ready");
  EXPECT_EQ(done["type"], "flat");
  EXPECT_EQ(done["progress"], 1.0);
  // The flat index answers exactly: the true nearest neighbours among the 3000 points.
  const json hits = ok("POST", "/collections/s/points/search", query);
  ASSERT_EQ(hits.size(), 10u);
  double best = 1e30;
  size_t best_id = 0;
  for (size_t i = 0; i < 3000; ++i) {
    const double d = wp::index::l2sqr(ds.query.row(0), ds.base.row(i), 128);
    if (d < best) {
      best = d;
      best_id = i;
    }
  }
  EXPECT_EQ(hits[0]["id"], best_id);

  ok("PUT", "/waypoint/collections/s/vector_index",
     {{"type", "hnsw"}, {"m", 8}, {"quantization", "sq8"}});
  engine_->collection("s")->wait_for_build();
  const json back = ok("GET", "/waypoint/collections/s/vector_index");
  EXPECT_EQ(back["type"], "hnsw");
  EXPECT_EQ(back["params"]["m"], 8);
  EXPECT_EQ(back["params"]["quantization"], "sq8");
  EXPECT_EQ(ok("POST", "/collections/s/points/search", query)[0]["id"], best_id);
  EXPECT_NE(call("GET", "/metrics").body.find("waypoint_index_build_progress{collection=\"s\"} 1"),
            std::string::npos);

  // lsh: random planes, 8 tables; its parameters are checked and named, and belong to lsh only.
  ok("PUT", "/waypoint/collections/s/vector_index",
     {{"type", "lsh"}, {"bits", 256}, {"tables", 8}, {"candidates", 200}});
  engine_->collection("s")->wait_for_build();
  const json lsh = ok("GET", "/waypoint/collections/s/vector_index");
  EXPECT_EQ(lsh["type"], "lsh");
  EXPECT_EQ(lsh["state"], "ready");
  EXPECT_EQ(lsh["params"]["bits"], 256);
  EXPECT_EQ(lsh["params"]["tables"], 8);
  EXPECT_EQ(ok("POST", "/collections/s/points/search", query)[0]["id"], best_id);
  const Response bad_bits =
      call("PUT", "/waypoint/collections/s/vector_index", R"({"type":"lsh","bits":0})");
  EXPECT_EQ(bad_bits.status, 400u);
  EXPECT_NE(bad_bits.body.find("bits"), std::string::npos) << bad_bits.body;
  EXPECT_EQ(
      call("PUT", "/waypoint/collections/s/vector_index", R"({"type":"hnsw","tables":3})").status,
      400u);
  EXPECT_EQ(
      call("PUT", "/waypoint/collections/s/vector_index", R"({"type":"lsh","steps":3})").status,
      400u);
  // graph: HNSW's level 0 RobustPruned with alpha; alpha is checked, named, and graph's only.
  ok("PUT", "/waypoint/collections/s/vector_index",
     {{"type", "graph"}, {"m", 12}, {"alpha", 1.3}, {"ef", 64}});
  engine_->collection("s")->wait_for_build();
  const json graph = ok("GET", "/waypoint/collections/s/vector_index");
  EXPECT_EQ(graph["type"], "graph");
  EXPECT_EQ(graph["state"], "ready");
  EXPECT_EQ(graph["params"]["m"], 12);
  EXPECT_DOUBLE_EQ(graph["params"]["alpha"].get<double>(), 1.3);
  EXPECT_EQ(ok("POST", "/collections/s/points/search", query)[0]["id"], best_id);
  const Response bad_alpha =
      call("PUT", "/waypoint/collections/s/vector_index", R"({"type":"graph","alpha":0.5})");
  EXPECT_EQ(bad_alpha.status, 400u);
  EXPECT_NE(bad_alpha.body.find("alpha"), std::string::npos) << bad_alpha.body;
  EXPECT_EQ(
      call("PUT", "/waypoint/collections/s/vector_index", R"({"type":"hnsw","alpha":1.2})").status,
      400u);
  // rl is built by learn/: without a registered builder (this binary links no LibTorch), a 400
  // that says so; its own parameters belong to rl only.
  const Response rl = call("PUT", "/waypoint/collections/s/vector_index", R"({"type":"rl"})");
  EXPECT_EQ(rl.status, 400u);
  EXPECT_NE(rl.body.find("LibTorch"), std::string::npos) << rl.body;
  EXPECT_EQ(
      call("PUT", "/waypoint/collections/s/vector_index", R"({"type":"hnsw","steps":3})").status,
      400u);
  EXPECT_EQ(call("PUT", "/waypoint/collections/s/vector_index", R"({"type":"hnsw","m":1})").status,
            400u);
  EXPECT_EQ(
      call("PUT", "/waypoint/collections/s/vector_index", R"({"type":"hnsw","bogus":1})").status,
      400u);
}

TEST_F(ApiTest, AutoIndexTunesInTheBackgroundAndBuildsTheBest) {
  const auto ds = wp::test::load_test_data("siftsmall");
  ok("PUT", "/collections/t", {{"vectors", {{"size", 128}, {"distance", "Euclid"}}}});
  json pts = json::array();
  for (size_t i = 0; i < 1000; ++i) {
    pts.push_back(
        {{"id", i}, {"vector", std::vector<float>(ds.base.row(i), ds.base.row(i) + 128)}});
  }
  ok("PUT", "/collections/t/points?wait=true", {{"points", pts}});
  // Bad requests name the field; nothing starts.
  const Response bad_recall =
      call("PUT", "/waypoint/collections/t/vector_index", R"({"type":"auto","recall":2})");
  EXPECT_EQ(bad_recall.status, 400u);
  EXPECT_NE(bad_recall.body.find("recall"), std::string::npos) << bad_recall.body;
  const Response bad_types =
      call("PUT", "/waypoint/collections/t/vector_index", R"({"type":"auto","types":["ivf"]})");
  EXPECT_EQ(bad_types.status, 400u);
  EXPECT_NE(bad_types.body.find("types"), std::string::npos) << bad_types.body;
  // rl trains a graph per configuration through learn/: this binary has no builder for it.
  const Response no_rl =
      call("PUT", "/waypoint/collections/t/vector_index", R"({"type":"auto","types":["rl"]})");
  EXPECT_EQ(no_rl.status, 400u);
  EXPECT_NE(no_rl.body.find("types"), std::string::npos) << no_rl.body;
  EXPECT_NE(no_rl.body.find("LibTorch"), std::string::npos) << no_rl.body;
  EXPECT_EQ(
      call("PUT", "/waypoint/collections/t/vector_index", R"({"type":"auto","bits":64})").status,
      400u);
  EXPECT_EQ(ok("GET", "/waypoint/collections/t/vector_index")["state"], "ready");

  const json started = ok("PUT", "/waypoint/collections/t/vector_index",
                          {{"type", "auto"}, {"recall", 0.9}, {"trials", 6}, {"types", {"hnsw"}}});
  EXPECT_TRUE(started["state"] == "tuning" || started["state"] == "ready") << started.dump();
  const Response busy = call("PUT", "/waypoint/collections/t/vector_index", R"({"type":"flat"})");
  EXPECT_TRUE(busy.status == 409u || busy.status == 200u);  // 409 unless tuning already ended
  engine_->collection("t")->wait_for_build();
  const json done = ok("GET", "/waypoint/collections/t/vector_index");
  ASSERT_EQ(done["state"], "ready") << done.dump();
  EXPECT_EQ(done["type"], "hnsw");
  ASSERT_TRUE(done.contains("tune")) << done.dump();
  EXPECT_EQ(done["tune"]["trials"], 6);
  EXPECT_EQ(done["tune"]["config"]["type"], "hnsw");
  EXPECT_TRUE(done["tune"]["feasible"].get<bool>()) << done.dump();
  EXPECT_GE(done["tune"]["recall"].get<double>(), 0.9);
  // The served index is the chosen configuration.
  EXPECT_EQ(done["params"]["m"], done["tune"]["config"]["m"]);
  EXPECT_EQ(done["params"]["ef"], done["tune"]["config"]["ef"]);
  const json query{{"vector", std::vector<float>(ds.base.row(5), ds.base.row(5) + 128)},
                   {"limit", 3}};
  EXPECT_EQ(ok("POST", "/collections/t/points/search", query)[0]["id"], 5);

  // Too few points to hold queries out of.
  ok("PUT", "/collections/few", {{"vectors", {{"size", 128}, {"distance", "Euclid"}}}});
  const Response few = call("PUT", "/waypoint/collections/few/vector_index", R"({"type":"auto"})");
  EXPECT_EQ(few.status, 400u);
  EXPECT_NE(few.body.find("at least"), std::string::npos) << few.body;
}

// Issue 15, defects 1-3, 5, 9: requests that used to end the process or lose data.
namespace {
/// A JSON error answer with `status` whose message is valid UTF-8 and at most `max` bytes.
void expect_error(const Response& r, unsigned status, size_t max = 600) {
  EXPECT_EQ(r.status, status) << r.body;
  json j;
  ASSERT_NO_THROW(j = json::parse(r.body)) << r.body;
  ASSERT_TRUE(j["status"].contains("error")) << r.body;
  EXPECT_LE(j["status"]["error"].get<std::string>().size(), max) << r.body;
}

/// `levels` nested arrays around `inner`.
std::string nested(size_t levels, const std::string& inner) {
  return std::string(levels, '[') + inner + std::string(levels, ']');
}
}  // namespace

TEST_F(ApiTest, InvalidUtf8AnywhereIsA4xxNeverACrash) {
  make_points();
  expect_error(call("GET", "/collections/%FF"), 404);
  expect_error(call("GET", "/collections/c/points/%FF"), 400);
  expect_error(call("PUT", "/collections/c/points?wait=%FF", R"({"points": []})"), 400);
  expect_error(call("POST", "/collections/%FF%FE/points/search", R"({"vector": [1], "limit": 1})"),
               404);
  expect_error(call("PUT", "/collections/c/points", "{\"points\": [{\"id\": \"\xff\"}]}"), 400);
  expect_error(call("PUT", "/collections/%FF", R"({"vectors": {"size": 3, "distance": "Dot"}})"),
               400);
  expect_error(call("GET", "/%FF%C0%80/%ED%A0%80"), 404);
}

TEST_F(ApiTest, NestingDeeperThan128LevelsIsRefusedBeforeParsing) {
  make_points();
  // 70k levels overflowed the stack when the value was echoed into a message.
  const std::string deep = nested(70000, "1");
  expect_error(call("PUT", "/collections/c/points",
                    R"({"points": [{"id": )" + deep + R"(, "vector": [1, 2, 3]}]})"),
               400);
  expect_error(call("POST", "/collections/c/points/search",
                    R"({"vector": [1, )" + deep + R"(, 3], "limit": 1})"),
               400);
  expect_error(call("POST", "/collections/c/points/query",
                    R"({"query": {"nearest": )" + deep + R"(}, "limit": 1})"),
               400);
  // A payload nested that deep was stored, then crashed every read of it: refused now, and the
  // message says why.
  const Response r = call("PUT", "/collections/c/points?wait=true",
                          R"({"points": [{"id": 9, "vector": [1, 2, 3], "payload": {"a": )" +
                              nested(200, "0") + "}}]}");
  expect_error(r, 400);
  EXPECT_NE(r.body.find("nested deeper than 128"), std::string::npos) << r.body;
  EXPECT_EQ(call("GET", "/collections/c/points/9").status, 404u);
  // 128 levels in all (4 around the payload, 124 in it) are the limit and pass; brackets inside
  // strings do not count.
  ok("PUT", "/collections/c/points?wait=true",
     json::parse(R"({"points": [{"id": 9, "vector": [1, 2, 3], "payload": {"a": )" +
                 nested(124, "\"[[[[{{{{\"") + "}}]}"));
  EXPECT_EQ(ok("GET", "/collections/c/points/9")["id"], 9);
}

TEST_F(ApiTest, InternalFolderNamesAreUnreachable) {
  const json create{{"vectors", {{"size", 3}, {"distance", "Dot"}}}};
  for (const char* name : {".creating-bar", ".deleted-7", ".x", "."}) {
    expect_error(call("PUT", std::string("/collections/") + name, create.dump()), 400);
  }
  ok("PUT", "/collections/bar", create);
  // 246..255 characters passed validation and failed on the file system with its path.
  expect_error(call("PUT", "/collections/" + std::string(246, 'a'), create.dump()), 400);
  ok("PUT", "/collections/" + std::string(245, 'a'), create);
  // Restart: nothing the clients created is taken for a leftover.
  restart();
  EXPECT_EQ(ok("GET", "/collections")["collections"].size(), 2u);
}

TEST_F(ApiTest, InputsAreQuotedShortAndIdsOutOfRangeAre400) {
  make_points();
  expect_error(call("GET", "/collections/c/points/18446744073709551616"), 400);
  expect_error(call("GET", "/collections/c/points/99999999999999999999999"), 400);
  EXPECT_EQ(ok("GET", "/collections/c/points/2")["id"], 2);
  const std::string huge(100000, 'x');
  expect_error(call("GET", "/collections/" + huge), 404);
  expect_error(call("GET", "/collections/c/points/" + huge), 400);
  expect_error(call("POST", "/collections/c/points", json{{"ids", {huge}}}.dump()), 400);
  expect_error(call("GET", "/no/such/" + huge), 404);
}

TEST_F(ApiTest, PutIndexAnswersWithTheRequestedTarget) {
  make_points();
  const json r = ok("PUT", "/waypoint/collections/c/vector_index", {{"type", "flat"}});
  // The build may already be done, else its target is the request.
  if (r["state"] == "building") {
    EXPECT_EQ(r["target"]["type"], "flat") << r.dump();
  } else {
    EXPECT_EQ(r["type"], "flat") << r.dump();
  }
  engine_->collection("c")->wait_for_build();
  const json done = ok("GET", "/waypoint/collections/c/vector_index");
  EXPECT_EQ(done["type"], "flat");
  EXPECT_FALSE(done.contains("target"));
}

TEST_F(ApiTest, BearerSchemeIsCaseInsensitive) {
  wp::http::ApiOptions o;
  o.api_key = "secret";
  Api api(*engine_, o);
  EXPECT_EQ(api.handle(Request{"GET", "/collections", "", "", "Bearer secret"}).status, 200u);
  EXPECT_EQ(api.handle(Request{"GET", "/collections", "", "", "bearer secret"}).status, 200u);
  EXPECT_EQ(api.handle(Request{"GET", "/collections", "", "", "BEARER secret"}).status, 200u);
  EXPECT_EQ(api.handle(Request{"GET", "/collections", "", "", "bearer secreT"}).status, 403u);
  EXPECT_EQ(api.handle(Request{"GET", "/collections", "", "", "bearer"}).status, 403u);
}

// Issue 15, defect 6: a batch of 20k searches made a 175 MB answer in 60 s. Batches, answers
// and the vectors in them are capped, with a 400 naming the field.
TEST_F(ApiTest, BatchesAndAnswersAreCapped) {
  make_points();
  json searches = json::array();
  for (size_t i = 0; i <= wp::http::kMaxBatchSearches; ++i) {
    searches.push_back({{"vector", {0, 0, 0}}, {"limit", 1}});
  }
  Response r =
      call("POST", "/collections/c/points/search/batch", json{{"searches", searches}}.dump());
  expect_error(r, 400);
  EXPECT_NE(r.body.find("searches: at most 1000"), std::string::npos) << r.body;
  searches.erase(searches.begin());
  EXPECT_EQ(ok("POST", "/collections/c/points/search/batch", {{"searches", searches}}).size(),
            wp::http::kMaxBatchSearches);
  // 1000 searches of 101 results each pass the point cap of 100,000 only together with limits
  // that add up below it.
  for (json& s : searches) s["limit"] = 101;
  r = call("POST", "/collections/c/points/search/batch", json{{"searches", searches}}.dump());
  expect_error(r, 400);
  EXPECT_NE(r.body.find("at most 100000"), std::string::npos) << r.body;
  // Vectors: a collection of dimension 65536 cannot answer 10000 points with their vectors.
  ok("PUT", "/collections/wide", {{"vectors", {{"size", 65536}, {"distance", "Dot"}}}});
  r = call("POST", "/collections/wide/points/scroll", R"({"limit": 10000, "with_vector": true})");
  expect_error(r, 400);
  EXPECT_NE(r.body.find("vector values"), std::string::npos) << r.body;
  ok("POST", "/collections/wide/points/scroll", {{"limit", 10000}});
}

// Issue 16: Qdrant's payload edits, by ids and by filter, durable and seen by the next filter.
TEST_F(ApiTest, PayloadSetOverwriteDeleteAndClearByIdsOrFilter) {
  make_points();
  const std::string uuid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
  auto payload = [&](const json& id) {
    return ok("POST", "/collections/c/points",
              {{"ids", {id}}, {"with_payload", true}})[0]["payload"];
  };
  // set: merged into the payload, or into the object at `key` (created as needed).
  ok("POST", "/collections/c/points/payload?wait=true",
     {{"payload", {{"size", "L"}, {"n", 7}}}, {"points", {1, 2}}});
  EXPECT_EQ(payload(1), json({{"color", "red"}, {"n", 7}, {"size", "L"}}));
  ok("POST", "/collections/c/points/payload",
     {{"payload", {{"a", 1}}}, {"points", {1}}, {"key", "meta.tags"}});
  ok("POST", "/collections/c/points/payload",
     {{"payload", {{"b", 2}}}, {"points", {1}}, {"key", "meta"}});
  EXPECT_EQ(payload(1)["meta"], json({{"tags", {{"a", 1}}}, {"b", 2}}));
  // By filter: the edit is seen by the next filtered count and search.
  const json red{{"must", {{{"key", "color"}, {"match", {{"value", "red"}}}}}}};
  const json hot{{"must", {{{"key", "hot"}, {"match", {{"value", true}}}}}}};
  ok("POST", "/collections/c/points/payload", {{"payload", {{"hot", true}}}, {"filter", red}});
  EXPECT_EQ(ok("POST", "/collections/c/points/count", {{"filter", hot}})["count"], 2);
  const json found = ok("POST", "/collections/c/points/search",
                        {{"vector", {2, 0, 0}}, {"limit", 3}, {"filter", hot}});
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0]["id"], uuid);
  EXPECT_EQ(found[1]["id"], 1);
  // overwrite: the payload becomes the given object.
  ok("PUT", "/collections/c/points/payload", {{"payload", {{"only", 1}}}, {"points", {2}}});
  EXPECT_EQ(payload(2), json({{"only", 1}}));
  // delete keys (key paths) by filter; clear by ids.
  ok("POST", "/collections/c/points/payload/delete",
     {{"keys", {"n", "meta.tags", "absent.path"}}, {"filter", red}});
  EXPECT_EQ(payload(1),
            json({{"color", "red"}, {"size", "L"}, {"meta", {{"b", 2}}}, {"hot", true}}));
  EXPECT_EQ(payload(uuid), json({{"color", "red"}, {"hot", true}}));
  ok("POST", "/collections/c/points/payload/clear?wait=true", {{"points", {uuid}}});
  EXPECT_EQ(payload(uuid), json::object());
  EXPECT_EQ(ok("POST", "/collections/c/points/count", {{"filter", hot}})["count"], 1);

  // Bad bodies: 4xx naming the field, nothing written.
  struct Case {
    const char* method;
    const char* target;
    std::string body;
    unsigned status;
    const char* mentions;
  };
  std::string deep_key = "k";
  for (int i = 0; i < 63; ++i) deep_key += ".k";
  json deep = 1;
  for (int i = 0; i < 100; ++i) deep = json::array({deep});
  const std::vector<Case> cases{
      {"POST", "/collections/c/points/payload", R"({"payload":{"x":1},"points":[1,99]})", 404,
       "99"},
      {"POST", "/collections/c/points/payload", R"({"payload":{"x":1}})", 400, "filter"},
      {"POST", "/collections/c/points/payload",
       R"({"payload":{"x":1},"points":[1],"filter":{"must":[]}})", 400, "not both"},
      {"POST", "/collections/c/points/payload", R"({"payload":[1],"points":[1]})", 400, "payload"},
      {"POST", "/collections/c/points/payload", R"({"points":[1]})", 400, "payload"},
      {"POST", "/collections/c/points/payload", R"({"payload":{"x":1},"points":[1],"key":"a..b"})",
       400, "key"},
      {"POST", "/collections/c/points/payload",
       json({{"payload", {{"x", deep}}}, {"points", {1}}, {"key", deep_key}}).dump(), 400,
       "deeper than 128"},
      {"PUT", "/collections/c/points/payload", R"({"payload":"x","points":[1]})", 400, "payload"},
      {"POST", "/collections/c/points/payload/delete", R"({"keys":"n","points":[1]})", 400, "keys"},
      {"POST", "/collections/c/points/payload/delete", R"({"keys":["n",""],"points":[1]})", 400,
       "keys[1]"},
      {"POST", "/collections/c/points/payload/clear", R"({"points":[-1]})", 400, "points"},
      {"POST", "/collections/c/points/payload/clear", R"({"filter":{"must":[{"key":1}]}})", 400,
       "filter.must[0]"},
      {"POST", "/collections/nope/points/payload/clear", R"({"points":[1]})", 404, "nope"},
  };
  const json before = payload(1);
  for (const Case& c : cases) {
    const Response r = call(c.method, c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " " << c.body.substr(0, 80)
                                  << " -> " << r.body;
    const std::string msg = json::parse(r.body)["status"]["error"];
    EXPECT_NE(msg.find(c.mentions), std::string::npos)
        << "message '" << msg << "' should mention '" << c.mentions << "'";
  }
  EXPECT_EQ(payload(1), before);

  // Durable: a restart finds every edit.
  restart();
  EXPECT_EQ(payload(1), before);
  EXPECT_EQ(payload(2), json({{"only", 1}}));
  EXPECT_EQ(payload(uuid), json::object());
  EXPECT_EQ(ok("POST", "/collections/c/points/count", {{"filter", hot}})["count"], 1);
}

// Issue 16: GET / in Qdrant's shape (clients read it as the version info), the probes as text
// and open without a key, and PATCH /collections/{name} rebuilding the index in the background.
TEST_F(ApiTest, RootProbesAndCollectionUpdate) {
  const Response root = call("GET", "/");
  ASSERT_EQ(root.status, 200u);
  const json r = json::parse(root.body);
  EXPECT_FALSE(r.contains("result"));
  EXPECT_TRUE(r["title"].is_string());
  EXPECT_TRUE(r["version"].is_string());
  EXPECT_EQ(call("GET", "/livez").body, "healthz check passed");
  EXPECT_EQ(call("GET", "/healthz").body, "healthz check passed");
  EXPECT_EQ(call("GET", "/readyz").body, "all shards are ready");
  EXPECT_EQ(call("GET", "/readyz").content_type.rfind("text/plain", 0), 0u);
  wp::http::ApiOptions guarded_options;
  guarded_options.api_key = "k";
  Api guarded(*engine_, guarded_options);
  for (const char* open : {"/", "/livez", "/readyz", "/healthz"}) {
    EXPECT_EQ(guarded.handle({"GET", open, "", "", ""}).status, 200u) << open;
  }
  EXPECT_EQ(guarded.handle({"GET", "/collections", "", "", ""}).status, 401u);

  make_points();
  EXPECT_EQ(ok("PATCH", "/collections/c",
               {{"hnsw_config", {{"m", 8}, {"ef_construct", 50}}},
                {"quantization_config", {{"scalar", {{"type", "int8"}, {"quantile", 0.99}}}}},
                {"optimizers_config", {{"indexing_threshold", 0}}}}),
            true);
  engine_->collection("c")->wait_for_build();
  const json info = ok("GET", "/collections/c");
  EXPECT_EQ(info["config"]["hnsw_config"]["m"], 8);
  EXPECT_EQ(info["config"]["hnsw_config"]["ef_construct"], 50);
  EXPECT_EQ(info["config"]["quantization_config"]["scalar"]["type"], "int8");
  const json served = ok("GET", "/waypoint/collections/c/vector_index");
  EXPECT_EQ(served["state"], "ready");
  EXPECT_EQ(served["type"], "hnsw");
  EXPECT_EQ(served["params"]["m"], 8);
  EXPECT_EQ(served["params"]["quantization"], "sq8");
  EXPECT_EQ(
      ok("POST", "/collections/c/points/search", {{"vector", {1, 0, 0}}, {"limit", 1}})[0]["id"],
      2);
  ok("PATCH", "/collections/c", {{"quantization_config", "Disabled"}});
  engine_->collection("c")->wait_for_build();
  EXPECT_EQ(ok("GET", "/waypoint/collections/c/vector_index")["params"]["quantization"], "none");
  EXPECT_TRUE(ok("GET", "/collections/c")["config"]["quantization_config"].is_null());
  // A create takes the same settings.
  ok("PUT", "/collections/q",
     {{"vectors", {{"size", 3}, {"distance", "Dot"}}},
      {"quantization_config", {{"scalar", {{"type", "int8"}}}}}});
  EXPECT_EQ(ok("GET", "/waypoint/collections/q/vector_index")["params"]["quantization"], "sq8");

  const std::vector<std::pair<std::string, std::string>> bad{
      {R"({"quantization_config":{"product":{"compression":"x4"}}})", "quantization_config"},
      {R"({"quantization_config":{"scalar":{"type":"int4"}}})", "quantization_config.scalar.type"},
      {R"({"quantization_config":{"scalar":{"type":"int8","quantile":2}}})",
       "quantization_config.scalar.quantile"},
      {R"({"hnsw_config":{"m":1}})", "hnsw_config.m"},
      {R"({"hnsw_config":{"payload_m":-4}})", "hnsw_config.payload_m"},
      {R"({"hnsw_config":{"on_disk":true}})", "hnsw_config.on_disk"},
      {R"({"optimizers_config":{"indexing_threshold":"x"}})",
       "optimizers_config.indexing_threshold"},
      {R"({"optimizers_config":{"bogus":1}})", "optimizers_config.bogus"},
      {R"({"vectors":{"size":4}})", "vectors"},
      {R"([1])", "body"},
  };
  for (const auto& [body, field] : bad) {
    const Response resp = call("PATCH", "/collections/c", body);
    EXPECT_EQ(resp.status, 400u) << body << " -> " << resp.body;
    EXPECT_NE(resp.body.find(field), std::string::npos) << body << " -> " << resp.body;
  }
  EXPECT_EQ(call("PATCH", "/collections/nope", "{}").status, 404u);
  // Nothing of the refused updates was applied.
  EXPECT_EQ(ok("GET", "/collections/c")["config"]["hnsw_config"]["m"], 8);
}

// Qdrant's hnsw_config.max_indexing_threads: taken at create (collection-wide and per named
// vector), changed by PATCH without a rebuild, shown in the info object, set on the served index
// (the vector_index route reads it back from the index), kept through a restart and through a
// rebuild's swap; out of range is a 400 naming the field, applying nothing.
TEST_F(ApiTest, MaxIndexingThreadsIsKeptShownAndSetOnTheServedIndex) {
  const auto served_bound = [&](const std::string& col, const std::string& vector = "") {
    return ok("GET", "/waypoint/collections/" + col + "/vector_index" +
                         (vector.empty() ? "" : "?using=" + vector))["max_indexing_threads"];
  };
  make_points();
  EXPECT_EQ(ok("GET", "/collections/c")["config"]["hnsw_config"]["max_indexing_threads"], 0);
  EXPECT_EQ(served_bound("c"), 0);
  ok("PATCH", "/collections/c", {{"hnsw_config", {{"max_indexing_threads", 1}}}});
  // No rebuild: the same index is served, now bounded.
  EXPECT_EQ(ok("GET", "/waypoint/collections/c/vector_index")["state"], "ready");
  EXPECT_EQ(ok("GET", "/collections/c")["config"]["hnsw_config"]["max_indexing_threads"], 1);
  EXPECT_EQ(ok("GET", "/collections/c")["config"]["hnsw_config"]["m"], 16);
  EXPECT_EQ(served_bound("c"), 1);
  ok("PUT", "/collections/c/points?wait=true", {{"points", {{{"id", 9}, {"vector", {3, 0, 0}}}}}});
  EXPECT_EQ(
      ok("POST", "/collections/c/points/search", {{"vector", {3, 0, 0}}, {"limit", 1}})[0]["id"],
      9);
  // A rebuild (m changes) serves a new index with the same bound.
  ok("PATCH", "/collections/c", {{"hnsw_config", {{"m", 8}}}});
  engine_->collection("c")->wait_for_build();
  EXPECT_EQ(ok("GET", "/collections/c")["config"]["hnsw_config"]["m"], 8);
  EXPECT_EQ(served_bound("c"), 1);
  // Per named vector, over the collection's own.
  ok("PUT", "/collections/nv",
     {{"vectors",
       {{"a", {{"size", 2}, {"distance", "Dot"}}},
        {"b", {{"size", 2}, {"distance", "Dot"}, {"hnsw_config", {{"max_indexing_threads", 2}}}}}}},
      {"hnsw_config", {{"max_indexing_threads", 3}}}});
  json nv = ok("GET", "/collections/nv")["config"]["params"]["vectors"];
  EXPECT_EQ(nv["a"]["hnsw_config"]["max_indexing_threads"], 3);
  EXPECT_EQ(nv["b"]["hnsw_config"]["max_indexing_threads"], 2);
  EXPECT_EQ(served_bound("nv", "a"), 3);
  EXPECT_EQ(served_bound("nv", "b"), 2);
  ok("PATCH", "/collections/nv",
     {{"vectors", {{"a", {{"hnsw_config", {{"max_indexing_threads", 0}}}}}}}});
  EXPECT_EQ(served_bound("nv", "a"), 0);
  EXPECT_EQ(served_bound("nv", "b"), 2);

  for (const char* body : {R"({"hnsw_config":{"max_indexing_threads":-1}})",
                           R"({"hnsw_config":{"max_indexing_threads":65537}})",
                           R"({"hnsw_config":{"max_indexing_threads":"4"}})"}) {
    const Response resp = call("PATCH", "/collections/c", body);
    EXPECT_EQ(resp.status, 400u) << body << " -> " << resp.body;
    EXPECT_NE(resp.body.find("hnsw_config.max_indexing_threads"), std::string::npos) << resp.body;
  }
  const Response bad_name =
      call("PATCH", "/collections/nv",
           R"({"vectors":{"zz":{"hnsw_config":{"max_indexing_threads":1}}}})");
  EXPECT_EQ(bad_name.status, 400u) << bad_name.body;
  EXPECT_EQ(served_bound("c"), 1);

  restart();
  EXPECT_EQ(ok("GET", "/collections/c")["config"]["hnsw_config"]["max_indexing_threads"], 1);
  EXPECT_EQ(served_bound("c"), 1);
  EXPECT_EQ(served_bound("nv", "a"), 0);
  EXPECT_EQ(served_bound("nv", "b"), 2);
}

// Issue 16: Qdrant's payload index route (createPayloadIndex), shown in payload_schema, kept
// through a restart, dropped by DELETE; bad bodies are 4xx naming the field.
TEST_F(ApiTest, PayloadIndexesAreCreatedListedUsedAndDropped) {
  make_points();
  const json r = ok("PUT", "/collections/c/index?wait=true",
                    {{"field_name", "color"}, {"field_schema", "keyword"}});
  EXPECT_EQ(r["status"], "completed");
  ok("PUT", "/collections/c/index",
     {{"field_name", "n"}, {"field_schema", {{"type", "integer"}, {"lookup", true}}}});
  json schema = ok("GET", "/collections/c")["payload_schema"];
  EXPECT_EQ(schema["color"], json({{"data_type", "keyword"}, {"points", 3}}));
  EXPECT_EQ(schema["n"]["data_type"], "integer");
  const json red{{"must", {{{"key", "color"}, {"match", {{"value", "red"}}}}}}};
  EXPECT_EQ(ok("POST", "/collections/c/points/count", {{"filter", red}})["count"], 2);
  // Facets count the values of an indexed key, most first (ties by value), under a filter.
  EXPECT_EQ(ok("POST", "/collections/c/facet", {{"key", "color"}})["hits"],
            json::parse(R"([{"value":"red","count":2},{"value":"blue","count":1}])"));
  EXPECT_EQ(ok("POST", "/collections/c/facet",
               {{"key", "color"},
                {"filter", {{"must", {{{"key", "n"}, {"range", {{"gte", 2}}}}}}}}})["hits"],
            json::parse(R"([{"value":"blue","count":1},{"value":"red","count":1}])"));
  EXPECT_EQ(ok("POST", "/collections/c/facet", {{"key", "n"}, {"limit", 1}})["hits"],
            json::parse(R"([{"value":1,"count":1}])"));
  const Response no_index = call("POST", "/collections/c/facet", R"({"key":"size"})");
  EXPECT_EQ(no_index.status, 400u);
  EXPECT_NE(no_index.body.find("payload index"), std::string::npos) << no_index.body;
  EXPECT_EQ(call("POST", "/collections/c/facet", R"({"key":"color","limit":0})").status, 400u);
  // Full-text and datetime indexes: match.text and datetime ranges through them; no facets.
  ok("POST", "/collections/c/points/payload",
     {{"payload", {{"title", "The Red Fox"}, {"at", "2024-05-01T10:00:00Z"}}}, {"points", {1}}});
  ok("PUT", "/collections/c/index",
     {{"field_name", "title"},
      {"field_schema", {{"type", "text"}, {"tokenizer", "word"}, {"lowercase", true}}}});
  ok("PUT", "/collections/c/index", {{"field_name", "at"}, {"field_schema", "datetime"}});
  schema = ok("GET", "/collections/c")["payload_schema"];
  EXPECT_EQ(schema["title"],
            json({{"data_type", "text"},
                  {"params", {{"type", "text"}, {"tokenizer", "word"}, {"lowercase", true}}},
                  {"points", 1}}));
  EXPECT_EQ(schema["at"], json({{"data_type", "datetime"}, {"points", 1}}));
  const json fox{{"must", {{{"key", "title"}, {"match", {{"text", "fox red"}}}}}}};
  EXPECT_EQ(ok("POST", "/collections/c/points/count", {{"filter", fox}})["count"], 1);
  const json may{{"must", {{{"key", "at"}, {"range", {{"gte", "2024-05-01T09:00:00Z"}}}}}}};
  EXPECT_EQ(ok("POST", "/collections/c/points/count", {{"filter", may}})["count"], 1);
  const Response text_facet = call("POST", "/collections/c/facet", R"({"key":"title"})");
  EXPECT_EQ(text_facet.status, 400u);
  EXPECT_NE(text_facet.body.find("not a text"), std::string::npos) << text_facet.body;
  ok("PUT", "/collections/c/points",
     {{"points", {{{"id", 9}, {"vector", {9, 9, 9}}, {"payload", {{"color", "red"}}}}}}});
  EXPECT_EQ(ok("POST", "/collections/c/points/count", {{"filter", red}})["count"], 3);

  struct Case {
    std::string body;
    const char* mentions;
  };
  const std::vector<Case> bad{
      {R"({"field_schema":"keyword"})", "field_name"},
      {R"({"field_name":"a..b","field_schema":"keyword"})", "field_name"},
      {R"({"field_name":"x"})", "field_schema"},
      {R"({"field_name":"x","field_schema":"words"})", "field_schema"},
      {R"({"field_name":"x","field_schema":"geography"})", "field_schema"},
      {R"({"field_name":"x","field_schema":{"type":"text","tokenizer":"multilingual"}})",
       "field_schema.tokenizer: expected one of"},
      {R"({"field_name":"x","field_schema":{"type":"text","tokenizer":"multilingual"}})",
       "(the multilingual tokenizer is not supported)"},
      {R"({"field_name":"x","field_schema":{"type":"text","tokenizer":5}})",
       "field_schema.tokenizer: expected one of"},
      {R"({"field_name":"x","field_schema":{"type":"text","lowercase":"no"}})",
       "field_schema.lowercase: expected a bool"},
      {R"({"field_name":"x","field_schema":{"type":"text","phrase_matching":1}})",
       "field_schema.phrase_matching: expected a bool"},
      {R"({"field_name":"x","field_schema":{"type":"text","stopwords":"klingon"}})",
       "field_schema.stopwords: only"},
      {R"({"field_name":"x","field_schema":{"type":"text","stemmer":{"type":"snowball","language":"x"}}})",
       "field_schema.stemmer.language"},
      {R"({"field_name":"x","field_schema":{"max_token_len":65,"type":"text","tokenizer":"prefix"}})",
       "field_schema.max_token_len: a prefix index holds prefixes of at most 64 characters"},
      {R"({"field_name":"x","field_schema":{"type":"text","tokenizer":"prefix","min_token_len":65}})",
       "field_schema.min_token_len: a prefix index holds prefixes of at most 64"},
      {R"({"field_name":"x","field_schema":{"type":"keyword","tokenizer":"word"}})",
       "field_schema.tokenizer: unknown option"},
      {R"({"field_name":"x","field_schema":{"type":"keyword","on_disk":3}})",
       "field_schema.on_disk"},
      {R"({"field_name":"x","field_schema":{"type":"text","min_token_len":-1}})",
       "field_schema.min_token_len"},
      {R"({"field_name":"x","field_schema":{"type":"text","max_token_len":"20"}})",
       "field_schema.max_token_len"},
      {R"({"field_name":"x","field_schema":{"type":"text","min_token_len":5,"max_token_len":4}})",
       "field_schema.min_token_len: 5 is more than max_token_len 4"},
      {R"({"field_name":"x","field_schema":{"type":"keyword","min_token_len":2}})",
       "field_schema.min_token_len: unknown option"},
      {R"({"field_name":"x","field_schema":{"kind":"keyword"}})", "field_schema.type"},
      {R"({"field_name":"x","field_schema":"keyword","extra":1})", "extra"},
  };
  for (const Case& c : bad) {
    const Response resp = call("PUT", "/collections/c/index", c.body);
    EXPECT_EQ(resp.status, 400u) << c.body << " -> " << resp.body;
    EXPECT_NE(resp.body.find(c.mentions), std::string::npos) << c.body << " -> " << resp.body;
  }
  EXPECT_EQ(
      call("PUT", "/collections/nope/index", R"({"field_name":"x","field_schema":"bool"})").status,
      404u);
  EXPECT_EQ(ok("GET", "/collections/c")["payload_schema"].size(), 4u);  // nothing added

  // Kept through a restart; dropped by DELETE (404 when there is none).
  restart();
  schema = ok("GET", "/collections/c")["payload_schema"];
  EXPECT_EQ(schema["color"], json({{"data_type", "keyword"}, {"points", 4}}));
  EXPECT_EQ(schema["title"],
            json({{"data_type", "text"},
                  {"params", {{"type", "text"}, {"tokenizer", "word"}, {"lowercase", true}}},
                  {"points", 1}}));
  EXPECT_EQ(ok("POST", "/collections/c/points/count", {{"filter", fox}})["count"], 1);
  ok("DELETE", "/collections/c/index/color?wait=true");
  EXPECT_EQ(call("DELETE", "/collections/c/index/color").status, 404u);
  EXPECT_EQ(ok("GET", "/collections/c")["payload_schema"].size(), 3u);
  EXPECT_EQ(ok("POST", "/collections/c/points/count", {{"filter", red}})["count"], 3);
}

// Qdrant's full-text example ({"type": "text", "tokenizer": "word", "min_token_len": 2,
// "max_token_len": 20, "lowercase": true}): a text index keeps the words of min_token_len to
// max_token_len characters (a UTF-8 letter counts one), and match.text reads a query's words as
// the index does: those outside the bounds are left out, and a query left with none matches
// nothing. The same answers from the index's candidates, from a test of every point (a should
// the index cannot narrow), in a filtered search, in a batch's write by filter over a point it
// has just written, and after a restart; the bounds are reported, and go with the index.
TEST_F(ApiTest, TextIndexBoundsDecideWhichWordsOfAQueryCount) {
  ok("PUT", "/collections/t", {{"vectors", {{"size", 2}, {"distance", "Euclid"}}}});
  const std::vector<std::string> titles{
      "a red fox", "the red fox jumps", "a supercalifragilistic word",
      "red",       "Мир fox",           "Мир jumps"};
  json points = json::array();
  for (size_t i = 0; i < titles.size(); ++i) {
    points.push_back({{"id", i + 1},
                      {"vector", {static_cast<double>(i), 0.0}},
                      {"payload",
                       {{"title", titles[i]},
                        {"other", titles[i]},
                        {"notes", {{{"title", i == 0 ? "a fox" : "red fox"}}}}}}});
  }
  ok("PUT", "/collections/t/points?wait=true", {{"points", points}});
  auto text = [](const std::string& key, const std::string& words) {
    return json{{"key", key}, {"match", {{"text", words}}}};
  };
  auto found = [&](const std::string& key, const std::string& words) {
    return text_matches("t", key, words, {0, 0});
  };
  using Ids = std::vector<int>;
  // No index: every word counts.
  EXPECT_EQ(found("title", "a fox"), Ids({1}));
  EXPECT_EQ(found("title", "supercalifragilistic"), Ids({3}));
  ok("PUT", "/collections/t/index?wait=true",
     {{"field_name", "title"},
      {"field_schema",
       {{"type", "text"},
        {"tokenizer", "word"},
        {"min_token_len", 2},
        {"max_token_len", 10},
        {"lowercase", true}}}});
  ok("PUT", "/collections/t/index?wait=true",
     {{"field_name", "other"}, {"field_schema", {{"type", "text"}, {"min_token_len", 4}}}});
  const json schema = ok("GET", "/collections/t")["payload_schema"];
  EXPECT_EQ(schema["title"]["params"], json({{"type", "text"},
                                             {"tokenizer", "word"},
                                             {"lowercase", true},
                                             {"min_token_len", 2},
                                             {"max_token_len", 10}}));
  EXPECT_EQ(schema["other"]["params"]["min_token_len"], 4);
  EXPECT_FALSE(schema["other"]["params"].contains("max_token_len"));
  auto bounded = [&] {
    EXPECT_EQ(found("title", "a fox"), Ids({1, 2, 5})) << "\"a\" is shorter than 2";
    // Inside a nested condition "title" is the element's key, not the indexed one: every word.
    const json nested{
        {"must",
         {{{"nested", {{"key", "notes"}, {"filter", {{"must", {text("title", "a fox")}}}}}}}}}};
    EXPECT_EQ(ok("POST", "/collections/t/points/count", {{"filter", nested}})["count"], 1);
    EXPECT_EQ(found("title", "A"), Ids()) << "no word left: nothing matches";
    EXPECT_EQ(found("title", "supercalifragilistic"), Ids()) << "longer than 10";
    EXPECT_EQ(found("title", "red supercalifragilistic"), Ids({1, 2, 4}));
    EXPECT_EQ(found("title", "мир"), Ids()) << "ASCII letters alone are lowercased";
    EXPECT_EQ(found("title", "Мир"), Ids({5, 6})) << "3 letters, 6 bytes";
    // "Мир" is 3 letters (not the 6 bytes it takes): shorter than 4, left out.
    EXPECT_EQ(found("other", "Мир jumps"), Ids({2, 6}));
    EXPECT_EQ(found("other", "red fox"), Ids());
  };
  bounded();
  restart();
  bounded();
  // A batch that writes a point and then deletes by filter: the point it has just written is
  // tested as the stored ones are ("a" left out: every fox goes).
  ok("POST", "/collections/t/points/batch?wait=true",
     {{"operations",
       {{{"upsert",
          {{"points", {{{"id", 7}, {"vector", {7, 0}}, {"payload", {{"title", "fox"}}}}}}}}},
        {{"delete", {{"filter", {{"must", {text("title", "a fox")}}}}}}}}}});
  EXPECT_EQ(found("title", "fox"), Ids());
  EXPECT_EQ(found("title", "jumps"), Ids({6}));
  // Dropped with its index: every word counts again.
  ok("DELETE", "/collections/t/index/title?wait=true");
  EXPECT_EQ(found("title", "A"), Ids({3}));
  EXPECT_EQ(found("title", "a supercalifragilistic"), Ids({3}));
}

// Qdrant's text index params beyond the word tokenizer: "prefix" (a word matches the query's
// words that begin it, cut to max_token_len), "whitespace" (tokens between white space, their
// punctuation kept) and lowercase false (case tells words apart). Each answers alike through the
// index and through a test of every point, reports its params, lasts a restart, and goes with
// its index; a new index of other params on the same key reads the texts its way.
// match.prefix (Qdrant 1.19) through count, scroll and a filtered search: without an index, through
// a keyword index with the prefix option (reported as Qdrant reports it, kept by a restart), and
// through a plain keyword index; each way through the index and through a test of every point
// (a should the indexes cannot narrow), against the test's own reading of the payloads.
TEST_F(ApiTest, MatchPrefixFindsTheSameWithAPrefixIndexAndWithout) {
  ok("PUT", "/collections/p", {{"vectors", {{"size", 2}, {"distance", "Euclid"}}}});
  const std::vector<std::string> skus{"AB-100", "AB-200", "ab-300", "ABC",   "A",
                                      "XY-1",   "",       "Мир-1",  "Мирный"};
  json points = json::array();
  std::vector<json> values;
  for (int id = 1; id <= 90; ++id) {
    json v = id % 7 == 0   ? json(id)
             : id % 5 == 0 ? json::array({skus[id % 9], skus[(id + 4) % 9]})
                           : json(skus[id % 9]);
    values.push_back(v);
    points.push_back({{"id", id}, {"vector", {id % 10, id / 10}}, {"payload", {{"sku", v}}}});
  }
  ok("PUT", "/collections/p/points?wait=true", {{"points", points}});
  auto expected = [&](const std::string& prefix) {
    std::vector<int> ids;
    for (size_t i = 0; i < values.size(); ++i) {
      const json& v = values[i];
      bool holds = false;
      for (const json& one : v.is_array() ? v : json::array({v})) {
        holds |= one.is_string() && one.get<std::string>().rfind(prefix, 0) == 0;
      }
      if (holds) ids.push_back(static_cast<int>(i + 1));
    }
    return ids;
  };
  auto check = [&](const std::string& when) {
    for (const std::string prefix : {"AB", "AB-", "A", "ab", "", "Мир", "Z", "AB-100"}) {
      const json cond{{"key", "sku"}, {"match", {{"prefix", prefix}}}};
      const std::vector<int> want = expected(prefix);
      for (const json& filter :
           {json{{"must", {cond}}},
            json{{"should", {cond, {{"key", "none"}, {"match", {{"value", 1}}}}}}}}) {
        const std::string asked = when + " \"" + prefix + "\" " + filter.dump();
        std::vector<int> scrolled, searched;
        const json page =
            ok("POST", "/collections/p/points/scroll", {{"filter", filter}, {"limit", 100}});
        for (const json& p : page["points"]) scrolled.push_back(p["id"]);
        EXPECT_EQ(scrolled, want) << asked;
        EXPECT_EQ(ok("POST", "/collections/p/points/count", {{"filter", filter}})["count"],
                  want.size())
            << asked;
        const json hits = ok("POST", "/collections/p/points/search",
                             {{"vector", {0, 0}}, {"limit", 100}, {"filter", filter}});
        for (const json& h : hits) searched.push_back(h["id"]);
        std::sort(searched.begin(), searched.end());
        EXPECT_EQ(searched, want) << asked;
      }
    }
  };
  check("no index");
  EXPECT_EQ(expected("AB").size(), 31u);  // the prefixes find points
  ok("PUT", "/collections/p/index?wait=true",
     {{"field_name", "sku"}, {"field_schema", {{"type", "keyword"}, {"prefix", true}}}});
  const json reported{{"type", "keyword"}, {"prefix", true}};
  EXPECT_EQ(ok("GET", "/collections/p")["payload_schema"]["sku"]["params"], reported);
  check("prefix index");
  restart();
  EXPECT_EQ(ok("GET", "/collections/p")["payload_schema"]["sku"]["params"], reported);
  check("prefix index, restarted");
  // Written after the index: new keys enter its order, removed ones leave it.
  const json abz{{"id", 91}, {"vector", {1, 1}}, {"payload", {{"sku", "ABZ"}}}};
  ok("PUT", "/collections/p/points?wait=true", {{"points", json::array({abz})}});
  values.push_back("ABZ");
  ok("POST", "/collections/p/points/delete?wait=true", {{"points", {4}}});
  values[3] = json();
  check("prefix index, written");
  ok("PUT", "/collections/p/index?wait=true", {{"field_name", "sku"}, {"field_schema", "keyword"}});
  EXPECT_FALSE(ok("GET", "/collections/p")["payload_schema"]["sku"].contains("params"));
  check("keyword index without the option");
  for (const auto& [schema, field] : std::vector<std::pair<json, std::string>>{
           {{{"type", "integer"}, {"prefix", true}}, "field_schema.prefix: unknown option"},
           {{{"type", "keyword"}, {"prefix", "yes"}}, "field_schema.prefix: expected a bool"}}) {
    const Response r = call("PUT", "/collections/p/index",
                            json{{"field_name", "n"}, {"field_schema", schema}}.dump());
    EXPECT_EQ(r.status, 400u) << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << r.body;
  }
}

// Qdrant's issues API: a filtered read slower than the threshold (0 here: every one) notes each
// key its filter tests without an index that would serve the condition, with the index request
// that would; an index on the key solves it, as does deleting the collection; DELETE clears.
// The fixture's server, at Qdrant's 1.2 s, notes nothing for the same fast reads.
TEST_F(ApiTest, SlowFilteredReadsNoteUnindexedKeysAsIssues) {
  wp::http::ApiOptions o;
  o.slow_query_seconds = 0;
  Api slow(*engine_, o);
  auto answer = [&](const std::string& method, const std::string& target, const json& body) {
    const Response r =
        slow.handle(Request{method, target, body.is_null() ? "" : body.dump(), "", ""});
    EXPECT_EQ(r.status, 200u) << method << " " << target << ": " << r.body;
    return json::parse(r.body)["result"];
  };
  auto ids = [&] {
    std::vector<std::string> out;
    const json report = answer("GET", "/issues", nullptr);
    for (const json& i : report["issues"]) out.push_back(i["id"]);
    return out;
  };
  make_points();
  ok("PUT", "/collections/c/index", {{"field_name", "color"}, {"field_schema", "keyword"}});
  ok("POST", "/collections/aliases",
     {{"actions", {{{"create_alias", {{"collection_name", "c"}, {"alias_name", "a"}}}}}}});
  const json filter{{"must",
                     {{{"key", "color"}, {"match", {{"value", "red"}}}},
                      {{"key", "n"}, {"range", {{"gte", 1}}}}}}};
  // The fixture's server: a fast read is no slow query.
  ok("POST", "/collections/c/points/search",
     {{"vector", {0, 0, 0}}, {"limit", 3}, {"filter", filter}});
  EXPECT_TRUE(ok("GET", "/issues")["issues"].empty());

  answer("POST", "/collections/a/points/search",
         {{"vector", {0, 0, 0}}, {"limit", 3}, {"filter", filter}});
  EXPECT_EQ(ids(), std::vector<std::string>{"UNINDEXED_FIELD/c/n"});  // color is indexed
  const json issue = answer("GET", "/issues", nullptr)["issues"][0];
  EXPECT_EQ(issue["related_collection"], "c");
  EXPECT_EQ(issue["description"],
            "Unindexed field 'n' might be slowing queries down in collection 'c'");
  const json& choice = issue["solution"]["immediate_choice"];
  ASSERT_EQ(choice.size(), 2u);  // a range: a float or an integer index
  EXPECT_EQ(choice[0]["action"]["method"], "PUT");
  EXPECT_EQ(choice[0]["action"]["uri"], "/collections/c/index");
  EXPECT_EQ(choice[0]["action"]["body"], json({{"field_name", "n"}, {"field_schema", "float"}}));
  EXPECT_EQ(choice[1]["action"]["body"]["field_schema"], "integer");
  EXPECT_TRUE(issue["timestamp"].is_string());

  // A count and a query's prefetch: their keys too (a prefix wants the keyword index's option).
  answer("POST", "/collections/c/points/count",
         {{"filter", {{"must", {{{"key", "tag"}, {"match", {{"prefix", "x"}}}}}}}}});
  const json flagged{{"must", {{{"key", "meta.w"}, {"match", {{"value", true}}}}}}};
  const json prefetch{{"query", {0, 0, 0}}, {"filter", flagged}};
  answer("POST", "/collections/c/points/query", {{"prefetch", prefetch}, {"query", {1, 0, 0}}});
  EXPECT_EQ(ids(), (std::vector<std::string>{"UNINDEXED_FIELD/c/n", "UNINDEXED_FIELD/c/tag",
                                             "UNINDEXED_FIELD/c/meta.w"}));
  const json tag = answer("GET", "/issues", nullptr)["issues"][1]["solution"]["immediate"];
  EXPECT_EQ(tag["action"]["body"]["field_schema"], json({{"type", "keyword"}, {"prefix", true}}));

  // Following a solution solves its issue, and the same reads note it no more.
  answer("PUT", "/collections/c/index", choice[1]["action"]["body"]);
  answer("POST", "/collections/c/points/search",
         {{"vector", {0, 0, 0}}, {"limit", 3}, {"filter", filter}});
  EXPECT_EQ(ids(), (std::vector<std::string>{"UNINDEXED_FIELD/c/tag", "UNINDEXED_FIELD/c/meta.w"}));
  // A keyword index without the prefix option is solved, and noted again at the next read.
  answer("PUT", "/collections/c/index", {{"field_name", "tag"}, {"field_schema", "keyword"}});
  EXPECT_EQ(ids(), std::vector<std::string>{"UNINDEXED_FIELD/c/meta.w"});
  answer("POST", "/collections/c/points/count",
         {{"filter", {{"must", {{{"key", "tag"}, {"match", {{"prefix", "x"}}}}}}}}});
  EXPECT_EQ(ids(), (std::vector<std::string>{"UNINDEXED_FIELD/c/meta.w", "UNINDEXED_FIELD/c/tag"}));
  // Writes are no slow reads; a filter that does not parse notes nothing.
  answer("POST", "/collections/c/points/delete",
         {{"filter", {{"must", {{{"key", "gone"}, {"match", {{"value", 1}}}}}}}}});
  slow.handle(Request{"POST", "/collections/c/points/count",
                      json{{"filter", {{"must", {{{"key", "bad"}, {"match", 5}}}}}}}.dump(), "",
                      ""});
  EXPECT_EQ(ids().size(), 2u);
  EXPECT_EQ(answer("DELETE", "/issues", nullptr), true);
  EXPECT_TRUE(ids().empty());
  answer("POST", "/collections/c/points/scroll",
         {{"filter", {{"must", {{{"key", "z"}, {"match", {{"value", 1}}}}}}}}});
  EXPECT_EQ(ids(), std::vector<std::string>{"UNINDEXED_FIELD/c/z"});
  answer("DELETE", "/collections/c", nullptr);
  EXPECT_TRUE(ids().empty());
}

TEST_F(ApiTest, TextIndexTokenizersAndCaseDecideWhatMatches) {
  ok("PUT", "/collections/t", {{"vectors", {{"size", 2}, {"distance", "Euclid"}}}});
  const std::vector<std::string> titles{
      "Hello World",     "help wanted", "C++ and c-style",        "the world wide",
      "HELIUM balloons", "c++ tips",    "\u201CHello\u201D there"};
  json points = json::array();
  for (size_t i = 0; i < titles.size(); ++i) {
    points.push_back({{"id", i + 1},
                      {"vector", {static_cast<double>(i), 0.0}},
                      {"payload", {{"title", titles[i]}, {"code", titles[i]}}}});
  }
  ok("PUT", "/collections/t/points?wait=true", {{"points", points}});
  using Ids = std::vector<int>;
  auto found = [&](const std::string& key, const std::string& words) {
    return text_matches("t", key, words, {0, 0});
  };
  // Without an index, words, lowercased: no prefixes, no punctuation.
  EXPECT_EQ(found("title", "hel"), Ids());
  EXPECT_EQ(found("code", "c++"), Ids({3, 6}));  // "c" alone
  EXPECT_EQ(found("title", "hello"), Ids({1, 7}));
  ok("PUT", "/collections/t/index?wait=true",
     {{"field_name", "title"},
      {"field_schema", {{"type", "text"}, {"tokenizer", "prefix"}, {"max_token_len", 4}}}});
  ok("PUT", "/collections/t/index?wait=true",
     {{"field_name", "code"},
      {"field_schema", {{"type", "text"}, {"tokenizer", "whitespace"}, {"lowercase", false}}}});
  const json schema = ok("GET", "/collections/t")["payload_schema"];
  EXPECT_EQ(
      schema["title"]["params"],
      json({{"type", "text"}, {"tokenizer", "prefix"}, {"lowercase", true}, {"max_token_len", 4}}));
  EXPECT_EQ(schema["code"]["params"],
            json({{"type", "text"}, {"tokenizer", "whitespace"}, {"lowercase", false}}));
  auto read_as_indexed = [&] {
    EXPECT_EQ(found("title", "hel"), Ids({1, 2, 5, 7}));
    EXPECT_EQ(found("title", "HEL wor"), Ids({1}));
    EXPECT_EQ(found("title", "helpful"), Ids({2}));  // both cut to "help"
    EXPECT_EQ(found("title", "ello"), Ids());        // a prefix, not a substring
    EXPECT_EQ(found("title", "w"), Ids({1, 2, 4}));
    EXPECT_EQ(found("code", "c++"), Ids({6}));
    EXPECT_EQ(found("code", "C++"), Ids({3}));
    EXPECT_EQ(found("code", "c-style C++"), Ids({3}));
    EXPECT_EQ(found("code", "c"), Ids());
    EXPECT_EQ(found("code", "\u201CHello\u201D"), Ids({7}));
    EXPECT_EQ(found("code", "Hello"), Ids({1}));
  };
  read_as_indexed();
  restart();
  read_as_indexed();
  // An index of other params on the same key reads its texts again.
  ok("PUT", "/collections/t/index?wait=true",
     {{"field_name", "code"},
      {"field_schema", {{"type", "text"}, {"lowercase", false}, {"phrase_matching", true}}}});
  EXPECT_EQ(ok("GET", "/collections/t")["payload_schema"]["code"]["params"],
            json({{"type", "text"},
                  {"tokenizer", "word"},
                  {"lowercase", false},
                  {"phrase_matching", true}}));
  EXPECT_EQ(found("code", "Hello"), Ids({1, 7}));
  EXPECT_EQ(found("code", "c"), Ids({3, 6}));
  // text_any and phrase (Qdrant 1.15's match kinds) through the same indexes.
  auto any = [&](const std::string& key, const std::string& words) {
    return text_matches("t", key, words, {0, 0}, "text_any");
  };
  auto phrase = [&](const std::string& key, const std::string& words) {
    return text_matches("t", key, words, {0, 0}, "phrase");
  };
  EXPECT_EQ(any("title", "wid tip"), Ids({4, 6}));
  EXPECT_EQ(any("title", "zebra"), Ids());
  EXPECT_EQ(phrase("title", "wor wid"), Ids({4}));
  EXPECT_EQ(phrase("title", "wid wor"), Ids());
  EXPECT_EQ(any("code", "Hello tips"), Ids({1, 6, 7}));
  EXPECT_EQ(phrase("code", "c tips"), Ids({6}));
  EXPECT_EQ(phrase("code", "tips c"), Ids());
  restart();
  EXPECT_EQ(ok("GET", "/collections/t")["payload_schema"]["code"]["params"]["phrase_matching"],
            true);
  EXPECT_EQ(phrase("code", "c tips"), Ids({6}));
  EXPECT_EQ(found("code", "c"), Ids({3, 6}));
  // Dropped: words, lowercased, again.
  ok("DELETE", "/collections/t/index/title?wait=true");
  EXPECT_EQ(found("title", "hel"), Ids());
  EXPECT_EQ(found("title", "HELLO"), Ids({1, 7}));
  EXPECT_EQ(found("title", "worlds"), Ids());
  // Qdrant's stopwords and Snowball stemmer, as in its full-text guide.
  ok("PUT", "/collections/t/points?wait=true",
     {{"points",
       {{{"id", 8}, {"vector", {8, 0}}, {"payload", {{"title", "Crème BRÛLÉE balloon"}}}}}}});
  const json stemmed{{"type", "text"},
                     {"tokenizer", "word"},
                     {"lowercase", true},
                     {"ascii_folding", true},
                     {"stopwords", {{"languages", {"english"}}, {"custom", {"wanted"}}}},
                     {"stemmer", {{"type", "snowball"}, {"language", "english"}}}};
  ok("PUT", "/collections/t/index?wait=true", {{"field_name", "title"}, {"field_schema", stemmed}});
  auto stems = [&] {
    EXPECT_EQ(ok("GET", "/collections/t")["payload_schema"]["title"]["params"], stemmed);
    EXPECT_EQ(found("title", "worlds"), Ids({1, 4}));
    EXPECT_EQ(found("title", "the balloon"), Ids({5, 8}));  // "the" is a stopword
    EXPECT_EQ(found("title", "creme brulee"), Ids({8}));    // folded to ASCII
    EXPECT_EQ(found("title", "crème"), Ids({8}));
    EXPECT_EQ(found("title", "wanted"), Ids());  // and so is "wanted" here
    EXPECT_EQ(phrase("title", "worlds wide"), Ids({4}));
    EXPECT_EQ(phrase("title", "wide worlds"), Ids());
    EXPECT_EQ(any("title", "tip balloon"), Ids({5, 6, 8}));
  };
  stems();
  restart();
  stems();
}

// Issue 16: points/query/batch, which the current Qdrant clients call for searchBatch: each
// answer is {"points"}; one bad request fails the batch before any query runs.
TEST_F(ApiTest, QueryBatchAnswersEachQueryOrFailsAsAWhole) {
  make_points();
  const std::string uuid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
  const json answers =
      ok("POST", "/collections/c/points/query/batch",
         {{"searches",
           {{{"query", {0.9, 0, 0}}, {"limit", 1}},
            {{"query", {{"nearest", uuid}}}, {"limit", 2}},
            {{"query", 1}, {"limit", 1}, {"with_payload", true}},
            {{"limit", 2},
             {"filter", {{"must", {{{"key", "color"}, {"match", {{"value", "red"}}}}}}}}}}}});
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_EQ(answers[0]["points"][0]["id"], 2);
  EXPECT_EQ(answers[1]["points"][0]["id"], 2);  // the point named is left out
  EXPECT_EQ(answers[1]["points"][1]["id"], 1);
  EXPECT_NE(answers[2]["points"][0]["id"], 1);
  EXPECT_TRUE(answers[2]["points"][0].contains("payload"));
  ASSERT_EQ(answers[3]["points"].size(), 2u);
  EXPECT_EQ(answers[3]["points"][0]["id"], 1);

  std::string many = R"({"searches":[)";
  for (int i = 0; i < 1001; ++i) many += std::string(i ? "," : "") + R"({"query":[1,2,3]})";
  many += "]}";
  const std::vector<std::pair<std::string, std::string>> bad{
      {R"({"searches":[{"query":[1,2,3]},{"query":[1,2]}]})", "dimension"},
      {R"({"searches":[{"query":[1,2,3]},{"query":{"far":1}}]})", "searches[1].query"},
      {R"({"searches":[{"query":[1,2,3]},{"query":true}]})", "searches[1].query"},
      {R"({"searches":[{"query":[1,2,3],"limit":0}]})", "searches[0].limit"},
      {R"({"searches":{}})", "searches"},
      {many, "at most 1000"},
  };
  for (const auto& [body, field] : bad) {
    const Response r = call("POST", "/collections/c/points/query/batch", body);
    EXPECT_EQ(r.status, 400u) << body.substr(0, 80) << " -> " << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << body.substr(0, 80) << " -> " << r.body;
  }
  EXPECT_EQ(call("POST", "/collections/c/points/query/batch",
                 R"({"searches":[{"query":[1,2,3]},{"query":77}]})")
                .status,
            404u);
}

// Issue 16: aliases, changed all or none, durable, accepted by every collection route, gone with
// their collection.
TEST_F(ApiTest, AliasesAreAtomicDurableAndServeEveryCollectionRoute) {
  make_points();
  ok("PUT", "/collections/d", {{"vectors", {{"size", 3}, {"distance", "Dot"}}}});
  EXPECT_EQ(
      ok("POST", "/collections/aliases",
         json::parse(R"({"actions":[{"create_alias":{"collection_name":"c","alias_name":"prod"}},
                   {"create_alias":{"collection_name":"d","alias_name":"next"}}]})")),
      true);
  EXPECT_EQ(ok("GET", "/aliases")["aliases"],
            json::parse(R"([{"alias_name":"next","collection_name":"d"},
                            {"alias_name":"prod","collection_name":"c"}])"));
  EXPECT_EQ(ok("GET", "/collections/c/aliases")["aliases"].size(), 1u);
  // Routes take the alias: reads, searches, writes.
  EXPECT_EQ(ok("POST", "/collections/prod/points/count", json::object())["count"], 3);
  EXPECT_EQ(
      ok("POST", "/collections/prod/points/search", {{"vector", {1, 0, 0}}, {"limit", 1}})[0]["id"],
      2);
  ok("PUT", "/collections/prod/points?wait=true",
     {{"points", {{{"id", 4}, {"vector", {4, 0, 0}}}}}});
  EXPECT_EQ(ok("POST", "/collections/c/points/count", json::object())["count"], 4);
  // A switch in one request: delete and create together.
  ok("POST", "/collections/aliases",
     json::parse(R"({"actions":[{"delete_alias":{"alias_name":"prod"}},
                   {"create_alias":{"collection_name":"d","alias_name":"prod"}},
                   {"rename_alias":{"old_alias_name":"next","new_alias_name":"spare"}}]})"));
  EXPECT_EQ(ok("POST", "/collections/prod/points/count", json::object())["count"], 0);
  // All or none: one bad action leaves everything as it was.
  const std::vector<std::pair<std::string, unsigned>> bad{
      {R"({"actions":[{"delete_alias":{"alias_name":"spare"}},{"delete_alias":{"alias_name":"nope"}}]})",
       404},
      {R"({"actions":[{"create_alias":{"collection_name":"zz","alias_name":"x"}}]})", 404},
      {R"({"actions":[{"create_alias":{"collection_name":"c","alias_name":"d"}}]})", 409},
      {R"({"actions":[{"create_alias":{"collection_name":"c","alias_name":"spare"}}]})", 409},
      {R"({"actions":[{"create_alias":{"collection_name":"c","alias_name":".creating-x"}}]})", 400},
      {R"({"actions":[{"drop_alias":{"alias_name":"spare"}}]})", 400},
      {R"({"actions":[{"create_alias":{"collection_name":"c"}}]})", 400},
      {R"({"actions":{}})", 400},
  };
  for (const auto& [body, status] : bad) {
    const Response r = call("POST", "/collections/aliases", body);
    EXPECT_EQ(r.status, status) << body << " -> " << r.body;
  }
  const json before = ok("GET", "/aliases");
  EXPECT_EQ(before["aliases"].size(), 2u);
  EXPECT_EQ(call("PUT", "/collections/spare", R"({"vectors":{"size":3,"distance":"Dot"}})").status,
            409u);
  EXPECT_EQ(call("GET", "/collections/nope/aliases").status, 404u);
  // Durable; deleting a collection deletes its aliases.
  restart();
  EXPECT_EQ(ok("GET", "/aliases"), before);
  ok("DELETE", "/collections/d");
  EXPECT_EQ(ok("GET", "/aliases")["aliases"].size(), 0u);
  EXPECT_EQ(call("POST", "/collections/prod/points/count", "{}").status, 404u);
}

// Issue 16: recommendations (points/recommend, recommend/batch, query {"recommend"}) with
// Qdrant's average_vector strategy: 2 * mean(positive) - mean(negative), examples left out.
TEST_F(ApiTest, RecommendAveragesExamplesAndLeavesThemOut) {
  ok("PUT", "/collections/r", {{"vectors", {{"size", 2}, {"distance", "Euclid"}}}});
  json pts = json::array();
  for (int i = 0; i < 10; ++i) pts.push_back({{"id", i}, {"vector", {i, 0}}});
  ok("PUT", "/collections/r/points?wait=true", {{"points", pts}});
  // The ids, the nearest first and the two tied after it as a sorted pair.
  auto ids = [](const json& hits) {
    std::vector<int> out;
    for (const json& h : hits) out.push_back(h["id"]);
    if (out.size() == 3) std::sort(out.begin() + 1, out.end());
    return out;
  };
  // Positive 4 and 6: mean (5, 0); 4 and 6 themselves are left out.
  EXPECT_EQ(
      ids(ok("POST", "/collections/r/points/recommend", {{"positive", {4, 6}}, {"limit", 3}})),
      (std::vector<int>{5, 3, 7}));
  // Positive 4, negative 2: 2 * (4, 0) - (2, 0) = (6, 0).
  EXPECT_EQ(ids(ok("POST", "/collections/r/points/recommend",
                   {{"positive", {4}}, {"negative", {2}}, {"limit", 3}})),
            (std::vector<int>{6, 5, 7}));
  // Vectors as examples, offset, and the query form.
  EXPECT_EQ(ids(ok("POST", "/collections/r/points/recommend",
                   {{"positive", {{8.9, 0}}}, {"limit", 2}, {"offset", 1}})),
            (std::vector<int>{8, 7}));
  EXPECT_EQ(ids(ok("POST", "/collections/r/points/query",
                   {{"query", {{"recommend", {{"positive", {1, 3}}}}}}, {"limit", 3}})["points"]),
            (std::vector<int>{2, 0, 4}));
  const json batch =
      ok("POST", "/collections/r/points/recommend/batch",
         {{"searches", {{{"positive", {0}}, {"limit", 1}}, {{"positive", {9}}, {"limit", 1}}}}});
  EXPECT_EQ(ids(batch[0]), std::vector<int>{1});
  EXPECT_EQ(ids(batch[1]), std::vector<int>{8});

  const std::vector<std::tuple<std::string, unsigned, std::string>> bad{
      {R"({"limit":1})", 400, "positive"},
      {R"({"positive":[],"limit":1})", 400, "positive"},
      {R"({"positive":[[1,2,3]],"limit":1})", 400, "positive[0]"},
      {R"({"positive":[1],"negative":[-1],"limit":1})", 400, "negative[0]"},
      {R"({"positive":[1],"strategy":"max_score","limit":1})", 400, "strategy"},
      {R"({"positive":[1],"negative":[[1,0],[1,0,0]],"strategy":"best_score"})", 400,
       "negative[1]: expected dimension 2, got 3"},
      {R"({"positive":[77],"limit":1})", 404, "77"},
  };
  for (const auto& [body, status, field] : bad) {
    const Response r = call("POST", "/collections/r/points/recommend", body);
    EXPECT_EQ(r.status, status) << body << " -> " << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << body << " -> " << r.body;
  }
  const Response q =
      call("POST", "/collections/r/points/query", R"({"query":{"recommend":{"negative":[1]}}})");
  EXPECT_EQ(q.status, 400u);
  EXPECT_NE(q.body.find("query.recommend.positive"), std::string::npos) << q.body;
}

// Issue 16: PUT points/vectors replaces vectors of existing points and keeps their payloads;
// an unknown id or a bad vector writes nothing.
TEST_F(ApiTest, UpdateVectorsKeepsPayloadsAndIsAllOrNothing) {
  make_points();
  ok("PUT", "/collections/c/points/vectors?wait=true",
     {{"points",
       {{{"id", 1}, {"vector", {7, 7, 7}}}, {{"id", 2}, {"vector", {{"", {8, 8, 8}}}}}}}});
  const json got = ok("POST", "/collections/c/points",
                      {{"ids", {1, 2}}, {"with_payload", true}, {"with_vector", true}});
  EXPECT_EQ(got[0]["vector"], json({7, 7, 7}));
  EXPECT_EQ(got[0]["payload"], json({{"color", "red"}, {"n", 1}}));
  EXPECT_EQ(got[1]["vector"], json({8, 8, 8}));
  EXPECT_EQ(
      ok("POST", "/collections/c/points/search", {{"vector", {7, 7, 7.1}}, {"limit", 1}})[0]["id"],
      1);
  const std::vector<std::tuple<std::string, unsigned, std::string>> bad{
      {R"({"points":[{"id":1,"vector":[0,0,0]},{"id":99,"vector":[1,1,1]}]})", 404, "99"},
      {R"({"points":[{"id":1,"vector":[0,0]}]})", 400, "points[0].vector"},
      {R"({"points":[{"id":1,"vector":{"image":[0,0,0]}}]})", 400,
       "points[0].vector.image: Not existing vector name error: image"},
      {R"({"points":[{"id":1}]})", 400, "points[0]"},
      {R"({"points":{}})", 400, "points"},
  };
  for (const auto& [body, status, field] : bad) {
    const Response r = call("PUT", "/collections/c/points/vectors", body);
    EXPECT_EQ(r.status, status) << body << " -> " << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << body << " -> " << r.body;
  }
  EXPECT_EQ(ok("POST", "/collections/c/points", {{"ids", {1}}, {"with_vector", true}})[0]["vector"],
            json({7, 7, 7}));
}

// Issue 16: points/query/groups: the best `group_size` hits of each of the `limit` best groups
// of a payload key (strings and integers; an array puts a point in each of its groups).
TEST_F(ApiTest, QueryGroupsGroupsTheNearestByAPayloadKey) {
  ok("PUT", "/collections/g", {{"vectors", {{"size", 1}, {"distance", "Euclid"}}}});
  json pts = json::array();
  const char* colors[] = {"red", "blue", "green"};
  for (int i = 0; i < 30; ++i) {
    json payload{{"color", colors[i % 3]}, {"i", i}};
    if (i == 4) payload["color"] = json::array({"red", "blue"});
    if (i == 5) payload.erase("color");
    pts.push_back({{"id", i}, {"vector", {i}}, {"payload", payload}});
  }
  ok("PUT", "/collections/g/points?wait=true", {{"points", pts}});
  const json r = ok("POST", "/collections/g/points/query/groups",
                    {{"query", {3.2}},
                     {"group_by", "color"},
                     {"group_size", 2},
                     {"limit", 2},
                     {"with_payload", {"i"}}});
  // Nearest to 3.2: 3 (red), 4 (red and blue), 2 (green), 5 (none), 1 (blue), 6 (red) ...
  ASSERT_EQ(r["groups"].size(), 2u);
  EXPECT_EQ(r["groups"][0]["id"], "red");
  EXPECT_EQ(r["groups"][0]["hits"].size(), 2u);
  EXPECT_EQ(r["groups"][0]["hits"][0]["id"], 3);
  EXPECT_EQ(r["groups"][0]["hits"][1]["id"], 4);
  EXPECT_EQ(r["groups"][0]["hits"][0]["payload"], json({{"i", 3}}));
  EXPECT_EQ(r["groups"][1]["id"], "blue");
  EXPECT_EQ(r["groups"][1]["hits"][0]["id"], 4);
  EXPECT_EQ(r["groups"][1]["hits"][1]["id"], 1);
  // Integer groups, a filter, and few points: every group that exists, however many are asked.
  const json ints = ok("POST", "/collections/g/points/query/groups",
                       {{"query", {0}},
                        {"group_by", "i"},
                        {"group_size", 5},
                        {"limit", 50},
                        {"filter", {{"must", {{{"key", "i"}, {"range", {{"lt", 3}}}}}}}}});
  ASSERT_EQ(ints["groups"].size(), 3u);
  EXPECT_EQ(ints["groups"][2]["id"], 2);
  EXPECT_EQ(ints["groups"][2]["hits"].size(), 1u);
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"query":[1],"limit":2})", "group_by"},
           {R"({"query":[1],"group_by":"a..b"})", "group_by"},
           {R"({"query":[1],"group_by":"color","group_size":0})", "group_size"},
           {R"({"group_by":"color"})", "query"},
       }) {
    const Response resp = call("POST", "/collections/g/points/query/groups", body);
    EXPECT_EQ(resp.status, 400u) << body << " -> " << resp.body;
    EXPECT_NE(resp.body.find(field), std::string::npos) << body << " -> " << resp.body;
  }
}

// Qdrant's older group routes, search/groups and recommend/groups, answer as query/groups with
// the same search or recommendation (a named vector, a filter, the payload selector, a strategy
// and negatives); a bad body names the field as the route's own reader does.
TEST_F(ApiTest, SearchAndRecommendGroupsAnswerAsQueryGroups) {
  ok("PUT", "/collections/g",
     {{"vectors",
       {{"a", {{"size", 2}, {"distance", "Euclid"}}},
        {"b", {{"size", 1}, {"distance", "Euclid"}}}}}});
  json pts = json::array();
  const char* colors[] = {"red", "blue", "green", "cyan"};
  for (int i = 0; i < 40; ++i) {
    pts.push_back({{"id", i},
                   {"vector", {{"a", {i, i % 7}}, {"b", {40 - i}}}},
                   {"payload", {{"color", colors[i % 4]}, {"i", i}}}});
  }
  ok("PUT", "/collections/g/points?wait=true", {{"points", pts}});
  const json filter = {{"must_not", {{{"key", "i"}, {"range", {{"gte", 30}}}}}}};
  const json search = ok("POST", "/collections/g/points/search/groups",
                         {{"vector", {{"name", "a"}, {"vector", {12.5, 3}}}},
                          {"group_by", "color"},
                          {"group_size", 3},
                          {"limit", 3},
                          {"filter", filter},
                          {"with_payload", {"i"}}});
  const json query = ok("POST", "/collections/g/points/query/groups",
                        {{"query", {12.5, 3}},
                         {"using", "a"},
                         {"group_by", "color"},
                         {"group_size", 3},
                         {"limit", 3},
                         {"filter", filter},
                         {"with_payload", {"i"}}});
  ASSERT_EQ(search["groups"].size(), 3u) << search.dump();
  EXPECT_EQ(search, query);
  EXPECT_EQ(search["groups"][0]["hits"][0]["payload"], json({{"i", 11}})) << search.dump();
  const json recommend = ok("POST", "/collections/g/points/recommend/groups",
                            {{"positive", {3, 5}},
                             {"negative", {{20}}},
                             {"strategy", "best_score"},
                             {"using", "b"},
                             {"group_by", "i"},
                             {"group_size", 1},
                             {"limit", 4}});
  const json as_query = ok(
      "POST", "/collections/g/points/query/groups",
      {{"query",
        {{"recommend", {{"positive", {3, 5}}, {"negative", {{20}}}, {"strategy", "best_score"}}}}},
       {"using", "b"},
       {"group_by", "i"},
       {"group_size", 1},
       {"limit", 4}});
  ASSERT_EQ(recommend["groups"].size(), 4u) << recommend.dump();
  EXPECT_EQ(recommend, as_query);
  for (const auto& [route, body, field] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"search", R"({"group_by":"color","limit":2})", "vector: missing"},
           {"search", R"({"vector":{"name":"a"},"group_by":"color","limit":2})", "vector.vector"},
           {"search", R"({"vector":{"name":"a","vector":[1,"x"]},"group_by":"color","limit":2})",
            "vector.vector"},
           {"search", R"({"vector":{"name":"a","vector":[1,2]},"limit":2})", "group_by"},
           {"search", R"({"vector":{"name":"zz","vector":[1,2]},"group_by":"c","limit":2})", "zz"},
           {"recommend", R"({"positive":"x","group_by":"color","limit":2})", "positive"},
           {"recommend", R"({"positive":[1],"strategy":"best","group_by":"c","limit":2})",
            "strategy"},
           {"recommend", R"({"positive":[1],"using":"b","group_by":"c","group_size":0})",
            "group_size"},
           {"recommend", R"({"positive":[1],"using":"b","group_by":"c","lookup_from":{}})",
            "lookup_from.collection: expected a collection's name"},
           {"query", R"({"query":[1],"using":"b","group_by":"c","with_lookup":5})",
            "with_lookup: expected a collection's name or"},
       }) {
    const Response resp = call("POST", "/collections/g/points/" + route + "/groups", body);
    EXPECT_EQ(resp.status, 400u) << body << " -> " << resp.body;
    EXPECT_NE(resp.body.find(field), std::string::npos) << body << " -> " << resp.body;
  }
  // A recommendation's examples looked up in a collection that does not exist: Qdrant's 404.
  const Response lookup = call("POST", "/collections/g/points/recommend",
                               R"({"positive":[1],"using":"b","lookup_from":{"collection":"x"}})");
  EXPECT_EQ(lookup.status, 404u) << lookup.body;
  EXPECT_NE(lookup.body.find("Collection `x` doesn't exist!"), std::string::npos) << lookup.body;
}

// Qdrant's multitenancy recipe, hnsw_config {"m": 0, "payload_m": 16}: no graph of the whole
// collection; searches are exact (a flat index), a tenant's by its payload index; m: 0 is what
// the collection reports, lasts a restart, and a PATCH to an m of 2 or more builds the graph.
TEST_F(ApiTest, HnswMZeroBuildsNoGraphAndSearchesExactly) {
  ok("PUT", "/collections/t",
     {{"vectors", {{"size", 4}, {"distance", "Dot"}}},
      {"hnsw_config", {{"m", 0}, {"payload_m", 16}}}});
  EXPECT_EQ(ok("GET", "/collections/t")["config"]["hnsw_config"]["m"], 0);
  EXPECT_EQ(ok("GET", "/waypoint/collections/t/vector_index")["type"], "flat");
  ok("PUT", "/collections/t/index",
     {{"field_name", "tenant"}, {"field_schema", {{"type", "keyword"}, {"is_tenant", true}}}});
  std::mt19937 rng(8);
  std::normal_distribution<float> g(0, 1);
  std::vector<std::vector<float>> v(600, std::vector<float>(4));
  json points = json::array();
  for (size_t i = 0; i < v.size(); ++i) {
    for (float& x : v[i]) x = g(rng);
    points.push_back(
        {{"id", i}, {"vector", v[i]}, {"payload", {{"tenant", "t" + std::to_string(i % 6)}}}});
  }
  ok("PUT", "/collections/t/points?wait=true", {{"points", points}});
  // The exact top 10 of a tenant, and of everyone, by brute force.
  auto top = [&](const std::vector<float>& q, int tenant) {
    std::vector<std::pair<float, size_t>> all;
    for (size_t i = 0; i < v.size(); ++i) {
      if (tenant >= 0 && i % 6 != static_cast<size_t>(tenant)) continue;
      float dot = 0;
      for (size_t j = 0; j < 4; ++j) dot += q[j] * v[i][j];
      all.emplace_back(-dot, i);
    }
    std::sort(all.begin(), all.end());
    std::vector<size_t> ids;
    for (size_t k = 0; k < 10; ++k) ids.push_back(all[k].second);
    return ids;
  };
  auto answer = [&](const std::vector<float>& q, int tenant) {
    json body = {{"query", q}, {"limit", 10}};
    if (tenant >= 0) {
      body["filter"] = {
          {"must", {{{"key", "tenant"}, {"match", {{"value", "t" + std::to_string(tenant)}}}}}}};
    }
    const json got = ok("POST", "/collections/t/points/query", body);
    std::vector<size_t> ids;
    for (const json& p : got["points"]) ids.push_back(p["id"]);
    return ids;
  };
  for (int t = 0; t < 6; ++t) {
    const std::vector<float> q = {g(rng), g(rng), g(rng), g(rng)};
    EXPECT_EQ(answer(q, t), top(q, t)) << "tenant " << t;
    EXPECT_EQ(answer(q, -1), top(q, -1));
  }
  restart();
  EXPECT_EQ(ok("GET", "/collections/t")["config"]["hnsw_config"]["m"], 0);
  // An m of 2 or more builds the graph (with the parameters kept); m: 0 again drops it.
  ok("PATCH", "/collections/t", {{"hnsw_config", {{"m", 12}}}});
  engine_->collection("t")->wait_for_build();
  EXPECT_EQ(ok("GET", "/collections/t")["config"]["hnsw_config"]["m"], 12);
  EXPECT_EQ(ok("GET", "/waypoint/collections/t/vector_index")["type"], "hnsw");
  ok("PATCH", "/collections/t", {{"hnsw_config", {{"m", 0}}}});
  engine_->collection("t")->wait_for_build();
  EXPECT_EQ(ok("GET", "/waypoint/collections/t/vector_index")["type"], "flat");
  EXPECT_EQ(ok("GET", "/collections/t")["config"]["hnsw_config"]["m"], 0);
  const std::vector<float> q = {0.3f, -1, 0.5f, 2};
  EXPECT_EQ(answer(q, 2), top(q, 2));
  for (const auto& [body, message] : std::vector<std::pair<json, std::string>>{
           {{{"vectors", {{"size", 4}, {"distance", "Dot"}}}, {"hnsw_config", {{"m", 1}}}},
            "hnsw_config.m"},
           {{{"vectors", {{"size", 4}, {"distance", "Dot"}}}, {"hnsw_config", {{"payload_m", -1}}}},
            "hnsw_config.payload_m"},
           {{{"vectors", {{"size", 4}, {"distance", "Dot"}}},
             {"hnsw_config", {{"payload_m", "x"}}}},
            "hnsw_config.payload_m"},
       }) {
    const Response r = call("PUT", "/collections/bad", body.dump());
    EXPECT_EQ(r.status, 400u) << body.dump() << " -> " << r.body;
    EXPECT_NE(r.body.find(message), std::string::npos) << body.dump() << " -> " << r.body;
  }
}

// Qdrant's with_lookup: each group whose id is a point id gets the point of that id in another
// collection as its "lookup" (with its payload by default, vectors when asked), through every
// group route; ids that name no point, or are no point ids, get none.
TEST_F(ApiTest, GroupsWithLookupAddThePointOfEachGroupsId) {
  const std::string uuid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
  ok("PUT", "/collections/books", {{"vectors", {{"size", 2}, {"distance", "Euclid"}}}});
  const json authors_of[] = {1, 2, uuid, "anon", -3, 9};
  json books = json::array();
  for (int i = 0; i < 24; ++i) {
    books.push_back(
        {{"id", i}, {"vector", {i, 0}}, {"payload", {{"author", authors_of[i % 6]}, {"i", i}}}});
  }
  ok("PUT", "/collections/books/points?wait=true", {{"points", books}});
  ok("PUT", "/collections/authors", {{"vectors", {{"size", 3}, {"distance", "Dot"}}}});
  ok("PUT", "/collections/authors/points?wait=true",
     {{"points",
       {{{"id", 1}, {"vector", {1, 0, 0}}, {"payload", {{"name", "Ann"}, {"born", 1901}}}},
        {{"id", 2}, {"vector", {0, 1, 0}}, {"payload", {{"name", "Bo"}}}},
        {{"id", uuid}, {"vector", {0, 0, 1}}, {"payload", {{"name", "Cy"}}}}}}});
  const json body = {{"query", {0, 0}},
                     {"group_by", "author"},
                     {"group_size", 2},
                     {"limit", 6},
                     {"with_lookup", "authors"}};
  const json answer = ok("POST", "/collections/books/points/query/groups", body);
  ASSERT_EQ(answer["groups"].size(), 6u) << answer.dump();
  std::map<std::string, json> lookups;
  for (const json& group : answer["groups"]) {
    lookups[group["id"].dump()] = group.value("lookup", json());
  }
  // A record as retrieve gives it: payload by default, no vector.
  EXPECT_EQ(lookups["1"],
            json({{"id", 1}, {"payload", {{"name", "Ann"}, {"born", 1901}}}, {"vector", nullptr}}));
  EXPECT_EQ(lookups["2"]["payload"], json({{"name", "Bo"}}));
  EXPECT_EQ(lookups["\"" + uuid + "\""]["id"], uuid);
  EXPECT_TRUE(lookups["\"anon\""].is_null());  // no point id
  EXPECT_TRUE(lookups["-3"].is_null());        // no point id
  EXPECT_TRUE(lookups["9"].is_null());         // no such point
  // The long form: a payload selector and vectors; through an alias; search and recommend groups.
  ok("POST", "/collections/aliases",
     {{"actions", {{{"create_alias", {{"collection_name", "authors"}, {"alias_name", "who"}}}}}}});
  json long_form = body;
  long_form["with_lookup"] = {
      {"collection", "who"}, {"with_payload", {"name"}}, {"with_vectors", true}};
  const json detailed = ok("POST", "/collections/books/points/query/groups", long_form);
  for (const json& group : detailed["groups"]) {
    if (group["id"] == 1) {
      EXPECT_EQ(group["lookup"],
                json({{"id", 1}, {"payload", {{"name", "Ann"}}}, {"vector", {1, 0, 0}}}));
    }
  }
  const json searched = ok("POST", "/collections/books/points/search/groups",
                           {{"vector", {0, 0}},
                            {"group_by", "author"},
                            {"group_size", 2},
                            {"limit", 6},
                            {"with_lookup", "authors"}});
  EXPECT_EQ(searched, answer);
  const json recommended = ok("POST", "/collections/books/points/recommend/groups",
                              {{"positive", {0}},
                               {"group_by", "author"},
                               {"limit", 3},
                               {"with_lookup", {{"collection", "authors"}}}});
  for (const json& group : recommended["groups"]) {
    if (group["id"] == 1 || group["id"] == 2) {
      EXPECT_TRUE(group.contains("lookup")) << group;
    }
  }
  for (const auto& [lookup, status, message] : std::vector<std::tuple<json, unsigned, std::string>>{
           {"nowhere", 404, "Collection `nowhere` doesn't exist!"},
           {json::object(), 400, "with_lookup.collection: expected a collection's name"},
           {{{"collection", "authors"}, {"color", 1}}, 400, "with_lookup.color: unknown field"},
           {{{"collection", "authors"}, {"with_payload", 3}}, 400, "with_lookup.with_payload"},
           {{{"collection", "authors"}, {"with_vectors", "x"}}, 400, "with_lookup.with_vector"},
           {{{"collection", "authors"}, {"with_vectors", true}, {"with_vector", true}},
            400,
            "with_lookup: give with_vectors or with_vector, not both"},
       }) {
    json bad = body;
    bad["with_lookup"] = lookup;
    const Response r = call("POST", "/collections/books/points/query/groups", bad.dump());
    EXPECT_EQ(r.status, status) << bad.dump() << " -> " << r.body;
    EXPECT_NE(r.body.find(message), std::string::npos) << bad.dump() << " -> " << r.body;
  }
}

// Issue 16: order_by in scroll and query, from a numeric payload index: ascending, descending,
// from a value on, filtered; a point with several values comes once per value (as Qdrant).
TEST_F(ApiTest, OrderByWalksANumericPayloadIndex) {
  make_points();  // n: 1 (red), 2 (blue), 3 (red, the uuid)
  ok("PUT", "/collections/c/points",
     {{"points", {{{"id", 7}, {"vector", {7, 0, 0}}, {"payload", {{"n", {0.5, 9}}}}}}}});
  const Response no_index = call("POST", "/collections/c/points/scroll", R"({"order_by":"n"})");
  EXPECT_EQ(no_index.status, 400u);
  EXPECT_NE(no_index.body.find("order_by.key"), std::string::npos) << no_index.body;
  ok("PUT", "/collections/c/index", {{"field_name", "n"}, {"field_schema", "float"}});
  auto order = [](const json& points) {
    std::vector<json> out;
    for (const json& p : points) out.push_back(json::array({p["id"], p["order_value"]}));
    return json(out);
  };
  const std::string uuid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
  json r = ok("POST", "/collections/c/points/scroll", {{"order_by", "n"}, {"limit", 10}});
  EXPECT_EQ(order(r["points"]),
            json::parse(R"([[7,0.5],[1,1],[2,2],[")" + uuid + R"(",3],[7,9]])"));
  EXPECT_TRUE(r["next_page_offset"].is_null());
  r = ok("POST", "/collections/c/points/scroll",
         {{"order_by", {{"key", "n"}, {"direction", "desc"}, {"start_from", 2.5}}},
          {"limit", 2},
          {"filter", {{"must", {{{"key", "color"}, {"match", {{"any", {"red", "blue"}}}}}}}}}});
  EXPECT_EQ(order(r["points"]), json::parse(R"([[2,2],[1,1]])"));  // 2.5 and below, descending
  r = ok("POST", "/collections/c/points/query",
         {{"query", {{"order_by", {{"key", "n"}, {"direction", "desc"}}}}},
          {"limit", 2},
          {"offset", 1}});
  EXPECT_EQ(order(r["points"]), json::parse(R"([[")" + uuid + R"(",3],[2,2]])"));
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"order_by":{"key":"n","direction":"up"}})", "order_by.direction"},
           {R"({"order_by":{"key":"n","start_from":"2020-01-01"}})", "order_by.start_from"},
           {R"({"order_by":{"direction":"asc"}})", "order_by.key"},
           {R"({"order_by":"n","offset":1})", "offset"},
           {R"({"order_by":"color"})", "order_by.key"},
       }) {
    const Response resp = call("POST", "/collections/c/points/scroll", body);
    EXPECT_EQ(resp.status, 400u) << body << " -> " << resp.body;
    EXPECT_NE(resp.body.find(field), std::string::npos) << body << " -> " << resp.body;
  }
}

// Issue 20: tests that can fail. Every feature below is checked against an oracle written here
// (brute force in double, ids sorted by hand, counts by hand), never against the engine itself.
namespace {

/// Qdrant's score of `v` for the query `q`, in double: the Euclidean distance (not squared),
/// the cosine similarity, or the dot product.
double qdrant_score(const std::string& distance, const float* q, const float* v, size_t d) {
  double dot = 0, qq = 0, vv = 0, l2 = 0;
  for (size_t i = 0; i < d; ++i) {
    dot += double(q[i]) * v[i];
    qq += double(q[i]) * q[i];
    vv += double(v[i]) * v[i];
    l2 += (double(q[i]) - v[i]) * (double(q[i]) - v[i]);
  }
  if (distance == "Euclid") return std::sqrt(l2);
  if (distance == "Cosine") return dot / std::sqrt(qq * vv);
  return dot;
}

/// Whether score `a` ranks before `b`: smaller distances, larger similarities.
bool ranks_before(const std::string& distance, double a, double b) {
  return distance == "Euclid" ? a < b : a > b;
}

/// The rows of `base` by brute force, best first, with their scores.
std::vector<std::pair<size_t, double>> brute_force(const std::string& distance,
                                                   const wp::index::Matrix& base, const float* q) {
  std::vector<std::pair<size_t, double>> all;
  for (size_t i = 0; i < base.n; ++i)
    all.push_back({i, qdrant_score(distance, q, base.row(i), base.d)});
  std::sort(all.begin(), all.end(), [&](const auto& a, const auto& b) {
    return ranks_before(distance, a.second, b.second);
  });
  return all;
}

json vec_json(const float* v, size_t d) {
  return json(std::vector<float>(v, v + d));
}

/// The payload of the random points: point i has {"a": i, "b": "s<i>", "c": {"even": ...},
/// "n": i % 7}.
json random_payload(size_t i) {
  return {{"a", i}, {"b", "s" + std::to_string(i)}, {"c", {{"even", i % 2 == 0}}}, {"n", i % 7}};
}

std::vector<json> ids_of(const json& hits) {
  std::vector<json> out;
  for (const json& h : hits) out.push_back(h["id"]);
  return out;
}

/// A score close to `want`: 1e-5 relative (float kernels against a double oracle).
void expect_score(const json& hit, double want, const std::string& what) {
  ASSERT_TRUE(hit["score"].is_number()) << what << ": " << hit.dump();
  EXPECT_NEAR(hit["score"].get<double>(), want, 1e-5 * std::max(1.0, std::abs(want)))
      << what << ": id " << hit["id"];
}

class ApiOracleTest : public ApiTest {
 protected:
  /// Creates collection `name` with n seeded random points of dimension d: point i has id i,
  /// row i of the returned matrix as its vector and random_payload(i).
  wp::index::Matrix add_random(const std::string& name, const std::string& distance, size_t n,
                               size_t d, uint64_t seed, const json& hnsw = nullptr) {
    json create{{"vectors", {{"size", d}, {"distance", distance}}}};
    if (!hnsw.is_null()) create["hnsw_config"] = hnsw;
    ok("PUT", "/collections/" + name, create);
    wp::index::Matrix m = wp::test::random_matrix(n, d, seed);
    for (size_t b = 0; b < n; b += 400) {  // the fixture's body limit is 1 MiB
      json pts = json::array();
      for (size_t i = b; i < std::min(n, b + 400); ++i) {
        pts.push_back(
            {{"id", i}, {"vector", vec_json(m.row(i), d)}, {"payload", random_payload(i)}});
      }
      ok("PUT", "/collections/" + name + "/points?wait=true", {{"points", pts}});
    }
    return m;
  }
};

const char* const kDistances[] = {"Euclid", "Cosine", "Dot"};

}  // namespace

// Scores are Qdrant's (README: cosine or dot similarity, Euclidean distance for Euclid), and an
// exact search returns the brute-force neighbours, for each distance; the graph's answers carry
// the same scores.
TEST_F(ApiOracleTest, ScoresAreQdrantsAndExactSearchIsBruteForceForEachDistance) {
  for (const std::string distance : kDistances) {
    SCOPED_TRACE(distance);
    const std::string name = "s" + distance;
    const auto base = add_random(name, distance, 150, 12, 11);
    const auto queries = wp::test::random_matrix(4, 12, 12);
    for (size_t qi = 0; qi < queries.n; ++qi) {
      const float* q = queries.row(qi);
      const auto truth = brute_force(distance, base, q);
      const json exact =
          ok("POST", "/collections/" + name + "/points/search",
             {{"vector", vec_json(q, 12)}, {"limit", 10}, {"params", {{"exact", true}}}});
      ASSERT_EQ(exact.size(), 10u);
      for (size_t r = 0; r < 10; ++r) {
        EXPECT_EQ(exact[r]["id"], truth[r].first) << "query " << qi << " rank " << r;
        expect_score(exact[r], truth[r].second, "exact rank " + std::to_string(r));
      }
      // The graph may rank differently; each score it gives is still the true one of its point.
      const json approx = ok("POST", "/collections/" + name + "/points/search",
                             {{"vector", vec_json(q, 12)}, {"limit", 10}});
      ASSERT_EQ(approx.size(), 10u);
      for (const json& h : approx) {
        const size_t id = h["id"];
        expect_score(h, qdrant_score(distance, q, base.row(id), 12), "graph");
      }
    }
  }
}

// params.exact is a brute-force scan even where the graph misses (a sparse graph, M 4,
// ef_construct 8, searched with hnsw_ef 10, misses some of the true neighbours).
namespace {

/// Qdrant's similarity for discovery and context scores, in double: minus the squared Euclidean
/// distance, the cosine similarity, or the dot product.
double discovery_similarity(const std::string& distance, const float* a, const float* b, size_t d) {
  if (distance == "Euclid") {
    const double l2 = qdrant_score(distance, a, b, d);
    return -l2 * l2;
  }
  return qdrant_score(distance, a, b, d);
}

}  // namespace

// Qdrant's discovery and context search (points/discover, discover/batch, and the query's
// {"discover"} and {"context"}), for each distance, against a brute-force oracle of Qdrant's
// formulas over every point: with a target, the pairs' rank (+1 where the positive is more
// similar, -1 where less) plus the target's similarity squashed into (0, 1); without, the sum of
// fast_sigmoid(min(positive - negative similarity - epsilon, 0)), 0 on every pair's positive
// side (where many points tie). The examples given by id are left out; offsets, filters and
// thresholds apply; both routes and both query forms answer alike; bad bodies name the field.
TEST_F(ApiOracleTest, DiscoveryAndContextScoreAsQdrantsFormulas) {
  const size_t n = 90, d = 6;  // under the 100 candidates each example's search brings: all
  for (const std::string distance : kDistances) {
    SCOPED_TRACE(distance);
    const std::string name = "d" + distance;
    const std::string route = "/collections/" + name + "/points/";
    const auto base = add_random(name, distance, n, d, 41);
    const auto extra = wp::test::random_matrix(3, d, 42);
    // The examples: ids 3, 5, 7 and three vectors.
    const json target_vec = vec_json(extra.row(0), d);
    const json pairs = json::array({{{"positive", 5}, {"negative", vec_json(extra.row(1), d)}},
                                    {{"positive", vec_json(extra.row(2), d)}, {"negative", 7}}});
    std::vector<float> v1(extra.row(1), extra.row(1) + d), v2(extra.row(2), extra.row(2) + d);
    std::vector<float> t(extra.row(0), extra.row(0) + d);
    const float* pos[] = {base.row(5), v2.data()};
    const float* neg[] = {v1.data(), base.row(7)};
    // Every point's score by the oracle, best first, the examples' ids left out (3 where it is
    // the target).
    auto oracle = [&](const float* target, bool (*keep)(size_t)) {
      std::vector<std::pair<size_t, double>> all;
      for (size_t i = 0; i < n; ++i) {
        if ((i == 3 && target == base.row(3)) || i == 5 || i == 7 || !keep(i)) continue;
        double score = 0;
        for (size_t j = 0; j < 2; ++j) {
          const double p = discovery_similarity(distance, pos[j], base.row(i), d);
          const double q = discovery_similarity(distance, neg[j], base.row(i), d);
          if (target) {
            score += (p > q) - (p < q);
          } else {
            const double x = std::min(p - q - std::numeric_limits<float>::epsilon(), 0.0);
            score += x / (1 + std::abs(x));
          }
        }
        if (target) {
          const double s = discovery_similarity(distance, target, base.row(i), d);
          score += 0.5 * (s / (1 + std::abs(s)) + 1);
        }
        all.push_back({i, score});
      }
      std::stable_sort(all.begin(), all.end(),
                       [](const auto& a, const auto& b) { return a.second > b.second; });
      return all;
    };
    // Each hit scored as the oracle scores its point, and the scores those of the oracle's
    // ranks from `offset` (points that tie may come in any order).
    auto expect_oracle = [&](const json& hits, const std::vector<std::pair<size_t, double>>& all,
                             size_t offset, size_t limit, const std::string& what) {
      ASSERT_EQ(hits.size(), std::min(limit, all.size() - offset)) << what << hits.dump();
      std::set<size_t> seen;
      for (size_t r = 0; r < hits.size(); ++r) {
        const size_t id = hits[r]["id"];
        EXPECT_TRUE(seen.insert(id).second) << what;
        const auto it =
            std::find_if(all.begin(), all.end(), [id](const auto& a) { return a.first == id; });
        ASSERT_NE(it, all.end()) << what << ": id " << id << " is an example or filtered out";
        expect_score(hits[r], it->second, what + " (its own score)");
        expect_score(hits[r], all[offset + r].second, what + " rank " + std::to_string(r));
      }
    };
    auto every = [](size_t) { return true; };
    auto odd = [](size_t i) { return i % 2 == 1; };
    // A discovery from a target point, on the discover route.
    const json discovered =
        ok("POST", route + "discover", {{"target", 3}, {"context", pairs}, {"limit", 10}});
    expect_oracle(discovered, oracle(base.row(3), every), 0, 10, "discover");
    // The query's form answers alike; a target vector, an offset and a filter.
    EXPECT_EQ(ok("POST", route + "query",
                 {{"query", {{"discover", {{"target", 3}, {"context", pairs}}}}},
                  {"limit", 10}})["points"],
              discovered);
    const json odd_filter{{"must_not", {{{"key", "c.even"}, {"match", {{"value", true}}}}}}};
    const json shifted =
        ok("POST", route + "query",
           {{"query", {{"discover", {{"target", target_vec}, {"context", pairs}}}}},
            {"limit", 7},
            {"offset", 4},
            {"filter", odd_filter},
            {"with_payload", {"a"}}})["points"];
    expect_oracle(shifted, oracle(t.data(), odd), 4, 7, "discover, offset and filter");
    for (const json& h : shifted) EXPECT_EQ(h["payload"], json({{"a", h["id"]}}));
    // A context search: its best points tie at 0 (each pair's positive side).
    const json context = ok("POST", route + "discover", {{"context", pairs}, {"limit", 12}});
    const auto by_context = oracle(nullptr, every);
    expect_oracle(context, by_context, 0, 12, "context");
    EXPECT_EQ(context[0]["score"], 0.0) << context.dump();
    EXPECT_LT(by_context.back().second, -0.5);  // some points lie on the negative sides
    EXPECT_EQ(
        ok("POST", route + "query", {{"query", {{"context", pairs}}}, {"limit", 12}})["points"],
        context);
    // One pair given as an object, and a threshold on the context score.
    const json one_pair = ok(
        "POST", route + "query",
        {{"query", {{"context", pairs[0]}}}, {"limit", 80}, {"score_threshold", -0.1}})["points"];
    ASSERT_FALSE(one_pair.empty());
    for (const json& h : one_pair) EXPECT_GE(h["score"].get<double>(), -0.1) << h.dump();
    EXPECT_LT(one_pair.size(), 80u);
    // A pair whose examples are one vector: every point ties, each a margin below 0 (Qdrant's
    // epsilon), not at 0.
    const json tie = ok(
        "POST", route + "query",
        {{"query",
          {{"context",
            {{"positive", vec_json(extra.row(1), d)}, {"negative", vec_json(extra.row(1), d)}}}}},
         {"limit", 3}})["points"];
    ASSERT_EQ(tie.size(), 3u);
    for (const json& h : tie) {
      EXPECT_NEAR(h["score"].get<double>(), -1.1920928e-07, 1e-12) << h.dump();
    }
    // A batch: each answer as its own request's.
    const json batch = ok("POST", route + "discover/batch",
                          {{"searches",
                            {{{"target", 3}, {"context", pairs}, {"limit", 10}},
                             {{"context", pairs}, {"limit", 12}}}}});
    ASSERT_EQ(batch.size(), 2u);
    EXPECT_EQ(batch[0], discovered);
    EXPECT_EQ(batch[1], context);
  }
  for (const auto& [path, body, status, field] :
       std::vector<std::tuple<std::string, std::string, unsigned, std::string>>{
           {"discover", R"({"limit":3})", 400, "context: a target or context pairs"},
           {"discover", R"({"target":1,"context":{"positive":1,"negative":2},"limit":3})", 400,
            "context: expected an array"},
           {"discover", R"({"context":[{"positive":1}],"limit":3})", 400,
            "context[0].negative: missing"},
           {"discover", R"({"context":[{"positive":"x","negative":1}],"limit":3})", 400,
            "context[0].positive"},
           {"discover", R"({"target":[1,2],"limit":3})", 400, "target: expected dimension"},
           {"discover", R"({"target":1})", 400, "limit: missing"},
           {"discover", R"({"target":1,"context":[{"positive":999,"negative":2}],"limit":3})", 404,
            "context[0].positive"},
           {"discover", R"({"target":1,"limit":3,"lookup_from":{"collection":"x"}})", 404,
            "Collection `x` doesn't exist!"},
           {"discover", R"({"target":1,"limit":3,"lookup_from":{"collection":"x","shard_key":1}})",
            400, "lookup_from.shard_key: custom sharding is not supported"},
           {"discover/batch", R"({"searches":[{"target":1,"limit":3},{"limit":3}]})", 400,
            "searches[1].context"},
           {"query", R"({"query":{"discover":{"context":[]}}})", 400,
            "query.discover.target: missing"},
           {"query", R"({"query":{"discover":{"target":1}}})", 400,
            "query.discover.context: missing"},
           {"query", R"({"query":{"context":[{"negative":1,"positive":2}],"limit":1}})", 400,
            "...} alone, got"},
           {"query", R"({"query":{"context":7}})", 400, "query.context: expected a"},
           {"query", R"({"prefetch":{"query":[1,2,3,4,5,6]},"query":{"context":[]}})", 400,
            "context over prefetches is not supported"},
       }) {
    const Response r = call("POST", "/collections/dEuclid/points/" + path, body);
    EXPECT_EQ(r.status, status) << body << " -> " << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << body << " -> " << r.body;
  }
}

// Qdrant's MMR ({"nearest": ..., "mmr": {"diversity", "candidates_limit"}}; read in
// lib/shard/src/query/mmr): among the exact nearest candidates, the most similar to the query
// first, then each time the best lambda * similarity - (1 - lambda) * the greatest similarity to
// one chosen (lambda = 1 - diversity; similarity the dot product, of unit vectors for Cosine, or
// minus the squared distance), each with its search score; against that oracle for every
// distance, with an offset, a filter, a point id, the defaults and over prefetches.
TEST_F(ApiOracleTest, MmrChoosesForRelevanceAndAgainstLikenessAsQdrants) {
  const size_t n = 300, d = 6;
  for (const std::string distance : kDistances) {
    SCOPED_TRACE(distance);
    const std::string route = "/collections/r" + distance + "/points/query";
    const auto base = add_random("r" + distance, distance, n, d, 77);
    auto similarity = [&](const float* a, const float* b) {
      const double s = qdrant_score(distance, a, b, d);
      return distance == "Euclid" ? -s * s : s;
    };
    // The oracle's choice among the `candidates` nearest of `q` (those `keep` allows).
    auto oracle = [&](const float* q, double diversity, size_t candidates, size_t chosen,
                      const std::function<bool(size_t)>& keep) {
      std::vector<std::pair<size_t, double>> near;
      for (const auto& [i, score] : brute_force(distance, base, q)) {
        if (keep(i) && near.size() < candidates) near.push_back({i, score});
      }
      const double lambda = 1 - diversity;
      std::vector<size_t> out;
      std::vector<bool> taken(near.size());
      while (out.size() < std::min(chosen, near.size())) {
        double best = -1e300;
        size_t pick = 0;
        for (size_t c = 0; c < near.size(); ++c) {
          if (taken[c]) continue;
          const double relevance = similarity(q, base.row(near[c].first));
          double closest = -1e300;
          for (const size_t o : out) {
            closest = std::max(closest, similarity(base.row(near[c].first), base.row(o)));
          }
          const double score =
              out.empty() ? relevance : lambda * relevance - (1 - lambda) * closest;
          if (score > best) best = score, pick = c;
        }
        taken[pick] = true;
        out.push_back(near[pick].first);
      }
      return out;
    };
    auto chosen_ids = [](const json& answer) {
      std::vector<size_t> ids;
      for (const json& p : answer["points"]) ids.push_back(p["id"]);
      return ids;
    };
    const json exact = {{"exact", true}};
    for (size_t t = 0; t < 4; ++t) {
      const auto q = wp::test::random_matrix(1, d, 900 + t);
      const json v = vec_json(q.row(0), d);
      const double diversity = 0.25 * t;
      const json answer =
          ok("POST", route,
             {{"query",
               {{"nearest", v}, {"mmr", {{"diversity", diversity}, {"candidates_limit", 40}}}}},
              {"limit", 8},
              {"params", exact}});
      const auto want = oracle(q.row(0), diversity, 40, 8, [](size_t) { return true; });
      EXPECT_EQ(chosen_ids(answer), want) << "diversity " << diversity;
      for (const json& p : answer["points"]) {  // each with its own search score
        EXPECT_NEAR(p["score"].get<double>(),
                    qdrant_score(distance, q.row(0), base.row(p["id"].get<size_t>()), d), 1e-4);
      }
      // An offset skips the first chosen; a filter holds among the candidates.
      const json skipped =
          ok("POST", route,
             {{"query",
               {{"nearest", v}, {"mmr", {{"diversity", diversity}, {"candidates_limit", 40}}}}},
              {"limit", 5},
              {"offset", 3},
              {"params", exact}});
      EXPECT_EQ(chosen_ids(skipped), std::vector<size_t>(want.begin() + 3, want.end()));
      const json even = {{"must", {{{"key", "c.even"}, {"match", {{"value", true}}}}}}};
      const json filtered =
          ok("POST", route,
             {{"query",
               {{"nearest", v}, {"mmr", {{"diversity", diversity}, {"candidates_limit", 30}}}}},
              {"limit", 6},
              {"filter", even},
              {"params", exact}});
      EXPECT_EQ(chosen_ids(filtered),
                oracle(q.row(0), diversity, 30, 6, [](size_t i) { return i % 2 == 0; }));
    }
    // Over prefetches (Qdrant's plan: the prefetched points scored by the query vector, its
    // candidates_limit nearest of them, MMR over those): two prefetches' union, one filtered.
    {
      const auto w = wp::test::random_matrix(2, d, 950);
      const auto q = wp::test::random_matrix(1, d, 951);
      std::set<size_t> prefetched;
      for (size_t k = 0; k < 2; ++k) {
        size_t taken = 0;
        for (const auto& [i, score] : brute_force(distance, base, w.row(k))) {
          if (k == 1 && i % 2 != 0) continue;
          if (taken++ == 30) break;
          prefetched.insert(i);
        }
      }
      const json even = {{"must", {{{"key", "c.even"}, {"match", {{"value", true}}}}}}};
      const json answer =
          ok("POST", route,
             {{"prefetch",
               {{{"query", vec_json(w.row(0), d)}, {"limit", 30}, {"params", exact}},
                {{"query", vec_json(w.row(1), d)},
                 {"limit", 30},
                 {"filter", even},
                 {"params", exact}}}},
              {"query",
               {{"nearest", vec_json(q.row(0), d)},
                {"mmr", {{"diversity", 0.6}, {"candidates_limit", 25}}}}},
              {"limit", 6}});
      EXPECT_EQ(chosen_ids(answer),
                oracle(q.row(0), 0.6, 25, 6, [&](size_t i) { return prefetched.count(i) > 0; }));
      for (const json& p : answer["points"]) {  // each scored by the query vector
        EXPECT_NEAR(p["score"].get<double>(),
                    qdrant_score(distance, q.row(0), base.row(p["id"].get<size_t>()), d), 1e-4);
      }
    }
    // Diversity 0 is the plain search's order; the defaults take limit + offset candidates
    // (diversity 0.5); a point id's own point is left out.
    const json v = vec_json(base.row(17), d);
    const json plain = ok("POST", route, {{"query", v}, {"limit", 7}, {"params", exact}});
    EXPECT_EQ(chosen_ids(ok("POST", route,
                            {{"query", {{"nearest", v}, {"mmr", {{"diversity", 0}}}}},
                             {"limit", 7},
                             {"params", exact}})),
              chosen_ids(plain));
    EXPECT_EQ(chosen_ids(ok("POST", route,
                            {{"query", {{"nearest", v}, {"mmr", json::object()}}},
                             {"limit", 7},
                             {"params", exact}})),
              oracle(base.row(17), 0.5, 7, 7, [](size_t) { return true; }));
    EXPECT_EQ(chosen_ids(ok("POST", route,
                            {{"query", {{"nearest", 17}, {"mmr", {{"candidates_limit", 20}}}}},
                             {"limit", 5},
                             {"params", exact}})),
              oracle(base.row(17), 0.5, 20, 5, [](size_t i) { return i != 17; }));
  }
  for (const auto& [body, message] : std::vector<std::pair<json, std::string>>{
           {{{"query", {{"nearest", {1, 0, 0, 0, 0, 0}}, {"mmr", {{"diversity", 1.5}}}}}},
            "query.mmr.diversity: expected a number in 0..1"},
           {{{"query", {{"nearest", {1, 0, 0, 0, 0, 0}}, {"mmr", {{"candidates_limit", 20000}}}}}},
            "query.mmr.candidates_limit"},
           {{{"query", {{"nearest", {1, 0, 0, 0, 0, 0}}, {"mmr", {{"lambda", 1}}}}}},
            "query.mmr.lambda: unknown field"},
           {{{"query", {{"nearest", {1, 0, 0, 0, 0, 0}}, {"mmr", 3}}}}, "query.mmr: expected"},
           {{{"query", {{"mmr", json::object()}}}}, "query: expected {"},
           {{{"prefetch", {{"query", {1, 0, 0, 0, 0, 0}}}},
             {"query", {{"nearest", {1, 0, 0, 0, 0, 0}}, {"mmr", {{"candidates_limit", -1}}}}}},
            "query.mmr.candidates_limit"},
       }) {
    const Response r = call("POST", "/collections/rDot/points/query", body.dump());
    EXPECT_EQ(r.status, 400u) << body.dump() << " -> " << r.body;
    EXPECT_NE(r.body.find(message), std::string::npos) << body.dump() << " -> " << r.body;
  }
}

// Qdrant's distance matrix (search/matrix/pairs and .../offsets) and {"sample": "random"}: the
// sample is drawn uniformly under the filter (each of 30 points about as often over 300 draws),
// the matrix's ids sorted, each row the brute-force nearest among the sampled others with a
// search's scores, for each distance; both forms the same matrix where the sample is every
// point; only points holding the vector asked for are sampled; bad bodies name the field.
TEST_F(ApiOracleTest, DistanceMatrixAndRandomSampleAreQdrants) {
  const size_t n = 30, d = 5;
  for (const std::string distance : kDistances) {
    SCOPED_TRACE(distance);
    const std::string route = "/collections/m" + distance + "/points/";
    const auto base = add_random("m" + distance, distance, n, d, 51);
    // Every row as the oracle ranks the sampled others.
    auto expect_rows = [&](const json& offsets, size_t limit) {
      const json& ids = offsets["ids"];
      for (size_t i = 1; i < ids.size(); ++i) ASSERT_LT(ids[i - 1], ids[i]) << ids.dump();
      size_t at = 0;
      for (size_t row = 0; row < ids.size(); ++row) {
        const size_t a = ids[row];
        std::vector<std::pair<size_t, double>> others;
        for (size_t col = 0; col < ids.size(); ++col) {
          const size_t b = ids[col];
          if (col != row)
            others.push_back({col, qdrant_score(distance, base.row(a), base.row(b), d)});
        }
        std::stable_sort(others.begin(), others.end(), [&](const auto& x, const auto& y) {
          return ranks_before(distance, x.second, y.second);
        });
        for (size_t r = 0; r < std::min(limit, others.size()); ++r, ++at) {
          ASSERT_LT(at, offsets["offsets_row"].size());
          EXPECT_EQ(offsets["offsets_row"][at], row);
          EXPECT_EQ(offsets["offsets_col"][at], others[r].first) << "row " << row << " rank " << r;
          EXPECT_NEAR(offsets["scores"][at].get<double>(), others[r].second,
                      1e-5 * std::max(1.0, std::abs(others[r].second)));
        }
      }
      EXPECT_EQ(at, offsets["offsets_row"].size());
    };
    // Every point sampled: both forms, the same matrix.
    const json all = ok("POST", route + "search/matrix/offsets", {{"sample", 40}, {"limit", 4}});
    ASSERT_EQ(all["ids"].size(), n);
    expect_rows(all, 4);
    const json pairs = ok("POST", route + "search/matrix/pairs", {{"sample", 40}, {"limit", 4}});
    ASSERT_EQ(pairs["pairs"].size(), n * 4);
    for (size_t i = 0; i < n * 4; ++i) {
      const json& p = pairs["pairs"][i];
      EXPECT_EQ(p["a"], all["ids"][all["offsets_row"][i].get<size_t>()]);
      EXPECT_EQ(p["b"], all["ids"][all["offsets_col"][i].get<size_t>()]);
      EXPECT_EQ(p["score"], all["scores"][i]);
    }
    // A sample of 8 under a filter (the odd points): 8 of them, the rows among those 8.
    const json odd{{"must", {{{"key", "c.even"}, {"match", {{"value", false}}}}}}};
    const json some = ok("POST", route + "search/matrix/offsets",
                         {{"sample", 8}, {"filter", odd}});  // limit 3 by default
    ASSERT_EQ(some["ids"].size(), 8u);
    for (const json& id : some["ids"]) EXPECT_EQ(id.get<size_t>() % 2, 1u);
    expect_rows(some, 3);
    // Fewer than two points: an empty matrix.
    const json one{{"must", {{{"has_id", {7}}}}}};
    EXPECT_EQ(ok("POST", route + "search/matrix/pairs", {{"filter", one}}),
              json({{"pairs", json::array()}}));
    EXPECT_EQ(ok("POST", route + "search/matrix/offsets", {{"filter", one}})["ids"], json::array());
  }
  // Random samples: distinct, under the filter, and uniform: over 300 draws of 5 of the 30
  // points, each is drawn 50 times on average (a standard deviation of 6.5).
  std::map<size_t, size_t> drawn;
  std::set<std::vector<size_t>> samples;
  for (size_t draw = 0; draw < 300; ++draw) {
    const json got = ok("POST", "/collections/mEuclid/points/query",
                        {{"query", {{"sample", "random"}}}, {"limit", 5}, {"offset", 3}})["points"];
    ASSERT_EQ(got.size(), 5u);  // the offset is ignored, as Qdrant ignores it
    std::vector<size_t> ids;
    for (const json& p : got) {
      EXPECT_EQ(p["score"], 1.0);
      ids.push_back(p["id"]);
      ++drawn[p["id"]];
    }
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
    samples.insert(ids);
  }
  ASSERT_EQ(drawn.size(), n);
  for (const auto& [id, times] : drawn) {
    EXPECT_GT(times, 20u) << "id " << id;
    EXPECT_LT(times, 85u) << "id " << id;
  }
  EXPECT_GT(samples.size(), 250u);
  // A filter few points pass (drawn by one pass over every point), with payloads; the prefetched
  // points in random order.
  const json three = ok("POST", "/collections/mDot/points/query",
                        {{"query", {{"sample", "random"}}},
                         {"filter", {{"must", {{{"has_id", {4, 9, 17}}}}}}},
                         {"limit", 10},
                         {"with_payload", {"a"}}})["points"];
  ASSERT_EQ(three.size(), 3u);
  std::set<size_t> three_ids;
  for (const json& p : three) {
    three_ids.insert(p["id"].get<size_t>());
    EXPECT_EQ(p["payload"], json({{"a", p["id"]}}));
  }
  EXPECT_EQ(three_ids, std::set<size_t>({4, 9, 17}));
  const json near = ok("POST", "/collections/mDot/points/query",
                       {{"prefetch", {{"query", {1, 0, 0, 0, 0}}, {"limit", 6}}},
                        {"query", {{"sample", "random"}}},
                        {"limit", 10}})["points"];
  const json nearest = ok("POST", "/collections/mDot/points/query",
                          {{"query", {1, 0, 0, 0, 0}}, {"limit", 6}})["points"];
  std::set<json> a, b;
  for (const json& p : near) a.insert(p["id"]);
  for (const json& p : nearest) b.insert(p["id"]);
  EXPECT_EQ(a, b);
  // Only the points holding the vector asked for are sampled for a matrix.
  ok("PUT", "/collections/named",
     {{"vectors",
       {{"image", {{"size", 2}, {"distance", "Euclid"}}},
        {"text", {{"size", 2}, {"distance", "Dot"}}}}}});
  json pts = json::array();
  for (int i = 0; i < 20; ++i) {
    json v{{"text", {i, 1}}};
    if (i % 3 == 0) v["image"] = {i, 0};
    pts.push_back({{"id", i}, {"vector", v}});
  }
  ok("PUT", "/collections/named/points?wait=true", {{"points", pts}});
  const json images = ok("POST", "/collections/named/points/search/matrix/offsets",
                         {{"sample", 50}, {"limit", 1}, {"using", "image"}});
  ASSERT_EQ(images["ids"].size(), 7u) << images.dump();
  for (const json& id : images["ids"]) EXPECT_EQ(id.get<int>() % 3, 0);
  EXPECT_EQ(images["scores"][0], 3.0);  // 0's nearest image: 3, at distance 3
  // The sample^2 distances are bounded: at 65,536 dimensions, 181 points.
  ok("PUT", "/collections/wide", {{"vectors", {{"size", 65536}, {"distance", "Dot"}}}});
  const Response wide =
      call("POST", "/collections/wide/points/search/matrix/pairs", R"({"sample":182})");
  EXPECT_EQ(wide.status, 400u) << wide.body;
  EXPECT_NE(wide.body.find("sample: 182 points of 65536 dimensions"), std::string::npos)
      << wide.body;
  EXPECT_EQ(ok("POST", "/collections/wide/points/search/matrix/pairs", {{"sample", 181}}),
            json({{"pairs", json::array()}}));
  for (const auto& [path, body, field] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"search/matrix/pairs", R"({"sample":1})", "sample"},
           {"search/matrix/pairs", R"({"sample":5000})", "sample"},
           {"search/matrix/offsets", R"({"limit":0})", "limit"},
           {"search/matrix/offsets", R"({"sample":4000,"limit":100})", "limit: the matrix"},
           {"search/matrix/offsets", R"({"using":"audio"})", "using"},
           {"search/matrix/pairs", R"({"filter":{"must":[{"key":1}]}})", "filter"},
           {"query", R"({"query":{"sample":"first"}})", "query.sample: expected"},
           {"query", R"({"query":{"sample":"random","x":1}})", "alone"},
       }) {
    const Response r = call("POST", "/collections/named/points/" + path, body);
    EXPECT_EQ(r.status, 400u) << body << " -> " << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << body << " -> " << r.body;
  }
}

TEST_F(ApiOracleTest, ExactSearchIsBruteForceWhereTheGraphIsNot) {
  const auto base = add_random("sparse", "Euclid", 2000, 32, 21, {{"m", 4}, {"ef_construct", 8}});
  const auto queries = wp::test::random_matrix(20, 32, 22);
  size_t graph_misses = 0;
  for (size_t qi = 0; qi < queries.n; ++qi) {
    const float* q = queries.row(qi);
    const auto truth = brute_force("Euclid", base, q);
    const json exact = ok("POST", "/collections/sparse/points/search",
                          {{"vector", vec_json(q, 32)},
                           {"limit", 10},
                           {"params", {{"hnsw_ef", 10}, {"exact", true}}}});
    ASSERT_EQ(exact.size(), 10u);
    for (size_t r = 0; r < 10; ++r) {
      EXPECT_EQ(exact[r]["id"], truth[r].first) << "query " << qi << " rank " << r;
      expect_score(exact[r], truth[r].second, "rank " + std::to_string(r));
    }
    const json graph =
        ok("POST", "/collections/sparse/points/search",
           {{"vector", vec_json(q, 32)}, {"limit", 10}, {"params", {{"hnsw_ef", 10}}}});
    for (size_t r = 0; r < graph.size(); ++r) graph_misses += graph[r]["id"] != truth[r].first;
  }
  // Otherwise this test could not tell an exact scan from the graph.
  EXPECT_GT(graph_misses, 0u) << "the graph found every neighbour: make it sparser";
}

// offset skips the first results: the answer is the no-offset answer shifted, and for an exact
// search the brute-force ranks offset..offset+limit; points/query takes the same offset.
TEST_F(ApiOracleTest, SearchOffsetShiftsTheAnswer) {
  const auto base = add_random("o", "Euclid", 120, 8, 31);
  const auto q = wp::test::random_matrix(1, 8, 32);
  const auto truth = brute_force("Euclid", base, q.row(0));
  for (const bool exact : {false, true}) {
    SCOPED_TRACE(exact ? "exact" : "graph");
    const json params{{"exact", exact}, {"hnsw_ef", 200}};
    for (const size_t offset : {1, 3, 9}) {
      const json whole =
          ok("POST", "/collections/o/points/search",
             {{"vector", vec_json(q.row(0), 8)}, {"limit", offset + 5}, {"params", params}});
      ASSERT_EQ(whole.size(), offset + 5);
      const json shifted = ok("POST", "/collections/o/points/search",
                              {{"vector", vec_json(q.row(0), 8)},
                               {"limit", 5},
                               {"offset", offset},
                               {"params", params}});
      EXPECT_EQ(shifted, json(std::vector<json>(whole.begin() + offset, whole.end())))
          << "offset " << offset;
      if (exact) {
        ASSERT_EQ(shifted.size(), 5u);
        for (size_t r = 0; r < 5; ++r) EXPECT_EQ(shifted[r]["id"], truth[offset + r].first);
      }
      const json query = ok(
          "POST", "/collections/o/points/query",
          {{"query", vec_json(q.row(0), 8)}, {"limit", 5}, {"offset", offset}, {"params", params}});
      EXPECT_EQ(query["points"], shifted) << "offset " << offset;
    }
  }
  // An offset past the last point leaves nothing; one that leaves 2 gives those 2.
  EXPECT_EQ(ok("POST", "/collections/o/points/search",
               {{"vector", vec_json(q.row(0), 8)},
                {"limit", 5},
                {"offset", 120},
                {"params", {{"exact", true}}}})
                .size(),
            0u);
  const json last = ok("POST", "/collections/o/points/search",
                       {{"vector", vec_json(q.row(0), 8)},
                        {"limit", 5},
                        {"offset", 118},
                        {"params", {{"exact", true}}}});
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0]["id"], truth[118].first);
  EXPECT_EQ(last[1]["id"], truth[119].first);
}

// score_threshold as Qdrant: Cosine and Dot keep score >= threshold, Euclid keeps distance <=
// threshold; the boundary is kept; a threshold no point reaches gives nothing.
TEST_F(ApiOracleTest, ScoreThresholdKeepsTheRightSideForEachDistance) {
  for (const std::string distance : kDistances) {
    SCOPED_TRACE(distance);
    const std::string name = "t" + distance;
    const auto base = add_random(name, distance, 100, 8, 41);
    const auto q = wp::test::random_matrix(1, 8, 42);
    const auto truth = brute_force(distance, base, q.row(0));
    const json v = vec_json(q.row(0), 8);
    for (const bool exact : {false, true}) {
      for (const size_t keep : {1, 6, 15}) {
        // Half way between the keep-th and the next score: exactly `keep` points pass.
        const double threshold = (truth[keep - 1].second + truth[keep].second) / 2;
        const json hits = ok("POST", "/collections/" + name + "/points/search",
                             {{"vector", v},
                              {"limit", 30},
                              {"score_threshold", threshold},
                              {"params", {{"exact", exact}, {"hnsw_ef", 200}}}});
        ASSERT_EQ(hits.size(), keep) << "threshold " << threshold << ": " << hits.dump();
        for (size_t r = 0; r < keep; ++r) EXPECT_EQ(hits[r]["id"], truth[r].first);
        // The same through points/query.
        const json query = ok("POST", "/collections/" + name + "/points/query",
                              {{"query", v},
                               {"limit", 30},
                               {"score_threshold", threshold},
                               {"params", {{"exact", exact}, {"hnsw_ef", 200}}}});
        EXPECT_EQ(ids_of(query["points"]), ids_of(hits));
      }
    }
    // A threshold equal to a returned score keeps that point (>= and <= are inclusive).
    const json four = ok("POST", "/collections/" + name + "/points/search",
                         {{"vector", v}, {"limit", 4}, {"params", {{"exact", true}}}});
    const json at = ok("POST", "/collections/" + name + "/points/search",
                       {{"vector", v},
                        {"limit", 30},
                        {"score_threshold", four[3]["score"]},
                        {"params", {{"exact", true}}}});
    EXPECT_EQ(at, four);
    // Beyond the best score on the wrong side: nothing.
    const double beyond = distance == "Euclid" ? truth[0].second / 2
                                               : truth[0].second + std::abs(truth[0].second) + 1;
    EXPECT_EQ(ok("POST", "/collections/" + name + "/points/search",
                 {{"vector", v}, {"limit", 30}, {"score_threshold", beyond}})
                  .size(),
              0u);
  }
}

// with_vector on a search returns the stored vectors: as sent for Euclid and Dot, normalised
// for Cosine (as Qdrant stores them); with_vector false returns none.
TEST_F(ApiOracleTest, SearchWithVectorReturnsTheStoredVectors) {
  for (const std::string distance : kDistances) {
    SCOPED_TRACE(distance);
    const std::string name = "v" + distance;
    const auto base = add_random(name, distance, 60, 6, 51);
    const auto q = wp::test::random_matrix(1, 6, 52);
    for (const char* route : {"search", "query"}) {
      json body{{"limit", 60}, {"with_vector", true}};
      body[std::string(route) == "search" ? "vector" : "query"] = vec_json(q.row(0), 6);
      json hits = ok("POST", "/collections/" + name + "/points/" + route, body);
      if (std::string(route) == "query") hits = hits["points"];
      ASSERT_EQ(hits.size(), 60u) << route;
      for (const json& h : hits) {
        const size_t id = h["id"];
        ASSERT_EQ(h["vector"].size(), 6u) << h.dump();
        double norm = 0;
        for (size_t k = 0; k < 6; ++k) norm += double(base.row(id)[k]) * base.row(id)[k];
        norm = std::sqrt(norm);
        for (size_t k = 0; k < 6; ++k) {
          if (distance == "Cosine") {
            EXPECT_NEAR(h["vector"][k].get<double>(), base.row(id)[k] / norm, 1e-6) << id;
          } else {
            EXPECT_EQ(h["vector"][k].get<float>(), base.row(id)[k]) << id;
          }
        }
      }
    }
    const json none = ok("POST", "/collections/" + name + "/points/search",
                         {{"vector", vec_json(q.row(0), 6)}, {"limit", 3}, {"with_vector", false}});
    for (const json& h : none) EXPECT_TRUE(h["vector"].is_null()) << h.dump();
  }
}

// with_payload as {"include": [...]} and {"exclude": [...]} on search, query, scroll and
// retrieve: exactly the named keys, or all but them.
TEST_F(ApiOracleTest, WithPayloadIncludeAndExcludeForms) {
  add_random("p", "Dot", 30, 4, 61);
  const json v{0.5, -1, 2, 0.25};
  const std::vector<std::pair<json, std::vector<std::string>>> cases{
      {json::parse(R"({"include": ["a", "c"]})"), {"a", "c"}},
      {json::parse(R"({"include": ["n"]})"), {"n"}},
      {json::parse(R"({"include": ["absent"]})"), {}},
      {json::parse(R"({"exclude": ["b"]})"), {"a", "c", "n"}},
      {json::parse(R"({"exclude": ["a", "b", "c", "n"]})"), {}},
      {json::parse(R"({"exclude": ["absent"]})"), {"a", "b", "c", "n"}},
  };
  for (const auto& [selector, keys] : cases) {
    SCOPED_TRACE(selector.dump());
    std::vector<std::pair<std::string, json>> answers;
    answers.push_back({"search", ok("POST", "/collections/p/points/search",
                                    {{"vector", v}, {"limit", 5}, {"with_payload", selector}})});
    answers.push_back(
        {"query", ok("POST", "/collections/p/points/query",
                     {{"query", v}, {"limit", 5}, {"with_payload", selector}})["points"]});
    answers.push_back({"scroll", ok("POST", "/collections/p/points/scroll",
                                    {{"limit", 5}, {"with_payload", selector}})["points"]});
    answers.push_back({"retrieve", ok("POST", "/collections/p/points",
                                      {{"ids", {3, 4, 17}}, {"with_payload", selector}})});
    for (const auto& [route, hits] : answers) {
      ASSERT_GE(hits.size(), 3u) << route;
      for (const json& h : hits) {
        const json full = random_payload(h["id"].get<size_t>());
        json want = json::object();
        for (const std::string& k : keys) want[k] = full[k];
        EXPECT_EQ(h["payload"], want) << route << " id " << h["id"];
      }
    }
  }
}

// points/query with {"query": vector} and {"query": {"nearest": vector}} answers what
// points/search answers for the same vector, filter, limit, offset and selectors.
TEST_F(ApiOracleTest, QueryWithAVectorOrNearestEqualsSearch) {
  add_random("q", "Cosine", 200, 10, 71);
  const auto queries = wp::test::random_matrix(3, 10, 72);
  const json filter{{"must", {{{"key", "n"}, {"range", {{"gte", 2}, {"lt", 6}}}}}}};
  for (size_t qi = 0; qi < queries.n; ++qi) {
    const json v = vec_json(queries.row(qi), 10);
    for (const json& extra :
         {json::object(), json{{"filter", filter}, {"offset", 2}},
          json{{"with_payload", {"a"}}, {"with_vector", true}, {"offset", 1}}}) {
      json search{{"vector", v}, {"limit", 7}};
      search.update(extra);
      const json want = ok("POST", "/collections/q/points/search", search);
      ASSERT_EQ(want.size(), 7u) << extra.dump();
      for (const json& form : {v, json{{"nearest", v}}}) {
        json query{{"query", form}, {"limit", 7}};
        query.update(extra);
        EXPECT_EQ(ok("POST", "/collections/q/points/query", query)["points"], want)
            << query.dump().substr(0, 40) << " " << extra.dump();
      }
    }
  }
}

// scroll pages in id order (numbers by value, then UUIDs), every point once, when offset is fed
// back from next_page_offset until it is null; the same with a filter.
TEST_F(ApiOracleTest, ScrollFollowsNextPageOffsetThroughEveryPointInIdOrder) {
  ok("PUT", "/collections/w", {{"vectors", {{"size", 2}, {"distance", "Euclid"}}}});
  // Ids across byte boundaries, sent out of order.
  std::vector<uint64_t> numbers{0,
                                1,
                                2,
                                255,
                                256,
                                257,
                                65535,
                                65536,
                                4294967295ull,
                                4294967296ull,
                                9007199254740993ull,
                                18446744073709551615ull};
  std::mt19937_64 rng(81);
  for (int i = 0; i < 90; ++i) numbers.push_back(rng() % 1000000);
  std::sort(numbers.begin(), numbers.end());
  numbers.erase(std::unique(numbers.begin(), numbers.end()), numbers.end());
  const std::vector<std::string> uuids{
      "0b5e4b7a-1c9e-4b7a-9a44-0d1e2f3a4b5c", "5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
      "a0000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff"};
  std::vector<json> all;  // id order, as the oracle expects it
  for (uint64_t n : numbers) all.push_back(n);
  for (const std::string& u : uuids) all.push_back(u);
  std::vector<json> shuffled = all;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  json pts = json::array();
  for (size_t i = 0; i < shuffled.size(); ++i) {
    // "odd" marks every other point of the id order, for the filtered walk.
    const size_t rank = std::find(all.begin(), all.end(), shuffled[i]) - all.begin();
    pts.push_back(
        {{"id", shuffled[i]}, {"vector", {float(i), 1.0f}}, {"payload", {{"odd", rank % 2 == 1}}}});
  }
  ok("PUT", "/collections/w/points?wait=true", {{"points", pts}});

  auto walk = [&](const json& filter, size_t limit) {
    std::vector<json> seen;
    json offset = nullptr;
    for (int page = 0; page < 1000; ++page) {
      json body{{"limit", limit}};
      if (!offset.is_null()) body["offset"] = offset;
      if (!filter.is_null()) body["filter"] = filter;
      const json r = ok("POST", "/collections/w/points/scroll", body);
      EXPECT_LE(r["points"].size(), limit);
      // A page starts at the offset it was given (Qdrant's next_page_offset is the first id of
      // the next page).
      if (!offset.is_null() && !r["points"].empty()) {
        EXPECT_EQ(r["points"][0]["id"], offset);
      }
      for (const json& p : r["points"]) seen.push_back(p["id"]);
      offset = r["next_page_offset"];
      if (offset.is_null()) break;
      EXPECT_EQ(r["points"].size(), limit) << "a page before the last is full";
    }
    return seen;
  };
  for (const size_t limit : {1, 7, 50, 500}) {
    EXPECT_EQ(walk(nullptr, limit), all) << "limit " << limit;
  }
  std::vector<json> odd;
  for (size_t i = 1; i < all.size(); i += 2) odd.push_back(all[i]);
  const json odd_filter{{"must", {{{"key", "odd"}, {"match", {{"value", true}}}}}}};
  EXPECT_EQ(walk(odd_filter, 6), odd);
  // An offset that is no point's id starts at the next id.
  const json from = ok("POST", "/collections/w/points/scroll", {{"limit", 2}, {"offset", 258}});
  const auto next = std::upper_bound(numbers.begin(), numbers.end(), 258);
  EXPECT_EQ(from["points"][0]["id"], *next);
  EXPECT_EQ(from["points"][1]["id"], *(next + 1));
}

// count with a filter is the exact number of matching points, counted here by hand.
TEST_F(ApiOracleTest, CountWithAFilterIsExact) {
  add_random("k", "Euclid", 500, 3, 91);
  struct Case {
    json filter;
    std::function<bool(size_t)> matches;
  };
  const std::vector<Case> cases{
      {json::parse(R"({"must": [{"key": "n", "match": {"value": 3}}]})"),
       [](size_t i) { return i % 7 == 3; }},
      {json::parse(R"({"must": [{"key": "n", "range": {"gte": 2, "lt": 5}}]})"),
       [](size_t i) { return i % 7 >= 2 && i % 7 < 5; }},
      {json::parse(R"({"must_not": [{"key": "c.even", "match": {"value": true}}]})"),
       [](size_t i) { return i % 2 == 1; }},
      {json::parse(R"({"should": [{"key": "n", "match": {"any": [0, 6]}},
                                  {"key": "a", "range": {"gt": 480}}]})"),
       [](size_t i) { return i % 7 == 0 || i % 7 == 6 || i > 480; }},
      {json::parse(R"({"must": [{"key": "a", "range": {"lte": 99}}],
                      "must_not": [{"key": "n", "match": {"value": 0}}]})"),
       [](size_t i) { return i <= 99 && i % 7 != 0; }},
      {json::parse(R"({"must": [{"has_id": [1, 2, 3, 400, 9999]}]})"),
       [](size_t i) { return i == 1 || i == 2 || i == 3 || i == 400; }},
      {json::parse(R"({"must": [{"key": "b", "match": {"value": "s42"}}]})"),
       [](size_t i) { return i == 42; }},
  };
  for (const Case& c : cases) {
    size_t want = 0;
    for (size_t i = 0; i < 500; ++i) want += c.matches(i);
    EXPECT_EQ(ok("POST", "/collections/k/points/count", {{"filter", c.filter}})["count"], want)
        << c.filter.dump();
    EXPECT_EQ(
        ok("POST", "/collections/k/points/count", {{"filter", c.filter}, {"exact", true}})["count"],
        want)
        << c.filter.dump();
  }
  EXPECT_EQ(ok("POST", "/collections/k/points/count", json::object())["count"], 500);
  // After deleting the multiples of 5 below 100 (20 points), by ids.
  json gone = json::array();
  for (size_t i = 0; i < 100; i += 5) gone.push_back(i);
  ok("POST", "/collections/k/points/delete?wait=true", {{"points", gone}});
  for (const Case& c : cases) {
    size_t want = 0;
    for (size_t i = 0; i < 500; ++i) want += c.matches(i) && !(i < 100 && i % 5 == 0);
    EXPECT_EQ(ok("POST", "/collections/k/points/count", {{"filter", c.filter}})["count"], want)
        << "after the delete: " << c.filter.dump();
  }
  EXPECT_EQ(ok("POST", "/collections/k/points/count", json::object())["count"], 480);
}

// POST points/batch: operations of every kind applied in order as one write (a later one sees
// an earlier one's points), one result each; any bad or failing operation answers 4xx naming it,
// and nothing of the batch is written.
TEST_F(ApiTest, PointsBatchAppliesOperationsInOrderAllOrNothing) {
  make_points();
  const json ops = {
      {{"upsert", {{"points", {{{"id", 10}, {"vector", {5, 5, 5}}, {"payload", {{"k", 1}}}}}}}}},
      {{"upsert", {{"batch", {{"ids", {11}}, {"vectors", {{6, 6, 6}}}}}}}},
      {{"set_payload",
        {{"filter", {{"must", {{{"key", "k"}, {"match", {{"value", 1}}}}}}}},
         {"payload", {{"tag", "new"}}}}}},
      {{"overwrite_payload", {{"points", {11}}, {"payload", {{"only", true}}}}}},
      {{"delete_payload", {{"points", {1}}, {"keys", {"n"}}}}},
      {{"clear_payload", {{"points", {2}}}}},
      {{"update_vectors", {{"points", {{{"id", 10}, {"vector", {9, 9, 9}}}}}}}},
      {{"delete", {{"points", {"5c56c793-69f3-4fbf-87e6-c4bf54c28c26"}}}}},
  };
  const json before = ok("POST", "/collections/c/points/scroll",
                         {{"limit", 100}, {"with_payload", true}, {"with_vector", true}});
  // Bad operations, each in an otherwise good batch: 4xx naming it; nothing written.
  const std::vector<std::tuple<json, unsigned, std::string>> bad{
      {{{"upsert", {{"points", {{{"id", 12}, {"vector", {1, 2}}}}}}}},
       400,
       "operations[8].upsert.points[0].vector"},
      {{{"set_payload", {{"points", {99}}, {"payload", {{"a", 1}}}}}}, 404, "99"},
      {{{"frobnicate", json::object()}}, 400, "operations[8].frobnicate"},
      {{{"delete", {{"filter", {{"must", 3}}}}}}, 400, "operations[8].delete.filter.must"},
      {{{"upsert", {{"points", {}}}}, {"delete", {{"points", {1}}}}}, 400, "operations[8]"},
  };
  for (const auto& [extra, status, field] : bad) {
    json with = ops;
    with.push_back(extra);
    const Response r =
        call("POST", "/collections/c/points/batch?wait=true", json{{"operations", with}}.dump());
    EXPECT_EQ(r.status, status) << extra.dump() << " -> " << r.body;
    EXPECT_NE(r.body.find(field), std::string::npos) << extra.dump() << " -> " << r.body;
  }
  EXPECT_EQ(call("POST", "/collections/c/points/batch", R"({"operations": {}})").status, 400u);
  EXPECT_EQ(ok("POST", "/collections/c/points/scroll",
               {{"limit", 100}, {"with_payload", true}, {"with_vector", true}}),
            before);

  const json results = ok("POST", "/collections/c/points/batch?wait=true", {{"operations", ops}});
  ASSERT_EQ(results.size(), ops.size());
  for (const json& r : results) EXPECT_EQ(r["status"], "completed");
  const json got = ok("POST", "/collections/c/points/scroll",
                      {{"limit", 100}, {"with_payload", true}, {"with_vector", true}})["points"];
  std::map<json, json> by_id;
  for (const json& p : got) by_id[p["id"]] = p;
  ASSERT_EQ(by_id.size(), 4u);  // 1, 2, 10, 11
  EXPECT_EQ(by_id[1]["payload"], json({{"color", "red"}}));
  EXPECT_EQ(by_id[2]["payload"], json::object());
  EXPECT_EQ(by_id[10]["payload"], json({{"k", 1}, {"tag", "new"}}));
  EXPECT_EQ(by_id[10]["vector"], json({9, 9, 9}));
  EXPECT_EQ(by_id[11]["payload"], json({{"only", true}}));
  EXPECT_EQ(
      ok("POST", "/collections/c/points/search", {{"vector", {9, 9, 9}}, {"limit", 1}})[0]["id"],
      10);
}

// Issue 20: a collection whose store does not open at start (here its RocksDB CURRENT file is
// garbage) no longer keeps the server from starting: the others serve, it is listed, its
// requests are a 500 that says why, and it can be deleted and created again.
TEST_F(ApiTest, ACollectionThatDoesNotOpenLeavesTheOthersServing) {
  make_points();
  ok("PUT", "/collections/broken", {{"vectors", {{"size", 2}, {"distance", "Dot"}}}});
  ok("PUT", "/collections/broken/points?wait=true",
     {{"points", {{{"id", 1}, {"vector", {1, 2}}}}}});
  ok("POST", "/collections/aliases",
     {{"actions", {{{"create_alias", {{"collection_name", "broken"}, {"alias_name", "al"}}}}}}});
  api_.reset();
  engine_.reset();
  std::ofstream(tmp_.file("data") + "/collections/broken/store/CURRENT", std::ios::trunc)
      << "garbage";
  restart();
  EXPECT_EQ(ok("POST", "/collections/c/points/count", json::object())["count"], 3);
  json names = json::array();
  const json listed = ok("GET", "/collections");
  for (const json& c : listed["collections"]) names.push_back(c["name"]);
  EXPECT_EQ(names, json({"broken", "c"}));
  for (const char* target : {"/collections/broken", "/collections/al"}) {
    const Response r = call("GET", target);
    EXPECT_EQ(r.status, 500u) << r.body;
    EXPECT_NE(r.body.find("`broken` could not be opened at start"), std::string::npos) << r.body;
  }
  EXPECT_EQ(
      call("PUT", "/collections/broken", R"({"vectors": {"size": 2, "distance": "Dot"}})").status,
      409u);
  EXPECT_EQ(call("GET", "/metrics").status, 200u);
  EXPECT_EQ(ok("DELETE", "/collections/broken"), true);
  EXPECT_EQ(ok("GET", "/aliases")["aliases"].size(), 0u);
  ok("PUT", "/collections/broken", {{"vectors", {{"size", 2}, {"distance", "Dot"}}}});
  EXPECT_EQ(ok("POST", "/collections/broken/points/count", json::object())["count"], 0);
}
