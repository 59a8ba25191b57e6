// Handlers of /collections/{name}/points...
#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <iterator>
#include <limits>
#include <memory>
#include <unordered_map>

#include "engine/formula.h"
#include "engine/json_path.h"
#include "engine/json_value.h"
#include "http/api.h"
#include "http/plain_search.h"
#include "http/query_parts.h"
#include "http/request_parsing.h"
#include "index/distance.h"
#include "index/error.h"

namespace wp::http {

using engine::get_bool;
using engine::get_count;
using engine::get_optional_float;
using engine::join;

using nlohmann::json;

namespace {

/// How points are written in an answer: the payload keys asked for, the vectors asked for (an
/// array for the unnamed vector, an object for named ones).
struct Shown {
  PayloadSelector payload;
  engine::VectorSelector vectors;
  bool named = false;

  json record(const engine::PointRead& p) const {
    json j{{"id", p.id.to_json()}};
    j["payload"] = payload.enabled ? payload.apply(p.payload) : json();
    j["vector"] = vectors.any() ? vectors_json(p.vectors, named, p.sparse, p.multi) : json();
    return j;
  }
  json scored(const engine::ScoredPoint& s) const {
    json j = record(s.point);
    j["version"] = 0;
    j["score"] = shortest_double(s.score);
    return j;
  }
  json scored(const std::vector<engine::ScoredPoint>& points) const {
    json out = json::array();
    for (const engine::ScoredPoint& p : points) out.push_back(scored(p));
    return out;
  }
  /// scored(s) appended as JSON text without building it (the plain search's answer), in
  /// Qdrant's order of fields.
  void append_scored(std::string& out, const engine::ScoredPoint& s) const {
    // The id and the score written in a stack buffer; a hit with neither payload nor vector (most
    // hits) is then one append.
    static constexpr std::string_view kVersion = ",\"version\":0,\"score\":",
                                      kNulls = ",\"payload\":null,\"vector\":null}";
    char buf[6 + 38 + kVersion.size() + kMaxJsonNumber + kNulls.size()];
    char* p = std::copy_n("{\"id\":", 6, buf);
    if (s.point.id.is_uuid()) {
      // Canonical hexadecimal and dashes (36 characters): nothing to escape.
      const std::string uuid = s.point.id.uuid_string();
      *p++ = '"';
      p = std::copy(uuid.begin(), uuid.end(), p);
      *p++ = '"';
    } else {
      p = std::to_chars(p, p + 20, s.point.id.num()).ptr;
    }
    p = std::copy(kVersion.begin(), kVersion.end(), p);
    p = write_json_number(p, s.score);
    if (!payload.enabled && !vectors.any()) {
      p = std::copy(kNulls.begin(), kNulls.end(), p);
      out.append(buf, p);
      return;
    }
    out.append(buf, p);
    out += ",\"payload\":";
    out += payload.enabled ? json_text(payload.apply(s.point.payload)) : "null";
    out += ",\"vector\":";
    out += vectors.any()
               ? json_text(vectors_json(s.point.vectors, named, s.point.sparse, s.point.multi))
               : "null";
    out += '}';
  }
};

Shown shown(const engine::Collection& col, const PayloadSelector& payload,
            const engine::VectorSelector& vectors) {
  return Shown{payload, vectors, col.named() || col.has_sparse()};
}

/// A search request body (also one element of search/batch).
struct ParsedSearch {
  engine::Filter filter;
  json filter_json;  ///< as given (prefetches combine it with their own)
  engine::SearchQuery query;
  PayloadSelector payload;
  engine::VectorSelector with_vector;
  std::optional<LookupFrom> lookup;  ///< where example ids are read (Qdrant's lookup_from)
  std::shared_ptr<const engine::Collection> lookup_col;  ///< its collection (resolve_lookup)
  std::string where;                                     ///< of the request, in its body
};

/// Opens the collection of `s`'s lookup_from (404 when it does not exist; an alias names its
/// collection) and checks that it has the vector named (400 naming lookup_from.vector).
void resolve_lookup(const engine::Engine& eng, ParsedSearch& s) {
  if (!s.lookup) return;
  s.lookup_col = eng.collection(s.lookup->collection);
  s.lookup_col->vector_shape(s.lookup->vector, join(s.where, "lookup_from.vector"));
}

struct ParsedRecommend;
struct ParsedQuery;
/// resolve_lookup for every level of a parsed request.
void resolve_lookups(const engine::Engine& eng, ParsedRecommend& r);
void resolve_lookups(const engine::Engine& eng, ParsedQuery& p);

/// A reader of requests (run_batch's, or one route's): `read`, then resolve_lookups of what it
/// read.
template <typename Read>
auto resolving(const engine::Engine& eng, Read read) {
  return [&eng, read](const json& body, const std::string& where) {
    auto parsed = read(body, where);
    resolve_lookups(eng, parsed);
    return parsed;
  };
}

/// Where a request's example ids are read: its own collection's `using` space (the examples
/// then left out of the answer, as Qdrant does), or its lookup_from's collection and vector
/// (left out only when that is the same collection).
struct ExampleSource {
  const engine::Collection& col;
  std::string vector;
  bool leave_out = true;   ///< the examples are points of the searched collection
  bool same_space = true;  ///< and their vectors are the searched space's own (normalised alike)
};

ExampleSource source_of(const engine::Collection& col, const ParsedSearch& s) {
  if (!s.lookup) return {col, s.query.vector_name, true, true};
  const engine::Collection& other = *s.lookup_col;
  const bool same = other.name() == col.name();
  return {other, s.lookup->vector, same, same && s.lookup->vector == s.query.vector_name};
}

/// The vector space a request names in `using` ("" when absent: the unnamed vector).
std::string get_using(const json& body, const std::string& where) {
  return engine::get_string(body, "using", where, "");
}

void read_search_params(const json& body, const std::string& where, engine::SearchQuery& q) {
  if (!body.contains("params") || body["params"].is_null()) return;
  const json& p = body["params"];
  const std::string at = join(where, "params");
  WP_THROW_IF_NOT(p.is_object(), at, ": expected an object");
  q.ef = get_count(p, "hnsw_ef", at, 0, 1, kMaxSearchEf);
  q.exact = get_bool(p, "exact", at, false);
}

/// The fields every search-like request shares: limit, offset, params, filter, with_payload,
/// with_vector, score_threshold.
void read_common(const json& body, const std::string& where, ParsedSearch& s) {
  s.query.limit = get_count(body, "limit", where, 10, 1, index::kMaxK);
  s.query.offset = get_count(body, "offset", where, 0, 0, index::kMaxK);
  read_search_params(body, where, s.query);
  s.filter = get_filter(body, where);
  if (body.contains("filter")) s.filter_json = body["filter"];
  s.payload = get_payload_selector(body, where, false);
  s.with_vector = get_with_vector(body, where, false);
  s.query.with_payload = s.payload.enabled;
  s.query.with_vector = s.with_vector;
  s.query.score_threshold = get_optional_float(body, "score_threshold", where);
}

ParsedSearch read_search(const json& body, const std::string& where) {
  WP_THROW_IF_NOT(body.is_object(), where.empty() ? "body" : where, ": expected an object");
  ParsedSearch s;
  WP_THROW_IF_NOT(body.contains("vector"), join(where, "vector"), ": missing");
  const json& v = body["vector"];
  if (v.is_object()) {  // named vector form {"name": ..., "vector": [...]}
    WP_THROW_IF_NOT(v.contains("vector"), join(where, "vector.vector"), ": missing");
    WP_THROW_IF_NOT(v.contains("name") && v["name"].is_string(), join(where, "vector.name"),
                    ": expected the name of a vector");
    s.query.vector_name = v["name"].get<std::string>();
    if (v["vector"].is_object()) {  // Qdrant's NamedSparseVector
      s.query.sparse = get_sparse_vector(v["vector"], join(where, "vector.vector"));
    } else if (is_multi_json(v["vector"])) {
      s.query.multi = get_multi_vector(v["vector"], join(where, "vector.vector"));
    } else {
      s.query.vector = get_vector(v["vector"], join(where, "vector.vector"));
    }
  } else if (is_multi_json(v)) {
    s.query.multi = get_multi_vector(v, join(where, "vector"));
  } else {
    s.query.vector = get_vector(v, join(where, "vector"));
  }
  WP_THROW_IF_NOT(body.contains("limit"), join(where, "limit"), ": missing");
  read_common(body, where, s);
  return s;
}

/// Refuses an answer of `points` points with their vectors (when asked) beyond the caps.
void check_answer_size(size_t points, const engine::Collection& col,
                       const engine::VectorSelector& with_vector, const std::string& field) {
  WP_THROW_IF_NOT(points <= kMaxAnswerPoints, field, ": the answer would hold ", points,
                  " points, at most ", kMaxAnswerPoints, " are returned by one request");
  const size_t dim = col.most_vector_values();
  WP_THROW_IF_NOT(!with_vector.any() || points * dim <= kMaxAnswerValues, field, ": ", points,
                  " points with vectors of ", dim, " values exceed the ", kMaxAnswerValues,
                  " vector values one answer may hold; ask for fewer points or without vectors");
}

std::vector<engine::ScoredPoint> search_hits(const engine::Collection& col, ParsedSearch& s) {
  check_answer_size(s.query.limit + s.query.offset, col, s.with_vector, "limit");
  s.query.filter = &s.filter;
  return col.search(s.query);
}

json run_search(const engine::Collection& col, ParsedSearch& s) {
  return shown(col, s.payload, s.with_vector).scored(search_hits(col, s));
}

/// Qdrant's recommendation examples: point ids or vectors, positive and negative, and the
/// strategy: "average_vector" (a search at one vector), "best_score" or "sum_scores" (a score of
/// each point against every example).
struct Recommend {
  std::vector<json> positive, negative;
  std::string strategy = "average_vector";
};

/// The most examples one recommendation takes (each is a vector read and, for the scoring
/// strategies, a search).
constexpr size_t kMaxExamples = 256;
/// The most candidates the scoring strategies (best_score, sum_scores) score against every
/// example: their searches share them.
constexpr size_t kMaxScoredCandidates = 50000;

/// Checks an example (a recommendation's, a discovery's) at `at`: a vector or a point id.
void check_example(const json& e, const std::string& at) {
  if (e.is_array()) {
    get_vector(e, at);
  } else {
    engine::PointId::from_json(e, at);
  }
}

Recommend read_recommend(const json& r, const std::string& where) {
  WP_THROW_IF_NOT(r.is_object(), where, ": expected an object with positive and negative");
  Recommend out;
  for (const char* side : {"positive", "negative"}) {
    const std::string at = join(where, side);
    if (!r.contains(side) || r[side].is_null()) continue;
    WP_THROW_IF_NOT(r[side].is_array(), at, ": expected an array of point ids or vectors");
    for (size_t i = 0; i < r[side].size(); ++i) {
      const json& e = r[side][i];
      check_example(e, at + "[" + std::to_string(i) + "]");
      (side[0] == 'p' ? out.positive : out.negative).push_back(e);
    }
  }
  WP_THROW_IF_NOT(out.positive.size() + out.negative.size() <= kMaxExamples, where, ": at most ",
                  kMaxExamples, " positive and negative examples together");
  if (r.contains("strategy") && !r["strategy"].is_null()) {
    const json& st = r["strategy"];
    WP_THROW_IF_NOT(st == "average_vector" || st == "best_score" || st == "sum_scores",
                    join(where, "strategy"),
                    ": expected \"average_vector\", \"best_score\" or \"sum_scores\", got ",
                    engine::show_json(st));
    out.strategy = st.get<std::string>();
  }
  WP_THROW_IF_NOT(
      !out.positive.empty() || (out.strategy != "average_vector" && !out.negative.empty()),
      join(where, "positive"), ": expected at least one point id or vector",
      out.strategy == "average_vector" ? " (the average_vector strategy)" : "");
  return out;
}

/// The vector `vector_name` of point `id`, dense (`in` PointRead::vectors), sparse
/// (PointRead::sparse) or a multivector (PointRead::multi): 404 when the point does not exist, 400
/// when it has no such vector.
template <typename Vectors>
typename Vectors::mapped_type vector_of(const engine::Collection& col, const json& id,
                                        const std::string& at, const std::string& vector_name,
                                        Vectors engine::PointRead::*in) {
  auto found = col.retrieve({engine::PointId::from_json(id, at)}, false,
                            engine::VectorSelector(std::vector<std::string>{vector_name}));
  if (found.empty()) {
    throw NotFoundError("Point with id " + engine::show_json(id) + " does not exists! (" + at +
                        ")");
  }
  Vectors& held = found[0].*in;
  auto it = held.find(vector_name);
  WP_THROW_IF_NOT(it != held.end(), at, ": point ", engine::show_json(id), " has no vector ",
                  engine::show_json(json(vector_name)));
  return std::move(it->second);
}

/// The points `ids` with their `scores`, read with the payloads and vectors `q` asks for.
std::vector<engine::ScoredPoint> read_scored(const engine::Collection& col,
                                             const std::vector<engine::PointId>& ids,
                                             const std::vector<float>& scores,
                                             const engine::SearchQuery& q) {
  std::vector<engine::ScoredPoint> out;
  const std::vector<engine::PointRead> read = col.retrieve(ids, q.with_payload, q.with_vector);
  size_t j = 0;  // retrieve keeps the order asked and leaves out points deleted meanwhile
  for (size_t i = 0; i < ids.size() && j < read.size(); ++i) {
    if (read[j].id == ids[i]) out.push_back({read[j++], scores[i]});
  }
  return out;
}

/// The vector of example `e` (at `at`) in space `shape`: given inline (normalised for cosine, as
/// stored vectors are) or a point's (its id then goes to `used`: left out of the answer, as
/// Qdrant does).
std::vector<float> example_vector(const ExampleSource& src, const json& e, const std::string& at,
                                  const engine::VectorShape& shape,
                                  std::vector<engine::PointId>& used) {
  std::vector<float> v;
  const bool inline_vector = e.is_array();
  if (inline_vector) {
    v = get_vector(e, at);
  } else {
    v = vector_of(src.col, e, at, src.vector, &engine::PointRead::vectors);
    if (src.leave_out) used.push_back(engine::PointId::from_json(e, at));
  }
  WP_THROW_IF_NOT(v.size() == shape.dim, at, ": expected dimension ", shape.dim, ", got ", v.size(),
                  inline_vector ? "" : " (the vector read for it)");
  // Stored vectors of a cosine space are unit length: so is an example given inline or read in
  // another space.
  if (shape.metric == index::Metric::kCosine && (inline_vector || !src.same_space)) {
    WP_THROW_IF_NOT(index::normalize(v.data(), shape.dim) > 0, at,
                    ": the zero vector has no cosine direction");
  }
  return v;
}

/// The vectors of one side's examples (at `at_side`[i]) for space `shape`.
std::vector<std::vector<float>> example_vectors(const ExampleSource& src,
                                                const std::vector<json>& examples,
                                                const std::string& at_side,
                                                const engine::VectorShape& shape,
                                                std::vector<engine::PointId>& used) {
  std::vector<std::vector<float>> out;
  for (size_t i = 0; i < examples.size(); ++i) {
    out.push_back(
        example_vector(src, examples[i], at_side + "[" + std::to_string(i) + "]", shape, used));
  }
  return out;
}

/// The query vector of a recommendation, Qdrant's average_vector: the mean of the positive
/// examples, moved away from the mean of the negative ones (2 * mean+ - mean-).
std::vector<float> recommend_vector(const ExampleSource& src, const Recommend& r,
                                    const std::string& where, const engine::VectorShape& shape,
                                    std::vector<engine::PointId>& used) {
  const size_t d = shape.dim;
  auto mean = [&](const std::vector<json>& examples, const char* side) {
    std::vector<double> sum(d, 0.0);
    for (const std::vector<float>& v :
         example_vectors(src, examples, join(where, side), shape, used)) {
      for (size_t j = 0; j < d; ++j) sum[j] += v[j];
    }
    for (double& x : sum) x /= static_cast<double>(examples.size());
    return sum;
  };
  const std::vector<double> pos = mean(r.positive, "positive");
  std::vector<float> q(d);
  if (r.negative.empty()) {
    for (size_t j = 0; j < d; ++j) q[j] = static_cast<float>(pos[j]);
  } else {
    const std::vector<double> neg = mean(r.negative, "negative");
    for (size_t j = 0; j < d; ++j) q[j] = static_cast<float>(2 * pos[j] - neg[j]);
  }
  return q;
}

/// Search `q` (its filter set) leaving out the points in `used`: it asks for that many more and
/// drops them.
std::vector<engine::ScoredPoint> search_without(const engine::Collection& col,
                                                engine::SearchQuery q,
                                                const std::vector<engine::PointId>& used) {
  if (used.empty()) return col.search(q);
  const size_t offset = q.offset, limit = q.limit;
  q.offset = 0;
  q.limit = std::min(offset + limit + used.size(), index::kMaxK);
  std::vector<engine::ScoredPoint> out;
  size_t skipped = 0;
  for (engine::ScoredPoint& p : col.search(q)) {
    if (std::find(used.begin(), used.end(), p.point.id) != used.end()) continue;
    if (skipped++ < offset) continue;
    if (out.size() == limit) break;
    out.push_back(std::move(p));
  }
  return out;
}

/// The same for search request `s` (its answer's size checked).
std::vector<engine::ScoredPoint> search_hits_without(const engine::Collection& col, ParsedSearch& s,
                                                     const std::vector<engine::PointId>& used) {
  if (used.empty()) return search_hits(col, s);
  check_answer_size(s.query.limit + s.query.offset, col, s.with_vector, "limit");
  s.query.filter = &s.filter;
  return search_without(col, s.query, used);
}

/// A recommend request body (also one element of recommend/batch).
struct ParsedRecommend {
  ParsedSearch s;
  Recommend examples;
  std::string where;
};

ParsedRecommend read_recommend_request(const json& body, const std::string& where) {
  WP_THROW_IF_NOT(body.is_object(), where.empty() ? "body" : where, ": expected an object");
  ParsedRecommend r;
  r.where = where;
  r.examples = read_recommend(body, where);
  read_common(body, where, r.s);
  r.s.query.vector_name = get_using(body, where);
  r.s.where = where;
  // Qdrant's recommend reads ids in lookup_from's unnamed vector unless it names one.
  r.s.lookup = read_lookup_from(body, where, "");
  return r;
}

void resolve_lookups(const engine::Engine& eng, ParsedRecommend& r) {
  resolve_lookup(eng, r.s);
}

/// Qdrant's fast sigmoid into 0..1, which keeps best_score's two branches apart.
float scaled_sigmoid(float x) {
  return 0.5f * (x / (1.0f + std::abs(x)) + 1.0f);
}

/// The points that score best by `score` (higher first, whatever the metric): candidates are
/// the nearest points of each of `seeds` under the request's filter (more than the answer needs:
/// 4 (limit + offset + used), at least 100, each search's share of kMaxScoredCandidates so that
/// the exact scoring stays bounded however many examples a request gives), each scored exactly
/// on its vector in `shape`; the points in `used` (examples) left out; from the request's offset,
/// at most its limit, down to its score_threshold.
std::vector<engine::ScoredPoint> best_scored(const engine::Collection& col, ParsedSearch& s,
                                             const engine::VectorShape& shape,
                                             const std::vector<const std::vector<float>*>& seeds,
                                             std::vector<engine::PointId> used,
                                             const std::function<float(const float*)>& score) {
  engine::SearchQuery q = s.query;
  q.filter = &s.filter;
  q.offset = 0;
  q.with_payload = false;
  q.with_vector = false;
  q.score_threshold.reset();
  const size_t searches = std::max<size_t>(seeds.size(), 1);
  const size_t need = s.query.limit + s.query.offset + used.size();
  q.limit = std::min({index::kMaxK, std::max<size_t>(100, 4 * need),
                      std::max(need / searches + 1, kMaxScoredCandidates / searches)});
  std::vector<engine::PointId> candidates;
  for (const std::vector<float>* v : seeds) {
    q.vector = *v;
    for (const engine::ScoredPoint& h : col.search(q)) candidates.push_back(h.point.id);
  }
  // Each candidate once, the examples' own points left out.
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  std::sort(used.begin(), used.end());
  std::vector<engine::PointId> kept;
  std::set_difference(candidates.begin(), candidates.end(), used.begin(), used.end(),
                      std::back_inserter(kept));
  std::vector<std::pair<float, engine::PointId>> scored;
  for (engine::PointRead& p :
       col.retrieve(kept, false, engine::VectorSelector(std::vector<std::string>{shape.name}))) {
    auto it = p.vectors.find(shape.name);
    if (it == p.vectors.end()) continue;
    const float x = score(it->second.data());
    if (!std::isnan(x)) scored.emplace_back(x, p.id);  // (sums of huge values can overflow)
  }
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<engine::PointId> ids;
  std::vector<float> scores;
  for (size_t i = s.query.offset; i < scored.size() && ids.size() < s.query.limit; ++i) {
    if (s.query.score_threshold && scored[i].first < *s.query.score_threshold) break;
    ids.push_back(scored[i].second);
    scores.push_back(scored[i].first);
  }
  return read_scored(col, ids, scores, s.query);
}

/// The points that score best against the examples themselves (best_score: the best similarity
/// to a positive, as sigmoid(it), when it beats the best to a negative, else -sigmoid(the best to
/// a negative); without negatives, the best to a positive as it is; sum_scores: the similarities
/// to the positives summed less those to the negatives; similarity is -distance for Euclid).
/// Candidates are the nearest points of each example and of their combined direction.
std::vector<engine::ScoredPoint> recommend_by_scores(const engine::Collection& col,
                                                     const Recommend& r, ParsedSearch& s,
                                                     const std::string& where) {
  check_answer_size(s.query.limit + s.query.offset, col, s.with_vector, "limit");
  const engine::VectorShape& shape = col.vector_shape(s.query.vector_name, "using");
  const ExampleSource src = source_of(col, s);
  std::vector<engine::PointId> used;
  const auto pos = example_vectors(src, r.positive, join(where, "positive"), shape, used);
  const auto neg = example_vectors(src, r.negative, join(where, "negative"), shape, used);
  const index::DistanceFn distance = index::distance_fn(shape.metric, shape.dim);
  auto similarity = [&](const std::vector<float>& a, const float* b) {
    const float d = distance(a.data(), b, shape.dim);
    return shape.metric == index::Metric::kL2 ? -std::sqrt(std::max(d, 0.0f)) : -d;
  };
  auto score = [&](const float* v) {
    float best_pos = -INFINITY, best_neg = -INFINITY, sum = 0;
    for (const auto& p : pos) {
      const float x = similarity(p, v);
      best_pos = std::max(best_pos, x);
      sum += x;
    }
    for (const auto& n : neg) {
      const float x = similarity(n, v);
      best_neg = std::max(best_neg, x);
      sum -= x;
    }
    if (r.strategy == "sum_scores") return sum;
    if (neg.empty()) return best_pos;
    return best_pos > best_neg ? scaled_sigmoid(best_pos) : -scaled_sigmoid(best_neg);
  };
  std::vector<const std::vector<float>*> seeds;
  for (const auto* side : {&pos, &neg}) {
    for (const std::vector<float>& v : *side) seeds.push_back(&v);
  }
  // And the nearest along the examples' combined direction: the positives summed less the
  // negatives, whose similarity order is sum_scores' own for Dot and Cosine (the positives' mean
  // for Euclid).
  std::vector<float> combined(shape.dim, 0.0f);
  double norm = 0;
  for (size_t j = 0; j < shape.dim; ++j) {
    for (const auto& p : pos) combined[j] += p[j];
    if (shape.metric != index::Metric::kL2) {
      for (const auto& n : neg) combined[j] -= n[j];
    } else if (!pos.empty()) {
      combined[j] /= static_cast<float>(pos.size());
    }
    norm += double{combined[j]} * combined[j];
  }
  if (norm > 0 && std::isfinite(norm)) seeds.push_back(&combined);
  return best_scored(col, s, shape, seeds, std::move(used), score);
}

/// Qdrant's discovery (a target and context pairs) and context search (pairs alone). A pair's
/// examples are a positive and a negative, each a vector or a point id.
struct Discover {
  json target;  ///< null: a context search
  std::vector<std::pair<json, json>> pairs;
  std::string target_at;              ///< where the request gives the target
  std::vector<std::string> pairs_at;  ///< and each pair
};

/// Reads a discovery's target (null: none) and context (one {"positive", "negative"} pair, an
/// array of them, or null), naming them `at_target` and `at_context`.
Discover read_discover(const json& target, const json& context, const std::string& at_target,
                       const std::string& at_context) {
  Discover d;
  if (!target.is_null()) {
    check_example(target, at_target);
    d.target = target;
    d.target_at = at_target;
  }
  WP_THROW_IF_NOT(context.is_null() || context.is_object() || context.is_array(), at_context,
                  ": expected a {\"positive\", \"negative\"} pair or an array of them, got ",
                  engine::show_json(context));
  const json pairs = context.is_object() ? json::array({context}) : context;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const std::string at =
        context.is_array() ? at_context + "[" + std::to_string(i) + "]" : at_context;
    const json& pair = pairs[i];
    WP_THROW_IF_NOT(pair.is_object(), at, ": expected {\"positive\", \"negative\"}, got ",
                    engine::show_json(pair));
    for (const char* side : {"positive", "negative"}) {
      WP_THROW_IF_NOT(pair.contains(side) && !pair[side].is_null(), join(at, side),
                      ": missing (a vector or a point id)");
      check_example(pair[side], join(at, side));
    }
    d.pairs.emplace_back(pair["positive"], pair["negative"]);
    d.pairs_at.push_back(at);
  }
  WP_THROW_IF_NOT(2 * d.pairs.size() + !d.target.is_null() <= kMaxExamples, at_context,
                  ": at most ", kMaxExamples, " examples (a target and pairs) together");
  return d;
}

/// The points that score best as Qdrant's discovery scores them: with a target, the pairs'
/// rank (+1 for each pair whose positive is more similar than its negative, -1 for each the
/// other way, 0 for a tie) plus the target's similarity squashed into (0, 1) (so that the rank
/// decides and the target orders within it); without, the sum over pairs of
/// fast_sigmoid(min(similarity to the positive - to the negative - epsilon, 0)): 0 for a point
/// on every pair's positive side, less the more it strays. Similarity is the dot product (of unit
/// vectors for Cosine) or minus the squared Euclidean distance. Candidates are the nearest points
/// of the target and of the positives; the examples' own points are left out.
std::vector<engine::ScoredPoint> discover_hits(const engine::Collection& col, const Discover& d,
                                               ParsedSearch& s) {
  check_answer_size(s.query.limit + s.query.offset, col, s.with_vector, "limit");
  const engine::VectorShape& shape = col.vector_shape(s.query.vector_name, "using");
  const ExampleSource src = source_of(col, s);
  std::vector<engine::PointId> used;
  std::vector<std::vector<float>> pos, neg, target;
  if (!d.target.is_null()) {
    target.push_back(example_vector(src, d.target, d.target_at, shape, used));
  }
  for (size_t i = 0; i < d.pairs.size(); ++i) {
    const std::string& at = d.pairs_at[i];
    pos.push_back(example_vector(src, d.pairs[i].first, join(at, "positive"), shape, used));
    neg.push_back(example_vector(src, d.pairs[i].second, join(at, "negative"), shape, used));
  }
  const index::DistanceFn distance = index::distance_fn(shape.metric, shape.dim);
  auto similarity = [&](const std::vector<float>& a, const float* b) {
    return -distance(a.data(), b, shape.dim);  // -|a - b|^2, or the dot product
  };
  auto score = [&](const float* v) {
    if (target.empty()) {
      float loss = 0;
      for (size_t i = 0; i < pos.size(); ++i) {
        const float x = std::min(
            similarity(pos[i], v) - similarity(neg[i], v) - std::numeric_limits<float>::epsilon(),
            0.0f);
        loss += x / (1.0f + std::abs(x));
      }
      return loss;
    }
    int rank = 0;
    for (size_t i = 0; i < pos.size(); ++i) {
      const float p = similarity(pos[i], v), n = similarity(neg[i], v);
      rank += (p > n) - (p < n);
    }
    return static_cast<float>(rank) + scaled_sigmoid(similarity(target[0], v));
  };
  std::vector<const std::vector<float>*> seeds;
  for (const auto* group : {&target, &pos}) {
    for (const std::vector<float>& v : *group) seeds.push_back(&v);
  }
  return best_scored(col, s, shape, seeds, std::move(used), score);
}

/// The hits of a recommendation, as its strategy says.
std::vector<engine::ScoredPoint> recommend_hits(const engine::Collection& col, const Recommend& r,
                                                ParsedSearch& s, const std::string& where) {
  if (r.strategy != "average_vector") return recommend_by_scores(col, r, s, where);
  std::vector<engine::PointId> used;
  s.query.vector = recommend_vector(source_of(col, s), r, where,
                                    col.vector_shape(s.query.vector_name, "using"), used);
  return search_hits_without(col, s, used);
}

json run_recommend(const engine::Collection& col, ParsedRecommend& r) {
  return shown(col, r.s.payload, r.s.with_vector)
      .scored(recommend_hits(col, r.examples, r.s, r.where));
}

/// Qdrant's order_by: a key, or {"key", "direction": "asc"|"desc", "start_from": number}.
struct OrderBy {
  std::string key;
  bool descending = false;
  std::optional<double> start_from;
};

OrderBy read_order_by(const json& j, const std::string& where) {
  OrderBy o;
  if (j.is_string()) {
    o.key = j.get<std::string>();
  } else {
    WP_THROW_IF_NOT(j.is_object(), where,
                    ": expected a key or {\"key\", \"direction\", \"start_from\"}, got ",
                    engine::show_json(j));
    engine::check_fields(j, where, {"key", "direction", "start_from"});
    WP_THROW_IF_NOT(j.contains("key") && j["key"].is_string(), where, ".key: expected a key path");
    o.key = j["key"].get<std::string>();
    if (j.contains("direction") && !j["direction"].is_null()) {
      const json& d = j["direction"];
      WP_THROW_IF_NOT(d == "asc" || d == "desc", where,
                      ".direction: expected \"asc\" or \"desc\", got ", engine::show_json(d));
      o.descending = d == "desc";
    }
    if (j.contains("start_from") && !j["start_from"].is_null()) {
      const json& f = j["start_from"];
      WP_THROW_IF_NOT(f.is_number() && std::isfinite(f.get<double>()), where,
                      ".start_from: expected a number (datetimes are not supported yet), got ",
                      engine::show_json(f));
      o.start_from = f.get<double>();
    }
  }
  engine::parse_json_path(json(o.key), join(where, "key"));
  return o;
}

/// The points in order of `o`: records with their "order_value" (and a score of 0 when `scored`,
/// for the query family's answers).
json ordered_json(const engine::Collection& col, const OrderBy& o, const engine::Filter& filter,
                  size_t limit, const PayloadSelector& payload,
                  const engine::VectorSelector& with_vector, bool scored) {
  check_answer_size(limit, col, with_vector, "limit");
  const Shown show = shown(col, payload, with_vector);
  json out = json::array();
  for (const auto& r : col.ordered(o.key, o.descending, o.start_from, &filter, limit,
                                   payload.enabled, with_vector)) {
    json j = show.record(r.point);
    const double v = r.value;
    j["order_value"] =
        std::trunc(v) == v && std::abs(v) < 9e15 ? json(static_cast<int64_t>(v)) : json(v);
    if (scored) {
      j["version"] = 0;
      j["score"] = 0;
    }
    out.push_back(std::move(j));
  }
  return out;
}

/// The search a parsed request runs (a plain search is its own; queries and recommendations
/// hold one).
const ParsedSearch& search_of(const ParsedSearch& s) {
  return s;
}
template <typename T>
const ParsedSearch& search_of(const T& t) {
  return t.s;
}

/// A batch body {"searches": [...]} (search, query and recommend batches): at most
/// kMaxBatchSearches requests, every one parsed by `read` before any runs (one bad request fails
/// the batch), their answers together within the caps, then each run by `run`.
template <typename Read, typename Run>
json run_batch(const engine::Collection& col, const json& body, const char* kind, const Read& read,
               const Run& run) {
  WP_THROW_IF_NOT(body.is_object() && body.contains("searches") && body["searches"].is_array(),
                  "searches: expected an array of ", kind, " requests");
  const size_t n = body["searches"].size();
  WP_THROW_IF_NOT(n <= kMaxBatchSearches, "searches: at most ", kMaxBatchSearches, " ", kind,
                  " requests per batch, got ", n);
  std::vector<decltype(read(json(), std::string()))> parsed;
  size_t points = 0;
  bool vectors = false;
  for (size_t i = 0; i < n; ++i) {
    parsed.push_back(read(body["searches"][i], "searches[" + std::to_string(i) + "]"));
    const ParsedSearch& s = search_of(parsed.back());
    points += s.query.limit + s.query.offset;
    vectors = vectors || s.with_vector.any();
  }
  check_answer_size(points, col, vectors, "searches");
  json out = json::array();
  for (auto& p : parsed) out.push_back(run(col, p));
  return out;
}

}  // namespace

