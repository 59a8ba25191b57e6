// simdjson reads the body into its tape (a flat array of tokens, reused per thread) rather than
// into nlohmann's tree of allocated nodes. Its On-Demand API is compiled for the build's target
// (x86-64 without AVX: its scalar fallback), the DOM API picks AVX2 or AVX-512 at run time.
#include "http/plain_search.h"

#include <cmath>
#include <cstring>
#include <string>

#include <simdjson.h>
#include <nlohmann/json.hpp>

#include "engine/filter.h"
#include "index/index.h"

namespace wp::http {

namespace sj = simdjson;

namespace {

/// An unsigned integer in lo..hi (the DOM path's get_count), or false.
bool read_count(sj::dom::element v, size_t lo, size_t hi, size_t& out) {
  uint64_t x = 0;
  if (v.get_uint64().get(x) != sj::SUCCESS || x < lo || x > hi) return false;
  out = static_cast<size_t>(x);
  return true;
}

bool read_bool(sj::dom::element v, bool& out) {
  return v.get_bool().get(out) == sj::SUCCESS;
}

/// A number as a finite 32-bit float (the DOM path's get_vector and get_optional_float).
bool read_float(sj::dom::element v, float& out) {
  double x = 0;
  if (v.get_double().get(x) != sj::SUCCESS) return false;
  out = static_cast<float>(x);
  return std::isfinite(out);
}

bool read_vector(sj::dom::element v, std::vector<float>& out) {
  sj::dom::array a;
  if (v.get_array().get(a) != sj::SUCCESS) return false;
  out.reserve(a.size());
  for (sj::dom::element x : a) {
    float f = 0;
    if (!read_float(x, f)) return false;
    out.push_back(f);
  }
  return !out.empty();
}

/// Fields seen so far, one bit each: a repeated field takes the DOM path (which keeps the last).
class Seen {
 public:
  bool first(unsigned bit) {
    const bool was = bits_ & (1u << bit);
    bits_ |= 1u << bit;
    return !was;
  }
  bool has(unsigned bit) const { return bits_ & (1u << bit); }

 private:
  unsigned bits_ = 0;
};

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

/// Parses `body` into this thread's tape (simdjson's DOM parser validates the whole document and
/// picks its SIMD kernels at run time; the tape is reused: no allocation per request); the root
/// stays valid until the thread's next parse. False for malformed JSON and bodies too long.
bool parse(std::string_view body, sj::dom::element& root) {
  if (body.size() > kMaxPlainSearchBody) return false;
  thread_local sj::dom::parser parser(kMaxPlainSearchBody);
  thread_local std::string padded;
  padded.assign(body.data(), body.size());
  padded.append(sj::SIMDJSON_PADDING, '\0');
  return parser.parse(padded.data(), body.size(), false).get(root) == sj::SUCCESS;
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
      ok = seen.first(kVector) && read_vector(v, s.query.vector);
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
  sj::dom::element root;
  if (!parse(body, root)) return std::nullopt;
  return read_search_object(root, route);
}

std::optional<std::vector<PlainSearch>> read_plain_batch(std::string_view body, PlainRoute route,
                                                         size_t max_searches) {
  sj::dom::element root;
  sj::dom::object o;
  if (!parse(body, root) || root.get_object().get(o) != sj::SUCCESS) return std::nullopt;
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
