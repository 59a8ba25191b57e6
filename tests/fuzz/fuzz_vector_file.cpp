// libFuzzer target: the vector file readers (index/vector_io.h): .fvecs, .ivecs, .bvecs, .fbin,
// .u8bin, .ibin. Input: a format byte, then the file's bytes.
#include "fuzz_util.h"
#include "index/vector_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const char* const names[] = {"v.fvecs", "v.ivecs", "v.bvecs",
                                      "v.fbin",  "v.u8bin", "v.ibin"};
  const int format = data[0] % 6;
  const std::string& path =
      wp::fuzz::file_with(wp::fuzz::as_string(data + 1, size - 1), names[format]);
  wp::fuzz::expect_clean([&] {
    switch (format) {
      case 0:
        (void)wp::index::read_fvecs(path);
        break;
      case 1:
        (void)wp::index::read_ivecs(path);
        break;
      case 2:
        (void)wp::index::read_bvecs(path);
        break;
      case 3:
        (void)wp::index::read_fbin(path);
        break;
      case 4:
        (void)wp::index::read_u8bin(path);
        break;
      default:
        (void)wp::index::read_ibin(path);
        break;
    }
  });
  return 0;
}
