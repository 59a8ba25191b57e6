// Upsert bodies read from simdjson's tape into PointWrites; a payload is built as the nlohmann
// value the DOM path would hold (the collection stores payloads as JSON values).
#include "http/plain_upsert.h"

#include <cmath>
#include <string>

#include "engine/multi_vector.h"
#include "engine/sparse_vector.h"
#include "http/plain_json.h"

namespace wp::http {

namespace {

namespace sj = plain::sj;
using nlohmann::json;
using plain::append_vector;
using plain::Seen;

/// Whether `body` may hold the number "-0" outside a string: a "-0" that begins a value (after
/// '[', ',', ':' or whitespace) and is not the start of a fraction or an exponent. simdjson reads
/// it as the integer 0, which nlohmann keeps signed where "0" is unsigned: a payload holding an
/// integer 0 is built here only when the body has no such "-0" (a string may hold one: then the
/// body takes the DOM path, needlessly but alike).
bool may_hold_negative_zero(std::string_view body) {
  for (size_t at = body.find("-0"); at != std::string_view::npos; at = body.find("-0", at + 2)) {
    const char before = at > 0 ? body[at - 1] : ' ';
    const char after = at + 2 < body.size() ? body[at + 2] : ' ';
    const bool starts_value = before == '[' || before == ',' || before == ':' || before == ' ' ||
                              before == '\t' || before == '\n' || before == '\r';
    const bool more =
        after == '.' || after == 'e' || after == 'E' || (after >= '0' && after <= '9');
    if (starts_value && !more) return true;
  }
  return false;
}

/// Reads the points of one body; false as soon as something is not plain.
class Reader {
 public:
  explicit Reader(std::string_view body) : body_(body) {}

  bool points(sj::dom::array list, std::vector<engine::PointWrite>& out) {
    out.reserve(list.size());
    for (const sj::dom::element e : list) {
      sj::dom::object o;
      if (e.get_object().get(o) != sj::SUCCESS) return false;
      enum : unsigned { kId, kVector, kPayload };
      engine::PointWrite w;
      Seen seen;
      for (const sj::dom::key_value_pair field : o) {
        bool ok = false;
        if (field.key == "id") {
          ok = seen.first(kId) && id(field.value, w.id);
        } else if (field.key == "vector") {
          ok = seen.first(kVector) && vectors(field.value, w);
        } else if (field.key == "payload") {
          ok = seen.first(kPayload) && payload(field.value, w.payload);
        }
        if (!ok) return false;
      }
      if (!seen.has(kId) || !seen.has(kVector)) return false;
      out.push_back(std::move(w));
    }
    return true;
  }

  bool batch(sj::dom::object b, std::vector<engine::PointWrite>& out) {
    enum : unsigned { kIds, kVectors, kPayloads };
    Seen seen;
    sj::dom::element ids, vectors, payloads;
    for (const sj::dom::key_value_pair field : b) {
      bool ok = false;
      if (field.key == "ids") {
        ok = seen.first(kIds);
        ids = field.value;
      } else if (field.key == "vectors") {
        ok = seen.first(kVectors);
        vectors = field.value;
      } else if (field.key == "payloads") {
        ok = seen.first(kPayloads);
        payloads = field.value;
      }
      if (!ok) return false;
    }
    sj::dom::array id_list;
    if (!seen.has(kIds) || !seen.has(kVectors) || ids.get_array().get(id_list) != sj::SUCCESS) {
      return false;
    }
    for (const sj::dom::element e : id_list) {
      engine::PointWrite w;
      if (!id(e, w.id)) return false;
      out.push_back(std::move(w));
    }
    // The vectors: one per id, unnamed, or by name a list of one per id.
    if (vectors.is_array()) {
      if (!per_point(vectors, out, "", false)) return false;
    } else {
      sj::dom::object named;
      if (vectors.get_object().get(named) != sj::SUCCESS) return false;
      for (const sj::dom::key_value_pair field : named) {
        if (!per_point(field.value, out, field.key, true)) return false;
      }
    }
    if (seen.has(kPayloads) && !payloads.is_null()) {
      sj::dom::array list;
      if (payloads.get_array().get(list) != sj::SUCCESS || !same_count(list, out.size())) {
        return false;
      }
      size_t i = 0;
      for (const sj::dom::element e : list) {
        if (!payload(e, out[i++].payload)) return false;
      }
    }
    return true;
  }

