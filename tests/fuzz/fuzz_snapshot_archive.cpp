// libFuzzer target: the snapshot reader (engine/snapshot_archive.h), which reads uploaded and
// file:// snapshots: tar headers, member names, sizes, padding, the manifest. Input: the file.
// Members go to memory (a bounded sink), not to disk.
#include "engine/snapshot_archive.h"
#include "fuzz_util.h"

namespace {
struct CountingSink : wp::engine::snapshot::Sink {
  size_t bytes = 0;
  void begin(const std::string& name, uint64_t) override {
    if (!wp::engine::snapshot::allowed_member(name)) __builtin_trap();  // the reader must refuse it
  }
  void write(const char*, size_t n) override { bytes += n; }
  void end() override {}
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wp::fuzz::expect_clean([&] {
    CountingSink sink;
    wp::engine::snapshot::ViewStream in(
        std::string_view(reinterpret_cast<const char*>(data), size));
    (void)wp::engine::snapshot::read_archive(in, sink);
    if (sink.bytes > size) __builtin_trap();  // nothing comes out that was not in the file
  });
  return 0;
}
