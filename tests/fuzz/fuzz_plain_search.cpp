// libFuzzer target: the plain search reader (http/plain_search.h, simdjson) against the DOM path.
// Input: a body, sent to /points/search, /points/query and their /batch routes. Two Apis on one
// engine answer it, one with plain answers and one with every body through nlohmann's DOM; their
// statuses and answers (less "time") must be the same, and neither may be a 500. Any difference is
// reported as a crash.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "engine/engine.h"
#include "fuzz_util.h"
#include "http/api.h"
#include "http/plain_search.h"

namespace {

struct World {
  std::string dir;
  std::unique_ptr<wp::engine::Engine> engine;
  std::unique_ptr<wp::http::Api> plain, dom;

  World() {
    char tmpl[] = "/tmp/waypoint-fuzz-plain-XXXXXX";
    dir = mkdtemp(tmpl);
    engine = std::make_unique<wp::engine::Engine>(dir + "/data");
    plain = std::make_unique<wp::http::Api>(*engine, wp::http::ApiOptions{});
    wp::http::ApiOptions o;
    o.plain_answers = false;
    dom = std::make_unique<wp::http::Api>(*engine, o);
    // "c": 3-d Euclid with numeric and UUID ids and payloads; searches never change it.
    plain->handle(
        {"PUT", "/collections/c", R"({"vectors": {"size": 3, "distance": "Euclid"}})", "", ""});
    plain->handle({"PUT", "/collections/c/points?wait=true",
                   R"({"points": [{"id": 1, "vector": [1, 0, 0], "payload": {"a": "x\u00e9"}},
                      {"id": 2, "vector": [0, 1, 0], "payload": {"a": [2, 3]}},
                      {"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "vector": [0, 0, 1]}]})",
                   "", ""});
  }
  ~World() {
    plain.reset();
    dom.reset();
    engine.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

nlohmann::json without_time(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body);
  j.erase("time");
  return j;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  const std::string body = wp::fuzz::as_string(data, size);
  for (const char* route : {"search", "query", "search/batch", "query/batch"}) {
    const wp::http::Request req{"POST", std::string("/collections/c/points/") + route, body, "",
                                ""};
    const wp::http::Response a = world.plain->handle(req);
    const wp::http::Response b = world.dom->handle(req);
    if (a.status >= 500 || a.status != b.status || without_time(a.body) != without_time(b.body)) {
      std::cerr << route << ": plain " << a.status << ": " << a.body << "\ndom " << b.status << ": "
                << b.body << "\n";
      std::abort();
    }
  }
  return 0;
}
