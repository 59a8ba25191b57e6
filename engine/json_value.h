#pragma once
/**
 * @file json_value.h
 * Helpers on single JSON values shared by the filter and its key paths: showing a value in an
 * error message, and reading a number as an int64 the way Qdrant does.
 */
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace wp::engine {

/**
 * The value as compact JSON text for an error message: at most 80 characters, cut with "..."
 * at a UTF-8 character boundary, with invalid UTF-8 in strings replaced. Members and elements are
 * shown only until that budget is passed, so a large or deeply nested request costs no more to
 * show than a small one.
 */
std::string show_json(const nlohmann::json& j);

/**
 * Reads `v` as an int64 when it is an integer that fits (Qdrant's `as_i64`) and stores it in
 * `*out`. Returns false, leaving `*out` as it was, for floats (3.0 included), integers beyond
 * int64 and non-numbers.
 */
bool json_as_int64(const nlohmann::json& v, int64_t* out);

/**
 * A JSON tree seen through the interface MsgValue (packed_payload.h) gives packed bytes: the
 * filter's conditions and key paths are written once for both (json_path.h). The members named
 * as nlohmann::json's answer as those do; string(), number() and boolean() read a value of that
 * type (undefined for another).
 */
class JsonRef {
 public:
  explicit JsonRef(const nlohmann::json& j) : j_(&j) {}
  const nlohmann::json& get() const { return *j_; }

  bool is_null() const { return j_->is_null(); }
  bool is_boolean() const { return j_->is_boolean(); }
  bool is_string() const { return j_->is_string(); }
  bool is_number() const { return j_->is_number(); }
  bool is_number_float() const { return j_->is_number_float(); }
  bool is_array() const { return j_->is_array(); }
  bool is_object() const { return j_->is_object(); }
  bool boolean() const { return j_->get<bool>(); }
  std::string_view string() const { return j_->get_ref<const std::string&>(); }
  double number() const { return j_->get<double>(); }
  bool as_int64(int64_t* out) const { return json_as_int64(*j_, out); }
  size_t size() const { return j_->size(); }
  bool empty() const { return j_->empty(); }

  std::optional<JsonRef> member(std::string_view key) const {
    const auto it = j_->find(key);
    if (it == j_->end()) return std::nullopt;
    return JsonRef(*it);
  }
  std::optional<JsonRef> element(size_t i) const {
    if (i >= j_->size()) return std::nullopt;
    return JsonRef((*j_)[i]);
  }
  template <typename F>
  bool any_element(const F& f) const {
    if (!j_->is_array()) return false;
    for (const nlohmann::json& e : *j_) {
      if (f(JsonRef(e))) return true;
    }
    return false;
  }

 private:
  const nlohmann::json* j_;
};

/**
 * Text from outside (a path segment, a name, a parser's message quoting the input) for an error
 * message: at most `max` bytes, cut at a UTF-8 character boundary with "...", invalid UTF-8
 * replaced by U+FFFD, unquoted.
 */
std::string show_text(std::string_view s, size_t max = 80);

/// The deepest nesting of objects and arrays that a JSON text from outside may have: 128, the
/// recursion limit of serde_json, which Qdrant's request bodies go through.
inline constexpr size_t kMaxJsonDepth = 128;

/**
 * Throws UserError("<what>: JSON nested deeper than 128 levels") when `text` nests objects and
 * arrays deeper than kMaxJsonDepth. A linear scan before parsing (strings and their escapes are
 * skipped): nothing deeper is ever parsed, so neither the parser nor a later copy, dump or
 * destruction of the value can exhaust the stack, and no such payload is stored.
 */
void check_json_depth(std::string_view text, const std::string& what);

/**
 * An RFC 3339 datetime as microseconds since 1970-01-01T00:00:00Z, the forms Qdrant reads:
 * "2024-05-01T10:49:00Z", "...T10:49:00.123456+02:00", "2024-05-01 10:49:00" and "...T10:49"
 * (no zone: UTC), "2024-05-01" (midnight UTC). nullopt for anything else (a bad field, a day
 * past the month's end, trailing text).
 */
std::optional<int64_t> parse_datetime(std::string_view s);
/// A time as RFC 3339 in UTC, to the second: "2026-12-07T15:45:18Z".
std::string rfc3339(std::chrono::system_clock::time_point t);

/// A float as the JSON number of its shortest decimal form: 1.3f as 1.3, not 1.2999999523...
nlohmann::json float_json(float f);

/// The heap bytes a JSON value owns beyond its own sizeof (its tree's nodes, strings and
/// arrays), as libstdc++ lays out nlohmann's containers: an estimate for memory reports.
size_t json_heap_bytes(const nlohmann::json& j);

}  // namespace wp::engine
