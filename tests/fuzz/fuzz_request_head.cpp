// libFuzzer target: the server's reader of simple request heads (http/request_head.h) against
// Beast's request parser. Input: the bytes a connection's first read gives. Every head
// read_simple_head takes must read alike in Beast's parser (request_head_check.h); a difference,
// or a read past the input (ASan), is reported as a crash.
#include <cstdlib>
#include <iostream>

#include "fuzz_util.h"
#include "request_head_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes on the heap: a read past them is ASan's to see.
  const std::string bytes = wp::fuzz::as_string(data, size);
  const std::string differs = wp::test::request_head_differs(bytes);
  if (!differs.empty()) {
    std::cerr << "read_simple_head and Beast differ: " << differs << "\n";
    std::abort();
  }
  return 0;
}