json Api::recommend_points(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  ParsedRecommend r = resolving(engine_, read_recommend_request)(parse_body(*c.body), "");
  return run_recommend(*col, r);
}

json Api::recommend_batch(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return run_batch(*col, parse_body(*c.body), "recommend",
                   resolving(engine_, read_recommend_request), run_recommend);
}

json Api::get_point(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const std::string& raw = c.path.at("id");
  const bool numeric = !raw.empty() && raw.find_first_not_of("0123456789") == std::string::npos;
  json id_json;
  if (numeric) {
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), n);
    WP_THROW_IF_NOT(ec == std::errc() && end == raw.data() + raw.size(),
                    "id: ", engine::show_text(raw), " is out of range for an unsigned 64-bit id");
    id_json = n;
  } else {
    id_json = raw;
  }
  const engine::PointId id = engine::PointId::from_json(id_json, "id");
  auto found = col->retrieve({id}, true, true);
  if (found.empty()) {
    throw NotFoundError("Point with id " + engine::show_text(raw) + " does not exists!");
  }
  PayloadSelector all;
  all.enabled = true;
  return shown(*col, all, true).record(found[0]);
}

namespace {

/// The records a retrieve body ({"ids", "with_payload", "with_vector"}) asks of `col`, fields
/// named after `where`.
json retrieve_records(const engine::Collection& col, const json& body, const std::string& where) {
  WP_THROW_IF_NOT(body.contains("ids"), join(where, "ids"), ": missing");
  const PayloadSelector payload = get_payload_selector(body, where, true);
  const engine::VectorSelector with_vector = get_with_vector(body, where, false);
  const std::vector<engine::PointId> ids = get_ids(body["ids"], join(where, "ids"));
  check_answer_size(ids.size(), col, with_vector, join(where, "ids"));
  const Shown show = shown(col, payload, with_vector);
  json out = json::array();
  for (const engine::PointRead& p : col.retrieve(ids, payload.enabled, with_vector)) {
    out.push_back(show.record(p));
  }
  return out;
}

}  // namespace

