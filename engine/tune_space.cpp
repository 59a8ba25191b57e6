#include "engine/tune_space.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "engine/json_value.h"
#include "index/error.h"
#include "index/index_spec.h"

namespace wp::engine::tune {

using nlohmann::json;

namespace {

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

const std::vector<double> kEf{10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};

}  // namespace

Space Space::standard(const std::vector<std::string>& types, const SpaceOptions& options) {
  Space s;
  for (const std::string& t : types) {
    std::vector<Choice> c;
    const index::IndexKind kind = index::parse_index_kind(t, "types");
    switch (kind) {
      case index::IndexKind::kHnsw:
      case index::IndexKind::kGraph:
        c.push_back({"m", {4, 8, 12, 16, 24, 32, 48}, {}, false});
        c.push_back({"ef_construct", {32, 64, 128, 256, 512}, {}, false});
        c.push_back({"quantization", {0, 1}, {"none", "sq8"}, false});
        // RobustPrune's slack: 1 is HNSW's own heuristic; larger keeps longer edges (not
        // defined on inner product, index/vamana.h).
        if (kind == index::IndexKind::kGraph) {
          c.push_back({"alpha",
                       options.metric == index::Metric::kInnerProduct
                           ? std::vector<double>{1.0}
                           : std::vector<double>{1.0, 1.1, 1.2, 1.3, 1.5},
                       {},
                       false});
        }
        c.push_back({"ef", kEf, {}, true});
        break;
      case index::IndexKind::kLsh:
        c.push_back({"bits", {64, 128, 256, 512, 1024}, {}, false});
        c.push_back({"tables", {0, 4, 8, 16}, {}, false});
        c.push_back({"probes", {4, 16, 64}, {}, false});
        c.push_back({"candidates", {50, 100, 200, 500, 1000, 2000, 5000}, {}, true});
        break;
      case index::IndexKind::kRl:
        // A learning job prunes a candidate pool down to about m edges a vertex (the degree it
        // compares at, learn/train_pruner.h); a trained graph file has only its search width.
        if (!options.rl_trained_file) c.push_back({"m", {8, 12, 16, 24, 32}, {}, false});
        c.push_back({"ef", kEf, {}, true});
        break;
      case index::IndexKind::kFlat:
        throw UserError("types: \"" + t + "\" cannot be tuned; expected hnsw, lsh, graph or rl");
    }
    s.kinds.push_back(kind);
    s.choices.push_back(std::move(c));
  }
  WP_THROW_IF_NOT(!s.kinds.empty(), "types: give at least one index type to tune");
  WP_THROW_IF_NOT(
      std::set<index::IndexKind>(s.kinds.begin(), s.kinds.end()).size() == s.kinds.size(),
      "types: each type at most once");
  return s;
}

size_t Space::type_index(const std::string& type) const {
  for (size_t i = 0; i < kinds.size(); ++i) {
    if (type == index::index_kind_name(kinds[i])) return i;
  }
  throw UserError("type: \"" + type + "\" is not in the tuned space");
}

size_t Space::max_values() const {
  size_t m = kinds.size();
  for (const auto& cs : choices) {
    for (const Choice& c : cs) m = std::max(m, c.values.size());
  }
  return m;
}

bool valid(const Space& s, const Config& c) {
  if (c.type >= s.kinds.size() || c.picks.size() != s.choices[c.type].size()) return false;
  for (size_t i = 0; i < c.picks.size(); ++i) {
    if (c.picks[i] >= s.choices[c.type][i].values.size()) return false;
  }
  return true;
}

std::optional<double> value(const Space& s, const Config& c, const std::string& name) {
  const std::vector<Choice>& cs = s.choices.at(c.type);
  for (size_t i = 0; i < cs.size(); ++i) {
    if (cs[i].name == name) return cs[i].values.at(c.picks.at(i));
  }
  return std::nullopt;
}

std::string describe(const Space& s, const Config& c) {
  WP_THROW_INTERNAL_IF_NOT(valid(s, c), "configuration off its space");
  std::string out = s.type_name(c.type);
  const std::vector<Choice>& cs = s.choices[c.type];
  for (size_t i = 0; i < cs.size(); ++i) {
    out += " " + cs[i].name + "=" +
           (cs[i].labels.empty() ? number(cs[i].values[c.picks[i]]) : cs[i].labels[c.picks[i]]);
  }
  return out;
}

json to_request(const Space& s, const Config& c) {
  WP_THROW_INTERNAL_IF_NOT(valid(s, c), "configuration off its space");
  json j{{"type", s.type_name(c.type)}};
  const std::vector<Choice>& cs = s.choices[c.type];
  for (size_t i = 0; i < cs.size(); ++i) {
    const double v = cs[i].values[c.picks[i]];
    if (cs[i].labels.empty() && v == std::floor(v)) {
      j[cs[i].name] = static_cast<int64_t>(v);
    } else if (cs[i].labels.empty()) {
      j[cs[i].name] = v;
    } else {
      j[cs[i].name] = cs[i].labels[c.picks[i]];
    }
  }
  return j;
}

Config from_request(const Space& s, const json& body) {
  WP_THROW_IF_NOT(body.is_object() && body.contains("type") && body["type"].is_string(),
                  "type: expected a string");
  Config c;
  c.type = s.type_index(body["type"].get<std::string>());
  for (const Choice& ch : s.choices[c.type]) {
    WP_THROW_IF_NOT(body.contains(ch.name), ch.name, ": missing");
    const json& v = body[ch.name];
    size_t pick = ch.values.size();
    for (size_t i = 0; i < ch.values.size(); ++i) {
      const bool match = ch.labels.empty() ? v.is_number() && v.get<double>() == ch.values[i]
                                           : v.is_string() && v.get<std::string>() == ch.labels[i];
      if (match) pick = i;
    }
    WP_THROW_IF_NOT(pick < ch.values.size(), ch.name, ": ", show_json(v), " is not a tuned value");
    c.picks.push_back(pick);
  }
  return c;
}

size_t search_ef(const Space& s, const Config& c) {
  if (auto ef = value(s, c, "ef")) return static_cast<size_t>(*ef);
  if (auto cand = value(s, c, "candidates")) return static_cast<size_t>(*cand);
  return 0;
}

}  // namespace wp::engine::tune
