// The query family's parts one node and a cluster coordinator share (query_parts.h).
#include "http/query_parts.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <unordered_map>

#include "engine/json_fields.h"
#include "engine/json_value.h"
#include "http/api.h"
#include "index/distance.h"
#include "index/error.h"
#include "index/index.h"

namespace wp::http {

using engine::get_count;

std::vector<std::pair<engine::PointId, float>> shuffled_union(const std::vector<Ranked>& lists) {
  std::vector<engine::PointId> ids;
  for (const Ranked& l : lists) {
    for (const engine::ScoredPoint& p : l.points) ids.push_back(p.point.id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<std::pair<engine::PointId, float>> out;
  for (engine::PointId& id : ids) out.emplace_back(std::move(id), 1.0f);
  return out;
}

std::optional<LookupFrom> read_lookup_from(const json& body, const std::string& where,
                                           const std::string& default_vector) {
  const std::string at = engine::join(where, "lookup_from");
  if (!body.is_object() || !body.contains("lookup_from") || body["lookup_from"].is_null()) {
    return std::nullopt;
  }
  const json& l = body["lookup_from"];
  WP_THROW_IF_NOT(l.is_object(), at, ": expected {\"collection\", \"vector\"}, got ",
                  engine::show_json(l));
  engine::check_fields(l, at, {"collection", "vector", "shard_key"});
  WP_THROW_IF_NOT(!l.contains("shard_key") || l["shard_key"].is_null(), at,
                  ".shard_key: custom sharding is not supported");
  WP_THROW_IF_NOT(l.contains("collection") && l["collection"].is_string(), at,
                  ".collection: expected a collection's name");
  LookupFrom out;
  out.collection = l["collection"].get<std::string>();
  out.vector = engine::get_string(l, "vector", at, default_vector);
  return out;
}

Mmr read_mmr(const json& mmr, const std::string& at) {
  Mmr out;
  if (mmr.is_null()) return out;
  WP_THROW_IF_NOT(mmr.is_object(), at, ": expected {\"diversity\", \"candidates_limit\"}, got ",
                  engine::show_json(mmr));
  engine::check_fields(mmr, at, {"diversity", "candidates_limit"});
  if (const std::optional<float> d = engine::get_optional_float(mmr, "diversity", at)) {
    WP_THROW_IF_NOT(*d >= 0 && *d <= 1, at, ".diversity: expected a number in 0..1, got ", *d);
    out.lambda = 1.0f - *d;
  }
  out.candidates = get_count(mmr, "candidates_limit", at, 0, 0, kMaxMmrCandidates);
  return out;
}

size_t mmr_candidates(const Mmr& mmr, size_t chosen, size_t dim, const std::string& at) {
  const size_t candidates = mmr.candidates ? mmr.candidates : chosen;
  const double work = double(candidates) * double(chosen + 1) * double(dim);
  WP_THROW_IF_NOT(work <= double(kMaxMatrixWork), engine::join(at, "candidates_limit"), ": ",
                  candidates, " candidates for ", chosen, " points of ", dim,
                  " dimensions would take ", candidates * (chosen + 1),
                  " similarities; take fewer candidates or points");
  return candidates;
}

std::vector<size_t> mmr_select(const std::vector<float>& query,
                               const std::vector<std::vector<float>>& candidates,
                               index::Metric metric, float lambda, size_t limit) {
  const size_t n = candidates.size(), dim = query.size();
  std::vector<size_t> chosen;
  if (n == 0 || limit == 0) return chosen;
  const index::DistanceFn distance = index::distance_fn(metric, dim);
  // -|a - b|^2, or the dot product: higher is more alike.
  auto similarity = [&](const float* a, const float* b) { return -distance(a, b, dim); };
  std::vector<float> relevance(n), closest(n, -std::numeric_limits<float>::infinity());
  std::vector<char> taken(n, 0);
  for (size_t i = 0; i < n; ++i) relevance[i] = similarity(query.data(), candidates[i].data());
  size_t pick = std::max_element(relevance.begin(), relevance.end()) - relevance.begin();
  while (true) {
    chosen.push_back(pick);
    taken[pick] = 1;
    if (chosen.size() == std::min(limit, n)) break;
    // Each candidate's greatest likeness to one chosen, brought up to date with the last.
    float best = -std::numeric_limits<float>::infinity();
    size_t next = n;
    for (size_t i = 0; i < n; ++i) {
      if (taken[i]) continue;
      closest[i] = std::max(closest[i], similarity(candidates[i].data(), candidates[pick].data()));
      const float score = lambda * relevance[i] - (1.0f - lambda) * closest[i];
      if (next == n || score > best) {
        best = score;
        next = i;
      }
    }
    pick = next;
  }
  return chosen;
}

std::vector<size_t> mmr_page(std::vector<float> query,
                             const std::vector<std::vector<float>>& candidates,
                             index::Metric metric, float lambda, size_t offset, size_t limit) {
  if (metric == index::Metric::kCosine) index::normalize(query.data(), query.size());
  std::vector<size_t> chosen = mmr_select(query, candidates, metric, lambda, offset + limit);
  chosen.erase(chosen.begin(), chosen.begin() + std::min(offset, chosen.size()));
  return chosen;
}

MatrixRequest read_matrix_request(const json& body) {
  WP_THROW_IF_NOT(body.is_object(), "body: expected an object");
  MatrixRequest r;
  r.sample = get_count(body, "sample", "", 10, 2, kMaxMatrixSample);
  r.limit = get_count(body, "limit", "", 3, 1, index::kMaxK);
  WP_THROW_IF_NOT(r.sample * r.limit <= kMaxAnswerPoints, "limit: the matrix would hold ",
                  r.sample * r.limit, " pairs, at most ", kMaxAnswerPoints,
                  " are returned by one request");
  r.filter = get_filter(body, "");
  if (body.contains("filter")) r.filter_json = body["filter"];
  r.vector_name = engine::get_string(body, "using", "", "");
  return r;
}

void check_matrix_work(size_t sample, size_t dim) {
  const size_t most = static_cast<size_t>(std::sqrt(double(kMaxMatrixWork) / double(dim)));
  WP_THROW_IF_NOT(sample <= most, "sample: ", sample, " points of ", dim, " dimensions would take ",
                  sample * sample, " distances; at most ", most,
                  " points are sampled at this dimension");
}

DistanceMatrix distance_matrix(std::vector<std::pair<engine::PointId, std::vector<float>>> points,
                               index::Metric metric, size_t limit) {
  DistanceMatrix m;
  if (points.size() < 2) return m;
  std::sort(points.begin(), points.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  const size_t n = points.size(), d = points[0].second.size();
  const index::DistanceFn distance = index::distance_fn(metric, d);
  const bool l2 = metric == index::Metric::kL2;
  m.rows.resize(n);
  std::vector<std::pair<float, size_t>> row;  // (distance, column): smaller is nearer
  for (size_t i = 0; i < n; ++i) {
    row.clear();
    for (size_t j = 0; j < n; ++j) {
      if (j != i)
        row.emplace_back(distance(points[i].second.data(), points[j].second.data(), d), j);
    }
    const size_t k = std::min(limit, row.size());
    std::partial_sort(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(k), row.end());
    for (size_t r = 0; r < k; ++r) {
      const float x = row[r].first;
      m.rows[i].emplace_back(row[r].second, l2 ? std::sqrt(std::max(x, 0.0f)) : -x);
    }
  }
  for (auto& p : points) m.ids.push_back(std::move(p.first));
  return m;
}

json matrix_pairs(const DistanceMatrix& m) {
  json pairs = json::array();
  for (size_t i = 0; i < m.rows.size(); ++i) {
    for (const auto& [col, score] : m.rows[i]) {
      pairs.push_back({{"a", m.ids[i].to_json()},
                       {"b", m.ids[col].to_json()},
                       {"score", shortest_double(score)}});
    }
  }
  return json{{"pairs", pairs}};
}

json matrix_offsets(const DistanceMatrix& m) {
  json rows = json::array(), cols = json::array(), scores = json::array(), ids = json::array();
  for (size_t i = 0; i < m.rows.size(); ++i) {
    for (const auto& [col, score] : m.rows[i]) {
      rows.push_back(i);
      cols.push_back(col);
      scores.push_back(shortest_double(score));
    }
  }
  for (const engine::PointId& id : m.ids) ids.push_back(id.to_json());
  return json{{"offsets_row", rows}, {"offsets_col", cols}, {"scores", scores}, {"ids", ids}};
}

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

/// The point id a group's id names (nullopt: none, e.g. a negative integer or a plain string).
std::optional<engine::PointId> point_id_of(const json& group_id) {
  try {
    return engine::PointId::from_json(group_id, "id");
  } catch (const UserError&) {
    return std::nullopt;
  }
}

}  // namespace

json lookup_request(const GroupsRequest& g, const json& answer) {
  json ids = json::array();
  for (const json& group : answer.at("groups")) {
    if (const std::optional<engine::PointId> id = point_id_of(group.at("id"))) {
      ids.push_back(id->to_json());
    }
  }
  if (ids.empty()) return json();
  return json{{"ids", ids}, {"with_payload", g.lookup_payload}, {"with_vector", g.lookup_vector}};
}

void add_lookups(json& answer, const json& records) {
  std::vector<std::pair<engine::PointId, const json*>> found;
  for (const json& r : records)
    found.emplace_back(engine::PointId::from_json(r.at("id"), "id"), &r);
  for (json& group : answer.at("groups")) {
    const std::optional<engine::PointId> id = point_id_of(group.at("id"));
    if (!id) continue;
    for (const auto& [point, record] : found) {
      if (point == *id) {
        group["lookup"] = *record;
        break;
      }
    }
  }
}

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
