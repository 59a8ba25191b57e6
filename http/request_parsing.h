#pragma once
/**
 * @file request_parsing.h
 * Reading the Qdrant-specific fields of request bodies (vectors, point ids, payload selectors,
 * filters) with errors that name the field and the expected value; plain fields go through
 * engine/json_fields.h, the readers every request body shares.
 */
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/collection.h"
#include "engine/filter.h"
#include "engine/json_fields.h"
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

/// JSON text of an answer. Strings that came from outside may hold invalid UTF-8 (a path
/// segment such as %FF, quoted in a message): it is replaced, never a reason to throw.
std::string json_text(const json& j);
/// Appends `x` as the JSON text json_text writes for it: the shortest text that reads back as
/// `x`, with ".0" on an integral value (a float stays a float to the client), null when not
/// finite.
void append_json_number(std::string& out, double x);
/// A float (a score) as Qdrant writes its f32: the shortest text that reads back as the same
/// float ("0.8734", where the double it widens to would be "0.8733999729156494"), with ".0" on
/// an integral value, null when not finite.
void append_json_number(std::string& out, float x);
/// The most characters append_json_number writes (a double's shortest text is at most 24, and
/// ".0" may follow).
inline constexpr size_t kMaxJsonNumber = 32;
/// append_json_number(float) written at `out` (at most kMaxJsonNumber characters); returns the
/// end.
char* write_json_number(char* out, float x);
/// The double that a JSON tree must hold for a float to be written as append_json_number(float)
/// writes it (nlohmann keeps numbers as doubles): the double nearest x's shortest float text.
double shortest_double(float x);

/// The body as a JSON object; throws UserError("Format error in JSON body: ...") otherwise.
json parse_body(const std::string& body, bool allow_empty = false);

/// A float vector of finite values; `dim` 0 accepts any length.
std::vector<float> get_vector(const json& j, const std::string& field);
/// with_payload: bool, list of keys, {"include": [...]} or {"exclude": [...]}.
PayloadSelector get_payload_selector(const json& obj, const std::string& where, bool def);
/// A sparse vector {"indices": [...], "values": [...]}, validated and sorted by index.
engine::SparseVector get_sparse_vector(const json& j, const std::string& field);
/// Whether `j` is a multivector as Qdrant's bodies give one: an array of arrays.
inline bool is_multi_json(const json& j) {
  return j.is_array() && !j.empty() && j[0].is_array();
}
/// A multivector: an array of 1.. vectors of one length (the space's dimension and values are
/// the collection's to check).
engine::MultiVector get_multi_vector(const json& j, const std::string& field);
/// A point's vectors as a write gives them: a vector (the unnamed one, name "") or an object of
/// vectors by name (Qdrant's VectorStruct), where the sparse ones go to `sparse` and the
/// multivectors (arrays of vectors) to `multi` (each refused by name when null).
engine::NamedVectors get_point_vectors(const json& j, const std::string& field,
                                       engine::SparseVectors* sparse = nullptr,
                                       engine::MultiVectors* multi = nullptr);
/// with_vector: true, false, or a list of vector names.
engine::VectorSelector get_with_vector(const json& obj, const std::string& where, bool def);
/// A point's vectors in an answer: the unnamed vector as an array, named ones as an object, with
/// its sparse vectors ({"indices", "values"}) by name (an object then, the unnamed vector "")
/// and its multivectors as arrays of vectors.
json vectors_json(const engine::NamedVectors& v, bool named,
                  const engine::SparseVectors& sparse = {}, const engine::MultiVectors& multi = {});
/// A multivector as Qdrant writes it: an array of vectors.
json multi_json(const engine::MultiVector& v);
/// A sparse vector as Qdrant writes it.
json sparse_json(const engine::SparseVector& v);
/// The points of an upsert body in either of Qdrant's shapes ({"points": [...]} or {"batch":
/// {"ids", "vectors", "payloads"}}); `where` prefixes the fields in messages ("" for the route's
/// own body). Defined with the other write bodies' readers (points_write_api.cpp).
std::vector<engine::PointWrite> read_upsert_points(const json& body, const std::string& where);
/// A list of point ids.
std::vector<engine::PointId> get_ids(const json& j, const std::string& field);
/// An optional filter (absent or null: the empty filter).
engine::Filter get_filter(const json& obj, const std::string& where);

}  // namespace wp::http
