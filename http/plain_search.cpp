// simdjson reads the body into its tape (http/plain_json.h), reused per thread.
#include "http/plain_search.h"

#include <string>

#include <nlohmann/json.hpp>

#include "engine/filter.h"
#include "http/plain_json.h"
#include "index/index.h"

namespace wp::http {

namespace {

namespace sj = plain::sj;
using plain::append_vector;
using plain::PlainJson;
using plain::read_bool;
using plain::read_count;
using plain::read_float;
using plain::Seen;

bool read_params(sj::dom::element v, engine::SearchQuery& q) {
  sj::dom::object o;
  if (v.get_object().get(o) != sj::SUCCESS) return false;
  Seen seen;
  for (const sj::dom::key_value_pair field : o) {
    const bool null = field.value.is_null();  // absent
    bool ok = false;
    if (field.key == "hnsw_ef") {
      ok = seen.first(0) && (null || read_count(field.value, 1, kMaxSearchEf, q.ef));
    } else if (field.key == "exact") {
      ok = seen.first(1) && (null || read_bool(field.value, q.exact));
    }
    if (!ok) return false;
  }
  return true;
}

/// A filter object, read by the DOM path's parser from simdjson's text of it (the same values:
/// numbers are written back to round-trip); false when the parser refuses it.
bool read_filter(sj::dom::element v, PlainSearch& s) {
  if (!v.is_object()) return false;
  try {
    s.filter = std::make_unique<engine::Filter>(
        engine::Filter::parse(nlohmann::json::parse(sj::minify(v)), "filter"));
  } catch (const std::exception&) {
    return false;  // the DOM path names what is wrong
  }
  s.query.filter = s.filter.get();
  return true;
}

/// One plain search object (a body, or an element of a batch's "searches").
std::optional<PlainSearch> read_search_object(sj::dom::element e, PlainRoute route) {
  sj::dom::object o;
  if (e.get_object().get(o) != sj::SUCCESS) return std::nullopt;
  enum : unsigned {
    kVector,
    kLimit,
    kOffset,
    kParams,
    kWithPayload,
    kWithVector,
    kThreshold,
    kUsing,
    kFilter,
    kPrefetch,
    kLookupFrom
  };
  const bool query = route == PlainRoute::kQuery;
  PlainSearch s;
  Seen seen;
  for (const sj::dom::key_value_pair field : o) {
    const std::string_view key = field.key;
    const sj::dom::element v = field.value;
    const bool null = v.is_null();  // an absent field, except for the vector
    bool ok = false;
    if (key == (query ? "query" : "vector")) {
      ok = seen.first(kVector) && append_vector(v, s.query.vector);
    } else if (key == "limit") {
      ok = seen.first(kLimit) && (null || read_count(v, 1, index::kMaxK, s.query.limit));
    } else if (key == "offset") {
      ok = seen.first(kOffset) && (null || read_count(v, 0, index::kMaxK, s.query.offset));
    } else if (key == "params") {
      ok = seen.first(kParams) && (null || read_params(v, s.query));
    } else if (key == "with_payload") {
      ok = seen.first(kWithPayload) && (null || read_bool(v, s.with_payload));
    } else if (key == "with_vector") {
      ok = seen.first(kWithVector) && (null || read_bool(v, s.with_vector));
    } else if (key == "score_threshold") {
      float t = 0;
      ok = seen.first(kThreshold) && (null || read_float(v, t));
      if (!null) s.query.score_threshold = t;
    } else if (key == "filter") {
      ok = seen.first(kFilter) && (null || read_filter(v, s));
    } else if (query && key == "using") {
      std::string_view name;
      ok = seen.first(kUsing) && (null || v.get_string().get(name) == sj::SUCCESS);
      s.query.vector_name = std::string(name);
    } else if (query && key == "prefetch") {
      ok = seen.first(kPrefetch) && null;
    } else if (query && key == "lookup_from") {
      ok = seen.first(kLookupFrom) && null;
    }
    if (!ok) return std::nullopt;
  }
  if (!seen.has(kVector) || (!query && !seen.has(kLimit))) return std::nullopt;
  s.query.with_payload = s.with_payload;
  s.query.with_vector = s.with_vector;
  return s;
}

}  // namespace

std::optional<PlainSearch> read_plain_search(std::string_view body, PlainRoute route) {
  PlainJson doc;
  if (!doc.parse(body, kMaxPlainSearchBody)) return std::nullopt;
  return read_search_object(doc.root(), route);
}

std::optional<std::vector<PlainSearch>> read_plain_batch(std::string_view body, PlainRoute route,
                                                         size_t max_searches) {
  PlainJson doc;
  sj::dom::object o;
  if (!doc.parse(body, kMaxPlainSearchBody) || doc.root().get_object().get(o) != sj::SUCCESS) {
    return std::nullopt;
  }
  sj::dom::array searches;
  // {"searches": [...]} and nothing else (a repeated key takes the DOM path, which keeps the last).
  auto it = o.begin();
  if (o.size() != 1 || (*it).key != "searches" ||
      (*it).value.get_array().get(searches) != sj::SUCCESS || searches.size() > max_searches) {
    return std::nullopt;
  }
  std::vector<PlainSearch> out;
  out.reserve(searches.size());
  for (const sj::dom::element e : searches) {
    std::optional<PlainSearch> s = read_search_object(e, route);
    if (!s) return std::nullopt;
    out.push_back(std::move(*s));
  }
  return out;
}

}  // namespace wp::http
