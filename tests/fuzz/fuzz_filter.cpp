// libFuzzer target: Qdrant filters (engine/filter.h), parsed from a JSON body as the API reads
// them, then matched against a few payloads.
#include "engine/filter.h"
#include "fuzz_util.h"
#include "http/request_parsing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::json payloads[] = {
      nlohmann::json::object(),
      {{"a", 1}, {"t", "x"}, {"f", 2.5}},
      {{"a", {2, 3}}, {"o", {{"b", true}, {"l", {{{"k", "v"}}, {{"k", 5}}}}}}},
      {{"geo", {{"lat", 52.5}, {"lon", 13.4}}}, {"n", nullptr}}};
  wp::fuzz::expect_clean([&] {
    const nlohmann::json body = wp::http::parse_body(wp::fuzz::as_string(data, size));
    const wp::engine::Filter f = wp::http::get_filter(body, "");
    for (uint64_t i = 0; i < 4; ++i) {
      (void)f.matches(wp::engine::PointId::number(i), payloads[i]);
    }
  });
  return 0;
}
