#pragma once
// Helpers shared by the libFuzzer targets (scripts/fuzz.sh): inputs as strings, as files, and the
// one rule every target checks: bad input is an exception we throw for it, never anything else.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "index/error.h"

namespace wp::fuzz {

inline std::string as_string(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

/// A file of this process's own under /tmp that holds `bytes` (rewritten for every input).
inline const std::string& file_with(const std::string& bytes, const char* name) {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/waypoint-fuzz-XXXXXX";
    const char* d = mkdtemp(tmpl);
    return std::string(d ? d : "/tmp");
  }();
  static std::string path;
  path = dir + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f) {
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  return path;
}

/// Runs `fn`; the errors that bad input is meant to raise (our wp::Error family, nlohmann's
/// parse and type errors reached through our checks) are expected; anything else propagates
/// and libFuzzer reports it as a crash.
template <class Fn>
void expect_clean(Fn&& fn) {
  try {
    fn();
  } catch (const wp::Error&) {
  } catch (const nlohmann::json::exception&) {
  }
}

}  // namespace wp::fuzz
