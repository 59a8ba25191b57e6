/**
 * @file json_path.cpp
 * Parsing Qdrant key paths ("a.b", "a[].b", "a[2]", a."b.c").
 */
#include "engine/json_path.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <utility>

#include "engine/json_value.h"
#include "index/error.h"

namespace wp::engine {

namespace {

bool is_name_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  // Bytes >= 0x80 belong to UTF-8 letters; Qdrant accepts any Unicode alphanumeric character.
  return (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || c == '_' ||
         c == '-' || u >= 0x80;
}

}  // namespace

JsonPath parse_json_path(const nlohmann::json& j, const std::string& where) {
  WP_THROW_IF_NOT(j.is_string(), where, ": expected a key path string such as \"a.b[].c\", got ",
                  show_json(j));
  const std::string& s = j.get_ref<const std::string&>();
  size_t pos = 0;
  const auto fail = [&](const char* what) {
    throw UserError(where + ": invalid key path " + show_json(j) + ": " + what + " at position " +
                    std::to_string(pos));
  };
  const auto read_name = [&]() -> std::string {
    if (pos < s.size() && s[pos] == '"') {
      const size_t close = s.find_first_of("\"\\", pos + 1);
      if (close == std::string::npos || s[close] != '"') fail("unterminated quoted name");
      std::string name = s.substr(pos + 1, close - pos - 1);
      pos = close + 1;
      return name;
    }
    const size_t start = pos;
    while (pos < s.size() && is_name_char(s[pos])) ++pos;
    if (pos == start) fail("expected a name (letters, digits, '_', '-', or text in double quotes)");
    return s.substr(start, pos - start);
  };

  JsonPath path;
  JsonPathStep first;
  first.key = read_name();
  path.push_back(std::move(first));
  while (pos < s.size()) {
    JsonPathStep step;
    if (s[pos] == '.') {
      ++pos;
      step.key = read_name();
    } else if (s[pos] == '[') {
      ++pos;
      if (pos < s.size() && s[pos] == ']') {
        step.kind = JsonPathStep::Kind::kEach;
      } else {
        step.kind = JsonPathStep::Kind::kIndex;
        const size_t start = pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          if (step.index > (std::numeric_limits<size_t>::max() - 9) / 10) fail("index too large");
          step.index = step.index * 10 + static_cast<size_t>(s[pos] - '0');
          ++pos;
        }
        if (pos == start) fail("expected ']' or an array index");
        if (pos >= s.size() || s[pos] != ']') fail("expected ']'");
      }
      ++pos;
    } else {
      fail("expected '.', '[]' or '[index]'");
    }
    path.push_back(std::move(step));
    WP_THROW_IF_NOT(path.size() <= kMaxJsonPathSteps, where, ": key path ", show_json(j),
                    " has more than ", kMaxJsonPathSteps, " steps");
  }
  return path;
}

std::string json_path_text(const JsonPath& path) {
  std::string out;
  for (const JsonPathStep& s : path) {
    if (s.kind == JsonPathStep::Kind::kKey) {
      const bool plain = !s.key.empty() && std::all_of(s.key.begin(), s.key.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
               static_cast<unsigned char>(c) >= 0x80;
      });
      if (!out.empty()) out += '.';
      out += plain ? s.key : "\"" + s.key + "\"";
    } else if (s.kind == JsonPathStep::Kind::kIndex) {
      out += "[" + std::to_string(s.index) + "]";
    } else {
      out += "[]";
    }
  }
  return out;
}

}  // namespace wp::engine
