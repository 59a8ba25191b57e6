// ClusterRouter: the query family across shards. Point ids used as vectors are read from their
// shards first, then:
// - a query whose root fuses prefetches: each prefetch merged from every shard, fused here with
//   one node's own fusion (query_parts.h), the points read with what the request asks of them;
// - order_by: every shard's first limit + offset points in that order, merged by order value;
// - no query: points in id order, merged by id;
// - anything else (a vector, nearest, recommend, a prefetch rescored by a vector): every shard
//   answers the whole request for limit + offset points, merged by score. A rescoring node's
//   candidates are then each shard's own prefetch (more than one node's, never fewer), as
//   Qdrant's shards do;
// - query/groups: one node's grouping over queries merged that way (with_lookup's points read
//   from that collection's shards);
// - recommend and recommend/batch: examples resolved, then as a search;
// - discover and discover/batch: as the queries they become (discover_as_query);
// - {"sample": "random"}: every shard's random points, merged at random;
// - {"formula": ...}: every shard scores its own prefetches' points (as Qdrant's shards do),
//   merged highest first;
// - search/matrix/pairs and .../offsets: the sample drawn so, the matrix computed here.
#include <cstring>
#include <map>
#include <optional>
#include <tuple>

#include "http/cluster_router.h"
#include "http/cluster_router_detail.h"
#include "http/qdrant_wire.h"
#include "http/query_parts.h"

