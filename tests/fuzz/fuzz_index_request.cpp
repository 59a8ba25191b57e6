// libFuzzer target: index requests (PUT /waypoint/collections/{name}/vector_index bodies: hnsw,
// flat, lsh, graph, rl, auto with their parameters), parsed against a default configuration.
#include "engine/index_request.h"
#include "fuzz_util.h"
#include "http/request_parsing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wp::fuzz::expect_clean([&] {
    const nlohmann::json body = wp::http::parse_body(wp::fuzz::as_string(data, size));
    (void)wp::engine::IndexRequest::parse(body, wp::index::IndexSpec{});
  });
  return 0;
}