json Api::get_points(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return retrieve_records(*col, parse_body(*c.body), "");
}

json Api::count_points(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const json body = parse_body(*c.body, true);
  const engine::Filter filter = get_filter(body, "");
  get_bool(body, "exact", "", true);  // counts are always exact here
  return json{{"count", col->count(&filter)}};
}

json Api::scroll_points(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const json body = parse_body(*c.body, true);
  const engine::Filter filter = get_filter(body, "");
  const size_t limit = get_count(body, "limit", "", 10, 1, index::kMaxK);
  std::optional<engine::PointId> offset;
  if (body.contains("offset") && !body["offset"].is_null()) {
    offset = engine::PointId::from_json(body["offset"], "offset");
  }
  const PayloadSelector payload = get_payload_selector(body, "", true);
  const engine::VectorSelector with_vector = get_with_vector(body, "", false);
  if (body.contains("order_by") && !body["order_by"].is_null()) {
    WP_THROW_IF_NOT(!offset, "offset: cannot be used with order_by (use order_by.start_from)");
    const OrderBy o = read_order_by(body["order_by"], "order_by");
    return json{{"points", ordered_json(*col, o, filter, limit, payload, with_vector, false)},
                {"next_page_offset", nullptr}};
  }
  check_answer_size(limit, *col, with_vector, "limit");
  const auto page = col->scroll(&filter, limit, offset, payload.enabled, with_vector);
  const Shown show = shown(*col, payload, with_vector);
  json points = json::array();
  for (const engine::PointRead& p : page.points) points.push_back(show.record(p));
  return json{{"points", points}, {"next_page_offset", page.next ? page.next->to_json() : json()}};
}

