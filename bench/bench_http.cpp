// The REST handler without sockets: cost of Api::handle for a SIFT10K search (JSON in, JSON out),
// plain (simdjson in, text out) and through nlohmann's DOM, next to the bare index search it wraps;
// and for batches of 10 searches, and for searches with a filter (half the points match); and the
// readers of upsert bodies (500 points of 128 unit-length floats and a 3-key payload; 20 points of
// 32 such rows, a multivector each), plain (simdjson) and through nlohmann's DOM.
// Run: build/bench/bench_http
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "http/api.h"
#include "http/plain_search.h"
#include "http/plain_upsert.h"
#include "http/request_parsing.h"
#include "index/dataset.h"

namespace {

struct Fixture {
  std::string dir = (std::filesystem::temp_directory_path() / "wp_bench_http").string();
  std::unique_ptr<wp::engine::Engine> engine;
  std::unique_ptr<wp::http::Api> api;
  std::unique_ptr<wp::http::Api> api_dom;  ///< every body through nlohmann's DOM
  wp::index::Dataset ds;
  std::vector<std::string> bodies;
  std::vector<std::string> batches;   ///< {"searches": [10 of the bodies]}
  std::vector<std::string> filtered;  ///< the bodies with a filter on the points' parity
  /// The query vectors scaled to unit length, as a client writes float32 values through a JSON
  /// writer of doubles: ~17 significant digits a number (SIFT's own are integers, "12.0").
  std::vector<std::string> fractions;
  std::vector<std::string> upserts;        ///< {"points": [500 points]}
  std::vector<std::string> multi_upserts;  ///< {"points": [20 points of 32 rows]}