 private:
  /// Whether `list` has `n` elements (its size() saturates at 2^24 - 1).
  static bool same_count(sj::dom::array list, size_t n) {
    size_t count = 0;
    for (auto it = list.begin(); it != list.end() && count <= n; ++it) ++count;
    return count == n;
  }

  /// An unsigned integer or a UUID string (PointId::from_json).
  static bool id(sj::dom::element v, engine::PointId& out) {
    uint64_t n = 0;
    if (v.get_uint64().get(n) == sj::SUCCESS) {  // "-0" too: from_json takes a signed 0
      out = engine::PointId::number(n);
      return true;
    }
    std::string_view text;
    if (v.get_string().get(text) != sj::SUCCESS) return false;
    try {
      out = engine::PointId::uuid(text);
    } catch (const std::exception&) {
      return false;
    }
    return true;
  }

  /// Whether `v` is a multivector as is_multi_json tells one: an array whose first element is an
  /// array.
  static bool is_multi(sj::dom::array a) { return a.begin() != a.end() && (*a.begin()).is_array(); }

  /// One point's vector (dense, multi, or sparse when `named`) under `name`, into `w`; false for a
  /// repeated name.
  bool vector(sj::dom::element v, const std::string& name, bool named, engine::PointWrite& w) {
    if (w.vectors.count(name) || w.multi.count(name) || w.sparse.count(name)) return false;
    if (named && v.is_object()) return sparse(v, w.sparse[name]);
    sj::dom::array a;
    if (v.get_array().get(a) != sj::SUCCESS) return false;
    if (!is_multi(a)) return append_vector(v, w.vectors[name]);
    engine::MultiVector& m = w.multi[name];
    bool first = true;
    for (const sj::dom::element row : a) {
      // get_multi_vector: rows of the first row's length, at most kMaxMultiValues values.
      size_t n = 0;
      if (!row.is_array()) return false;
      if (!first && m.values.size() + m.dim > engine::kMaxMultiValues) return false;
      if (!append_vector(row, m.values, &n)) return false;
      if (first) m.dim = n;
      if (n != m.dim || m.values.size() > engine::kMaxMultiValues) return false;
      first = false;
    }
    return true;
  }

  /// A sparse vector {"indices": [...], "values": [...]} as get_sparse_vector reads it: indices
  /// unsigned 32-bit integers, values finite floats, at most kMaxSparseSize of each, sorted by
  /// index (sort_sparse refuses different counts and a repeated index).
  bool sparse(sj::dom::element v, engine::SparseVector& out) {
    enum : unsigned { kIndices, kValues };
    Seen seen;
    for (const sj::dom::key_value_pair field : sj::dom::object(v)) {
      sj::dom::array a;
      if (field.value.get_array().get(a) != sj::SUCCESS) return false;
      if (field.key == "indices" && seen.first(kIndices)) {
        for (const sj::dom::element x : a) {
          uint64_t i = 0;
          // An integer, not "1.0"; 0 may have been "-0", which the DOM path refuses (signed).
          const bool integer = x.is_int64() || x.is_uint64();
          if (out.indices.size() == engine::kMaxSparseSize || !integer ||
              x.get_uint64().get(i) != sj::SUCCESS || i > UINT32_MAX ||
              (i == 0 && !no_minus_zero())) {
            return false;
          }
          out.indices.push_back(static_cast<uint32_t>(i));
        }
      } else if (field.key == "values" && seen.first(kValues)) {
        for (const sj::dom::element x : a) {
          float f = 0;
          if (out.values.size() == engine::kMaxSparseSize || !plain::read_float(x, f)) return false;
          out.values.push_back(f);
        }
      } else {
        return false;
      }
    }
    if (!seen.has(kIndices) || !seen.has(kValues)) return false;
    try {
      engine::sort_sparse(out, "");
    } catch (const std::exception&) {
      return false;
    }
    return true;
  }

