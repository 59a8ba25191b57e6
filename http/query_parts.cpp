// The query family's parts one node and a cluster coordinator share (query_parts.h).
#include "http/query_parts.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "engine/json_fields.h"
#include "engine/json_value.h"
#include "index/error.h"
#include "index/index.h"

namespace wp::http {

using engine::get_count;

json both_filters(const json& a, const json& b) {
  if (a.is_null()) return b;
  if (b.is_null()) return a;
  return json{{"must", json::array({a, b})}};
}

Fusion read_fusion(const json& q, const std::string& at) {
  Fusion f;
  if (q.contains("fusion")) {
    const json& name = q["fusion"];
    WP_THROW_IF_NOT(name == "rrf" || name == "dbsf", at,
                    ".fusion: expected \"rrf\" or \"dbsf\", got ", engine::show_json(name));
    f.rrf = name == "rrf";
    return f;
  }
  const json& r = q["rrf"];
  const std::string field = at + ".rrf";
  WP_THROW_IF_NOT(r.is_object(), field, ": expected {\"k\", \"weights\"}");
  engine::check_fields(r, field, {"k", "weights"});
  f.k = get_count(r, "k", field, 2, 1, 1000000);
  if (r.contains("weights") && !r["weights"].is_null()) {
    const json& w = r["weights"];
    WP_THROW_IF_NOT(w.is_array(), field, ".weights: expected an array of numbers");
    for (size_t i = 0; i < w.size(); ++i) {
      WP_THROW_IF_NOT(
          w[i].is_number() && std::isfinite(w[i].get<double>()) && w[i].get<double>() >= 0, field,
          ".weights[", i, "]: expected a number >= 0, got ", engine::show_json(w[i]));
      f.weights.push_back(w[i].get<float>());
    }
  }
  return f;
}

/// Reciprocal rank fusion: each list gives the point at position i (0-based) weight / ((i + 1) +
/// w (k - 1)), summed per point (Qdrant's formula, rrf_scoring).
std::vector<std::pair<engine::PointId, float>> fuse(const std::vector<Ranked>& lists,
                                                    const Fusion& f) {
  std::unordered_map<engine::PointId, float> score;
  std::vector<engine::PointId> order;  // first seen, for ties
  auto add = [&](const engine::PointId& id, float x) {
    auto [it, fresh] = score.try_emplace(id, 0.0f);
    if (fresh) order.push_back(id);
    it->second += x;
  };
  for (size_t l = 0; l < lists.size(); ++l) {
    const std::vector<engine::ScoredPoint>& pts = lists[l].points;
    if (f.rrf) {
      const float w = f.weights.empty() ? 1.0f : f.weights[l];
      for (size_t i = 0; i < pts.size(); ++i) {
        add(pts[i].point.id,
            w <= 0 ? 0.0f
                   : 1.0f / (static_cast<float>(i + 1) / w + static_cast<float>(f.k) - 1.0f));
      }
      continue;
    }
    // Distribution-based: each list's scores mapped so that mean -+ 3 sample standard deviations
    // fall on 0 and 1 (a lone point on 0.5), then summed.
    const size_t n = pts.size();
    if (n == 0) continue;
    if (n == 1) {
      add(pts[0].point.id, 0.5f);
      continue;
    }
    double mean = 0, m2 = 0;
    for (size_t i = 0; i < n; ++i) {
      const double d = pts[i].score - mean;
      mean += d / static_cast<double>(i + 1);
      m2 += d * (pts[i].score - mean);
    }
    const double sd = std::sqrt(m2 / static_cast<double>(n - 1));
    const double lo = mean - 3 * sd, hi = mean + 3 * sd;
    for (const engine::ScoredPoint& p : pts) {
      double x = 0.5;
      if (hi > lo)
        x = lists[l].small_better ? (hi - p.score) / (hi - lo) : (p.score - lo) / (hi - lo);
      add(p.point.id, static_cast<float>(x));
    }
  }
  std::vector<std::pair<engine::PointId, float>> out;
  for (const engine::PointId& id : order) out.emplace_back(id, score[id]);
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

/// The group ids of a point: the string and integer values at the group_by key (an array's
/// elements each), as Qdrant groups.
namespace {

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

json collect_groups(const GroupsRequest& g, const std::function<json(size_t n)>& run) {
  json out = json::array();
  for (size_t fetch = std::min(index::kMaxK, g.groups * g.group_size * 4);;
       fetch = std::min(index::kMaxK, fetch * 4)) {
    const json points = run(fetch);
    std::vector<std::pair<json, json>> found;  // group id, hits; in order of the best hit
    for (const json& p : points) {
      for (const json& id : group_values(g.path, p["payload"])) {
        auto it =
            std::find_if(found.begin(), found.end(), [&](const auto& f) { return f.first == id; });
        if (it == found.end()) {
          if (found.size() == g.groups) continue;
          found.push_back({id, json::array()});
          it = found.end() - 1;
        }
        if (it->second.size() < g.group_size) {
          json hit = p;
          hit["payload"] = g.returned.enabled ? g.returned.apply(p["payload"]) : json();
          it->second.push_back(std::move(hit));
        }
      }
    }
    const bool full = found.size() == g.groups &&
                      std::all_of(found.begin(), found.end(),
                                  [&](const auto& f) { return f.second.size() == g.group_size; });
    if (full || points.size() < fetch || fetch == index::kMaxK) {
      for (auto& [id, hits] : found) out.push_back({{"id", id}, {"hits", std::move(hits)}});
      break;
    }
  }
  return json{{"groups", out}};
}

}  // namespace wp::http
