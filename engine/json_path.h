#pragma once
/**
 * @file json_path.h
 * Key paths into a point's payload, as Qdrant's conditions give them in "key" ("address.city",
 * "tags[]", "items[2].price"), and the walk that visits every payload value a path reaches.
 *
 * Semantics follow Qdrant's JSON path reader (lib/segment/src/json_path): a path resolves to
 * zero or more values; a name step descends objects only, "[]" visits every element of an array,
 * "[n]" one element; a step that does not apply (a missing member, an index past the end, a name
 * on an array) yields no value rather than an error.
 */
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/json_value.h"

namespace wp::engine {

/// One step of a key path: an object member, one array element, or every array element.
struct JsonPathStep {
  enum class Kind : uint8_t {
    kKey,    ///< the object member named `key`
    kIndex,  ///< the array element at `index` ("[2]")
    kEach,   ///< every array element ("[]")
  };
  Kind kind = Kind::kKey;
  std::string key;
  size_t index = 0;
};

/// A parsed key path: its steps in order, never empty (it starts with a name).
using JsonPath = std::vector<JsonPathStep>;

/// Longer key paths are rejected: the walk recurses once per step.
inline constexpr size_t kMaxJsonPathSteps = 64;

/**
 * Parses a condition's "key" into a path.
 *
 * Syntax (Qdrant's): name ( "." name | "[]" | "[" digits "]" )*, where a name is letters, digits,
 * '_', '-' and any non-ASCII (UTF-8) character, or any text in double quotes without '"' or '\'
 * (a."b.c" is the member "b.c" of a). Examples: "city", "address.city", "tags[]", "items[].price",
 * "matrix[0][1]".
 *
 * @param j      the "key" value of the request
 * @param where  its place in the request, for messages ("filter.must[0].key")
 * @throws wp::UserError  "<where>: expected a key path string such as \"a.b[].c\", got <j>" when
 *   `j` is not a string; "<where>: invalid key path <j>: <what> at position <n>" on a syntax error
 *   (an empty or missing name, an unterminated quoted name, a bad or too large index, a stray
 *   character); "<where>: key path <j> has more than 64 steps" past kMaxJsonPathSteps.
 */
JsonPath parse_json_path(const nlohmann::json& j, const std::string& where);

/// A key path as requests write it, one spelling for each path (a."b" and a.b are both "a.b"):
/// names joined by '.', a name of other characters than letters, digits, '_', '-' and UTF-8 in
/// double quotes; "[]" and "[i]" after.
std::string json_path_text(const JsonPath& path);

namespace detail {

template <typename V, typename F>
bool any_value_at(const JsonPathStep* step, const JsonPathStep* end, const V& v, const F& f) {
  if (step == end) return f(v);
  switch (step->kind) {
    case JsonPathStep::Kind::kKey: {
      if (!v.is_object()) return false;
      const std::optional<V> m = v.member(step->key);
      return m && any_value_at(step + 1, end, *m, f);
    }
    case JsonPathStep::Kind::kIndex: {
      if (!v.is_array()) return false;
      const std::optional<V> e = v.element(step->index);
      return e && any_value_at(step + 1, end, *e, f);
    }
    case JsonPathStep::Kind::kEach:
      return v.any_element([&](const V& e) { return any_value_at(step + 1, end, e, f); });
  }
  return false;
}

}  // namespace detail

/**
 * Walks `payload` along `path` and calls `pred(const V&)` on each value reached, in document
 * order, stopping at the first call that returns true. Returns whether one did: false when the
 * path reaches no value at all. A value reached that is itself an array is passed whole (its
 * elements are visited only through a "[]" step). V is a view of a payload value, a tree's
 * (JsonRef, json_value.h) or packed bytes' (MsgValue, packed_payload.h). Allocates nothing, so it
 * suits the per-point match loop; it throws only what `pred` throws.
 */
template <typename V, typename Pred>
bool any_value_at(const JsonPath& path, const V& payload, const Pred& pred) {
  return detail::any_value_at(path.data(), path.data() + path.size(), payload, pred);
}

/// The same over a JSON tree, calling `pred(const nlohmann::json&)`.
template <typename Pred>
bool any_value_at(const JsonPath& path, const nlohmann::json& payload, const Pred& pred) {
  return any_value_at(path, JsonRef(payload), [&](const JsonRef& v) { return pred(v.get()); });
}

}  // namespace wp::engine
