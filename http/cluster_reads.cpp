// ClusterRouter: the read path (fan-out to one active replica per shard, merged answers).
#include "http/cluster_router.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "http/cluster_router_detail.h"

namespace wp::http {

namespace {

/// Orders scored points best first: by score (ascending distance for Euclid), then id.
void sort_scored(std::vector<json>& points, bool ascending) {
  std::stable_sort(points.begin(), points.end(), [&](const json& a, const json& b) {
    const double sa = a.value("score", 0.0), sb = b.value("score", 0.0);
    if (sa != sb) return ascending ? sa < sb : sa > sb;
    return a.at("id").dump() < b.at("id").dump();
  });
}

/// The merged page of scored lists: sorted, `offset` skipped, at most `limit`.
json merge_scored(const std::vector<json>& lists, bool ascending, size_t offset, size_t limit) {
  std::vector<json> all;
  for (const json& l : lists) {
    if (!l.is_array()) continue;
    for (const json& p : l) all.push_back(p);
  }
  sort_scored(all, ascending);
  json out = json::array();
  for (size_t i = offset; i < all.size() && out.size() < limit; ++i) out.push_back(all[i]);
  return out;
}

/// A search request rewritten for one shard: `limit + offset` points from offset 0. Returns
/// the original limit and offset (defaults when absent; the shard checks bad values).
std::pair<size_t, size_t> widen(json& request, size_t default_limit) {
  size_t limit = default_limit, offset = 0;
  // A value given that is not a count is left as it is: the shards refuse it, naming it.
  auto count = [&](const char* key, size_t& out) {
    if (!request.contains(key) || request[key].is_null()) return true;
    if (!request[key].is_number_unsigned()) return false;
    out = request[key].get<size_t>();
    return true;
  };
  const bool valid = count("limit", limit) & count("offset", offset);
  if (valid && limit <= kMaxMerged && offset <= kMaxMerged) {
    request["limit"] = limit + offset;
    if (request.contains("offset")) request["offset"] = 0;
  }
  return {limit, offset};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reads

json ClusterRouter::search(const std::string& pattern, const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  json body = parse_body(*c.body);
  const std::string path = pattern.substr(std::strlen("/collections/{name}"));
  const bool query = path.rfind("/points/query", 0) == 0;
  const bool batch = path.size() > 6 && path.compare(path.size() - 6, 6, "/batch") == 0;
  auto direction = [&](const json& request) {
    std::string vector_name;
    if (query && request.contains("using") && request["using"].is_string()) {
      vector_name = request["using"];
    } else if (!query && request.contains("vector") && request["vector"].is_object() &&
               request["vector"].contains("name") && request["vector"]["name"].is_string()) {
      vector_name = request["vector"]["name"];
    }
    try {
      return m.distance(vector_name) == "Euclid";
    } catch (const std::exception&) {
      return false;  // the shards refuse an unknown name
    }
  };
  auto check_query = [&](const json& request, const std::string& at) {
    if (!query) return;
    WP_THROW_IF_NOT(!request.contains("prefetch"), at, "prefetch: not served on a sharded ",
                    "collection yet (fusion needs every shard's candidates)");
    if (!request.contains("query")) return;
    const json& q = request["query"];
    WP_THROW_IF_NOT(q.is_array() || (q.is_object() && q.contains("nearest") && q.size() == 1 &&
                                     q["nearest"].is_array()),
                    at,
                    "query: on a sharded collection a vector or {\"nearest\": vector} is "
                    "served yet");
  };
  std::vector<json> requests;
  std::vector<std::pair<size_t, size_t>> pages;
  if (batch) {
    WP_THROW_IF_NOT(body.is_object() && body.contains("searches") && body["searches"].is_array(),
                    "searches: expected an array");
    for (size_t i = 0; i < body["searches"].size(); ++i) {
      json& r = body["searches"][i];
      check_query(r, "searches[" + std::to_string(i) + "].");
      requests.push_back(r);
      pages.push_back(widen(r, 10));
    }
  } else {
    WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
    check_query(body, "");
    requests.push_back(body);
    pages.push_back(widen(body, 10));
  }
  const std::vector<json> shards = read_all(m, "POST", path, {body});
  auto points_of = [&](const json& result) {
    return query ? result.value("points", json::array()) : result;
  };
  auto merged = [&](size_t i, const std::vector<json>& lists) {
    const json page = merge_scored(lists, direction(requests[i]), pages[i].second, pages[i].first);
    return query ? json{{"points", page}} : page;
  };
  if (!batch) {
    std::vector<json> lists;
    for (const json& r : shards) lists.push_back(points_of(r));
    return merged(0, lists);
  }
  json out = json::array();
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<json> lists;
    for (const json& r : shards) lists.push_back(points_of(r.at(i)));
    out.push_back(merged(i, lists));
  }
  return out;
}

json ClusterRouter::retrieve(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object() && body.contains("ids") && body["ids"].is_array(),
                  "ids: expected an array of point ids");
  std::vector<json> bodies(m.shard_number, body);
  for (json& b : bodies) b["ids"] = json::array();
  for (size_t j = 0; j < body["ids"].size(); ++j) {
    const json& id = body["ids"][j];
    bodies[m.shard_of(engine::PointId::from_json(id, "ids[" + std::to_string(j) + "]"))]["ids"]
        .push_back(id);
  }
  // In the order the request named them, as one node answers.
  std::map<std::string, size_t> position;
  for (size_t j = body["ids"].size(); j-- > 0;) position[id_key(body["ids"][j])] = j;
  std::vector<std::pair<size_t, json>> found;
  for (const json& r : read_all(m, "POST", "/points", bodies)) {
    for (const json& p : r) found.emplace_back(position[id_key(p.at("id"))], p);
  }
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  json out = json::array();
  for (auto& [pos, p] : found) out.push_back(std::move(p));
  return out;
}

json ClusterRouter::get_point(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const std::string& raw = c.path.at("id");
  json id = raw;
  if (!raw.empty() && raw.find_first_not_of("0123456789") == std::string::npos && raw.size() < 20) {
    id = std::stoull(raw);
  }
  const uint32_t s = m.shard_of(engine::PointId::from_json(id, "id"));
  Answer a = read_shard(m, s, "GET", "/points/" + raw, nullptr);
  return result_of(a.status, std::move(a.body), "");
}

json ClusterRouter::count(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const json body = parse_body(*c.body, true);
  size_t total = 0;
  for (const json& r : read_all(m, "POST", "/points/count", {body})) total += r.value("count", 0);
  return {{"count", total}};
}

json ClusterRouter::scroll(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  json body = parse_body(*c.body, true);
  if (body.is_null()) body = json::object();
  WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
  WP_THROW_IF_NOT(!body.contains("order_by") || body["order_by"].is_null(),
                  "order_by: not served on a sharded collection yet");
  size_t limit = 10;
  const bool given = body.contains("limit") && !body["limit"].is_null();
  if (given && body["limit"].is_number_unsigned()) limit = body["limit"];
  // Not a count: left for the shards to refuse, naming it.
  if ((!given || body["limit"].is_number_unsigned()) && limit < kMaxMerged) {
    body["limit"] = limit + 1;
  }
  std::vector<json> all;
  for (const json& r : read_all(m, "POST", "/points/scroll", {body})) {
    for (const json& p : r.value("points", json::array())) all.push_back(p);
  }
  std::vector<std::pair<std::string, size_t>> keys;
  for (size_t i = 0; i < all.size(); ++i) keys.emplace_back(id_key(all[i].at("id")), i);
  std::sort(keys.begin(), keys.end());
  json points = json::array();
  for (size_t i = 0; i < keys.size() && i < limit; ++i) points.push_back(all[keys[i].second]);
  const json next = keys.size() > limit ? all[keys[limit].second].at("id") : json();
  return {{"points", points}, {"next_page_offset", next}};
}

json ClusterRouter::facet(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
  // Every shard's counts in full (up to the largest answer), summed here: exact while no shard
  // holds more distinct values than that.
  size_t limit = 10;
  const bool given = body.contains("limit") && !body["limit"].is_null();
  if (given && body["limit"].is_number_unsigned()) limit = body["limit"];
  if (!given || body["limit"].is_number_unsigned()) body["limit"] = kMaxAnswerPoints;
  std::map<std::string, std::pair<json, uint64_t>> counts;  // value's text -> value, count
  for (const json& r : read_all(m, "POST", "/facet", {body})) {
    for (const json& h : r.value("hits", json::array())) {
      auto& [value, n] = counts[h.at("value").dump()];
      value = h.at("value");
      n += h.at("count").get<uint64_t>();
    }
  }
  std::vector<std::pair<json, uint64_t>> hits;
  for (auto& [text, hit] : counts) hits.push_back(std::move(hit));
  // As one node orders them: count descending, then value.
  std::sort(hits.begin(), hits.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  json out = json::array();
  for (size_t i = 0; i < hits.size() && i < limit; ++i) {
    out.push_back({{"value", hits[i].first}, {"count", hits[i].second}});
  }
  return json{{"hits", out}};
}

}  // namespace wp::http