json Api::search_points(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  ParsedSearch s = read_search(parse_body(*c.body), "");
  return run_search(*col, s);
}

namespace {

/// The hits of a plain search appended as JSON text: a list (/points/search) or {"points": [...]}
/// (/points/query).
void append_plain_hits(std::string& out, const engine::Collection& col, PlainSearch& plain,
                       PlainRoute route) {
  ParsedSearch s;
  s.query = std::move(plain.query);
  if (plain.filter) s.filter = std::move(*plain.filter);  // search_hits points the query at it
  s.payload.enabled = plain.with_payload;
  s.with_vector = plain.with_vector;
  const Shown show = shown(col, s.payload, s.with_vector);
  const std::vector<engine::ScoredPoint> hits = search_hits(col, s);
  out.reserve(out.size() + 64 + 80 * hits.size());
  out += route == PlainRoute::kQuery ? "{\"points\":[" : "[";
  for (size_t i = 0; i < hits.size(); ++i) {
    if (i > 0) out += ',';
    show.append_scored(out, hits[i]);
  }
  out += route == PlainRoute::kQuery ? "]}" : "]";
}

/// The envelope around a plain answer's result.
std::string plain_envelope(const std::string& result, const std::function<double()>& seconds) {
  std::string out;
  out.reserve(result.size() + 64);
  out += "{\"result\":";
  out += result;
  out += ",\"status\":\"ok\",\"time\":";
  append_json_number(out, seconds());
  out += '}';
  return out;
}

/// A plain search body's whole answer, written as text; nullopt when the body is not plain (the
/// DOM path answers).
std::optional<std::string> plain_answer(engine::Engine& engine, const Call& c, PlainRoute route,
                                        const std::function<double()>& seconds) {
  std::optional<PlainSearch> plain = read_plain_search(*c.body, route);
  if (!plain) return std::nullopt;
  const auto held = engine.collection(c.path.at("name"));
  // A sparse or multivector space says how it is searched on the DOM path.
  const std::string& name = plain->query.vector_name;
  if (held->is_sparse(name) || held->is_multi(name)) return std::nullopt;
  // As query_hits does first: a `using` the collection lacks is named before the search.
  if (route == PlainRoute::kQuery) held->vector_shape(name, "using");
  std::string result;
  append_plain_hits(result, *held, *plain, route);
  return plain_envelope(result, seconds);
}

/// A plain batch body's whole answer (a list of the searches' answers), as run_batch answers it;
/// nullopt when the body is not plain, or when a search would fail (a `using` the collection
/// lacks, a vector of another dimension): the DOM path names the request and the field.
std::optional<std::string> plain_batch_answer(engine::Engine& engine, const Call& c,
                                              PlainRoute route,
                                              const std::function<double()>& seconds) {
  std::optional<std::vector<PlainSearch>> batch =
      read_plain_batch(*c.body, route, kMaxBatchSearches);
  if (!batch) return std::nullopt;
  const auto held = engine.collection(c.path.at("name"));
  const engine::Collection& col = *held;
  size_t points = 0;
  bool vectors = false;
  for (const PlainSearch& p : *batch) {
    const auto& shapes = col.vector_shapes();
    const auto shape = std::find_if(shapes.begin(), shapes.end(),
                                    [&](const auto& v) { return v.name == p.query.vector_name; });
    if (shape == shapes.end() || shape->dim != p.query.vector.size()) return std::nullopt;
    points += p.query.limit + p.query.offset;
    vectors = vectors || p.with_vector;
  }
  check_answer_size(points, col, vectors, "searches");
  std::string result = "[";
  for (size_t i = 0; i < batch->size(); ++i) {
    if (i > 0) result += ',';
    append_plain_hits(result, col, (*batch)[i], route);
  }
  result += ']';
  return plain_envelope(result, seconds);
}

}  // namespace

