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

/// One index parameter of a request body: its key, how it is read into a spec (type and range
/// checked by the json_fields readers against the parameter's own ParamRange) and written back.
struct ParamField {
  const char* key;
  void (*read)(const json& body, IndexSpec& s);
  json (*write)(const IndexSpec& s);
};

const ParamField kParamFields[] = {
    {"m",
     [](const json& b, IndexSpec& s) { s.hnsw.M = get_count(b, HnswParams::kM, "", s.hnsw.M); },
     [](const IndexSpec& s) { return json(s.hnsw.M); }},
    {"ef_construct",
     [](const json& b, IndexSpec& s) {
       s.hnsw.ef_construction =
           get_count(b, HnswParams::kEfConstruction, "", s.hnsw.ef_construction);
     },
     [](const IndexSpec& s) { return json(s.hnsw.ef_construction); }},
    {"ef",
     [](const json& b, IndexSpec& s) {
       s.hnsw.ef_search = get_count(b, HnswParams::kEfSearch, "", s.hnsw.ef_search);
     },
     [](const IndexSpec& s) { return json(s.hnsw.ef_search); }},
    {"quantization",
     [](const json& b, IndexSpec& s) {
       if (!b.contains("quantization") || b["quantization"].is_null()) return;
       s.hnsw.quantization =
           index::parse_quantization(get_string(b, "quantization", "", ""), "quantization");
     },
     [](const IndexSpec& s) { return json(index::quantization_name(s.hnsw.quantization)); }},
    {"alpha",
     [](const json& b, IndexSpec& s) {
       s.graph.alpha = static_cast<float>(get_number(b, GraphParams::kAlpha, "", s.graph.alpha));
     },
     [](const IndexSpec& s) { return float_json(s.graph.alpha); }},
    {"bits",
     [](const json& b, IndexSpec& s) {
       s.lsh.bits = get_count(b, LshParams::kBits, "", s.lsh.bits);
     },
     [](const IndexSpec& s) { return json(s.lsh.bits); }},
    {"tables",
     [](const json& b, IndexSpec& s) {
       s.lsh.tables = get_count(b, LshParams::kTables, "", s.lsh.tables);
     },
     [](const IndexSpec& s) { return json(s.lsh.tables); }},
    {"key_bits",
     [](const json& b, IndexSpec& s) {
       s.lsh.key_bits = get_count(b, LshParams::kKeyBits, "", s.lsh.key_bits);
     },
     [](const IndexSpec& s) { return json(s.lsh.key_bits); }},
    {"probes",
     [](const json& b, IndexSpec& s) {
       s.lsh.probes = get_count(b, LshParams::kProbes, "", s.lsh.probes);
     },
     [](const IndexSpec& s) { return json(s.lsh.probes); }},
    {"candidates",
     [](const json& b, IndexSpec& s) {
       s.lsh.candidates = get_count(b, LshParams::kCandidates, "", s.lsh.candidates);
     },
     [](const IndexSpec& s) { return json(s.lsh.candidates); }},
};

const ParamField* param_field(const std::string& key) {
  for (const ParamField& f : kParamFields) {
    if (key == f.key) return &f;
  }
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
                    "types: expected a non-empty array of \"hnsw\", \"lsh\" and \"graph\"");
    t.types.clear();
    for (const json& v : ts) {
      WP_THROW_IF_NOT(v.is_string() && (v == "hnsw" || v == "lsh" || v == "graph"),
                      "types: expected \"hnsw\", \"lsh\" or \"graph\", got ", show_json(v));
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
  for (const std::string& key : keys) {
    if (const ParamField* f = param_field(key)) f->read(body, r.spec);
  }
  if (r.spec.kind == index::IndexKind::kRl) r.learned = parse_learned(body);
  r.spec.validate();
  return r;
}

json index_params_json(const IndexSpec& spec) {
  json j = json::object();
  for (const std::string& key : index::index_kind_info(spec.kind).keys) {
    if (const ParamField* f = param_field(key)) j[key] = f->write(spec);
  }
  return j;
}

}  // namespace wp::engine
