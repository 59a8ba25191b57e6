// libFuzzer target: the whole REST API (every route's URL, query string and body parsers:
// points, search, query, filters, payload edits, collection create and update, index requests)
// through Api::handle.
// Input: "METHOD TARGET\n" then the body. Api::handle must never throw, and bad input must never
// be a 500 (an internal error) — either is reported as a crash.
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include "engine/engine.h"
#include "fuzz_util.h"
#include "http/api.h"

namespace {

struct World {
  std::string dir;
  std::unique_ptr<wp::engine::Engine> engine;
  std::unique_ptr<wp::http::Api> api;
  size_t inputs = 0;

  World() {
    char tmpl[] = "/tmp/waypoint-fuzz-api-XXXXXX";
    dir = mkdtemp(tmpl);
    reset();
  }
  ~World() {
    api.reset();
    engine.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  /// A fresh engine holding collection "c" (4-d, Euclid), "n" (named vectors), "s" (sparse
  /// vectors) and "m" (a multivector) with a few points, so that reads, searches and filters have
  /// something to walk.
  void reset() {
    api.reset();
    engine.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir + "/data", ec);
    engine = std::make_unique<wp::engine::Engine>(dir + "/data");
    api = std::make_unique<wp::http::Api>(*engine, wp::http::ApiOptions{});
    // A PUT with a body and nothing else (an aggregate of three left clang warning of the rest).
    const auto put = [this](const char* target, const char* body) {
      wp::http::Request r;
      r.method = "PUT";
      r.target = target;
      r.body = body;
      api->handle(r);
    };
    put("/collections/c", R"({"vectors": {"size": 4, "distance": "Euclid"}})");
    put("/collections/c/points",
        R"({"points": [{"id": 1, "vector": [1, 0, 0, 0], "payload": {"a": 1, "t": "x"}},
                    {"id": 2, "vector": [0, 1, 0, 0], "payload": {"a": [2, 3], "o": {"b": true}}},
                    {"id": "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", "vector": [0, 0, 1, 0]}]})");
    // "n": named vectors (image 3-d Euclid, text 2-d Cosine), points holding some of them.
    put("/collections/n",
        R"({"vectors": {"image": {"size": 3, "distance": "Euclid"},
                                 "text": {"size": 2, "distance": "Cosine"}}})");
    put("/collections/n/points",
        R"({"points": [{"id": 1, "vector": {"image": [1, 0, 0], "text": [1, 0]}},
                    {"id": 2, "vector": {"image": [0, 1, 0]}, "payload": {"k": "a"}},
                    {"id": 3, "vector": {"text": [0, 1]}}]})");
    // "s": a dense vector beside two sparse ones (one weighed by idf).
    put("/collections/s",
        R"({"vectors": {"d": {"size": 2, "distance": "Dot"}},
            "sparse_vectors": {"t": {}, "b": {"modifier": "idf"}}})");
    put("/collections/s/points",
        R"({"points": [{"id": 1, "vector": {"d": [1, 0], "t": {"indices": [1, 3], "values": [1, 2]}}},
                    {"id": 2, "vector": {"t": {"indices": [3], "values": [1]},
                                         "b": {"indices": [0, 7], "values": [1, 1]}}},
                    {"id": 3, "vector": {"b": {"indices": [], "values": []}}, "payload": {"k": 1}}]})");
    // "m": a dense vector beside a multivector (3-d Euclid rows, scored by MaxSim).
    put("/collections/m",
        R"({"vectors": {"d": {"size": 2, "distance": "Dot"},
                        "m": {"size": 3, "distance": "Euclid",
                              "multivector_config": {"comparator": "max_sim"}}}})");
    put("/collections/m/points",
        R"({"points": [{"id": 1, "vector": {"d": [1, 0], "m": [[1, 0, 0], [0, 1, 0]]}},
                    {"id": 2, "vector": {"m": [[0, 0, 1]]}, "payload": {"k": "a"}},
                    {"id": 3, "vector": {"d": [0, 1]}}]})");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  const std::string in = wp::fuzz::as_string(data, size);
  const size_t eol = in.find('\n');
  const std::string line = in.substr(0, eol);
  const size_t sp = line.find(' ');
  if (sp == std::string::npos) return 0;
  wp::http::Request req;
  req.method = line.substr(0, sp);
  req.target = line.substr(sp + 1);
  req.body = eol == std::string::npos ? "" : in.substr(eol + 1);
  const wp::http::Response r = world.api->handle(req);
  if (r.status >= 500) {
    std::cerr << "answer " << r.status << " to " << req.method << " " << req.target << "\n"
              << r.body << "\n";
    std::abort();
  }
  // A request may start an index build on a thread of its own (PATCH, vector_index): it
  // finishes within the input, so that the next input meets a settled state and LeakSanitizer's
  // check after an input never sees a build's memory in flight (it reported such as leaks).
  for (const std::string& name : world.engine->names()) {
    try {
      world.engine->collection(name)->wait_for_build();
    } catch (const wp::NotFoundError&) {
    }
  }
  // Keep the state small and the runs comparable: start again every 500 inputs, or when the
  // inputs have grown the data.
  if (++world.inputs % 500 == 0 || world.engine->names().size() > 8) world.reset();
  return 0;
}
