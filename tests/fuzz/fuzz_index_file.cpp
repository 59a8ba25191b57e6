// libFuzzer target: the index file loaders, every type tag (flat, hnsw, graph, lsh, and the hash
// model), then a search on what loaded (a loader that accepts an inconsistent graph would crash
// there). Input: a tag byte, then the payload; the target wraps it in a valid container (magic,
// version, length, XXH3 checksum) so that the fuzzer reaches the payload parsers rather than the
// checksum.
#include <xxhash.h>

#include <cstring>
#include <vector>

#include "fuzz_util.h"
#include "index/hash_model.h"
#include "index/index.h"
#include "index/index_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t tag = 1 + data[0] % 5;
  const std::string payload = wp::fuzz::as_string(data + 1, size - 1);
  std::string file(32, '\0');
  std::memcpy(&file[0], "WAYPOINT", 8);
  const uint32_t version = wp::index::kIndexFormatVersion;
  const uint64_t length = payload.size();
  const uint64_t checksum = XXH3_64bits(payload.data(), payload.size());
  std::memcpy(&file[8], &version, 4);
  std::memcpy(&file[12], &tag, 4);
  std::memcpy(&file[16], &length, 8);
  std::memcpy(&file[24], &checksum, 8);
  file += payload;
  const std::string& path = wp::fuzz::file_with(file, "index.wp");
  wp::fuzz::expect_clean([&] {
    if (tag == static_cast<uint32_t>(wp::index::IndexType::kHashModel)) {
      (void)wp::index::HashModel::load(path);
      return;
    }
    const auto idx = wp::index::load_index(path);
    if (idx->dim() == 0 || idx->dim() > 4096) return;
    std::vector<float> q(idx->dim(), 0.5f);
    wp::index::label_t labels[5];
    float distances[5];
    idx->search_one(q.data(), 5, wp::index::SearchParams{}, labels, distances);
  });
  return 0;
}
