#include "http/request_parsing.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "engine/json_fields.h"
#include "engine/json_value.h"
#include "index/error.h"

namespace wp::http {

using engine::get_bool;
using engine::get_count;
using engine::get_optional_float;
using engine::join;

json PayloadSelector::apply(const json& full) const {
  if (!enabled) return json();
  if (include.empty() && exclude.empty()) return full;
  json out = json::object();
  if (!include.empty()) {
    for (const std::string& k : include) {
      if (full.contains(k)) out[k] = full[k];
    }
  } else {
    out = full;
  }
  for (const std::string& k : exclude) out.erase(k);
  return out;
}

std::string json_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {
template <typename T>
char* write_shortest(char* out, T x) {
  if (!std::isfinite(x)) return std::copy_n("null", 4, out);
  char* const end = std::to_chars(out, out + kMaxJsonNumber - 2, x).ptr;
  if (std::find_if(out, end, [](char c) { return c == '.' || c == 'e'; }) != end) return end;
  return std::copy_n(".0", 2, end);
}

template <typename T>
void append_shortest(std::string& out, T x) {
  char buf[kMaxJsonNumber];
  out.append(buf, write_shortest(buf, x));
}
}  // namespace

char* write_json_number(char* out, float x) {
  return write_shortest(out, x);
}

void append_json_number(std::string& out, double x) {
  append_shortest(out, x);
}

void append_json_number(std::string& out, float x) {
  append_shortest(out, x);
}

double shortest_double(float x) {
  if (!std::isfinite(x)) return x;
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, x).ptr;
  double d = x;
  std::from_chars(buf, end, d);
  return d;
}

json parse_body(const std::string& body, bool allow_empty) {
  if (body.empty() && allow_empty) return json::object();
  engine::check_json_depth(body, "Format error in JSON body");
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    throw UserError("Format error in JSON body: " + engine::show_text(e.what(), 300));
  }
  WP_THROW_IF_NOT(j.is_object(), "Format error in JSON body: expected a JSON object, got ",
                  j.type_name());
  return j;
}

std::vector<float> get_vector(const json& j, const std::string& field) {
  WP_THROW_IF_NOT(j.is_array(), field, ": expected an array of numbers, got ", j.type_name());
  std::vector<float> v;
  v.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    WP_THROW_IF_NOT(j[i].is_number(), field, "[", i, "]: expected a number, got ",
                    engine::show_json(j[i]));
    const double x = j[i].get<double>();
    const float f = static_cast<float>(x);
    WP_THROW_IF_NOT(std::isfinite(f), field, "[", i, "]: ", x, " is not a finite 32-bit float");
    v.push_back(f);
  }
  WP_THROW_IF_NOT(!v.empty(), field, ": the vector is empty");
  return v;
}

PayloadSelector get_payload_selector(const json& obj, const std::string& where, bool def) {
  PayloadSelector s;
  s.enabled = def;
  if (!obj.contains("with_payload") || obj["with_payload"].is_null()) return s;
  const json& v = obj["with_payload"];
  const std::string field = join(where, "with_payload");
  if (v.is_boolean()) {
    s.enabled = v.get<bool>();
  } else if (v.is_array()) {
    s.enabled = true;
    s.include = engine::get_string_list(v, field);
  } else if (v.is_object() && (v.contains("include") || v.contains("exclude"))) {
    s.enabled = true;
    if (v.contains("include"))
      s.include = engine::get_string_list(v["include"], field + ".include");
    if (v.contains("exclude"))
      s.exclude = engine::get_string_list(v["exclude"], field + ".exclude");
  } else {
    throw UserError(field +
                    ": expected true, false, a list of keys, or {\"include\"|\"exclude\": "
                    "[...]}, got " +
                    engine::show_json(v));
  }
  return s;
}

engine::SparseVector get_sparse_vector(const json& j, const std::string& field) {
  WP_THROW_IF_NOT(j.is_object() && j.contains("indices") && j.contains("values"), field,
                  ": expected a sparse vector {\"indices\": [...], \"values\": [...]}, got ",
                  engine::show_json(j));
  engine::check_fields(j, field, {"indices", "values"});
  const json& indices = j["indices"];
  const json& values = j["values"];
  WP_THROW_IF_NOT(indices.is_array(), field, ".indices: expected an array of indices, got ",
                  engine::show_json(indices));
  WP_THROW_IF_NOT(values.is_array(), field, ".values: expected an array of numbers, got ",
                  engine::show_json(values));
  WP_THROW_IF_NOT(indices.size() <= engine::kMaxSparseSize, field, ".indices: ", indices.size(),
                  " indices; a sparse vector has at most ", engine::kMaxSparseSize);
  engine::SparseVector v;
  v.indices.reserve(indices.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    const json& x = indices[i];
    WP_THROW_IF_NOT(x.is_number_unsigned() && x.get<uint64_t>() <= UINT32_MAX, field, ".indices[",
                    i, "]: expected an integer in 0..", UINT32_MAX, ", got ", engine::show_json(x));
    v.indices.push_back(static_cast<uint32_t>(x.get<uint64_t>()));
  }
  WP_THROW_IF_NOT(values.size() <= engine::kMaxSparseSize, field, ".values: ", values.size(),
                  " values; a sparse vector has at most ", engine::kMaxSparseSize);
  v.values.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    WP_THROW_IF_NOT(values[i].is_number(), field, ".values[", i, "]: expected a number, got ",
                    engine::show_json(values[i]));
    const double x = values[i].get<double>();
    const float f = static_cast<float>(x);
    WP_THROW_IF_NOT(std::isfinite(f), field, ".values[", i, "]: ", x,
                    " is not a finite 32-bit float");
    v.values.push_back(f);
  }
  engine::sort_sparse(v, field);
  return v;
}

