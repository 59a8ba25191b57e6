// libFuzzer target: what a cluster node reads of etcd and of its peers' addresses: a shard map
// (collections/<name>, http/shard_map.h), a local shard collection's name, an endpoint URL. A map
// read back must write out to the same map; a point's shard is within the shard count.
#include <cstdlib>
#include <stdexcept>

#include "fuzz_util.h"
#include "http/http_connection.h"
#include "http/shard_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = wp::fuzz::as_string(data, size);
  try {
    (void)wp::http::parse_endpoint(text);
  } catch (const std::invalid_argument&) {
  }
  std::string uid;
  uint32_t shard = 0;
  if (wp::http::cluster::parse_local_name(text, uid, shard) && uid.size() != 16) std::abort();
  wp::fuzz::expect_clean([&] {
    const nlohmann::json j = nlohmann::json::parse(text);
    const auto m = wp::http::cluster::CollectionMap::from_json("c", j);
    const auto again = wp::http::cluster::CollectionMap::from_json("c", m.to_json());
    if (again.to_json() != m.to_json()) std::abort();
    for (uint64_t id : {0ull, 1ull, 12345678901ull}) {
      if (m.shard_of(wp::engine::PointId::number(id)) >= m.shard_number) std::abort();
    }
    const std::string local = m.local_name(0);
    std::string u;
    uint32_t s = 1;
    if (m.uid.size() == 16 && m.uid.find_first_not_of("0123456789abcdef") == std::string::npos &&
        (!wp::http::cluster::parse_local_name(local, u, s) || u != m.uid || s != 0)) {
      std::abort();
    }
  });
  return 0;
}
