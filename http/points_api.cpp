// Handlers of /collections/{name}/points...
#include <algorithm>
#include <charconv>
#include <cmath>

#include "engine/json_path.h"
#include "engine/json_value.h"
#include "http/api.h"
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

json record_json(const engine::PointRead& p, const PayloadSelector& payload, bool with_vector) {
  json j{{"id", p.id.to_json()}};
  j["payload"] = payload.enabled ? payload.apply(p.payload) : json();
  j["vector"] = with_vector ? json(p.vector) : json();
  return j;
}

json scored_json(const engine::ScoredPoint& s, const PayloadSelector& payload, bool with_vector) {
  json j = record_json(s.point, payload, with_vector);
  j["version"] = 0;
  j["score"] = s.score;
  return j;
}

/// A search request body (also one element of search/batch).
struct ParsedSearch {
  engine::Filter filter;
  engine::SearchQuery query;
  PayloadSelector payload;
  bool with_vector = false;
};

void read_search_params(const json& body, const std::string& where, engine::SearchQuery& q) {
  if (!body.contains("params") || body["params"].is_null()) return;
  const json& p = body["params"];
  const std::string at = join(where, "params");
  WP_THROW_IF_NOT(p.is_object(), at, ": expected an object");
  q.ef = get_count(p, "hnsw_ef", at, 0, 1, 100000);
  q.exact = get_bool(p, "exact", at, false);
}

ParsedSearch read_search(const json& body, const std::string& where) {
  WP_THROW_IF_NOT(body.is_object(), where.empty() ? "body" : where, ": expected an object");
  ParsedSearch s;
  WP_THROW_IF_NOT(body.contains("vector"), join(where, "vector"), ": missing");
  const json& v = body["vector"];
  if (v.is_object()) {  // named vector form {"name": ..., "vector": [...]}
    WP_THROW_IF_NOT(v.contains("vector"), join(where, "vector.vector"), ": missing");
    s.query.vector = get_vector(v["vector"], join(where, "vector.vector"));
  } else {
    s.query.vector = get_vector(v, join(where, "vector"));
  }
  WP_THROW_IF_NOT(body.contains("limit"), join(where, "limit"), ": missing");
  s.query.limit = get_count(body, "limit", where, 10, 1, index::kMaxK);
  s.query.offset = get_count(body, "offset", where, 0, 0, index::kMaxK);
  read_search_params(body, where, s.query);
  s.filter = get_filter(body, where);
  s.payload = get_payload_selector(body, where, false);
  s.with_vector = get_with_vector(body, where, false);
  s.query.with_payload = s.payload.enabled;
  s.query.with_vector = s.with_vector;
  s.query.score_threshold = get_optional_float(body, "score_threshold", where);
  return s;
}

/// Refuses an answer of `points` points with their vectors (when asked) beyond the caps.
void check_answer_size(size_t points, size_t dim, bool with_vector, const std::string& field) {
  WP_THROW_IF_NOT(points <= kMaxAnswerPoints, field, ": the answer would hold ", points,
                  " points, at most ", kMaxAnswerPoints, " are returned by one request");
  WP_THROW_IF_NOT(!with_vector || points * dim <= kMaxAnswerValues, field, ": ", points,
                  " points with vectors of dimension ", dim, " exceed the ", kMaxAnswerValues,
                  " vector values one answer may hold; ask for fewer points or without vectors");
}

json run_search(const engine::Collection& col, ParsedSearch& s) {
  check_answer_size(s.query.limit + s.query.offset, col.dim(), s.with_vector, "limit");
  s.query.filter = &s.filter;
  json out = json::array();
  for (const engine::ScoredPoint& p : col.search(s.query)) {
    out.push_back(scored_json(p, s.payload, s.with_vector));
  }
  return out;
}

/// Qdrant's recommendation examples: point ids or vectors, positive and negative; the
/// average_vector strategy (the only one here).
struct Recommend {
  std::vector<json> positive, negative;
};

Recommend read_recommend(const json& r, const std::string& where) {
  WP_THROW_IF_NOT(r.is_object(), where, ": expected an object with positive and negative");
  Recommend out;
  for (const char* side : {"positive", "negative"}) {
    const std::string at = join(where, side);
    if (!r.contains(side) || r[side].is_null()) continue;
    WP_THROW_IF_NOT(r[side].is_array(), at, ": expected an array of point ids or vectors");
    for (size_t i = 0; i < r[side].size(); ++i) {
      const json& e = r[side][i];
      const std::string ei = at + "[" + std::to_string(i) + "]";
      if (e.is_array()) {
        get_vector(e, ei);
      } else {
        engine::PointId::from_json(e, ei);
      }
      (side[0] == 'p' ? out.positive : out.negative).push_back(e);
    }
  }
  WP_THROW_IF_NOT(!out.positive.empty(), join(where, "positive"),
                  ": expected at least one point id or vector (the average_vector strategy)");
  if (r.contains("strategy") && !r["strategy"].is_null()) {
    WP_THROW_IF_NOT(r["strategy"] == "average_vector", join(where, "strategy"),
                    ": only \"average_vector\" is supported, got ",
                    engine::show_json(r["strategy"]));
  }
  return out;
}

