/**
 * @file json_value.cpp
 * Showing JSON values in error messages, and reading them as int64.
 */
#include "engine/json_value.h"

#include <charconv>
#include <cstdlib>

#include <limits>

namespace wp::engine {

using json = nlohmann::json;

namespace {

constexpr size_t kMaxShown = 80;

/// Appends `j` as JSON text to `out`, stopping soon after `out` reaches `budget` characters, so
/// that neither the length nor the recursion depth depends on the size of `j`.
void append_shown(const json& j, std::string* out, size_t budget) {
  if (out->size() >= budget) return;
  const auto text = [](const json& v) {
    return v.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  if (j.is_object()) {
    *out += '{';
    for (auto it = j.begin(); it != j.end() && out->size() < budget; ++it) {
      if (it != j.begin()) *out += ',';
      *out += text(json(it.key())) + ':';
      append_shown(it.value(), out, budget);
    }
    *out += '}';
  } else if (j.is_array()) {
    *out += '[';
    for (auto it = j.begin(); it != j.end() && out->size() < budget; ++it) {
      if (it != j.begin()) *out += ',';
      append_shown(*it, out, budget);
    }
    *out += ']';
  } else {
    *out += text(j);
  }
}

}  // namespace

std::string show_json(const json& j) {
  std::string s;
  append_shown(j, &s, kMaxShown + 1);
  if (s.size() > kMaxShown) {
    size_t cut = kMaxShown - 3;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s.resize(cut);
    s += "...";
  }
  return s;
}

bool json_as_int64(const json& v, int64_t* out) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    *out = v.get<int64_t>();
    return true;
  }
  return false;
}

json float_json(float f) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, f);
  return json(std::strtod(std::string(buf, r.ptr).c_str(), nullptr));
}

}  // namespace wp::engine
