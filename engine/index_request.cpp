#include "engine/index_request.h"

#include <algorithm>

#include "engine/json_fields.h"
#include "engine/json_value.h"
#include "engine/learned_index.h"
#include "index/error.h"

namespace wp::engine {

using index::GraphParams;
using index::HnswParams;
using index::IndexSpec;
using index::LshParams;
using nlohmann::json;

namespace {

/// An integer index parameter of a request body: its range (whose key names it in the body) and
/// where it lives in a spec.
struct CountField {
  const index::ParamRange& range;
  size_t& (*ref)(IndexSpec& s);
};

const CountField kCountFields[] = {
    {HnswParams::kM, [](IndexSpec& s) -> size_t& { return s.hnsw.M; }},
    {HnswParams::kEfConstruction, [](IndexSpec& s) -> size_t& { return s.hnsw.ef_construction; }},
    {HnswParams::kEfSearch, [](IndexSpec& s) -> size_t& { return s.hnsw.ef_search; }},
    {LshParams::kBits, [](IndexSpec& s) -> size_t& { return s.lsh.bits; }},
    {LshParams::kTables, [](IndexSpec& s) -> size_t& { return s.lsh.tables; }},
    {LshParams::kKeyBits, [](IndexSpec& s) -> size_t& { return s.lsh.key_bits; }},
    {LshParams::kProbes, [](IndexSpec& s) -> size_t& { return s.lsh.probes; }},
    {LshParams::kCandidates, [](IndexSpec& s) -> size_t& { return s.lsh.candidates; }},
};

const CountField* count_field(const std::string& key) {
  for (const CountField& f : kCountFields) {
    if (key == f.range.key) return &f;
  }
  return nullptr;
}

/// Reads index parameter `key` of `body` into `s` (type and range checked by the json_fields
/// readers against the parameter's own ParamRange); false when `key` is not an index parameter.
bool read_param(const json& body, const std::string& key, IndexSpec& s) {
  if (const CountField* f = count_field(key)) {
    size_t& v = f->ref(s);
    v = get_count(body, f->range, "", v);
  } else if (key == GraphParams::kAlpha.key) {
    s.graph.alpha = static_cast<float>(get_number(body, GraphParams::kAlpha, "", s.graph.alpha));
  } else if (key == "quantization") {
    if (!body.contains(key) || body[key].is_null()) return true;
    s.hnsw.quantization = index::parse_quantization(get_string(body, "quantization", "", ""), key);
  } else {
    return false;
  }
  return true;
}

/// The value of index parameter `key` in `s` (a copy: the fields are reached through the same
/// references reading uses); null when `key` is not an index parameter.
json param_value(IndexSpec s, const std::string& key) {
  if (const CountField* f = count_field(key)) return f->ref(s);
  if (key == GraphParams::kAlpha.key) return float_json(s.graph.alpha);
  if (key == "quantization") return index::quantization_name(s.hnsw.quantization);
  return nullptr;
}

std::string key_list(const std::vector<std::string>& keys) {
  std::string s;
  for (const std::string& k : keys) s += (s.empty() ? "" : ", ") + k;
  return s.empty() ? "none" : s;
}

const std::vector<std::string> kAutoKeys{"recall",      "k",     "trials",
                                         "max_minutes", "types", "latency_budget_us"};

AutoTuneRequest parse_auto(const json& body) {
  AutoTuneRequest t;
  t.recall = get_number(body, AutoTuneRequest::kRecall, "", t.recall);
  t.k = get_count(body, AutoTuneRequest::kK, "", t.k);
  t.trials = get_count(body, AutoTuneRequest::kTrials, "", t.trials);
  t.max_minutes = get_number(body, AutoTuneRequest::kMaxMinutes, "", t.max_minutes);
  t.latency_budget_us = get_number(body, AutoTuneRequest::kLatencyBudget, "", 0);
  if (body.contains("types")) {
    const json& ts = body["types"];
    WP_THROW_IF_NOT(ts.is_array() && !ts.empty(),
                    "types: expected a non-empty array of \"hnsw\", \"lsh\", \"graph\" and \"rl\"");
    t.types.clear();
    for (const json& v : ts) {
      WP_THROW_IF_NOT(v.is_string() && (v == "hnsw" || v == "lsh" || v == "graph" || v == "rl"),
                      "types: expected \"hnsw\", \"lsh\", \"graph\" or \"rl\", got ", show_json(v));
      t.types.push_back(v);
    }
  }
  return t;
}

json parse_learned(const json& body) {
  json learned = json::object();
  learned["steps"] = get_count(body, kRlSteps, "", 200);
  if (body.contains("max_minutes")) {
    learned["max_minutes"] = get_number(body, kRlMaxMinutes, "", 0);
  }
  if (body.contains("target_recall")) {
    learned["target_recall"] = get_number(body, kRlTargetRecall, "", 0);
  }
  return learned;
}

}  // namespace

IndexRequest IndexRequest::parse(const json& body, const IndexSpec& current) {
  WP_THROW_IF_NOT(body.is_object(), "expected a JSON object, got ", body.type_name());
  const std::string kinds = index::index_kind_names() + ", auto";
  WP_THROW_IF_NOT(body.contains("type") && body["type"].is_string(), "type: expected one of ",
                  kinds);
  const std::string type = body["type"];
  IndexRequest r;
  r.spec = current;
  r.tune = type == "auto";
  WP_THROW_IF_NOT(r.tune || index::is_index_kind_name(type), "type: \"", type,
                  "\" is not available; expected one of ", kinds);
  if (!r.tune) r.spec.kind = index::parse_index_kind(type, "type");
  const std::vector<std::string>& keys =
      r.tune ? kAutoKeys : index::index_kind_info(r.spec.kind).keys;
  for (const auto& [key, value] : body.items()) {
    WP_THROW_IF_NOT(key == "type" || std::find(keys.begin(), keys.end(), key) != keys.end(), key,
                    ": unknown index parameter for type \"", type, "\" (expected ", key_list(keys),
                    ")");
  }
  if (r.tune) {
    r.auto_tune = parse_auto(body);
    return r;
  }
  for (const std::string& key : keys) read_param(body, key, r.spec);
  if (r.spec.kind == index::IndexKind::kRl) r.learned = parse_learned(body);
  r.spec.validate();
  return r;
}

json index_params_json(const IndexSpec& spec) {
  json j = json::object();
  for (const std::string& key : index::index_kind_info(spec.kind).keys) {
    json v = param_value(spec, key);
    if (!v.is_null()) j[key] = std::move(v);
  }
  return j;
}

}  // namespace wp::engine
