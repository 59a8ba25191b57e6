#pragma once
// The server reads the upsert bodies it can with read_plain_upsert (http/plain_upsert.h) and the
// rest through nlohmann's DOM; each body the first reads must read alike in the second.
// plain_upsert_differs compares them (fuzz_plain_upsert, test_plain_search).
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/plain_upsert.h"
#include "http/request_parsing.h"

namespace wp::test {

/// Whether `a` and `b` are the same JSON value: the same type at every level (nlohmann tells an
/// unsigned integer from a signed one), numbers bit for bit, objects key for key.
inline bool same_json(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case nlohmann::json::value_t::object: {
      if (a.size() != b.size()) return false;
      for (auto x = a.begin(), y = b.begin(); x != a.end(); ++x, ++y) {
        if (x.key() != y.key() || !same_json(x.value(), y.value())) return false;
      }
      return true;
    }
    case nlohmann::json::value_t::array:
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i) {
        if (!same_json(a[i], b[i])) return false;
      }
      return true;
    case nlohmann::json::value_t::number_float: {
      const double x = a.get<double>(), y = b.get<double>();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    default:
      return a == b;
  }
}

/// Whether two lists of floats are the same bit for bit (-0 is not 0 here).
inline bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

/// What differs between two lists of points ("" when nothing does).
inline std::string point_writes_differ(const std::vector<engine::PointWrite>& a,
                                       const std::vector<engine::PointWrite>& b) {
  if (a.size() != b.size()) {
    return std::to_string(a.size()) + " points against " + std::to_string(b.size());
  }
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string at = "point " + std::to_string(i) + ": ";
    if (!(a[i].id == b[i].id)) return at + "the id";
    if (!same_json(a[i].payload, b[i].payload)) {
      return at + "the payload " + a[i].payload.dump() + " against " + b[i].payload.dump();
    }
    if (a[i].vectors.size() != b[i].vectors.size() || a[i].multi.size() != b[i].multi.size() ||
        a[i].sparse.size() != b[i].sparse.size()) {
      return at + "the vectors' names";
    }
    for (auto x = a[i].sparse.begin(), y = b[i].sparse.begin(); x != a[i].sparse.end(); ++x, ++y) {
      if (x->first != y->first || x->second.indices != y->second.indices ||
          !same_floats(x->second.values, y->second.values)) {
        return at + "the sparse vector \"" + x->first + "\"";
      }
    }
    for (auto x = a[i].vectors.begin(), y = b[i].vectors.begin(); x != a[i].vectors.end();
         ++x, ++y) {
      if (x->first != y->first || !same_floats(x->second, y->second)) {
        return at + "the vector \"" + x->first + "\"";
      }
    }
    for (auto x = a[i].multi.begin(), y = b[i].multi.begin(); x != a[i].multi.end(); ++x, ++y) {
      if (x->first != y->first || x->second.dim != y->second.dim ||
          !same_floats(x->second.values, y->second.values)) {
        return at + "the multivector \"" + x->first + "\"";
      }
    }
  }
  return "";
}

/// Empty when read_plain_upsert declines `body`, or reads it to the points the DOM path reads
/// (parse_body and read_upsert_points, which must then accept it); else what differs.
inline std::string plain_upsert_differs(std::string_view body) {
  const auto plain = http::read_plain_upsert(body, body.size());
  if (!plain) return "";
  std::vector<engine::PointWrite> dom;
  try {
    dom = http::read_upsert_points(http::parse_body(std::string(body)), "");
  } catch (const std::exception& e) {
    return std::string("the plain reader accepts what the DOM path refuses: ") + e.what();
  }
  const std::string differs = point_writes_differ(*plain, dom);
  return differs.empty() ? "" : "plain against DOM, " + differs;
}

}  // namespace wp::test
