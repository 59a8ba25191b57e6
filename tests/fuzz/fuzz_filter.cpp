// libFuzzer target: Qdrant filters (engine/filter.h), parsed from a JSON body as the API reads
// them ({"filter": ...}), then matched against a few payloads and the body's own "payload" (an
// object), each as a JSON tree and as the packed bytes a collection holds: the two answers must
// be the same (a difference aborts, and libFuzzer keeps the input).
#include <cstdio>
#include <cstdlib>

#include "engine/filter.h"
#include "fuzz_util.h"
#include "http/request_parsing.h"

namespace {

void match_both(const wp::engine::Filter& f, const wp::engine::PointId& id,
                const nlohmann::json& payload) {
  const bool tree = f.matches(id, payload);
  if (f.matches(id, wp::engine::PackedPayload(payload)) != tree) {
    std::fprintf(stderr, "packed payload answered %d, its tree %d: %s\n", !tree, tree,
                 payload.dump().substr(0, 4000).c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::json payloads[] = {
      nlohmann::json::object(),
      {{"a", 1}, {"t", "x"}, {"f", 2.5}},
      {{"a", {2, 3}}, {"o", {{"b", true}, {"l", {{{"k", "v"}}, {{"k", 5}}}}}}},
      {{"geo", {{"lat", 52.5}, {"lon", 13.4}}}, {"n", nullptr}}};
  wp::fuzz::expect_clean([&] {
    const nlohmann::json body = wp::http::parse_body(wp::fuzz::as_string(data, size));
    const wp::engine::Filter f = wp::http::get_filter(body, "");
    for (uint64_t i = 0; i < 4; ++i) match_both(f, wp::engine::PointId::number(i), payloads[i]);
    const auto own = body.find("payload");
    if (own != body.end() && own->is_object()) match_both(f, wp::engine::PointId::number(4), *own);
  });
  return 0;
}
