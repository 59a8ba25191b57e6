// ClusterRouter: the read path (fan-out to one active replica per shard, merged answers).
#include "http/cluster_router.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "http/cluster_router_detail.h"

namespace wp::http {

namespace {

/// The merged page of points from every shard's list: ordered as `how` says (ties by id),
/// `offset` skipped, at most `limit`.
json merge_points(const std::vector<json>& lists, ClusterRouter::Merge how, size_t offset,
                  size_t limit) {
  using Merge = ClusterRouter::Merge;
  if (how == Merge::kRandom) {
    std::vector<const json*> all;
    std::set<std::string> seen;
    for (const json& l : lists) {
      for (size_t i = 0; l.is_array() && i < l.size(); ++i) {
        if (seen.insert(id_key(l[i].at("id"))).second) all.push_back(&l[i]);
      }
    }
    thread_local std::mt19937_64 rng(std::random_device{}());
    std::shuffle(all.begin(), all.end(), rng);
    json out = json::array();
    for (size_t i = 0; i < all.size() && out.size() < limit; ++i) out.push_back(*all[i]);
    return out;
  }
  struct Keyed {
    double value;
    std::string id;
    const json* point;
  };
  const char* field = how == Merge::kValueAsc || how == Merge::kValueDesc ? "order_value" : "score";
  std::vector<Keyed> all;
  for (const json& l : lists) {
    if (!l.is_array()) continue;
    for (const json& p : l) {
      const double v = how == Merge::kId ? 0.0 : p.value(field, 0.0);
      all.push_back({v, id_key(p.at("id")), &p});
    }
  }
  const bool low_first = how == Merge::kLowFirst || how == Merge::kValueAsc;
  std::sort(all.begin(), all.end(), [&](const Keyed& a, const Keyed& b) {
    if (a.value != b.value) return low_first ? a.value < b.value : a.value > b.value;
    return a.id < b.id;
  });
  json out = json::array();
  for (size_t i = offset; i < all.size() && out.size() < limit; ++i) out.push_back(*all[i].point);
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
  const bool limit_read = count("limit", limit);  // both read, whichever is not a count
  const bool offset_read = count("offset", offset);
  const bool valid = limit_read && offset_read;
  if (valid && limit <= kMaxMerged && offset <= kMaxMerged) {
    request["limit"] = limit + offset;
    if (request.contains("offset")) request["offset"] = 0;
  }
  return {limit, offset};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Reads

std::vector<json> ClusterRouter::fan_out(const CollectionMap& m, const std::string& path,
                                         std::vector<json> requests, const std::vector<Merge>& how,
                                         bool batch) {
  std::vector<std::pair<size_t, size_t>> pages;
  for (json& r : requests) pages.push_back(widen(r, 10));
  const json body = batch ? json{{"searches", requests}} : requests.at(0);
  const std::vector<json> shards = read_all(m, "POST", path, {body});
  const bool query = path.rfind("/points/query", 0) == 0;
  std::vector<json> out;
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<json> lists;
    for (const json& r : shards) {
      const json& result = batch ? r.at(i) : r;
      lists.push_back(query ? result.at("points") : result);
    }
    out.push_back(merge_points(lists, how.at(i), pages[i].second, pages[i].first));
  }
  return out;
}

json ClusterRouter::search(const std::string& pattern, const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const json body = parse_body(*c.body);
  const std::string path = pattern.substr(std::strlen("/collections/{name}"));
  const bool batch = path == "/points/search/batch";
  auto how = [&](const json& request) {
    const json& v = request.contains("vector") ? request["vector"] : json();
    return by_score(m, v.is_object() && v.contains("name") && v["name"].is_string()
                           ? v["name"].get<std::string>()
                           : std::string());
  };
  if (!batch) {
    WP_THROW_IF_NOT(body.is_object(), "body: expected a JSON object");
    return fan_out(m, path, {body}, {how(body)}, false).at(0);
  }
  WP_THROW_IF_NOT(body.is_object() && body.contains("searches") && body["searches"].is_array(),
                  "searches: expected an array");
  std::vector<json> requests;
  std::vector<Merge> merges;
  for (const json& r : body["searches"]) {
    requests.push_back(r);
    merges.push_back(how(r));
  }
  return fan_out(m, path, requests, merges, true);
}

json ClusterRouter::retrieve(const Call& c) {
  return retrieve_ids(need(c.path.at("name")), parse_body(*c.body));
}

json ClusterRouter::retrieve_ids(const CollectionMap& m, const json& body) {
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
  if (body.contains("order_by") && !body["order_by"].is_null()) {
    // Every shard's first points in that order, merged; Qdrant gives no next page offset here
    // (the next page starts from order_by.start_from).
    const std::vector<json> shards = read_all(m, "POST", "/points/scroll", {body});
    std::vector<json> lists;
    for (const json& r : shards) lists.push_back(r.at("points"));
    size_t limit = 10;
    if (body.contains("limit") && body["limit"].is_number_unsigned()) limit = body["limit"];
    return {{"points", merge_points(lists, order_merge(body["order_by"]), 0, limit)},
            {"next_page_offset", nullptr}};
  }
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
      n += engine::stored_count(h, "count");
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
