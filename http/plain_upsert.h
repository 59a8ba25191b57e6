#pragma once
/**
 * @file plain_upsert.h
 * The upsert bodies clients send, read without nlohmann's DOM (simdjson's tape, plain_json.h):
 *
 *   PUT .../points  {"points": [{"id": id, "vector": v, "payload": {...}}, ...]}
 *   PUT .../points  {"batch": {"ids": [...], "vectors": [v, ...] | {"name": [v, ...]},
 *                              "payloads": [{...}, ...]}}
 *
 * where an id is an unsigned integer or a UUID string, and a point's vectors `v` are a vector (an
 * array of numbers), a multivector (an array of such arrays) or an object of those and of sparse
 * vectors ({"indices": [...], "values": [...]}) by name. A point's "payload" may be absent or null,
 * "payloads" too; every field at most once, in any order. Anything else (another field, a repeated
 * vector name, a value the DOM path would refuse, malformed JSON) is not read here: the body takes
 * the DOM path, which answers it or names the field that is wrong. So this reader accepts only
 * bodies the DOM path accepts, and reads them to the same points: ids, vectors bit for bit,
 * payloads value for value and type for type (nlohmann keeps a non-negative integer unsigned, a
 * negative one signed, and "-0" signed; a repeated payload key keeps its last value).
 * tests/test_plain_search.cpp and the fuzz_plain_upsert target compare the two readers.
 */
#include <optional>
#include <string_view>
#include <vector>

#include "engine/collection.h"

namespace wp::http {

/// The points of a plain upsert body at most `max_bytes` long, or nullopt when the body is
/// anything else (see the file comment).
std::optional<std::vector<engine::PointWrite>> read_plain_upsert(std::string_view body,
                                                                 size_t max_bytes);

}  // namespace wp::http