  /// A point's "vector": a vector, or an object of them by name.
  bool vectors(sj::dom::element v, engine::PointWrite& w) {
    if (!v.is_object()) return vector(v, "", false, w);
    for (const sj::dom::key_value_pair field : sj::dom::object(v)) {
      if (!vector(field.value, std::string(field.key), true, w)) return false;
    }
    return true;
  }

  /// The vectors of a batch's `list` (one per point, in order) under `name` (`named`: a list of
  /// the object "vectors" {"name": [...]}, whose elements may be sparse vectors).
  bool per_point(sj::dom::element list, std::vector<engine::PointWrite>& out, std::string_view name,
                 bool named) {
    sj::dom::array a;
    if (list.get_array().get(a) != sj::SUCCESS || !same_count(a, out.size())) return false;
    size_t i = 0;
    for (const sj::dom::element v : a) {
      if (!vector(v, std::string(name), named, out[i++])) return false;
    }
    return true;
  }

  /// Whether the body holds no "-0" that simdjson read as the integer 0 (checked once, when a
  /// payload or a sparse index first holds a 0).
  bool no_minus_zero() {
    if (!checked_zero_) {
      checked_zero_ = true;
      minus_zero_ = may_hold_negative_zero(body_);
    }
    return !minus_zero_;
  }

  /// A payload: an object, or null (absent is the PointWrite's default, an empty object).
  bool payload(sj::dom::element v, json& out) {
    if (v.is_null()) {
      out = json();
      return true;
    }
    return v.is_object() && value(v, out);
  }

  /// `v` as the value nlohmann's parser builds from its text.
  bool value(sj::dom::element v, json& out) {
    switch (v.type()) {
      case sj::dom::element_type::OBJECT:
        out = json::object();
        for (const sj::dom::key_value_pair field : sj::dom::object(v)) {
          json& slot = out[std::string(field.key)];  // a repeated key keeps its last value
          if (!value(field.value, slot)) return false;
        }
        return true;
      case sj::dom::element_type::ARRAY:
        out = json::array();
        for (const sj::dom::element x : sj::dom::array(v)) {
          out.push_back(json());
          if (!value(x, out.back())) return false;
        }
        return true;
      case sj::dom::element_type::INT64: {
        const int64_t i = int64_t(v);
        if (i < 0) {
          out = i;
          return true;
        }
        if (i == 0 && !no_minus_zero()) return false;
        out = static_cast<uint64_t>(i);
        return true;
      }
      case sj::dom::element_type::UINT64:
        out = uint64_t(v);
        return true;
      case sj::dom::element_type::DOUBLE:
        out = double(v);
        return true;
      case sj::dom::element_type::STRING:
        out = std::string(std::string_view(v));
        return true;
      case sj::dom::element_type::BOOL:
        out = bool(v);
        return true;
      case sj::dom::element_type::NULL_VALUE:
        out = json();
        return true;
    }
    return false;
  }

  std::string_view body_;
  bool checked_zero_ = false;  ///< whether minus_zero_ is known
  bool minus_zero_ = false;    ///< may_hold_negative_zero(body_)
};

}  // namespace

std::optional<std::vector<engine::PointWrite>> read_plain_upsert(std::string_view body,
                                                                 size_t max_bytes) {
  plain::PlainJson doc;
  sj::dom::object o;
  if (!doc.parse(body, max_bytes) || doc.root().get_object().get(o) != sj::SUCCESS ||
      o.size() != 1) {
    return std::nullopt;
  }
  const sj::dom::key_value_pair field = *o.begin();
  Reader reader(body);
  std::vector<engine::PointWrite> out;
  sj::dom::array list;
  sj::dom::object b;
  if (field.key == "points" && field.value.get_array().get(list) == sj::SUCCESS) {
    if (!reader.points(list, out)) return std::nullopt;
  } else if (field.key == "batch" && field.value.get_object().get(b) == sj::SUCCESS) {
    if (!reader.batch(b, out)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  return out;
}

}  // namespace wp::http
