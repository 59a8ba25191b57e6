// libFuzzer target: the plain upsert reader (http/plain_upsert.h, simdjson) against the DOM path
// (parse_body and read_upsert_points). Input: an upsert body. Each body the plain reader takes, the
// DOM path must take too and read to the same points (ids, vectors bit for bit, payloads type for
// type); any difference is reported as a crash.
#include <cstdlib>
#include <iostream>

#include "fuzz_util.h"
#include "plain_upsert_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body = wp::fuzz::as_string(data, size);
  const std::string differs = wp::test::plain_upsert_differs(body);
  if (!differs.empty()) {
    std::cerr << differs << "\nbody: " << body << "\n";
    std::abort();
  }
  return 0;
}
