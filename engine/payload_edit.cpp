#include "engine/payload_edit.h"

#include <algorithm>

#include "engine/json_value.h"
#include "index/error.h"

namespace wp::engine {

using nlohmann::json;

namespace {

void merge_at(json& v, const JsonPathStep* step, const JsonPathStep* end, const json& values) {
  if (step == end) {
    if (!v.is_object()) v = json::object();
    for (auto it = values.begin(); it != values.end(); ++it) v[it.key()] = it.value();
    return;
  }
  switch (step->kind) {
    case JsonPathStep::Kind::kKey:
      if (!v.is_object()) v = json::object();
      merge_at(v[step->key], step + 1, end, values);
      return;
    case JsonPathStep::Kind::kIndex:
      if (v.is_array() && step->index < v.size()) merge_at(v[step->index], step + 1, end, values);
      return;
    case JsonPathStep::Kind::kEach:
      if (v.is_array()) {
        for (json& e : v) merge_at(e, step + 1, end, values);
      }
      return;
  }
}

void delete_at(json& v, const JsonPathStep* step, const JsonPathStep* end) {
  const bool last = step + 1 == end;
  switch (step->kind) {
    case JsonPathStep::Kind::kKey:
      if (!v.is_object()) return;
      if (last) {
        v.erase(step->key);
      } else if (auto it = v.find(step->key); it != v.end()) {
        delete_at(*it, step + 1, end);
      }
      return;
    case JsonPathStep::Kind::kIndex:
      if (!v.is_array() || step->index >= v.size()) return;
      if (last) {
        v.erase(v.begin() + static_cast<std::ptrdiff_t>(step->index));
      } else {
        delete_at(v[step->index], step + 1, end);
      }
      return;
    case JsonPathStep::Kind::kEach:
      if (!v.is_array()) return;
      if (last) {
        v = json::array();
      } else {
        for (json& e : v) delete_at(e, step + 1, end);
      }
      return;
  }
}

}  // namespace

size_t json_depth(const json& v) {
  if (!v.is_structured()) return 0;
  size_t deepest = 0;
  for (const json& e : v) deepest = std::max(deepest, json_depth(e));
  return deepest + 1;
}

void set_payload_values(json& payload, const json& values, const JsonPath* key) {
  WP_THROW_IF_NOT(values.is_object(), "payload: expected an object, got ", show_json(values));
  json next = payload;
  if (key) {
    merge_at(next, key->data(), key->data() + key->size(), values);
  } else {
    merge_at(next, nullptr, nullptr, values);
  }
  WP_THROW_IF_NOT(json_depth(next) <= kMaxJsonDepth,
                  "payload: the point's payload would be nested deeper than ", kMaxJsonDepth,
                  " levels");
  payload = std::move(next);
}

void delete_payload_keys(json& payload, const std::vector<JsonPath>& keys) {
  for (const JsonPath& k : keys) {
    if (!k.empty()) delete_at(payload, k.data(), k.data() + k.size());
  }
}

}  // namespace wp::engine