std::optional<std::string> Api::search_points_plain(const Call& c,
                                                    const std::function<double()>& seconds) {
  return plain_answer(engine_, c, PlainRoute::kSearch, seconds);
}

std::optional<std::string> Api::query_points_plain(const Call& c,
                                                   const std::function<double()>& seconds) {
  return plain_answer(engine_, c, PlainRoute::kQuery, seconds);
}

std::optional<std::string> Api::search_batch_plain(const Call& c,
                                                   const std::function<double()>& seconds) {
  return plain_batch_answer(engine_, c, PlainRoute::kSearch, seconds);
}

std::optional<std::string> Api::query_batch_plain(const Call& c,
                                                  const std::function<double()>& seconds) {
  return plain_batch_answer(engine_, c, PlainRoute::kQuery, seconds);
}

json Api::search_batch(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return run_batch(*col, parse_body(*c.body), "search", read_search, run_search);
}

namespace {

/// Prefetches in one query (nested ones included) and how deep they nest.
constexpr size_t kMaxPrefetches = 64;
constexpr size_t kMaxPrefetchDepth = 4;

/// A universal query request (`points/query`, one element of `query/batch`, a prefetch),
/// parsed; `query` (null: points in id order) is resolved against the collection when it runs.
struct ParsedQuery {
  ParsedSearch s;
  json query;
  std::string where;
  std::optional<Recommend> recommend;  ///< query {"recommend": {...}}
  std::optional<Discover> discover;    ///< query {"discover": {...}} or {"context": ...}
  bool sample = false;                 ///< query {"sample": "random"}
  std::optional<OrderBy> order_by;     ///< query {"order_by": ...}
  std::optional<Fusion> fusion;        ///< query {"fusion": ...} or {"rrf": {...}}
  std::optional<Mmr> mmr;              ///< query {"nearest": ..., "mmr": {...}}
  /// query {"formula": ..., "defaults": {...}}: the prefetched points scored by it
  std::shared_ptr<const engine::Formula> formula;
  std::vector<ParsedQuery> prefetch;  ///< the candidates of this query
};

ParsedQuery read_query_at(const json& body, const std::string& where, size_t depth,
                          size_t& prefetches) {
  WP_THROW_IF_NOT(body.is_object(), where.empty() ? "body" : where, ": expected an object");
  ParsedQuery p;
  p.where = where;
  ParsedSearch& s = p.s;
  read_common(body, where, s);
  s.query.vector_name = get_using(body, where);
  s.where = where;
  s.lookup = read_lookup_from(body, where, s.query.vector_name);
  if (body.contains("prefetch") && !body["prefetch"].is_null()) {
    const std::string at = join(where, "prefetch");
    WP_THROW_IF_NOT(depth < kMaxPrefetchDepth, at, ": prefetches nest at most ", kMaxPrefetchDepth,
                    " deep");
    const json& list = body["prefetch"];
    WP_THROW_IF_NOT(list.is_object() || list.is_array(), at,
                    ": expected a prefetch object or an array of them");
    const json items = list.is_array() ? list : json::array({list});
    for (size_t i = 0; i < items.size(); ++i) {
      WP_THROW_IF_NOT(++prefetches <= kMaxPrefetches, at, ": at most ", kMaxPrefetches,
                      " prefetches in one query");
      const std::string item = list.is_array() ? at + "[" + std::to_string(i) + "]" : at;
      p.prefetch.push_back(read_query_at(items[i], item, depth + 1, prefetches));
      for (const char* field : {"offset", "with_payload", "with_vector"}) {
        WP_THROW_IF_NOT(!items[i].contains(field), item, ".", field, ": not a field of a prefetch");
      }
    }
  }
  if (body.contains("query")) p.query = body["query"];
  const std::string at = join(where, "query");
  const json& q = p.query;
  // Everything but a point id's vector is checked here, before any query of a batch runs.
  if (is_multi_json(q)) {
    s.query.multi = get_multi_vector(q, at);
  } else if (q.is_array()) {
    s.query.vector = get_vector(q, at);
  } else if (q.is_object() && (q.contains("indices") || q.contains("values"))) {
    s.query.sparse = get_sparse_vector(q, at);
  } else if (q.is_object() && (q.contains("fusion") || q.contains("rrf"))) {
    WP_THROW_IF_NOT(q.size() == 1, at, ": expected {\"fusion\": \"rrf\"|\"dbsf\"} alone, got ",
                    engine::show_json(q));
    WP_THROW_IF_NOT(!p.prefetch.empty(), at, ": fusion combines prefetches; give \"prefetch\"");
    p.fusion = read_fusion(q, at);
    WP_THROW_IF_NOT(p.fusion->weights.empty() || p.fusion->weights.size() == p.prefetch.size(), at,
                    ".rrf.weights: expected one weight per prefetch (", p.prefetch.size(),
                    "), got ", p.fusion->weights.size());
  } else if (q.is_object() && q.contains("formula")) {
    engine::check_fields(q, at, {"formula", "defaults"});
    WP_THROW_IF_NOT(!p.prefetch.empty(), at,
                    ": a formula scores the points of prefetches; give \"prefetch\"");
    p.formula = std::make_shared<const engine::Formula>(
        engine::Formula::parse(q["formula"], q.value("defaults", json()), at));
  } else if (q.is_object() && q.contains("order_by")) {
    WP_THROW_IF_NOT(q.size() == 1, at, ": expected {\"order_by\": ...} alone, got ",
                    engine::show_json(q));
    WP_THROW_IF_NOT(p.prefetch.empty(), at, ": order_by over prefetches is not supported");
    p.order_by = read_order_by(q["order_by"], at + ".order_by");
  } else if (q.is_object() && q.contains("recommend")) {
    WP_THROW_IF_NOT(q.size() == 1, at, ": expected {\"recommend\": {...}} alone, got ",
                    engine::show_json(q));
    WP_THROW_IF_NOT(p.prefetch.empty(), at, ": recommend over prefetches is not supported");
    p.recommend = read_recommend(q["recommend"], at + ".recommend");
  } else if (q.is_object() && q.contains("sample")) {
    WP_THROW_IF_NOT(q.size() == 1, at, ": expected {\"sample\": \"random\"} alone, got ",
                    engine::show_json(q));
    WP_THROW_IF_NOT(q["sample"] == "random", at, ".sample: expected \"random\", got ",
                    engine::show_json(q["sample"]));
    p.sample = true;
    s.query.score_threshold.reset();  // every point scores 1 (Qdrant ignores it here)
  } else if (q.is_object() && (q.contains("discover") || q.contains("context"))) {
    const std::string kind = q.contains("discover") ? "discover" : "context";
    WP_THROW_IF_NOT(q.size() == 1, at, ": expected {\"", kind, "\": ...} alone, got ",
                    engine::show_json(q));
    WP_THROW_IF_NOT(p.prefetch.empty(), at, ": ", kind, " over prefetches is not supported");
    if (kind == "context") {
      p.discover = read_discover(json(), q["context"], "", at + ".context");
    } else {
      const json& d = q["discover"];
      const std::string in = at + ".discover";
      WP_THROW_IF_NOT(d.is_object(), in, ": expected {\"target\", \"context\"}, got ",
                      engine::show_json(d));
      WP_THROW_IF_NOT(d.contains("target") && !d["target"].is_null(), in,
                      ".target: missing (a vector or a point id)");
      WP_THROW_IF_NOT(d.contains("context"), in,
                      ".context: missing (pairs of positive and negative examples)");
      p.discover = read_discover(d["target"], d["context"], in + ".target", in + ".context");
    }
  } else if (q.is_object()) {
    WP_THROW_IF_NOT(
        q.contains("nearest") && q.size() == size_t{1} + q.count("mmr"), at,
        ": expected {\"nearest\": vector or id}, {\"recommend\": {...}}, "
        "{\"discover\": {...}}, {\"context\": ...}, {\"order_by\": ...}, "
        "{\"sample\": \"random\"}, {\"formula\": ...} or {\"fusion\": \"rrf\"|\"dbsf\"}, "
        "got ",
        engine::show_json(q));
    if (is_multi_json(q["nearest"])) {
      s.query.multi = get_multi_vector(q["nearest"], at + ".nearest");
    } else if (q["nearest"].is_array()) {
      s.query.vector = get_vector(q["nearest"], at + ".nearest");
    } else if (q["nearest"].is_object()) {
      s.query.sparse = get_sparse_vector(q["nearest"], at + ".nearest");
    } else {
      engine::PointId::from_json(q["nearest"], at + ".nearest");
    }
    if (q.contains("mmr")) p.mmr = read_mmr(q["mmr"], at + ".mmr");
  } else if (q.is_number() || q.is_string()) {
    engine::PointId::from_json(q, at);
  } else {
    WP_THROW_IF_NOT(q.is_null(), at,
                    ": expected a vector, {\"nearest\": vector or id}, or a point id, got ",
                    engine::show_json(q));
    WP_THROW_IF_NOT(p.prefetch.size() <= 1, at,
                    ": several prefetches need a query that combines them (a vector, or "
                    "{\"fusion\": \"rrf\"|\"dbsf\"})");
    WP_THROW_IF_NOT(depth == 0 || !p.prefetch.empty(), at, ": a prefetch needs a query");
  }
  return p;
}

ParsedQuery read_query(const json& body, const std::string& where) {
  size_t prefetches = 0;
  return read_query_at(body, where, 0, prefetches);
}

/// resolve_lookup for query `p` and every prefetch.
void resolve_lookups(const engine::Engine& eng, ParsedQuery& p) {
  resolve_lookup(eng, p.s);
  for (ParsedQuery& child : p.prefetch) resolve_lookups(eng, child);
}

/// Qdrant's MMR for search `s`: of its candidates, the nearest `mmr.candidates` points (limit +
/// offset when not given) that `candidates_of` finds for a query asking for them with their
/// vectors of the searched space, a page of offset + limit is chosen (mmr_page), each with its own
/// score, read as `s` asks. Without prefetches the candidates are the search's nearest; over
/// prefetches, the prefetched points scored by the query vector (as Qdrant: a nearest rescoring of
/// candidates_limit on each shard, then MMR over them all).
template <typename Find>
std::vector<engine::ScoredPoint> mmr_hits(const engine::Collection& col, ParsedSearch& s,
                                          const Mmr& mmr, const std::string& at,
                                          const Find& candidates_of) {
  const engine::VectorShape& shape = col.vector_shape(s.query.vector_name, "using");
  const size_t offset = s.query.offset, limit = s.query.limit;
  check_answer_size(offset + limit, col, s.with_vector, "limit");
  const size_t candidates = mmr_candidates(mmr, offset + limit, shape.dim, at);
  engine::SearchQuery c = s.query;  // the candidates' query, with their vectors
  c.offset = 0;
  c.limit = std::min(candidates, index::kMaxK);
  c.with_payload = false;
  c.with_vector = engine::VectorSelector(std::vector<std::string>{shape.name});
  std::vector<engine::ScoredPoint> found = candidates_of(c);
  std::vector<std::vector<float>> vectors;
  for (engine::ScoredPoint& h : found) vectors.push_back(std::move(h.point.vectors.at(shape.name)));
  std::vector<engine::PointId> ids;
  std::vector<float> scores;
  for (const size_t i :
       mmr_page(s.query.vector, vectors, shape.metric, mmr.lambda, offset, limit)) {
    ids.push_back(found[i].point.id);
    scores.push_back(found[i].score);
  }
  return read_scored(col, ids, scores, s.query);
}

/// Qdrant's formula query: the points of the prefetches `lists` (each once) scored by `f`,
/// highest first (ties in the order the prefetches list them), those of at least q's score
/// threshold, from q's offset, at most its limit, read as q asks.
std::vector<engine::ScoredPoint> formula_hits(const engine::Collection& col,
                                              const engine::Formula& f,
                                              const std::vector<Ranked>& lists,
                                              const engine::SearchQuery& q) {
  std::vector<std::unordered_map<engine::PointId, float>> scores(lists.size());
  std::vector<engine::PointId> ids;
  for (size_t i = 0; i < lists.size(); ++i) {
    for (const engine::ScoredPoint& h : lists[i].points) {
      scores[i].emplace(h.point.id, h.score);
      ids.push_back(h.point.id);
    }
  }
  std::vector<std::pair<float, engine::PointId>> scored;
  col.visit(ids, [&](const engine::PointId& id, const engine::PackedPayload& payload,
                     const std::function<bool(const engine::Filter&)>& holds) {
    engine::Formula::Point point;
    point.prefetch_score = [&](size_t i) -> std::optional<float> {
      if (i >= scores.size()) return std::nullopt;
      const auto it = scores[i].find(id);
      if (it == scores[i].end()) return std::nullopt;
      return it->second;
    };
    point.payload = &payload;
    point.holds = holds;
    point.id = &id;
    scored.emplace_back(f.score(point), id);
  });
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<engine::PointId> page;
  std::vector<float> page_scores;
  for (size_t i = q.offset; i < scored.size() && page.size() < q.limit; ++i) {
    if (q.score_threshold && scored[i].first < *q.score_threshold) break;
    page.push_back(scored[i].second);
    page_scores.push_back(scored[i].first);
  }
  return read_scored(col, page, page_scores, q);
}

/// The hits of query `p` with the filters of the queries around it (`outer`): a plain search
/// (vector, point id, nearest, recommend) or, with prefetches, their fusion or their candidates
/// scored by the query vector. From `p`'s offset, at most its limit, with the payloads and
/// vectors it asks for.
Ranked query_hits(const engine::Collection& col, ParsedQuery& p, const json& outer) {
  ParsedSearch& s = p.s;
  const json& q = p.query;
  const json filter = both_filters(outer, s.filter_json);
  if (!outer.is_null()) s.filter = engine::Filter::parse(filter, join(p.where, "filter"));
  Ranked out;
  const bool has_vector =
      !p.fusion && !p.sample && !p.formula && !(q.is_null() && p.prefetch.size() == 1);
  // A point id (or {"nearest": id}): search by its vector, the point itself left out (by the
  // search here; over prefetches by the filter run_query adds, referenced_ids).
  std::vector<engine::PointId> used;
  if (has_vector && (col.is_sparse(s.query.vector_name) || col.is_multi(s.query.vector_name))) {
    // A sparse or multivector space: searched by a vector of its kind, or by a point's (the
    // point left out).
    const bool sparse = col.is_sparse(s.query.vector_name);
    const char* kind = sparse ? "sparse vector" : "multivector";
    const std::string at = join(p.where, "query");
    WP_THROW_IF_NOT(!p.recommend && !p.discover && !p.mmr, at, ": ",
                    engine::show_json(json(s.query.vector_name)), " is a ", kind,
                    ": only nearest (and rescoring prefetches) searches it");
    const json* id = q.is_number() || q.is_string() ? &q
                     : q.is_object() && q.contains("nearest") &&
                             (q["nearest"].is_number() || q["nearest"].is_string())
                         ? &q["nearest"]
                         : nullptr;
    if (id) {
      const ExampleSource src = source_of(col, s);
      WP_THROW_IF_NOT(sparse ? src.col.is_sparse(src.vector) : src.col.is_multi(src.vector), at,
                      ": ", engine::show_json(json(src.vector)),
                      " of the collection read is not a ", kind);
      const std::string from = id == &q ? at : at + ".nearest";
      if (sparse) {
        s.query.sparse = vector_of(src.col, *id, from, src.vector, &engine::PointRead::sparse);
      } else {
        s.query.multi = vector_of(src.col, *id, from, src.vector, &engine::PointRead::multi);
      }
      if (src.leave_out) used.push_back(engine::PointId::from_json(*id, at));
    }
  } else if (has_vector) {
    const engine::VectorShape& shape =
        col.vector_shape(s.query.vector_name, join(p.where, "using"));
    if (!p.recommend && !p.discover && q.is_object() && q.contains("nearest") &&
        !q["nearest"].is_array() && !q["nearest"].is_object()) {
      s.query.vector = example_vector(source_of(col, s), q["nearest"],
                                      join(p.where, "query.nearest"), shape, used);
    } else if (q.is_number() || q.is_string()) {
      s.query.vector = example_vector(source_of(col, s), q, join(p.where, "query"), shape, used);
    }
    out.small_better = shape.metric == index::Metric::kL2;
  }
  if (p.prefetch.empty()) {
    if (p.recommend) {
      if (p.recommend->strategy != "average_vector") out.small_better = false;
      out.points = recommend_hits(col, *p.recommend, s, join(p.where, "query.recommend"));
    } else if (p.discover) {
      out.small_better = false;
      out.points = discover_hits(col, *p.discover, s);
    } else if (p.sample) {
      // Random points under the filter, each scored 1 as Qdrant scores them; no offset (Qdrant
      // ignores it: the order is not stable).
      check_answer_size(s.query.limit, col, s.with_vector, "limit");
      for (engine::PointRead& r :
           col.sample(&s.filter, s.query.limit, s.query.with_payload, s.query.with_vector)) {
        out.points.push_back({std::move(r), 1.0f});
      }
    } else if (p.mmr) {
      s.query.filter = &s.filter;
      out.points =
          mmr_hits(col, s, *p.mmr, join(p.where, "query.mmr"),
                   [&](const engine::SearchQuery& c) { return search_without(col, c, used); });
    } else {
      out.points = search_hits_without(col, s, used);
    }
    return out;
  }
  std::vector<Ranked> lists;
  for (ParsedQuery& child : p.prefetch) {
    child.s.query.offset = 0;
    child.s.query.with_payload = false;
    child.s.query.with_vector = false;
    lists.push_back(query_hits(col, child, filter));
  }
  check_answer_size(s.query.limit + s.query.offset, col, s.with_vector, "limit");
  if (has_vector) {  // the prefetched points, scored by this query's vector
    std::vector<engine::PointId> ids;
    for (const Ranked& l : lists) {
      for (const engine::ScoredPoint& h : l.points) ids.push_back(h.point.id);
    }
    s.query.filter = &s.filter;
    if (p.mmr) {
      out.points = mmr_hits(col, s, *p.mmr, join(p.where, "query.mmr"),
                            [&](const engine::SearchQuery& c) { return col.rescore(ids, c); });
    } else {
      out.points = col.rescore(ids, s.query);
    }
    return out;
  }
  if (p.formula) {
    out.small_better = false;
    out.points = formula_hits(col, *p.formula, lists, s.query);
    return out;
  }
  std::vector<std::pair<engine::PointId, float>> ranked;
  if (p.fusion) {
    ranked = fuse(lists, *p.fusion);
  } else if (p.sample) {  // the prefetched points in random order, each scored 1
    ranked = shuffled_union(lists);
  } else {  // one prefetch, passed on
    out.small_better = lists[0].small_better;
    for (const engine::ScoredPoint& h : lists[0].points) ranked.emplace_back(h.point.id, h.score);
  }
  // Offset and limit after fusion; the threshold on the fused score.
  std::vector<engine::PointId> ids;
  std::vector<float> scores;
  for (size_t i = s.query.offset; i < ranked.size() && ids.size() < s.query.limit; ++i) {
    const float x = ranked[i].second;
    const auto& t = s.query.score_threshold;
    if (t && (out.small_better ? x > *t : x < *t)) break;
    ids.push_back(ranked[i].first);
    scores.push_back(x);
  }
  out.points = read_scored(col, ids, scores, s.query);
  return out;
}

/// The ids query `p` and its prefetches read vectors of in collection `col` (examples read in
/// another collection by lookup_from are not `col`'s points), into `ids`.
void referenced_ids(const engine::Collection& col, const ParsedQuery& p, json& ids) {
  if (!p.s.lookup || p.s.lookup_col->name() == col.name()) {
    const json& q = p.query;
    auto id = [&](const json& e) {
      if (e.is_number() || e.is_string()) ids.push_back(e);
    };
    if (p.recommend) {
      for (const auto* side : {&p.recommend->positive, &p.recommend->negative}) {
        for (const json& e : *side) id(e);
      }
    } else if (p.discover) {
      id(p.discover->target);
      for (const auto& [positive, negative] : p.discover->pairs) {
        id(positive);
        id(negative);
      }
    } else if (q.is_object() && q.contains("nearest")) {
      id(q["nearest"]);
    } else {
      id(q);
    }
  }
  for (const ParsedQuery& child : p.prefetch) referenced_ids(col, child, ids);
}

json run_query(const engine::Collection& col, ParsedQuery& p) {
  ParsedSearch& s = p.s;
  const Shown show = shown(col, s.payload, s.with_vector);
  if (p.query.is_null() && p.prefetch.empty()) {
    // No query: points in id order, as Qdrant does, from the offset.
    const size_t n = s.query.offset + s.query.limit;
    check_answer_size(n, col, s.with_vector, join(p.where, "limit"));
    const auto page = col.scroll(&s.filter, n, std::nullopt, s.payload.enabled, s.with_vector);
    json points = json::array();
    for (size_t i = s.query.offset; i < page.points.size(); ++i) {
      points.push_back(show.record(page.points[i]));
    }
    return json{{"points", points}};
  }
  if (p.order_by) {
    json points = ordered_json(col, *p.order_by, s.filter, s.query.offset + s.query.limit,
                               s.payload, s.with_vector, true);
    const size_t skip = std::min<size_t>(s.query.offset, points.size());
    points.erase(points.begin(), points.begin() + static_cast<std::ptrdiff_t>(skip));
    return json{{"points", points}};
  }
  // The points a query names by id in this collection are left out of its answer, at every
  // level, as Qdrant's root filter leaves them out (without prefetches the search leaves them
  // out itself: a filter would make it a filtered search).
  json ids = json::array();
  if (!p.prefetch.empty()) referenced_ids(col, p, ids);
  const json outer =
      ids.empty() ? json() : json{{"must_not", json::array({{{"has_id", std::move(ids)}}})}};
  return json{{"points", show.scored(query_hits(col, p, outer).points)}};
}

}  // namespace