engine::MultiVector get_multi_vector(const json& j, const std::string& field) {
  WP_THROW_IF_NOT(j.is_array() && !j.empty(), field,
                  ": expected an array of vectors (a multivector), got ", engine::show_json(j));
  engine::MultiVector m;
  for (size_t r = 0; r < j.size(); ++r) {
    const std::string at = field + "[" + std::to_string(r) + "]";
    WP_THROW_IF_NOT(j[r].is_array(), at, ": expected a vector (an array of numbers), got ",
                    engine::show_json(j[r]));
    if (r == 0) m.dim = j[0].size();
    WP_THROW_IF_NOT(j[r].size() == m.dim, at,
                    ": every vector of a multivector has one dimension: ", "expected ", m.dim,
                    ", got ", j[r].size());
    WP_THROW_IF_NOT(m.values.size() + m.dim <= engine::kMaxMultiValues, field, ": more than ",
                    engine::kMaxMultiValues, " values in one multivector");
    const std::vector<float> row = get_vector(j[r], at);
    m.values.insert(m.values.end(), row.begin(), row.end());
  }
  return m;
}

engine::NamedVectors get_point_vectors(const json& j, const std::string& field,
                                       engine::SparseVectors* sparse, engine::MultiVectors* multi) {
  engine::NamedVectors out;
  if (!j.is_object()) {
    if (is_multi_json(j)) {
      WP_THROW_IF_NOT(multi, field, ": a multivector is not taken here");
      (*multi)[""] = get_multi_vector(j, field);
    } else {
      out[""] = get_vector(j, field);
    }
    return out;
  }
  for (const auto& [name, v] : j.items()) {
    const std::string at = field + "." + name;
    if (v.is_object()) {
      WP_THROW_IF_NOT(sparse, at, ": a sparse vector is not taken here");
      (*sparse)[name] = get_sparse_vector(v, at);
      continue;
    }
    if (is_multi_json(v)) {
      WP_THROW_IF_NOT(multi, at, ": a multivector is not taken here");
      (*multi)[name] = get_multi_vector(v, at);
      continue;
    }
    out[name] = get_vector(v, at);
  }
  return out;
}

engine::VectorSelector get_with_vector(const json& obj, const std::string& where, bool def) {
  if (!obj.contains("with_vector") || obj["with_vector"].is_null()) return def;
  const json& v = obj["with_vector"];
  if (v.is_boolean()) return v.get<bool>();
  const std::string field = join(where, "with_vector");
  if (v.is_array()) return engine::VectorSelector(engine::get_string_list(v, field));
  throw UserError(field + ": expected true, false or a list of vector names, got " +
                  engine::show_json(v));
}

json sparse_json(const engine::SparseVector& v) {
  return {{"indices", v.indices}, {"values", v.values}};
}

json multi_json(const engine::MultiVector& v) {
  json out = json::array();
  for (size_t r = 0; r < v.rows(); ++r)
    out.push_back(json(std::vector<float>(v.row(r), v.row(r) + v.dim)));
  return out;
}

json vectors_json(const engine::NamedVectors& v, bool named, const engine::SparseVectors& sparse,
                  const engine::MultiVectors& multi) {
  if (named || !sparse.empty()) {
    json out(v);
    if (out.is_null()) out = json::object();
    for (const auto& [name, x] : sparse) out[name] = sparse_json(x);
    for (const auto& [name, x] : multi) out[name] = multi_json(x);
    return out;
  }
  if (auto m = multi.find(""); m != multi.end()) return multi_json(m->second);
  auto it = v.find("");
  return it == v.end() ? json() : json(it->second);
}

std::vector<engine::PointId> get_ids(const json& j, const std::string& field) {
  WP_THROW_IF_NOT(j.is_array(), field, ": expected an array of point ids, got ",
                  engine::show_json(j));
  std::vector<engine::PointId> ids;
  for (size_t i = 0; i < j.size(); ++i) {
    ids.push_back(engine::PointId::from_json(j[i], field + "[" + std::to_string(i) + "]"));
  }
  return ids;
}

engine::Filter get_filter(const json& obj, const std::string& where) {
  if (!obj.contains("filter") || obj["filter"].is_null()) return engine::Filter();
  return engine::Filter::parse(obj["filter"], join(where, "filter"));
}

}  // namespace wp::http
