#pragma once
/**
 * @file json_fields.h
 * The readers of JSON object fields that every request body goes through (index requests, the
 * collection's stored form, the Qdrant request bodies of http/): each checks the field's type and
 * range and throws a UserError that names the field by its path in the request
 * ("searches[2].params.hnsw_ef: expected an integer in 1..100000, got 0"). A field that is absent
 * or null takes its default.
 */
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "index/param_range.h"

namespace wp::engine {

/// The path of a member in messages: join("searches[2]", "filter") == "searches[2].filter",
/// join("", "limit") == "limit".
std::string join(const std::string& where, const std::string& key);

/// Refuses a member of object `obj` not among `known` (UserError naming it and listing them).
void check_fields(const nlohmann::json& obj, const std::string& where,
                  std::initializer_list<const char*> known);
/// An integer within [lo, hi].
size_t get_count(const nlohmann::json& obj, const char* key, const std::string& where, size_t def,
                 size_t lo, size_t hi);
/// An integer parameter: obj[range.key], within the range.
size_t get_count(const nlohmann::json& obj, const index::ParamRange& range,
                 const std::string& where, size_t def);
/// A finite number within [lo, hi].
double get_number(const nlohmann::json& obj, const char* key, const std::string& where, double def,
                  double lo, double hi);
/// A numeric parameter: obj[range.key], within the range.
double get_number(const nlohmann::json& obj, const index::ParamRange& range,
                  const std::string& where, double def);
/// true or false.
bool get_bool(const nlohmann::json& obj, const char* key, const std::string& where, bool def);
/// A string.
std::string get_string(const nlohmann::json& obj, const char* key, const std::string& where,
                       const std::string& def);
/// A finite number as a float; nullopt when absent or null.
std::optional<float> get_optional_float(const nlohmann::json& obj, const char* key,
                                        const std::string& where);
/// An unsigned integer `j[key]` of something we stored ourselves (a collection's stored form, an
/// index's meta file, a shard map in etcd, a peer's answer), at most `hi`. A damaged one throws
/// InternalError naming the key: a float or a negative number read by nlohmann's get<uint64_t>
/// would convert with undefined behaviour (found by fuzz_collection_config, fuzz_cluster_map).
uint64_t stored_count(const nlohmann::json& j, const char* key, uint64_t hi = UINT64_MAX);
/// `j` itself as an array of strings (`field` is its path).
std::vector<std::string> get_string_list(const nlohmann::json& j, const std::string& field);

}  // namespace wp::engine
