// libFuzzer target: a collection's configuration, from a create body (Qdrant's PUT
// /collections/{name}) and from the stored form read back from disk at open.
#include "engine/collection_config.h"
#include "fuzz_util.h"
#include "http/qdrant_wire.h"
#include "http/request_parsing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wp::fuzz::expect_clean([&] {
    const nlohmann::json body = wp::http::parse_body(wp::fuzz::as_string(data, size));
    wp::fuzz::expect_clean([&] { (void)wp::http::collection_config_from_qdrant(body); });
    (void)wp::engine::CollectionConfig::from_stored(body);
  });
  return 0;
}