json Api::facet(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object(), "body: expected an object");
  engine::check_fields(body, "", {"key", "filter", "limit", "exact"});
  WP_THROW_IF_NOT(body.contains("key") && body["key"].is_string(),
                  "key: expected the key path of an indexed payload field");
  const engine::Filter filter = get_filter(body, "");
  const size_t limit = get_count(body, "limit", "", 10, 1, kMaxAnswerPoints);
  get_bool(body, "exact", "", false);  // counts are always exact here
  json hits = json::array();
  for (const auto& h : col->facet(body["key"], &filter, limit)) {
    hits.push_back({{"value", h.value}, {"count", h.count}});
  }
  return json{{"hits", hits}};
}

json Api::query_points(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  ParsedQuery q = resolving(engine_, read_query)(parse_body(*c.body, true), "");
  return run_query(*col, q);
}

GroupsRequest read_groups_request(const json& body) {
  ParsedQuery q = read_query(body, "");
  WP_THROW_IF_NOT(!q.query.is_null(), "query: required for groups (a vector, point id, ",
                  "{\"nearest\"} or {\"recommend\"})");
  WP_THROW_IF_NOT(body.contains("group_by"), "group_by: missing (a payload key path)");
  GroupsRequest g;
  // Qdrant's with_lookup: a collection's name, or {"collection", "with_payload" (true),
  // "with_vectors" or "with_vector" (false)}.
  if (body.contains("with_lookup") && !body["with_lookup"].is_null()) {
    const json& l = body["with_lookup"];
    if (l.is_string()) {
      g.lookup_collection = l.get<std::string>();
    } else {
      WP_THROW_IF_NOT(l.is_object(), "with_lookup: expected a collection's name or ",
                      "{\"collection\", \"with_payload\", \"with_vectors\"}, got ",
                      engine::show_json(l));
      engine::check_fields(l, "with_lookup",
                           {"collection", "with_payload", "with_vectors", "with_vector"});
      WP_THROW_IF_NOT(l.contains("collection") && l["collection"].is_string(),
                      "with_lookup.collection: expected a collection's name");
      WP_THROW_IF_NOT(!(l.contains("with_vectors") && l.contains("with_vector")),
                      "with_lookup: give with_vectors or with_vector, not both");
      g.lookup_collection = l["collection"].get<std::string>();
      if (l.contains("with_payload") && !l["with_payload"].is_null()) {
        g.lookup_payload = l["with_payload"];
        get_payload_selector(l, "with_lookup", true);  // checked as a retrieve checks it
      }
      for (const char* key : {"with_vectors", "with_vector"}) {
        if (l.contains(key) && !l[key].is_null()) {
          g.lookup_vector = l[key];
          get_with_vector(json{{"with_vector", l[key]}}, "with_lookup", false);
        }
      }
    }
    WP_THROW_IF_NOT(!g.lookup_collection.empty(), "with_lookup.collection: expected a name");
  }
  g.path = engine::parse_json_path(body["group_by"], "group_by");
  g.group_size = get_count(body, "group_size", "", 3, 1, index::kMaxK);
  g.groups = q.s.query.limit;
  WP_THROW_IF_NOT(g.groups * g.group_size <= kMaxAnswerPoints, "limit: the answer would hold ",
                  g.groups * g.group_size, " points, at most ", kMaxAnswerPoints,
                  " are returned by one request");
  g.returned = q.s.payload;
  return g;
}

