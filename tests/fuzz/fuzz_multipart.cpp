// libFuzzer target: the multipart/form-data reader of snapshot uploads (http/multipart.h).
// Input: the Content-Type header up to the first newline, then the body.
#include <string_view>

#include "fuzz_util.h"
#include "http/multipart.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  const size_t nl = all.find('\n');
  const std::string_view type = all.substr(0, nl);
  const std::string_view body =
      nl == std::string_view::npos ? std::string_view() : all.substr(nl + 1);
  wp::fuzz::expect_clean([&] {
    const std::string_view part = wp::http::multipart_field(body, type, "snapshot");
    // The part is a view into the body, never past it.
    if (part.data() < body.data() || part.data() + part.size() > body.data() + body.size()) {
      __builtin_trap();
    }
  });
  return 0;
}
