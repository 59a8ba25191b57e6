#include "engine/index_request.h"

#include <cmath>

#include "index/error.h"

namespace wp::engine {

using nlohmann::json;

std::string join(const std::string& where, const std::string& key) {
  return where.empty() ? key : where + "." + key;
}

size_t get_count(const json& obj, const char* key, const std::string& where, size_t def, size_t lo,
                 size_t hi) {
  if (!obj.contains(key) || obj[key].is_null()) return def;
  const json& v = obj[key];
  const std::string field = join(where, key);
  WP_THROW_IF_NOT(v.is_number_integer(), field, ": expected an integer, got ", v.dump());
  const int64_t x = v.get<int64_t>();
  WP_THROW_IF_NOT(x >= static_cast<int64_t>(lo) && static_cast<uint64_t>(x) <= hi, field,
                  ": expected an integer in ", lo, "..", hi, ", got ", x);
  return static_cast<size_t>(x);
}

double get_number(const json& obj, const char* key, const std::string& where, double def, double lo,
                  double hi) {
  if (!obj.contains(key) || obj[key].is_null()) return def;
  const json& v = obj[key];
  const std::string field = join(where, key);
  WP_THROW_IF_NOT(v.is_number(), field, ": expected a number, got ", v.dump());
  const double x = v.get<double>();
  WP_THROW_IF_NOT(std::isfinite(x) && x >= lo && x <= hi, field, ": expected a number in [", lo,
                  ", ", hi, "], got ", x);
  return x;
}

IndexRequest IndexRequest::parse(const json& body, const index::HnswParams& hnsw,
                                 const index::LshParams& lsh, double alpha) {
  WP_THROW_IF_NOT(body.is_object(), "expected a JSON object, got ", body.type_name());
  WP_THROW_IF_NOT(body.contains("type") && body["type"].is_string(),
                  "type: expected \"hnsw\", \"flat\", \"lsh\", \"graph\", \"rl\" or \"auto\"");
  IndexRequest r;
  r.type = body["type"];
  const std::string& type = r.type;
  WP_THROW_IF_NOT(type == "hnsw" || type == "flat" || type == "lsh" || type == "graph" ||
                      type == "rl" || type == "auto",
                  "type: \"", type,
                  "\" is not available; expected \"hnsw\", \"flat\", \"lsh\", \"graph\", \"rl\" "
                  "or \"auto\"");
  for (const auto& [key, value] : body.items()) {
    const bool common = key == "type" || key == "m" || key == "ef_construct" || key == "ef" ||
                        key == "quantization";
    const bool rl = key == "steps" || key == "max_minutes" || key == "target_recall";
    const bool lsh_key = key == "bits" || key == "tables" || key == "key_bits" || key == "probes" ||
                         key == "candidates";
    const bool auto_key = key == "type" || key == "recall" || key == "k" || key == "trials" ||
                          key == "max_minutes" || key == "types" || key == "latency_budget_us";
    const bool ok = type == "auto"    ? auto_key
                    : type == "rl"    ? common || rl
                    : type == "lsh"   ? common || lsh_key
                    : type == "graph" ? common || key == "alpha"
                                      : common;
    WP_THROW_IF_NOT(ok, key,
                    type == "auto"  ? ": unknown index parameter (expected recall, k, trials, "
                                      "max_minutes, types, latency_budget_us)"
                    : type == "rl"  ? ": unknown index parameter (expected m, ef_construct, ef, "
                                      "quantization, steps, max_minutes, target_recall)"
                    : type == "lsh" ? ": unknown index parameter (expected bits, tables, key_bits, "
                                      "probes, candidates)"
                    : type == "graph" ? ": unknown index parameter (expected m, ef_construct, ef, "
                                        "quantization, alpha)"
                                      : ": unknown index parameter (expected m, ef_construct, ef, "
                                        "quantization)");
  }
  r.lsh = lsh;
  if (type == "lsh") {
    r.lsh.bits = get_count(body, "bits", "", lsh.bits, 1, 4096);
    r.lsh.tables = get_count(body, "tables", "", lsh.tables, 0, 64);
    r.lsh.key_bits = get_count(body, "key_bits", "", lsh.key_bits, 0, 32);
    r.lsh.probes = get_count(body, "probes", "", lsh.probes, 1, 4096);
    r.lsh.candidates = get_count(body, "candidates", "", lsh.candidates, 1, 100000);
    r.lsh.validate();
  }
  r.alpha = alpha;
  if (type == "graph") r.alpha = get_number(body, "alpha", "", alpha, 1, 4);
  if (type == "rl") {
    r.learned["steps"] = get_count(body, "steps", "", 200, 1, 100000);
    if (body.contains("max_minutes")) {
      r.learned["max_minutes"] = get_number(body, "max_minutes", "", 0, 1e-3, 24 * 60);
    }
    if (body.contains("target_recall")) {
      r.learned["target_recall"] = get_number(body, "target_recall", "", 0, 1e-3, 1);
    }
  }
  if (type == "auto") {
    AutoTuneRequest& t = r.tune;
    t.recall = get_number(body, "recall", "", t.recall, 0.01, 1);
    t.k = get_count(body, "k", "", t.k, 1, 1000);
    t.trials = get_count(body, "trials", "", t.trials, 1, 10000);
    t.max_minutes = get_number(body, "max_minutes", "", t.max_minutes, 1e-3, 24 * 60);
    t.latency_budget_us = get_number(body, "latency_budget_us", "", 0, 0, 1e9);
    if (body.contains("types")) {
      const json& ts = body["types"];
      WP_THROW_IF_NOT(ts.is_array() && !ts.empty(),
                      "types: expected a non-empty array of \"hnsw\", \"lsh\" and \"graph\"");
      t.types.clear();
      for (const json& v : ts) {
        WP_THROW_IF_NOT(v.is_string() && (v == "hnsw" || v == "lsh" || v == "graph"),
                        "types: expected \"hnsw\", \"lsh\" or \"graph\", got ", v.dump());
        t.types.push_back(v);
      }
    }
  }
  r.hnsw = hnsw;
  r.hnsw.M = get_count(body, "m", "", hnsw.M, 2, 1024);
  r.hnsw.ef_construction = get_count(body, "ef_construct", "", hnsw.ef_construction, 4, 100000);
  r.hnsw.ef_search = get_count(body, "ef", "", hnsw.ef_search, 1, 100000);
  if (body.contains("quantization")) {
    WP_THROW_IF_NOT(body["quantization"].is_string(), "quantization: expected \"none\" or \"sq8\"");
    r.hnsw.quantization = index::parse_quantization(body["quantization"], "quantization");
  }
  r.hnsw.validate();
  return r;
}

}  // namespace wp::engine