void check_query_request(const json& body, const std::string& where) {
  read_query(body, where);
}

void check_recommend_request(const json& body, const std::string& where) {
  read_recommend_request(body, where);
}

namespace {

/// Qdrant's recommend and discover routes read example ids in lookup_from's unnamed vector
/// unless it names one, where a query reads them in its `using`: said explicitly in the query
/// such a route becomes.
void default_lookup_vector(json& q) {
  json& l = q["lookup_from"];
  if (l.is_null()) {
    q.erase("lookup_from");
  } else if (l.is_object() && (!l.contains("vector") || l["vector"].is_null())) {
    l["vector"] = "";
  }
}

}  // namespace

json groups_as_query(const json& body, bool recommend) {
  json q = body;
  for (const char* field : {"query", "prefetch"}) q.erase(field);
  if (recommend) {
    read_recommend_request(body, "");
    default_lookup_vector(q);
    json examples = json::object();
    for (const char* field : {"positive", "negative", "strategy"}) {
      if (body.contains(field)) examples[field] = body[field];
      q.erase(field);
    }
    q["query"] = {{"recommend", examples}};
    return q;
  }
  read_search(body, "");
  const json& v = body["vector"];
  q.erase("vector");
  q.erase("using");
  if (v.is_object()) {
    q["using"] = v["name"];
    q["query"] = v["vector"];
  } else {
    q["query"] = v;
  }
  return q;
}

