#pragma once
/**
 * @file payload_edit.h
 * Qdrant's payload edits on one point's payload (an object): set (merge, optionally at a key
 * path), delete keys. Overwrite and clear need no helper (the payload becomes the given object or
 * {}). Collection::edit_payloads applies an edit to the selected points durably.
 *
 * Semantics follow Qdrant's (lib/segment/src/json_path, "set payload" / "delete payload keys"):
 *  - set without key: every member of `values` replaces the member of that name.
 *  - set with key "a.b": the members are merged into the object at a.b, which is created (and a
 *    non-object value there replaced) as needed; "[n]" descends into an existing element only,
 *    "[]" into every element of an existing array.
 *  - delete key "a.b": removes member b of every object a reaches; "a[1]" removes that element,
 *    "a[]" every element; a path that reaches nothing is no error.
 */
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/json_path.h"

namespace wp::engine {

/// Merges the members of the object `values` into `payload` (at `key` when given).
/// @throws wp::UserError "payload: ... nested deeper than 128 levels" when the result would be
///   deeper than kMaxJsonDepth (no such payload is ever stored).
void set_payload_values(nlohmann::json& payload, const nlohmann::json& values, const JsonPath* key);

/// Removes what each key path reaches from `payload`.
void delete_payload_keys(nlohmann::json& payload, const std::vector<JsonPath>& keys);

/// Nesting depth of objects and arrays in `v` (a scalar: 0); `v` is at most kMaxJsonDepth plus
/// kMaxJsonPathSteps deep (a parsed body, merged at a parsed path).
size_t json_depth(const nlohmann::json& v);

}  // namespace wp::engine
