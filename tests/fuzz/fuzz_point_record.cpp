// libFuzzer target: the point store's record decoding (engine/point_store.h), the bytes RocksDB
// hands back at open and on every read: a key, then the value. Input: key length (1 byte), key,
// value. Opening a collection reads the records in place (view, check_payload); that reading
// must accept what decode accepts (bar vectors named twice, which the collection refuses) and
// read the same payload; a record's sparse vectors (after its dense ones) are read alike.
#include <cstdlib>
#include <optional>
#include <set>

#include "engine/packed_payload.h"
#include "engine/point_store.h"
#include "fuzz_util.h"

using wp::engine::PointStore;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t key_len = std::min<size_t>(data[0], size - 1);
  const std::string key = wp::fuzz::as_string(data + 1, key_len);
  const std::string value = wp::fuzz::as_string(data + 1 + key_len, size - 1 - key_len);
  std::optional<PointStore::Record> decoded;
  wp::fuzz::expect_clean([&] { decoded = PointStore::decode(key, value); });
  wp::fuzz::expect_clean([&] { (void)wp::engine::PointId::from_key(key); });
  std::optional<std::string> payload;
  bool named_twice = false;
  wp::fuzz::expect_clean([&] {
    const PointStore::RecordView v = PointStore::view(key, value);
    PointStore::check_payload(v.payload);
    (void)v.id();
    std::set<std::string> names;
    v.vectors([&](std::string_view name, uint32_t, const char*) {
      named_twice = named_twice || !names.emplace(name).second;
    });
    // Sparse vectors: read as decode reads them (sorted indices, finite values), their names
    // unique among all the record's vectors.
    v.sparse([&](std::string_view name, uint32_t n, const char* indices, const char* values) {
      named_twice = named_twice || !names.emplace(name).second;
      (void)PointStore::read_sparse(n, indices, values);
    });
    payload = std::string(v.payload);
  });
  if (decoded.has_value() != (payload && !named_twice)) std::abort();
  // Compared as MessagePack: a NaN is unequal to itself as JSON.
  using nlohmann::json;
  if (decoded && json::to_msgpack(wp::engine::PackedPayload::from_msgpack(*payload).unpack()) !=
                     json::to_msgpack(decoded->payload)) {
    std::abort();
  }
  return 0;
}