namespace wp::http {

using engine::join;

namespace {

struct IdUse {
  json* slot;  ///< the id, replaced by the vector
  std::string at;
  std::string vector_name;
  std::string collection;  ///< lookup_from's ("": the request's own)
};

/// A lookup_from of a request (its collection and vector, checked before any id is read).
struct Lookup {
  LookupFrom from;
  std::string at;
};

bool is_fusion(const json& q) {
  return q.is_object() && (q.contains("fusion") || q.contains("rrf"));
}

/// {"nearest": ..., "mmr": ...}: chosen on the coordinator from every shard's candidates.
bool is_mmr(const json& q) {
  return q.is_object() && q.contains("mmr");
}

/// A count field of a query node (`def` when absent).
size_t count_of(const json& node, const char* key, size_t def) {
  return node.contains(key) && node[key].is_number_unsigned() ? node[key].get<size_t>() : def;
}

std::string using_of(const json& node) {
  return node.contains("using") && node["using"].is_string() ? node["using"].get<std::string>()
                                                             : std::string();
}

/// The ids query node `node` (at `where`) uses as vectors, its prefetches' included, and its
/// lookup_from (taken out of the node: the ids become vectors, which no shard looks up).
void collect_ids(json& node, const std::string& where, ClusterRouter::Body body,
                 std::vector<IdUse>& uses, std::vector<Lookup>& lookups) {
  // Qdrant's query reads ids in lookup_from's vector or its `using`, recommend and discover in
  // lookup_from's vector or the unnamed one.
  const std::optional<LookupFrom> from = read_lookup_from(
      node, where, body == ClusterRouter::Body::kQuery ? using_of(node) : std::string());
  if (from) lookups.push_back({*from, join(where, "lookup_from.vector")});
  if (node.is_object()) node.erase("lookup_from");
  const std::string name = from ? from->vector : using_of(node);
  const std::string collection = from ? from->collection : std::string();
  // The examples (recommend's positive and negative, a discovery's target and pairs) that are ids.
  auto example = [&](json& e, const std::string& at) {
    if (e.is_array() || e.is_null()) return;
    uses.push_back({&e, at, name, collection});
  };
  auto examples = [&](json& r, const std::string& at) {
    for (const char* side : {"positive", "negative"}) {
      if (!r.contains(side) || !r[side].is_array()) continue;
      for (size_t i = 0; i < r[side].size(); ++i) {
        example(r[side][i], join(at, side) + "[" + std::to_string(i) + "]");
      }
    }
  };
  auto pairs = [&](json& context, const std::string& at) {
    if (context.is_object()) {
      for (const char* side : {"positive", "negative"}) {
        if (context.contains(side)) example(context[side], join(at, side));
      }
    }
    for (size_t i = 0; context.is_array() && i < context.size(); ++i) {
      json& pair = context[i];
      const std::string in = at + "[" + std::to_string(i) + "]";
      for (const char* side : {"positive", "negative"}) {
        if (pair.is_object() && pair.contains(side)) example(pair[side], join(in, side));
      }
    }
  };
  if (body == ClusterRouter::Body::kRecommend) {
    examples(node, where);
    return;
  }
  if (body == ClusterRouter::Body::kDiscover) {
    if (node.contains("target")) example(node["target"], join(where, "target"));
    if (node.contains("context")) pairs(node["context"], join(where, "context"));
    return;
  }
  if (node.contains("query")) {
    json& q = node["query"];
    const std::string at = join(where, "query");
    if (q.is_number() || q.is_string()) {
      example(q, at);
    } else if (q.is_object() && q.contains("nearest") && !q["nearest"].is_array()) {
      example(q["nearest"], at + ".nearest");
    } else if (q.is_object() && q.contains("recommend")) {
      examples(q["recommend"], at + ".recommend");
    } else if (q.is_object() && q.contains("context")) {
      pairs(q["context"], at + ".context");
    } else if (q.is_object() && q.contains("discover") && q["discover"].is_object()) {
      json& d = q["discover"];
      if (d.contains("target")) example(d["target"], at + ".discover.target");
      if (d.contains("context")) pairs(d["context"], at + ".discover.context");
    }
  }
  if (node.contains("prefetch")) {
    json& p = node["prefetch"];
    const std::string at = join(where, "prefetch");
    if (p.is_object()) collect_ids(p, at, ClusterRouter::Body::kQuery, uses, lookups);
    if (p.is_array()) {
      for (size_t i = 0; i < p.size(); ++i) {
        collect_ids(p[i], at + "[" + std::to_string(i) + "]", ClusterRouter::Body::kQuery, uses,
                    lookups);
      }
    }
  }
}

/// Whether a recommendation scores points against its examples (best_score, sum_scores: higher
/// is better whatever the metric) rather than searching at their average vector.
bool scores_examples(const json& r) {
  return r.is_object() && r.contains("strategy") && r["strategy"].is_string() &&
         r["strategy"] != "average_vector";
}

/// How the shards' lists of a query node are merged.
ClusterRouter::Merge merge_of(const CollectionMap& m, const json& node, bool recommend) {
  using Merge = ClusterRouter::Merge;
  if (recommend) return scores_examples(node) ? Merge::kHighFirst : by_score(m, using_of(node));
  const json q = node.value("query", json());
  if (is_fusion(q)) return Merge::kHighFirst;
  if (q.is_object() && q.contains("order_by")) return order_merge(q["order_by"]);
  if (q.is_object() && q.contains("recommend") && scores_examples(q["recommend"])) {
    return Merge::kHighFirst;
  }
  if (q.is_object() && q.contains("sample")) return Merge::kRandom;
  // A formula's score: higher is better whatever the metric (each shard scores its own points).
  if (q.is_object() && q.contains("formula")) return Merge::kHighFirst;
  // A discovery's score: higher is better whatever the metric.
  if (q.is_object() && (q.contains("discover") || q.contains("context"))) return Merge::kHighFirst;
  if (q.is_null()) {
    if (!node.contains("prefetch")) return Merge::kId;
    const json& p = node["prefetch"];
    return merge_of(m, p.is_array() ? p.at(0) : p, false);  // one prefetch, passed on
  }
  return by_score(m, using_of(node));
}

}  // namespace

CollectionMap ClusterRouter::need_or_alias(const std::string& name) const {
  if (std::optional<CollectionMap> m = find(name)) return std::move(*m);
  const auto table = aliases();
  const auto alias = table.find(name);
  return need(alias != table.end() ? alias->second : name);
}

void ClusterRouter::resolve_ids(const CollectionMap& m, json& request, const std::string& where,
                                Body body) {
  std::vector<IdUse> uses;
  std::vector<Lookup> lookups;
  collect_ids(request, where, body, uses, lookups);
  // Each lookup_from's collection exists and has its vector (as one node checks them).
  std::map<std::string, CollectionMap> maps{{"", m}};  // lookup_from's name -> its map
  for (const Lookup& l : lookups) {
    auto it = maps.find(l.from.collection);
    if (it == maps.end())
      it = maps.emplace(l.from.collection, need_or_alias(l.from.collection)).first;
    collection_config_from_qdrant(it->second.config).vector(l.from.vector, l.at);
  }
  if (uses.empty()) return;
  // The ids of this collection are left out of the answer, at its root (the filter holds in
  // every prefetch).
  json excluded = json::array();
  for (const IdUse& u : uses) {
    if (maps.at(u.collection).name == m.name) excluded.push_back(*u.slot);
  }
  std::map<std::pair<std::string, std::string>, json> ids;  // (collection, vector) -> the ids
  for (const IdUse& u : uses) ids[{u.collection, u.vector_name}].push_back(*u.slot);
  // (collection, vector, id key) -> vector
  std::map<std::tuple<std::string, std::string, std::string>, json> vectors;
  for (const auto& [where_read, list] : ids) {
    const auto& [collection, name] = where_read;
    const json body{{"ids", list},
                    {"with_payload", false},
                    {"with_vector", name.empty() ? json(true) : json::array({name})}};
    for (const json& p : retrieve_ids(maps.at(collection), body)) {
      json v = p.value("vector", json());
      if (v.is_object()) v = v.contains(name) ? v[name] : json();
      vectors[{collection, name, id_key(p.at("id"))}] = std::move(v);
    }
  }
  for (const IdUse& u : uses) {
    const auto it = vectors.find({u.collection, u.vector_name, id_key(*u.slot)});
    if (it == vectors.end()) {
      throw NotFoundError("Point with id " + engine::show_json(*u.slot) + " does not exists! (" +
                          u.at + ")");
    }
    // A dense vector, or a sparse one ({"indices", "values"}), which the shards read alike.
    WP_THROW_IF_NOT(it->second.is_array() || it->second.is_object(), u.at, ": point ",
                    engine::show_json(*u.slot), " has no vector ",
                    engine::show_json(json(u.vector_name)));
    *u.slot = it->second;
  }
  if (!excluded.empty()) {
    request["filter"] = both_filters(request.value("filter", json()),
                                     json{{"must_not", json::array({{{"has_id", excluded}}})}});
  }
}

Ranked ClusterRouter::ranked(const CollectionMap& m, const json& node, const json& outer,
                             const std::string& where) {
  const json filter = both_filters(outer, node.value("filter", json()));
  const json q = node.value("query", json());
  if (is_mmr(q)) return mmr_ranked(m, node, filter, where);
  Ranked out;
  if (!is_fusion(q)) {
    json body = node;
    if (!filter.is_null()) body["filter"] = filter;
    body.erase("with_payload");
    body.erase("with_vector");
    const Merge how = merge_of(m, node, false);
    out.small_better = how == Merge::kLowFirst;
    const std::vector<json> merged = fan_out(m, "/points/query", {body}, {how}, false);
    for (const json& p : merged.at(0)) {
      out.points.push_back(
          {engine::PointRead{engine::PointId::from_json(p.at("id"), "id"), json(), {}},
           p.value("score", 0.0f)});
    }
    return out;
  }
  std::vector<Ranked> lists;
  const json& p = node.at("prefetch");
  const std::string at = join(where, "prefetch");
  if (p.is_object()) lists.push_back(ranked(m, p, filter, at));
  for (size_t i = 0; p.is_array() && i < p.size(); ++i) {
    lists.push_back(ranked(m, p[i], filter, at + "[" + std::to_string(i) + "]"));
  }
  const auto fused = fuse(lists, read_fusion(q, join(where, "query")));
  const size_t offset = count_of(node, "offset", 0), limit = count_of(node, "limit", 10);
  const json t = node.value("score_threshold", json());
  for (size_t i = offset; i < fused.size() && out.points.size() < limit; ++i) {
    if (t.is_number() && fused[i].second < t.get<float>()) break;
    out.points.push_back({engine::PointRead{fused[i].first, json(), {}}, fused[i].second});
  }
  return out;
}

Ranked ClusterRouter::mmr_ranked(const CollectionMap& m, const json& node, const json& filter,
                                 const std::string& where) {
  const json& q = node.at("query");
  const std::string at = join(where, "query.mmr");
  const Mmr mmr = read_mmr(q.value("mmr", json()), at);
  const std::string name = using_of(node);
  const engine::CollectionConfig config = collection_config_from_qdrant(m.config);
  const engine::VectorConfig& space = config.vector(name, join(where, "using"));
  const size_t offset = count_of(node, "offset", 0), limit = count_of(node, "limit", 10);
  const size_t candidates = mmr_candidates(mmr, offset + limit, space.dim, at);
  json body = node;
  body["query"] = q.at("nearest");  // a vector: its id, if it was one, is resolved
  if (!filter.is_null()) body["filter"] = filter;
  body["offset"] = 0;
  body["limit"] = std::min(candidates, index::kMaxK);
  body["with_payload"] = false;
  body["with_vector"] = config.named() ? json::array({name}) : json(true);
  const std::vector<json> merged = fan_out(m, "/points/query", {body}, {by_score(m, name)}, false);
  std::vector<std::vector<float>> vectors;
  for (const json& p : merged.at(0)) {
    const json& v = p.at("vector");
    vectors.push_back((v.is_object() ? v.at(name) : v).get<std::vector<float>>());
  }
  Ranked out;
  out.small_better = space.metric() == index::Metric::kL2;
  for (const size_t i : mmr_page(q.at("nearest").get<std::vector<float>>(), vectors, space.metric(),
                                 mmr.lambda, offset, limit)) {
    const json& p = merged.at(0).at(i);
    out.points.push_back(
        {engine::PointRead{engine::PointId::from_json(p.at("id"), "id"), json(), {}},
         p.value("score", 0.0f)});
  }
  return out;
}

json ClusterRouter::query_answer(const CollectionMap& m, const json& request) {
  const json q = request.value("query", json());
  if (!is_fusion(q) && !is_mmr(q)) {
    return json{
        {"points",
         fan_out(m, "/points/query", {request}, {merge_of(m, request, false)}, false).at(0)}};
  }
  // Fused (or chosen by MMR) here: then the points are read with what the request asks of them.
  const Ranked r = ranked(m, request, json(), "");
  json ids = json::array();
  std::map<std::string, float> score;
  for (const engine::ScoredPoint& p : r.points) {
    ids.push_back(p.point.id.to_json());
    score[p.point.id.key()] = p.score;
  }
  json points = json::array();
  if (ids.empty()) return json{{"points", points}};
  const json body{{"ids", ids},
                  {"with_payload", request.value("with_payload", json(false))},
                  {"with_vector", request.value("with_vector", json(false))}};
  for (json& p : retrieve_ids(m, body)) {  // in the order asked; points deleted meanwhile left out
    p["version"] = 0;
    p["score"] = shortest_double(score.at(id_key(p.at("id"))));
    points.push_back(std::move(p));
  }
  return json{{"points", points}};
}

json ClusterRouter::matrix(const std::string& pattern, const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const MatrixRequest r = read_matrix_request(parse_body(*c.body));
  const std::string& name = r.vector_name;
  // The space as one node reads it from the same config (an unknown name: one node's 400).
  const engine::CollectionConfig config = collection_config_from_qdrant(m.config);
  const engine::VectorConfig& space = config.vector(name, "using");
  const bool named = config.named();
  check_matrix_work(r.sample, space.dim);
  // Every shard's random points under the filter, with the vector; those without it (a named
  // vector some points lack) are left out, which can leave the sample short of `sample` where
  // one node draws among the points holding it.
  json sample{{"query", {{"sample", "random"}}},
              {"limit", r.sample},
              {"with_payload", false},
              {"with_vector", named ? json::array({name}) : json(true)}};
  if (!r.filter_json.is_null()) sample["filter"] = r.filter_json;
  std::vector<std::pair<engine::PointId, std::vector<float>>> points;
  const std::vector<json> drawn = fan_out(m, "/points/query", {sample}, {Merge::kRandom}, false);
  for (const json& p : drawn.at(0)) {
    json v = p.value("vector", json());
    if (v.is_object()) v = v.contains(name) ? v[name] : json();
    if (!v.is_array()) continue;
    points.emplace_back(engine::PointId::from_json(p.at("id"), "id"), v.get<std::vector<float>>());
  }
  const DistanceMatrix dm = distance_matrix(std::move(points), space.metric(), r.limit);
  return pattern.size() > 6 && pattern.compare(pattern.size() - 6, 6, "/pairs") == 0
             ? matrix_pairs(dm)
             : matrix_offsets(dm);
}

json ClusterRouter::query(const std::string& pattern, const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const std::string path = pattern.substr(std::strlen("/collections/{name}"));
  // Qdrant's older group routes: their bodies checked as one node does, then query/groups.
  const bool older_groups = path == "/points/search/groups" || path == "/points/recommend/groups";
  const bool recommend = path.rfind("/points/recommend", 0) == 0;
  // Qdrant's discovery routes: their bodies as the queries that answer them, each answer a list
  // of points rather than {"points": [...]}.
  const bool discover = path.rfind("/points/discover", 0) == 0;
  const bool batch = path.size() > 6 && path.compare(path.size() - 6, 6, "/batch") == 0;
  const char* kind = recommend ? "recommend" : discover ? "discover" : "query";
  // A request checked as one node checks it, its ids resolved (named as its route names them),
  // a discovery then made the query that answers it.
  auto prepare = [&](json& r, const std::string& where) {
    if (recommend) {
      check_recommend_request(r, where);
      resolve_ids(m, r, where, Body::kRecommend);
    } else if (discover) {
      discover_as_query(r, where);
      resolve_ids(m, r, where, Body::kDiscover);
      r = discover_as_query(r, where);
    } else {
      check_query_request(r, where);
      resolve_ids(m, r, where, Body::kQuery);
    }
  };
  json body = parse_body(*c.body, !recommend && !discover && !batch && !older_groups);
  if (older_groups) body = groups_as_query(body, recommend);
  if (older_groups || path == "/points/query/groups") {
    const GroupsRequest g = read_groups_request(body);
    resolve_ids(m, body, "", Body::kQuery);
    for (const char* key : {"group_by", "group_size", "with_lookup", "offset"}) body.erase(key);
    body["with_payload"] = true;
    // with_lookup: the points of the groups' ids read from that collection's shards (a 404
    // before any query runs).
    std::optional<CollectionMap> lookup;
    if (!g.lookup_collection.empty()) lookup = need_or_alias(g.lookup_collection);
    json answer = collect_groups(g, [&](size_t n) {
      body["limit"] = n;
      return query_answer(m, body).at("points");
    });
    if (lookup) {
      const json request = lookup_request(g, answer);
      if (!request.is_null()) add_lookups(answer, retrieve_ids(*lookup, request));
    }
    return answer;
  }
  if (!batch) {
    prepare(body, "");
    if (recommend) return fan_out(m, path, {body}, {merge_of(m, body, true)}, false).at(0);
    json answer = query_answer(m, body);
    return discover ? std::move(answer["points"]) : answer;
  }
  WP_THROW_IF_NOT(body.is_object() && body.contains("searches") && body["searches"].is_array(),
                  "searches: expected an array of ", kind, " requests");
  const size_t n = body["searches"].size();
  WP_THROW_IF_NOT(n <= kMaxBatchSearches, "searches: at most ", kMaxBatchSearches, " ", kind,
                  " requests per batch, got ", n);
  std::vector<json> requests;
  std::vector<Merge> merges;
  bool fused = false;
  for (size_t i = 0; i < n; ++i) {
    json r = body["searches"][i];
    const std::string where = "searches[" + std::to_string(i) + "]";
    prepare(r, where);
    fused = fused || (!recommend && is_fusion(r.value("query", json())));
    merges.push_back(merge_of(m, r, recommend));
    requests.push_back(std::move(r));
  }
  if (!fused) {
    std::vector<json> lists =
        fan_out(m, discover ? "/points/query/batch" : path, requests, merges, true);
    if (recommend || discover) return lists;
    json out = json::array();  // a query's answer is {"points": [...]}
    for (json& l : lists) out.push_back(json{{"points", std::move(l)}});
    return out;
  }
  // A fused query is answered on its own: every request so.
  json out = json::array();
  for (const json& r : requests) out.push_back(query_answer(m, r));
  return out;
}

}  // namespace wp::http
