/**
 * @file json_value.cpp
 * Showing JSON values in error messages, and reading them as int64.
 */
#include "engine/json_value.h"

#include <charconv>
#include <cstdlib>

#include <limits>

#include "index/error.h"

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

std::string show_text(std::string_view s, size_t max) {
  std::string out;
  // Sanitise only as much as can be shown (a few bytes more tell whether to cut).
  for (size_t i = 0; i < s.size() && out.size() <= max;) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    // The length of a well-formed UTF-8 sequence starting at i, or 0.
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    if (len > 1 && (i + len > s.size() || c == 0xC0 || c == 0xC1 || c > 0xF4)) len = 0;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) len = 0;
    }
    out += len ? s.substr(i, len) : std::string_view("\xEF\xBF\xBD");
    i += len ? len : 1;
  }
  if (out.size() <= max) return out;
  size_t cut = max > 3 ? max - 3 : 0;
  while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
  out.resize(cut);
  return out + "...";
}

void check_json_depth(std::string_view text, const std::string& what) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw UserError(what + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) +
                        " levels");
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

json float_json(float f) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, f);
  return json(std::strtod(std::string(buf, r.ptr).c_str(), nullptr));
}

}  // namespace wp::engine
