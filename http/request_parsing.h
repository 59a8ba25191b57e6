#pragma once
/**
 * @file request_parsing.h
 * Reading fields of Qdrant request bodies with errors that name the field and the expected value.
 */
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/filter.h"
#include "engine/index_request.h"
#include "engine/point_id.h"

namespace wp::http {

using nlohmann::json;

/// Which payload keys to return: all, none, or a subset.
struct PayloadSelector {
  bool enabled = false;
  std::vector<std::string> include;  ///< empty: all keys
  std::vector<std::string> exclude;
  /// The payload to return for `full` (null when disabled).
  json apply(const json& full) const;
};

/// The body as a JSON object; throws UserError("Format error in JSON body: ...") otherwise.
json parse_body(const std::string& body, bool allow_empty = false);

/// A float vector of finite values; `dim` 0 accepts any length.
std::vector<float> get_vector(const json& j, const std::string& field);
using engine::get_count;  // engine/index_request.h: shared with the index request
/// An optional boolean, `def` when absent or null.
bool get_bool(const json& obj, const char* key, const std::string& where, bool def);
/// with_payload: bool, list of keys, {"include": [...]} or {"exclude": [...]}.
PayloadSelector get_payload_selector(const json& obj, const std::string& where, bool def);
/// with_vector: bool (a list of vector names is accepted as true).
bool get_with_vector(const json& obj, const std::string& where, bool def);
/// A list of point ids.
std::vector<engine::PointId> get_ids(const json& j, const std::string& field);
/// An optional filter (absent or null: the empty filter).
engine::Filter get_filter(const json& obj, const std::string& where);
/// An optional finite float.
std::optional<float> get_optional_float(const json& obj, const char* key, const std::string& where);

using engine::join;

}  // namespace wp::http