/// The query vector of a recommendation, Qdrant's average_vector: the mean of the positive
/// examples, moved away from the mean of the negative ones (2 * mean+ - mean-). The ids among the
/// examples go to `used` (they are left out of the answer, as Qdrant does).
std::vector<float> recommend_vector(const engine::Collection& col, const Recommend& r,
                                    const std::string& where, std::vector<engine::PointId>& used) {
  const size_t d = col.dim();
  auto mean = [&](const std::vector<json>& examples, const char* side) {
    std::vector<double> sum(d, 0.0);
    for (size_t i = 0; i < examples.size(); ++i) {
      const std::string at = join(where, side) + "[" + std::to_string(i) + "]";
      std::vector<float> v;
      if (examples[i].is_array()) {
        v = get_vector(examples[i], at);
        // Stored vectors of a cosine collection are unit length: so is an example given inline.
        if (col.metric() == index::Metric::kCosine && v.size() == d) {
          WP_THROW_IF_NOT(index::normalize(v.data(), d) > 0, at,
                          ": the zero vector has no cosine direction");
        }
      } else {
        const engine::PointId id = engine::PointId::from_json(examples[i], at);
        auto found = col.retrieve({id}, false, true);
        if (found.empty()) {
          throw NotFoundError("No point with id " + engine::show_json(examples[i]) + " found (" +
                              at + ")");
        }
        v = std::move(found[0].vector);
        used.push_back(id);
      }
      WP_THROW_IF_NOT(v.size() == d, at, ": expected dimension ", d, ", got ", v.size());
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

/// A search for `s` leaving out the points in `used`: it asks for that many more and drops them.
json run_search_without(const engine::Collection& col, ParsedSearch& s,
                        const std::vector<engine::PointId>& used) {
  if (used.empty()) return run_search(col, s);
  check_answer_size(s.query.limit + s.query.offset, col.dim(), s.with_vector, "limit");
  const size_t offset = s.query.offset, limit = s.query.limit;
  s.query.offset = 0;
  s.query.limit = std::min(offset + limit + used.size(), index::kMaxK);
  s.query.filter = &s.filter;
  json out = json::array();
  size_t skipped = 0;
  for (const engine::ScoredPoint& p : col.search(s.query)) {
    if (std::find(used.begin(), used.end(), p.point.id) != used.end()) continue;
    if (skipped++ < offset) continue;
    if (out.size() == limit) break;
    out.push_back(scored_json(p, s.payload, s.with_vector));
  }
  return out;
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
  ParsedSearch& s = r.s;
  s.query.limit = get_count(body, "limit", where, 10, 1, index::kMaxK);
  s.query.offset = get_count(body, "offset", where, 0, 0, index::kMaxK);
  read_search_params(body, where, s.query);
  s.filter = get_filter(body, where);
  s.payload = get_payload_selector(body, where, false);
  s.with_vector = get_with_vector(body, where, false);
  s.query.with_payload = s.payload.enabled;
  s.query.with_vector = s.with_vector;
  s.query.score_threshold = get_optional_float(body, "score_threshold", where);
  return r;
}

json run_recommend(const engine::Collection& col, ParsedRecommend& r) {
  std::vector<engine::PointId> used;
  r.s.query.vector = recommend_vector(col, r.examples, r.where, used);
  return run_search_without(col, r.s, used);
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
                  size_t limit, const PayloadSelector& payload, bool with_vector, bool scored) {
  check_answer_size(limit, col.dim(), with_vector, "limit");
  json out = json::array();
  for (const auto& r : col.ordered(o.key, o.descending, o.start_from, &filter, limit,
                                   payload.enabled, with_vector)) {
    json j = record_json(r.point, payload, with_vector);
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
    vectors = vectors || s.with_vector;
  }
  check_answer_size(points, col.dim(), vectors, "searches");
  json out = json::array();
  for (auto& p : parsed) out.push_back(run(col, p));
  return out;
}

}  // namespace

json Api::recommend_points(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  ParsedRecommend r = read_recommend_request(parse_body(*c.body), "");
  return run_recommend(*col, r);
}

json Api::recommend_batch(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return run_batch(*col, parse_body(*c.body), "recommend", read_recommend_request, run_recommend);
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
  return record_json(found[0], all, true);
}

json Api::get_points(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.contains("ids"), "ids: missing");
  const PayloadSelector payload = get_payload_selector(body, "", true);
  const bool with_vector = get_with_vector(body, "", false);
  const std::vector<engine::PointId> ids = get_ids(body["ids"], "ids");
  check_answer_size(ids.size(), col->dim(), with_vector, "ids");
  json out = json::array();
  for (const engine::PointRead& p : col->retrieve(ids, payload.enabled, with_vector)) {
    out.push_back(record_json(p, payload, with_vector));
  }
  return out;
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
  const bool with_vector = get_with_vector(body, "", false);
  if (body.contains("order_by") && !body["order_by"].is_null()) {
    WP_THROW_IF_NOT(!offset, "offset: cannot be used with order_by (use order_by.start_from)");
    const OrderBy o = read_order_by(body["order_by"], "order_by");
    return json{{"points", ordered_json(*col, o, filter, limit, payload, with_vector, false)},
                {"next_page_offset", nullptr}};
  }
  check_answer_size(limit, col->dim(), with_vector, "limit");
  const auto page = col->scroll(&filter, limit, offset, payload.enabled, with_vector);
  json points = json::array();
  for (const engine::PointRead& p : page.points)
    points.push_back(record_json(p, payload, with_vector));
  return json{{"points", points}, {"next_page_offset", page.next ? page.next->to_json() : json()}};
}

json Api::search_points(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  ParsedSearch s = read_search(parse_body(*c.body), "");
  return run_search(*col, s);
}

json Api::search_batch(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return run_batch(*col, parse_body(*c.body), "search", read_search, run_search);
}

namespace {

/// A universal query request (`points/query`, one element of `query/batch`), parsed; `query`
/// (null: points in id order) is resolved against the collection when it runs.
struct ParsedQuery {
  ParsedSearch s;
  json query;
  std::string where;
  std::optional<Recommend> recommend;  ///< query {"recommend": {...}}
  std::optional<OrderBy> order_by;     ///< query {"order_by": ...}
};

ParsedQuery read_query(const json& body, const std::string& where) {
  WP_THROW_IF_NOT(body.is_object(), where.empty() ? "body" : where, ": expected an object");
  ParsedQuery p;
  p.where = where;
  ParsedSearch& s = p.s;
  s.filter = get_filter(body, where);
  s.query.limit = get_count(body, "limit", where, 10, 1, index::kMaxK);
  s.query.offset = get_count(body, "offset", where, 0, 0, index::kMaxK);
  read_search_params(body, where, s.query);
  s.payload = get_payload_selector(body, where, false);
  s.with_vector = get_with_vector(body, where, false);
  s.query.with_payload = s.payload.enabled;
  s.query.with_vector = s.with_vector;
  s.query.score_threshold = get_optional_float(body, "score_threshold", where);
  if (body.contains("query")) p.query = body["query"];
  const std::string at = join(where, "query");
  const json& q = p.query;
  // Everything but a point id's vector is checked here, before any query of a batch runs.
  if (q.is_array()) {
    s.query.vector = get_vector(q, at);
  } else if (q.is_object() && q.contains("order_by")) {
    WP_THROW_IF_NOT(q.size() == 1, at, ": expected {\"order_by\": ...} alone, got ",
                    engine::show_json(q));
    p.order_by = read_order_by(q["order_by"], at + ".order_by");
  } else if (q.is_object() && q.contains("recommend")) {
    WP_THROW_IF_NOT(q.size() == 1, at, ": expected {\"recommend\": {...}} alone, got ",
                    engine::show_json(q));
    p.recommend = read_recommend(q["recommend"], at + ".recommend");
  } else if (q.is_object()) {
    WP_THROW_IF_NOT(q.contains("nearest") && q.size() == 1, at,
                    ": expected {\"nearest\": vector or id} or {\"recommend\": {...}}, got ",
                    engine::show_json(q));
    if (q["nearest"].is_array())
      s.query.vector = get_vector(q["nearest"], at + ".nearest");
    else
      engine::PointId::from_json(q["nearest"], at + ".nearest");
  } else if (q.is_number() || q.is_string()) {
    engine::PointId::from_json(q, at);
  } else {
    WP_THROW_IF_NOT(q.is_null(), at,
                    ": expected a vector, {\"nearest\": vector or id}, or a point id, got ",
                    engine::show_json(q));
  }
  return p;
}

/// The vector of point `id` (404 when it does not exist).
std::vector<float> vector_of(const engine::Collection& col, const json& id, const std::string& at) {
  auto found = col.retrieve({engine::PointId::from_json(id, at)}, false, true);
  if (found.empty())
    throw NotFoundError("Point with id " + engine::show_json(id) + " does not exists!");
  return std::move(found[0].vector);
}

json run_query(const engine::Collection& col, ParsedQuery& p) {
  ParsedSearch& s = p.s;
  const json& q = p.query;
  if (q.is_null()) {
    // No query: points in id order, as Qdrant does.
    check_answer_size(s.query.limit, col.dim(), s.with_vector, join(p.where, "limit"));
    const auto page =
        col.scroll(&s.filter, s.query.limit, std::nullopt, s.payload.enabled, s.with_vector);
    json points = json::array();
    for (const engine::PointRead& r : page.points) {
      points.push_back(record_json(r, s.payload, s.with_vector));
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
  if (p.recommend) {
    std::vector<engine::PointId> used;
    s.query.vector = recommend_vector(col, *p.recommend, join(p.where, "query.recommend"), used);
    return json{{"points", run_search_without(col, s, used)}};
  }
  if (q.is_object() && !q["nearest"].is_array()) {
    s.query.vector = vector_of(col, q["nearest"], join(p.where, "query.nearest"));
  } else if (q.is_number() || q.is_string()) {  // a point id: search by its vector
    s.query.vector = vector_of(col, q, join(p.where, "query"));
  }
  return json{{"points", run_search(col, s)}};
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
  ParsedQuery q = read_query(parse_body(*c.body, true), "");
  return run_query(*col, q);
}

namespace {

/// The group ids of a point: the string and integer values at the group_by key (an array's
/// elements each), as Qdrant groups.
std::vector<json> group_values(const engine::JsonPath& path, const json& payload) {
  std::vector<json> out;
  auto take = [&](const json& v) {
    int64_t n = 0;
    if ((v.is_string() || engine::json_as_int64(v, &n)) &&
        std::find(out.begin(), out.end(), v) == out.end()) {
      out.push_back(v);
    }
  };
  engine::any_value_at(path, payload, [&](const json& v) {
    if (v.is_array()) {
      for (const json& e : v) take(e);
    } else {
      take(v);
    }
    return false;
  });
  return out;
}

}  // namespace

json Api::query_groups(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  const json body = parse_body(*c.body);
  ParsedQuery q = read_query(body, "");
  WP_THROW_IF_NOT(!q.query.is_null(), "query: required for groups (a vector, point id, ",
                  "{\"nearest\"} or {\"recommend\"})");
  WP_THROW_IF_NOT(body.contains("group_by"), "group_by: missing (a payload key path)");
  const engine::JsonPath path = engine::parse_json_path(body["group_by"], "group_by");
  const size_t group_size = get_count(body, "group_size", "", 3, 1, index::kMaxK);
  const size_t groups = q.s.query.limit;  // limit counts groups here
  check_answer_size(groups * group_size, col->dim(), q.s.with_vector, "limit");
  // The payload is needed to group; what is returned of it is the request's selector.
  const PayloadSelector returned = q.s.payload;
  q.s.payload.enabled = true;
  q.s.payload.include.clear();
  q.s.payload.exclude.clear();
  q.s.query.with_payload = true;
  q.s.query.offset = 0;
  // Fetch more points until `groups` groups hold `group_size` hits or no more points come.
  json out = json::array();
  for (size_t fetch = std::min(index::kMaxK, groups * group_size * 4);;
       fetch = std::min(index::kMaxK, fetch * 4)) {
    q.s.query.limit = fetch;
    const json points = run_query(*col, q)["points"];
    std::vector<std::pair<json, json>> found;  // group id, hits; in order of the best hit
    for (const json& p : points) {
      for (const json& g : group_values(path, p["payload"])) {
        auto it =
            std::find_if(found.begin(), found.end(), [&](const auto& f) { return f.first == g; });
        if (it == found.end()) {
          if (found.size() == groups) continue;
          found.push_back({g, json::array()});
          it = found.end() - 1;
        }
        if (it->second.size() < group_size) {
          json hit = p;
          hit["payload"] = returned.enabled ? returned.apply(p["payload"]) : json();
          it->second.push_back(std::move(hit));
        }
      }
    }
    const bool full = found.size() == groups &&
                      std::all_of(found.begin(), found.end(),
                                  [&](const auto& f) { return f.second.size() == group_size; });
    if (full || points.size() < fetch || fetch == index::kMaxK) {
      for (auto& [id, hits] : found) out.push_back({{"id", id}, {"hits", std::move(hits)}});
      break;
    }
  }
  return json{{"groups", out}};
}

json Api::query_batch(const Call& c) {
  auto col = engine_.collection(c.path.at("name"));
  return run_batch(*col, parse_body(*c.body), "query", read_query, run_query);
}

}  // namespace wp::http
