/**
 * @file json_value.cpp
 * Showing JSON values in error messages, and reading them as int64.
 */
#include "engine/json_value.h"

#include <charconv>
#include <cstdlib>
#include <ctime>

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

size_t json_heap_bytes(const json& j) {
  // A heap string owns its buffer when longer than the small-string capacity (15 in libstdc++).
  auto string_bytes = [](const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; };
  switch (j.type()) {
    case json::value_t::object: {
      // The map itself, then per element a red-black node (4 words) holding key and value.
      size_t n = sizeof(json::object_t);
      for (const auto& [key, value] : j.get_ref<const json::object_t&>()) {
        n += 4 * sizeof(void*) + sizeof(std::pair<const std::string, json>) + string_bytes(key) +
             json_heap_bytes(value);
      }
      return n;
    }
    case json::value_t::array: {
      const auto& a = j.get_ref<const json::array_t&>();
      size_t n = sizeof(json::array_t) + a.capacity() * sizeof(json);
      for (const json& e : a) n += json_heap_bytes(e);
      return n;
    }
    case json::value_t::string:
      return sizeof(std::string) + string_bytes(j.get_ref<const std::string&>());
    case json::value_t::binary:
      return sizeof(json::binary_t) + j.get_binary().capacity();
    default:
      return 0;
  }
}

namespace {

/// Days from 1970-01-01 to the civil date (proleptic Gregorian; H. Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

/// The `n` digits at `pos` of `s` as a number, or -1.
int digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::optional<int64_t> parse_datetime(std::string_view s) {
  const int y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || s.size() < 10 || s[4] != '-' || s[7] != '-') {
    return std::nullopt;
  }
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > kDays[mo - 1] + (mo == 2 && leap)) return std::nullopt;
  int64_t us = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) *
               int64_t{86400000000};
  if (s.size() == 10) return us;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return std::nullopt;
  const int h = digits(s, 11, 2), mi = digits(s, 14, 2);
  if (h < 0 || h > 23 || mi < 0 || mi > 59 || s.size() < 16 || s[13] != ':') return std::nullopt;
  us += (int64_t{h} * 3600 + mi * 60) * 1000000;
  size_t pos = 16;
  if (pos < s.size() && s[pos] == ':') {
    const int sec = digits(s, pos + 1, 2);
    if (sec < 0 || sec > 60) return std::nullopt;  // 60: a leap second
    us += int64_t{sec} * 1000000;
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {
      size_t n = 0;
      int64_t frac = 0;
      for (++pos; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, ++n) {
        if (n < 6) frac = frac * 10 + (s[pos] - '0');
      }
      if (n == 0) return std::nullopt;
      for (size_t k = n; k < 6; ++k) frac *= 10;
      us += frac;
    }
  }
  if (pos == s.size()) return us;  // no zone: UTC
  if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) return us;
  if (s[pos] != '+' && s[pos] != '-') return std::nullopt;
  const int oh = digits(s, pos + 1, 2);
  const size_t colon = pos + 3 < s.size() && s[pos + 3] == ':';
  const int om = digits(s, pos + 3 + colon, 2);
  if (oh < 0 || oh > 23 || om < 0 || om > 59 || pos + 5 + colon != s.size()) return std::nullopt;
  const int64_t offset = (int64_t{oh} * 3600 + om * 60) * 1000000;
  return s[pos] == '+' ? us - offset : us + offset;
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace wp::engine
