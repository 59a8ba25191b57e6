#pragma once
/**
 * @file plain_search.h
 * The search bodies most clients send, read without nlohmann's DOM (simdjson's tape):
 *
 *   POST .../points/search  {"vector": [numbers], "limit": n, ...}
 *   POST .../points/query   {"query": [numbers], "using": "name", "limit": n, ...}
 *   POST .../points/search/batch and .../points/query/batch  {"searches": [those, ...]}
 *
 * with, on both, "offset": n, "params": {"hnsw_ef": n, "exact": b}, "with_payload": b,
 * "with_vector": b, "score_threshold": x, "filter": {...}. The vector is required ("limit" too on
 * /points/search), each field at most once, in any order; null is an absent field, as on the DOM
 * path (and so are "prefetch": null and "lookup_from": null on /points/query). A filter is read by
 * the DOM path's own parser (engine::Filter::parse) from its text alone: a filter is small where
 * the vector is most of the body. Anything else (another field, a named vector, a payload
 * selector list, a filter the parser refuses, a value out of its range, malformed JSON) is not
 * read here: such a body takes the DOM path, which answers it or names the field that is wrong. So
 * this reader accepts only bodies the DOM path accepts, and reads them to the same values
 * (tests/test_plain_search.cpp and the fuzz_plain_search target compare the two answers).
 */
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "engine/collection.h"

namespace wp::http {

/// A plain search body as read: the query (its filter, if any, is `filter`) and the two answer
/// switches.
struct PlainSearch {
  engine::SearchQuery query;
  std::unique_ptr<engine::Filter> filter;  ///< query.filter points here (it moves with it)
  bool with_payload = false;
  bool with_vector = false;
};

/// params.hnsw_ef's range on every search route (1..kMaxSearchEf).
inline constexpr size_t kMaxSearchEf = 100000;

/// Bodies longer than this take the DOM path (the reader's buffers, one per thread, stay small).
inline constexpr size_t kMaxPlainSearchBody = size_t{1} << 18;

/// The route a body was sent to: /points/search or /points/query.
enum class PlainRoute { kSearch, kQuery };

/// The plain search in `body`, or nullopt when the body is anything else (see the file comment).
std::optional<PlainSearch> read_plain_search(std::string_view body,
                                             PlainRoute route = PlainRoute::kSearch);

/// The plain searches of a batch body {"searches": [...]} (no other field), each element read as
/// read_plain_search reads a body; nullopt when any is not plain or there are more than
/// `max_searches` (the DOM path answers those).
std::optional<std::vector<PlainSearch>> read_plain_batch(std::string_view body, PlainRoute route,
                                                         size_t max_searches);

}  // namespace wp::http
