#include "engine/json_fields.h"

#include <cmath>

#include "engine/json_value.h"
#include "index/error.h"

namespace wp::engine {

using nlohmann::json;

namespace {
bool absent(const json& obj, const char* key) {
  return !obj.contains(key) || obj[key].is_null();
}
}  // namespace

std::string join(const std::string& where, const std::string& key) {
  return where.empty() ? key : where + "." + key;
}

void check_fields(const json& obj, const std::string& where,
                  std::initializer_list<const char*> known) {
  for (const auto& [key, value] : obj.items()) {
    bool ok = false;
    std::string list;
    for (const char* k : known) {
      ok = ok || key == k;
      list += (list.empty() ? "" : ", ") + std::string(k);
    }
    WP_THROW_IF_NOT(ok, join(where, show_text(key)), ": unknown field (expected ", list, ")");
  }
}

size_t get_count(const json& obj, const char* key, const std::string& where, size_t def, size_t lo,
                 size_t hi) {
  if (absent(obj, key)) return def;
  const json& v = obj[key];
  const std::string field = join(where, key);
  WP_THROW_IF_NOT(v.is_number_integer(), field, ": expected an integer, got ", show_json(v));
  const bool negative = v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0;
  const uint64_t x = negative ? 0 : v.get<uint64_t>();
  WP_THROW_IF_NOT(!negative && x >= lo && x <= hi, field, ": expected an integer in ", lo, "..", hi,
                  ", got ", show_json(v));
  return static_cast<size_t>(x);
}

size_t get_count(const json& obj, const index::ParamRange& range, const std::string& where,
                 size_t def) {
  return get_count(obj, range.key, where, def, static_cast<size_t>(range.lo),
                   static_cast<size_t>(range.hi));
}

double get_number(const json& obj, const char* key, const std::string& where, double def, double lo,
                  double hi) {
  if (absent(obj, key)) return def;
  const json& v = obj[key];
  const std::string field = join(where, key);
  WP_THROW_IF_NOT(v.is_number(), field, ": expected a number, got ", show_json(v));
  const double x = v.get<double>();
  WP_THROW_IF_NOT(std::isfinite(x) && x >= lo && x <= hi, field, ": expected a number in [", lo,
                  ", ", hi, "], got ", x);
  return x;
}

double get_number(const json& obj, const index::ParamRange& range, const std::string& where,
                  double def) {
  return get_number(obj, range.key, where, def, range.lo, range.hi);
}

uint64_t stored_count(const json& j, const char* key, uint64_t hi) {
  const json& v = j.at(key);
  WP_THROW_INTERNAL_IF_NOT(v.is_number_unsigned() && v.get<uint64_t>() <= hi, key,
                           ": expected an unsigned integer up to ", hi, ", got ", show_json(v));
  return v.get<uint64_t>();
}

bool get_bool(const json& obj, const char* key, const std::string& where, bool def) {
  if (absent(obj, key)) return def;
  WP_THROW_IF_NOT(obj[key].is_boolean(), join(where, key), ": expected true or false, got ",
                  show_json(obj[key]));
  return obj[key].get<bool>();
}

std::string get_string(const json& obj, const char* key, const std::string& where,
                       const std::string& def) {
  if (absent(obj, key)) return def;
  WP_THROW_IF_NOT(obj[key].is_string(), join(where, key), ": expected a string, got ",
                  show_json(obj[key]));
  return obj[key].get<std::string>();
}

std::optional<float> get_optional_float(const json& obj, const char* key,
                                        const std::string& where) {
  if (absent(obj, key)) return std::nullopt;
  WP_THROW_IF_NOT(obj[key].is_number(), join(where, key), ": expected a number, got ",
                  show_json(obj[key]));
  const float f = obj[key].get<float>();
  WP_THROW_IF_NOT(std::isfinite(f), join(where, key), ": expected a finite number");
  return f;
}

std::vector<std::string> get_string_list(const json& j, const std::string& field) {
  WP_THROW_IF_NOT(j.is_array(), field, ": expected an array of strings, got ", show_json(j));
  std::vector<std::string> out;
  for (size_t i = 0; i < j.size(); ++i) {
    WP_THROW_IF_NOT(j[i].is_string(), field, "[", i, "]: expected a string, got ", show_json(j[i]));
    out.push_back(j[i].get<std::string>());
  }
  return out;
}

}  // namespace wp::engine
