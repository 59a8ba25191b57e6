// libFuzzer target: the point store's record decoding (engine/point_store.h), the bytes RocksDB
// hands back at open and on every read: a key, then the value. Input: key length (1 byte), key,
// value.
#include "engine/point_store.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t key_len = std::min<size_t>(data[0], size - 1);
  const std::string key = wp::fuzz::as_string(data + 1, key_len);
  const std::string value = wp::fuzz::as_string(data + 1 + key_len, size - 1 - key_len);
  wp::fuzz::expect_clean([&] { (void)wp::engine::PointStore::decode(key, value); });
  wp::fuzz::expect_clean([&] { (void)wp::engine::PointId::from_key(key); });
  return 0;
}
