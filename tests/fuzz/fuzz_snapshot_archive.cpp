// libFuzzer target: the snapshot reader (engine/snapshot_archive.h), which reads uploaded and
// file:// collection snapshots and the storage snapshots `serve --storage-snapshot` recovers:
// tar headers, member names, sizes, padding, the manifest, and a storage snapshot's listing of
// its collections and aliases. Input: the file, read as both kinds. Members go to memory (a
// bounded sink), not to disk.
#include <set>

#include "engine/snapshot_archive.h"
#include "fuzz_util.h"

namespace {
struct CountingSink : wp::engine::snapshot::Sink {
  explicit CountingSink(wp::engine::snapshot::Kind kind) : kind(kind) {}
  wp::engine::snapshot::Kind kind;
  size_t bytes = 0;
  std::set<std::string> folders;  ///< of a storage snapshot's members
  void begin(const std::string& name, uint64_t) override {
    if (!wp::engine::snapshot::allowed_member(name, kind)) {
      __builtin_trap();  // the reader must refuse it
    }
    if (kind == wp::engine::snapshot::Kind::kStorage)
      folders.insert(name.substr(0, name.find('/')));
  }
  void write(const char*, size_t n) override { bytes += n; }
  void end() override {}
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (const auto kind :
       {wp::engine::snapshot::Kind::kCollection, wp::engine::snapshot::Kind::kStorage}) {
    wp::fuzz::expect_clean([&] {
      CountingSink sink(kind);
      wp::engine::snapshot::ViewStream in(bytes);
      const nlohmann::json manifest = wp::engine::snapshot::read_archive(in, sink, kind);
      if (sink.bytes > size) __builtin_trap();  // nothing comes out that was not in the file
      if (kind == wp::engine::snapshot::Kind::kStorage) {
        const auto listing = wp::engine::snapshot::storage_listing(manifest, sink.folders);
        if (listing.collections.size() != sink.folders.size()) __builtin_trap();
      }
    });
  }
  return 0;
}