  Fixture() {
    std::filesystem::remove_all(dir);
    ds = wp::index::load_dataset(std::string(WAYPOINT_DATA_DIR) + "/siftsmall");
    engine = std::make_unique<wp::engine::Engine>(dir);
    wp::engine::CollectionConfig cfg;
    cfg.vectors[""].dim = ds.base.d;
    cfg.vectors[""].index.metric = wp::index::Metric::kL2;
    cfg.vectors[""].index.hnsw.ef_construction = 100;
    engine->create_collection("sift", cfg);
    std::vector<wp::engine::PointWrite> pts(ds.base.n);
    for (size_t i = 0; i < ds.base.n; ++i) {
      pts[i].id = wp::engine::PointId::number(i);
      pts[i].vectors[""].assign(ds.base.row(i), ds.base.row(i) + ds.base.d);
      pts[i].payload = {{"parity", i % 2 ? "odd" : "even"}};
    }
    engine->collection("sift")->upsert(std::move(pts), false);
    // As a user filtering on a key would: its payload index (without one, the search tests the
    // payloads of the ~300 points its walk reaches, docs/hnsw.md; a filter few points pass
    // tests all 10,000: 2.2 ms a search, 70x the search).
    engine->collection("sift")->create_payload_index("parity", wp::engine::PayloadSchema::kKeyword);
    api = std::make_unique<wp::http::Api>(*engine, wp::http::ApiOptions{});
    wp::http::ApiOptions dom;
    dom.plain_answers = false;
    api_dom = std::make_unique<wp::http::Api>(*engine, dom);
    for (size_t i = 0; i < ds.query.n; ++i) {
      nlohmann::json body{
          {"vector", std::vector<float>(ds.query.row(i), ds.query.row(i) + ds.query.d)},
          {"limit", 10},
          {"params", {{"hnsw_ef", 64}}}};
      bodies.push_back(body.dump());
      body["filter"] = {{"must", {{{"key", "parity"}, {"match", {{"value", "even"}}}}}}};
      filtered.push_back(body.dump());
      std::vector<float> unit(ds.query.row(i), ds.query.row(i) + ds.query.d);
      double norm = 0;
      for (const float x : unit) norm += double{x} * x;
      for (float& x : unit) x = static_cast<float>(x / std::sqrt(norm));
      fractions.push_back(
          nlohmann::json{{"vector", unit}, {"limit", 10}, {"params", {{"hnsw_ef", 64}}}}.dump());
    }
    // Upsert bodies as an embedding client sends them: unit-length float32 values written as
    // doubles (~17 digits), the base vectors 500 a body, and 32 of them a point as a multivector.
    auto unit_row = [&](size_t i) {
      std::vector<float> v(ds.base.row(i), ds.base.row(i) + ds.base.d);
      double norm = 0;
      for (const float x : v) norm += double{x} * x;
      for (float& x : v) x = static_cast<float>(x / std::sqrt(std::max(norm, 1e-30)));
      return v;
    };
    for (size_t at = 0; at + 500 <= ds.base.n && upserts.size() < 10; at += 500) {
      nlohmann::json points = nlohmann::json::array();
      for (size_t i = at; i < at + 500; ++i) {
        points.push_back(
            {{"id", i},
             {"vector", unit_row(i)},
             {"payload", {{"tag", "t" + std::to_string(i % 7)}, {"n", i}, {"s", "x"}}}});
      }
      upserts.push_back(nlohmann::json{{"points", points}}.dump());
    }
    for (size_t at = 0; at + 640 <= ds.base.n && multi_upserts.size() < 10; at += 640) {
      nlohmann::json points = nlohmann::json::array();
      for (size_t p = 0; p < 20; ++p) {
        nlohmann::json rows = nlohmann::json::array();
        for (size_t r = 0; r < 32; ++r) rows.push_back(unit_row(at + p * 32 + r));
        points.push_back({{"id", at + p}, {"vector", {{"colbert", rows}}}});
      }
      multi_upserts.push_back(nlohmann::json{{"points", points}}.dump());
    }
    for (size_t i = 0; i + 10 <= bodies.size(); i += 10) {
      std::string b = "{\"searches\":[";
      for (size_t j = i; j < i + 10; ++j) b += (j > i ? "," : "") + bodies[j];
      batches.push_back(b + "]}");
    }
  }
  ~Fixture() {
    api.reset();
    api_dom.reset();
    engine.reset();
    std::filesystem::remove_all(dir);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

enum class Bodies { kSingle, kBatches, kFiltered, kFractions, kUpserts, kMultiUpserts };

/// Runs `fn` on the SIFT10K search bodies in turn (or on batches of 10 of them, filtered ones, or
/// their unit-length fractions).
template <typename F>
void over_bodies(benchmark::State& state, const F& fn, Bodies which = Bodies::kSingle) {
  const Fixture& f = fixture();
  const std::vector<std::string>& bodies = which == Bodies::kBatches        ? f.batches
                                           : which == Bodies::kFiltered     ? f.filtered
                                           : which == Bodies::kFractions    ? f.fractions
                                           : which == Bodies::kUpserts      ? f.upserts
                                           : which == Bodies::kMultiUpserts ? f.multi_upserts
                                                                            : f.bodies;
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(fn(bodies[i]));
    i = (i + 1) % bodies.size();
  }
}

wp::http::Response search(wp::http::Api& api, const std::string& body,
                          const char* route = "search") {
  return api.handle({"POST", std::string("/collections/sift/points/") + route, body, "", ""});
}

/// The plain search (read by simdjson, answer written as text).
void BM_ApiHandleSearch(benchmark::State& state) {
  over_bodies(state, [](const std::string& b) { return search(*fixture().api, b); });
}

/// The same requests through nlohmann's DOM (ApiOptions::plain_answers off).
void BM_ApiHandleSearchDom(benchmark::State& state) {
  over_bodies(state, [](const std::string& b) { return search(*fixture().api_dom, b); });
}

/// 10 searches a request (points/search/batch), plain and through the DOM.
void BM_ApiHandleBatch10(benchmark::State& state) {
  over_bodies(
      state, [](const std::string& b) { return search(*fixture().api, b, "search/batch"); },
      Bodies::kBatches);
}
void BM_ApiHandleBatch10Dom(benchmark::State& state) {
  over_bodies(
      state, [](const std::string& b) { return search(*fixture().api_dom, b, "search/batch"); },
      Bodies::kBatches);
}

/// A search with a filter ({"must": [{"key": "parity", "match": {"value": "even"}}]}), plain and
/// through the DOM.
void BM_ApiHandleFilteredSearch(benchmark::State& state) {
  over_bodies(
      state, [](const std::string& b) { return search(*fixture().api, b); }, Bodies::kFiltered);
}
void BM_ApiHandleFilteredSearchDom(benchmark::State& state) {
  over_bodies(
      state, [](const std::string& b) { return search(*fixture().api_dom, b); }, Bodies::kFiltered);
}

/// The plain reader alone, on SIFT's bodies (integers) and on bodies of ~17-digit fractions.
void BM_ReadPlainSearch(benchmark::State& state) {
  over_bodies(state, [](const std::string& b) { return wp::http::read_plain_search(b); });
}
void BM_ReadPlainSearchFractions(benchmark::State& state) {
  over_bodies(
      state, [](const std::string& b) { return wp::http::read_plain_search(b); },
      Bodies::kFractions);
}

void BM_ParseSearchBody(benchmark::State& state) {
  over_bodies(state, [](const std::string& b) { return nlohmann::json::parse(b); });
}

/// An upsert body's points, read plain and through the DOM (parse_body and read_upsert_points),
/// on 500-point bodies and on 20-point multivector bodies; items are points.
template <bool kPlain>
void read_upserts(benchmark::State& state, Bodies which) {
  over_bodies(
      state,
      [](const std::string& b) {
        if constexpr (kPlain) {
          return wp::http::read_plain_upsert(b, b.size());
        } else {
          return wp::http::read_upsert_points(wp::http::parse_body(b), "");
        }
      },
      which);
  state.SetItemsProcessed(state.iterations() * (which == Bodies::kUpserts ? 500 : 20));
}
void BM_ReadUpsertPlain(benchmark::State& state) {
  read_upserts<true>(state, Bodies::kUpserts);
}
void BM_ReadUpsertDom(benchmark::State& state) {
  read_upserts<false>(state, Bodies::kUpserts);
}
void BM_ReadMultiUpsertPlain(benchmark::State& state) {
  read_upserts<true>(state, Bodies::kMultiUpserts);
}
void BM_ReadMultiUpsertDom(benchmark::State& state) {
  read_upserts<false>(state, Bodies::kMultiUpserts);
}

void BM_CollectionSearch(benchmark::State& state) {
  Fixture& f = fixture();
  auto col = f.engine->collection("sift");
  wp::engine::SearchQuery q;
  q.limit = 10;
  q.ef = 64;
  size_t i = 0;
  for (auto _ : state) {
    q.vector.assign(f.ds.query.row(i), f.ds.query.row(i) + f.ds.query.d);
    benchmark::DoNotOptimize(col->search(q));
    i = (i + 1) % f.ds.query.n;
  }
}

BENCHMARK(BM_ApiHandleSearch);
BENCHMARK(BM_ApiHandleSearchDom);
BENCHMARK(BM_ApiHandleBatch10);
BENCHMARK(BM_ApiHandleBatch10Dom);
BENCHMARK(BM_ApiHandleFilteredSearch);
BENCHMARK(BM_ApiHandleFilteredSearchDom);
BENCHMARK(BM_ReadPlainSearch);
BENCHMARK(BM_ReadPlainSearchFractions);
BENCHMARK(BM_ParseSearchBody);
BENCHMARK(BM_ReadUpsertPlain);
BENCHMARK(BM_ReadUpsertDom);
BENCHMARK(BM_ReadMultiUpsertPlain);
BENCHMARK(BM_ReadMultiUpsertDom);
BENCHMARK(BM_CollectionSearch);

}  // namespace

BENCHMARK_MAIN();