namespace {

/// A discover request body (also one element of discover/batch): read as the query it becomes
/// (discover_as_query), its examples named as this route's body names them.
ParsedQuery read_discover_request(const json& body, const std::string& where) {
  ParsedQuery p = read_query(discover_as_query(body, where), where);
  p.discover->target_at = join(where, "target");
  for (size_t i = 0; i < p.discover->pairs_at.size(); ++i) {
    p.discover->pairs_at[i] = join(where, "context") + "[" + std::to_string(i) + "]";
  }
  return p;
}

json run_discover(const engine::Collection& col, ParsedQuery& p) {
  return std::move(run_query(col, p)["points"]);
}

}  // namespace

json discover_as_query(const json& body, const std::string& where) {
  WP_THROW_IF_NOT(body.is_object(), where.empty() ? "body" : where, ": expected an object");
  const json target = body.value("target", json());
  const json context = body.value("context", json());
  WP_THROW_IF_NOT(context.is_null() || context.is_array(), join(where, "context"),
                  ": expected an array of {\"positive\", \"negative\"} pairs, got ",
                  engine::show_json(context));
  const Discover d = read_discover(target, context, join(where, "target"), join(where, "context"));
  WP_THROW_IF_NOT(!target.is_null() || !d.pairs.empty(), join(where, "context"),
                  ": a target or context pairs (or both) are needed");
  WP_THROW_IF_NOT(body.contains("limit"), join(where, "limit"), ": missing");
  json q = body;
  default_lookup_vector(q);
  // Qdrant's discover route has no score_threshold (it is ignored there).
  for (const char* field : {"target", "context", "query", "prefetch", "score_threshold"}) {
    q.erase(field);
  }
  if (target.is_null()) {
    q["query"] = {{"context", context}};
  } else {
    q["query"] = {{"discover",
                   {{"target", target}, {"context", context.is_null() ? json::array() : context}}}};
  }
  return q;
}

json Api::discover_points(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  ParsedQuery p = resolving(engine_, read_discover_request)(parse_body(*c.body), "");
  return run_discover(*col, p);
}

json Api::discover_batch(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return run_batch(*col, parse_body(*c.body), "discover", resolving(engine_, read_discover_request),
                   run_discover);
}

namespace {

/// The distance matrix `r` asks of `col`: its sample drawn among the points holding the vector.
DistanceMatrix run_matrix(const engine::Collection& col, const MatrixRequest& r) {
  const engine::VectorShape& shape = col.vector_shape(r.vector_name, "using");
  // Every sampled point is compared with every other: sample^2 distances of dim values each.
  check_matrix_work(r.sample, shape.dim);
  std::vector<std::pair<engine::PointId, std::vector<float>>> points;
  const engine::VectorSelector vectors(std::vector<std::string>{shape.name});
  for (engine::PointRead& p : col.sample(&r.filter, r.sample, false, vectors, &shape.name)) {
    auto it = p.vectors.find(shape.name);
    if (it != p.vectors.end()) points.emplace_back(p.id, std::move(it->second));
  }
  return distance_matrix(std::move(points), shape.metric, r.limit);
}

}  // namespace

json Api::search_matrix_pairs(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return matrix_pairs(run_matrix(*col, read_matrix_request(parse_body(*c.body))));
}

json Api::search_matrix_offsets(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return matrix_offsets(run_matrix(*col, read_matrix_request(parse_body(*c.body))));
}

json Api::search_groups(const Call& c) {
  return groups(c.path.at("name"), groups_as_query(parse_body(*c.body), false));
}

json Api::recommend_groups(const Call& c) {
  return groups(c.path.at("name"), groups_as_query(parse_body(*c.body), true));
}

json Api::query_groups(const Call& c) {
  return groups(c.path.at("name"), parse_body(*c.body));
}

json Api::groups(const std::string& name, const json& body) {
  auto col = engine_.collection(name);
  const GroupsRequest g = read_groups_request(body);
  ParsedQuery q = resolving(engine_, read_query)(body, "");
  check_answer_size(g.groups * g.group_size, *col, q.s.with_vector, "limit");
  // The payload is needed to group; what is returned of it is the request's selector.
  q.s.payload.enabled = true;
  q.s.payload.include.clear();
  q.s.payload.exclude.clear();
  q.s.query.with_payload = true;
  q.s.query.offset = 0;
  // with_lookup's collection opened first: a 404 before any query runs.
  const auto lookup =
      g.lookup_collection.empty() ? nullptr : engine_.collection(g.lookup_collection);
  json answer = collect_groups(g, [&](size_t n) {
    q.s.query.limit = n;
    return run_query(*col, q)["points"];
  });
  if (lookup) {
    const json request = lookup_request(g, answer);
    if (!request.is_null()) add_lookups(answer, retrieve_records(*lookup, request, "with_lookup"));
  }
  return answer;
}

json Api::query_batch(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return run_batch(*col, parse_body(*c.body), "query", resolving(engine_, read_query), run_query);
}

}  // namespace wp::http
