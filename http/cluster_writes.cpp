// ClusterRouter: the write path (coordinator split, primary ordering and replication, replica
// apply).
#include "http/cluster_router.h"

#include <algorithm>
#include <future>

#include "http/cluster_router_detail.h"

namespace wp::http {

namespace {

/// Renames an operation's fields in a shard's error back to the request's: op k of the shard's
/// batch is op `ops[k]` of the request, its points[j] the request's `points[k][j]`.
std::string restore_fields(const std::string& m, const std::vector<size_t>& ops,
                           const std::vector<std::vector<size_t>>& points, bool single) {
  // An index in brackets at `at` (after `open`), or npos.
  auto index_at = [&](const std::string& text, size_t at, size_t& end) -> size_t {
    end = text.find(']', at);
    if (end == std::string::npos || end == at || end - at > 9) return std::string::npos;
    const std::string digits = text.substr(at, end - at);
    if (digits.find_first_not_of("0123456789") != std::string::npos) return std::string::npos;
    return std::stoul(digits);
  };
  const std::string head = "operations[";
  if (m.compare(0, head.size(), head) != 0) return m;
  size_t close;
  const size_t k = index_at(m, head.size(), close);
  if (k == std::string::npos || k >= ops.size() || close + 1 >= m.size() || m[close + 1] != '.') {
    return m;
  }
  const size_t dot = m.find('.', close + 2);
  if (dot == std::string::npos) return m;
  const std::string kind = m.substr(close + 2, dot - close - 2);
  std::string rest = m.substr(dot + 1);
  for (const std::string field : {"points[", "batch.ids[", "batch.vectors[", "batch.payloads["}) {
    if (rest.compare(0, field.size(), field) != 0) continue;
    size_t end;
    const size_t j = index_at(rest, field.size(), end);
    if (j != std::string::npos && j < points[k].size()) {
      rest = field + std::to_string(points[k][j]) + rest.substr(end);
    }
    break;
  }
  return (single ? "" : "operations[" + std::to_string(ops[k]) + "]." + kind + ".") + rest;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writes

json ClusterRouter::write(const std::string& route, const Call& c) {
  const std::string& name = c.path.at("name");
  CollectionMap m = need(name);
  const bool wait = Api::wait_flag(c);  // a bad value is refused before anything is written
  const json body = parse_body(*c.body);
  static const std::map<std::string, std::string> kOperation{
      {"/collections/{name}/points PUT", "upsert"},
      {"/collections/{name}/points/delete POST", "delete"},
      {"/collections/{name}/points/vectors PUT", "update_vectors"},
      {"/collections/{name}/points/vectors/delete POST", "delete_vectors"},
      {"/collections/{name}/points/payload POST", "set_payload"},
      {"/collections/{name}/points/payload PUT", "overwrite_payload"},
      {"/collections/{name}/points/payload/delete POST", "delete_payload"},
      {"/collections/{name}/points/payload/clear POST", "clear_payload"}};
  const auto single = kOperation.find(route);
  json ops = json::array();
  if (single != kOperation.end()) {
    ops.push_back({{single->second, body}});
  } else {
    WP_THROW_IF_NOT(
        body.is_object() && body.contains("operations") && body["operations"].is_array(),
        "operations: expected an array of {\"upsert\" | \"delete\" | ...: body}");
    ops = body["operations"];
    WP_THROW_IF_NOT(ops.size() <= kMaxBatchOperations, "operations: at most ", kMaxBatchOperations,
                    " per request, got ", ops.size());
  }
  // Vectors of the wrong size are refused here, before any shard writes anything: the split
  // below would otherwise let the shards without the bad point apply their part.
  const engine::CollectionConfig config = collection_config_from_qdrant(m.config);
  auto check_vector = [&](const json& v, const std::string& name, const std::string& field) {
    if (v.is_object() && config.sparse_vectors.count(name)) {
      get_sparse_vector(v, field);  // as the shards will read it
      return;
    }
    if (is_multi_json(v)) {
      if (const auto multi = config.multivectors.find(name); multi != config.multivectors.end()) {
        // As the shards will read and check it.
        engine::MultiVector mv = get_multi_vector(v, field);
        engine::check_multi(mv, multi->second.dim, multi->second.metric, field);
      }
      return;  // a multivector for another name: the shard names what is wrong
    }
    const auto it = config.vectors.find(name);
    if (it == config.vectors.end() || !v.is_array()) return;  // the shard names what is wrong
    WP_THROW_IF_NOT(v.size() == it->second.dim, field, ": expected dimension ", it->second.dim,
                    ", got ", v.size());
  };
  auto check_vectors = [&](const json& v, const std::string& field) {
    if (v.is_array()) {
      check_vector(v, "", field);
    } else if (v.is_object()) {
      for (const auto& [name, one] : v.items()) check_vector(one, name, field + "." + name);
    }
  };
  // Split every operation by shard, remembering where each part came from.
  struct Part {
    json ops = json::array();
    std::vector<size_t> op_index;
    std::vector<std::vector<size_t>> point_index;
  };
  std::vector<Part> parts(m.shard_number);
  for (size_t i = 0; i < ops.size(); ++i) {
    const std::string at =
        single != kOperation.end() ? "" : "operations[" + std::to_string(i) + "]";
    const json& op = ops[i];
    WP_THROW_IF_NOT(op.is_object() && op.size() == 1, at.empty() ? "body" : at,
                    ": expected one operation, such as {\"upsert\": {\"points\": [...]}}");
    const std::string kind = op.begin().key();
    const json& ob = op.begin().value();
    const std::string where = at.empty() ? "" : at + "." + kind + ".";
    std::vector<json> split(m.shard_number);
    std::vector<std::vector<size_t>> index(m.shard_number);
    if (ob.is_object() && ob.contains("points") && ob["points"].is_array()) {
      const json& points = ob["points"];
      for (size_t j = 0; j < points.size(); ++j) {
        const bool object = points[j].is_object();
        const std::string field =
            where + "points[" + std::to_string(j) + "]" + (object ? ".id" : "");
        WP_THROW_IF_NOT(!object || points[j].contains("id"), field, ": missing");
        const uint32_t s =
            m.shard_of(engine::PointId::from_json(object ? points[j]["id"] : points[j], field));
        if (split[s].is_null()) {
          split[s] = ob;
          split[s]["points"] = json::array();
        }
        if (object && points[j].contains("vector") &&
            (kind == "upsert" || kind == "update_vectors")) {
          check_vectors(points[j]["vector"], where + "points[" + std::to_string(j) + "].vector");
        }
        split[s]["points"].push_back(points[j]);
        index[s].push_back(j);
      }
    } else if (ob.is_object() && ob.contains("batch") && ob["batch"].is_object()) {
      const json& b = ob["batch"];
      WP_THROW_IF_NOT(b.contains("ids") && b["ids"].is_array(), where,
                      "batch.ids: expected an array");
      const json& ids = b["ids"];
      for (size_t j = 0; j < ids.size(); ++j) {
        const uint32_t s = m.shard_of(
            engine::PointId::from_json(ids[j], where + "batch.ids[" + std::to_string(j) + "]"));
        if (split[s].is_null()) {
          split[s] = ob;
          json& sb = split[s]["batch"];
          sb["ids"] = json::array();
          if (sb.contains("payloads") && sb["payloads"].is_array()) sb["payloads"] = json::array();
          if (sb.contains("vectors") && sb["vectors"].is_array()) sb["vectors"] = json::array();
          if (sb.contains("vectors") && sb["vectors"].is_object()) {
            for (auto& [vname, list] : sb["vectors"].items()) list = json::array();
          }
        }
        json& sb = split[s]["batch"];
        sb["ids"].push_back(ids[j]);
        auto take = [&](const json& from, json& to) {
          if (from.is_array() && to.is_array() && j < from.size()) to.push_back(from[j]);
        };
        if (b.contains("payloads")) take(b["payloads"], sb["payloads"]);
        if (b.contains("vectors") && b["vectors"].is_array() && j < b["vectors"].size()) {
          check_vector(b["vectors"][j], "", where + "batch.vectors[" + std::to_string(j) + "]");
        }
        if (b.contains("vectors") && b["vectors"].is_array()) take(b["vectors"], sb["vectors"]);
        if (b.contains("vectors") && b["vectors"].is_object()) {
          for (const auto& [vname, list] : b["vectors"].items()) {
            if (list.is_array() && j < list.size()) {
              check_vector(list[j], vname,
                           where + "batch.vectors." + vname + "[" + std::to_string(j) + "]");
            }
            take(list, sb["vectors"][vname]);
          }
        }
        index[s].push_back(j);
      }
    } else {
      // By filter (or malformed, which every shard refuses alike): every shard.
      for (uint32_t s = 0; s < m.shard_number; ++s) split[s] = ob;
    }
    for (uint32_t s = 0; s < m.shard_number; ++s) {
      if (split[s].is_null()) continue;
      parts[s].ops.push_back({{kind, std::move(split[s])}});
      parts[s].op_index.push_back(i);
      parts[s].point_index.push_back(std::move(index[s]));
    }
  }
  // To every shard's primary at once; a stale epoch (the map moved on) is retried on the new map.
  std::vector<std::future<void>> futures;
  for (uint32_t s = 0; s < m.shard_number; ++s) {
    if (parts[s].ops.empty()) continue;
    futures.push_back(std::async(std::launch::async, [&, s] {
      const Part& p = parts[s];
      CollectionMap current = m;
      // A primary that does not answer may be dead: its shard gets a new primary once its
      // lease runs out. Until then (and a little longer) the write is sent again.
      const auto give_up =
          std::chrono::steady_clock::now() + std::chrono::seconds(node_.options().lease_ttl + 5);
      for (int attempt = 0;; ++attempt) {
        const Shard& shard = current.shards[s];
        Answer a;
        bool unreachable = false;
        try {
          a = forward(
              shard.primary, "POST",
              "/waypoint/cluster/collections/" + name + "/shards/" + std::to_string(s) + "/write",
              {{"uid", current.uid}, {"epoch", shard.epoch}, {"operations", p.ops}});
        } catch (const TransportError& e) {
          unreachable = true;
          a.status = 503;
          a.body = {{"status", {{"error", e.what()}}}};
        }
        if (a.status == 200) return;
        // 409: the map moved on (a new epoch or primary) and this node's copy had not yet.
        if ((a.status == 409 || unreachable) && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 * (attempt + 1), 500)));
          current = need(name);
          WP_THROW_IF_NOT(current.uid == m.uid, "collection `", name,
                          "` was deleted and created again meanwhile");
          continue;
        }
        const std::string context =
            a.status >= 500 ? "shard " + std::to_string(s) + " of collection `" + name + "`: " : "";
        json body = a.body;
        if (body.is_object() && body.contains("status") && body["status"].is_object()) {
          body["status"]["error"] = restore_fields(message_of(body), p.op_index, p.point_index,
                                                   single != kOperation.end());
        }
        rethrow(a.status, body, context);
      }
    }));
  }
  std::exception_ptr first;
  for (auto& f : futures) {
    try {
      f.get();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
  if (single != kOperation.end()) return api_.update_result(wait);
  json results = json::array();
  for (size_t i = 0; i < ops.size(); ++i) results.push_back(api_.update_result(wait));
  return results;
}

uint32_t ClusterRouter::shard_param(const Call& c, const CollectionMap& m) {
  const std::string& text = c.path.at("shard");
  WP_THROW_IF_NOT(!text.empty() && text.size() <= 6 &&
                      text.find_first_not_of("0123456789") == std::string::npos &&
                      std::stoul(text) < m.shard_number,
                  "shard: expected 0..", m.shard_number - 1, ", got '", engine::show_text(text),
                  "'");
  return static_cast<uint32_t>(std::stoul(text));
}

void ClusterRouter::apply_numbered(const CollectionMap& m, uint32_t s, uint64_t seq, uint64_t term,
                                   const json& operations) {
  const std::string local = m.local_name(s);
  api_.apply_sequenced(local, json{{"operations", operations}}, seq, term);
  constexpr size_t kMaxEntries = 100000, kMaxBytes = size_t{64} << 20;
  const size_t bytes = operations.dump().size();
  std::lock_guard<std::mutex> lock(logs_mu_);
  ShardLog& log = logs_[local];
  if (!log.entries.empty() && log.entries.back().seq + 1 != seq) {
    log.entries.clear();  // not contiguous (a snapshot came between): start again
    log.bytes = 0;
  }
  log.entries.push_back({seq, term, operations, bytes});
  log.bytes += bytes;
  while (log.entries.size() > kMaxEntries || log.bytes > kMaxBytes) {
    log.bytes -= log.entries.front().bytes;
    log.entries.pop_front();
  }
}

ClusterRouter::ShardCall ClusterRouter::shard_call(const Call& c) {
  ShardCall call;
  const std::string& name = c.path.at("name");
  const CollectionMap seen = need(name);
  call.body = parse_body(*c.body);
  WP_THROW_IF_NOT(call.body.is_object() && call.body.value("uid", "") == seen.uid,
                  "uid: this call is for another collection of the name `", name, "`");
  call.s = shard_param(c, seen);
  // The shard's order first, then the map: a change made while holding it (a replica marked
  // dead, a move completed and the primary handed over) is seen here.
  call.order = std::unique_lock<std::mutex>(shard_mutex(seen.local_name(call.s)));
  call.m = need(name);
  WP_THROW_IF_NOT(call.m.uid == seen.uid, "collection `", name, "` was deleted and created again");
  return call;
}

json ClusterRouter::primary_write(const Call& c) {
  const ShardCall call = shard_call(c);
  const std::string& name = c.path.at("name");
  const CollectionMap& m = call.m;
  const json& body = call.body;
  const uint32_t s = call.s;
  const Shard& shard = m.shards[s];
  const uint64_t epoch = engine::get_count(body, "epoch", "", 0, 0, UINT64_MAX);
  if (shard.primary != node_.id()) {
    throw ConflictError("node " + std::to_string(node_.id()) + " is not the primary of shard " +
                        std::to_string(s) + " (node " + std::to_string(shard.primary) +
                        " is, at epoch " + std::to_string(shard.epoch) + ")");
  }
  if (epoch != shard.epoch) {
    throw ConflictError("epoch: the write carries epoch " + std::to_string(epoch) + ", shard " +
                        std::to_string(s) + " is at epoch " + std::to_string(shard.epoch));
  }
  if (node_.fenced()) {
    throw UnavailableError("node " + std::to_string(node_.id()) +
                           " cannot renew its etcd lease: it does not act as a primary now");
  }
  const auto local = ensure_local(m, s);
  const uint64_t seq = local->applied_sequence() + 1, prev_term = local->applied_term();
  const json& operations = body.at("operations");
  apply_numbered(m, s, seq, shard.epoch, operations);

  // To the other replicas; a dead one is not sent to (it catches up on its own).
  std::vector<std::pair<uint64_t, std::future<unsigned>>> sent;
  for (const auto& [replica, state] : shard.replicas) {
    if (replica == node_.id() || state == ReplicaState::kDead) continue;
    const uint64_t to = replica;  // (clang 14 does not capture structured bindings)
    sent.emplace_back(to, std::async(std::launch::async, [&, to] {
                        try {
                          return forward(to, "POST",
                                         "/waypoint/cluster/collections/" + name + "/shards/" +
                                             std::to_string(s) + "/apply",
                                         {{"uid", m.uid},
                                          {"epoch", shard.epoch},
                                          {"seq", seq},
                                          {"prev_term", prev_term},
                                          {"operations", operations}},
                                         std::chrono::seconds(10))
                              .status;
                        } catch (const TransportError&) {
                          return 503u;
                        }
                      }));
  }
  size_t acks = 1;
  std::vector<uint64_t> failed;
  for (auto& [replica, f] : sent) {
    const bool ok = f.get() == 200;
    const bool active = shard.replicas.at(replica) == ReplicaState::kActive;
    if (ok && active) ++acks;
    if (!ok && active) failed.push_back(replica);
  }
  if (!failed.empty()) {
    // Before answering: an active replica must hold every acknowledged write.
    const bool marked = update_map(name, [&](CollectionMap& fresh) {
      if (fresh.uid != m.uid) return false;
      Shard& sh = fresh.shards[s];
      bool changed = false;
      for (uint64_t r : failed) {
        auto it = sh.replicas.find(r);
        if (it != sh.replicas.end() && it->second == ReplicaState::kActive) {
          it->second = ReplicaState::kDead;
          changed = true;
        }
      }
      if (changed) ++sh.epoch;
      return changed;
    });
    WP_THROW_IF_NOT(marked, "collection `", name, "` was deleted meanwhile");
  }
  if (acks < m.write_consistency_factor) {
    throw UnavailableError(
        "write_consistency_factor " + std::to_string(m.write_consistency_factor) + ": only " +
        std::to_string(acks) + " replica(s) of shard " + std::to_string(s) + " hold the write");
  }
  return {{"seq", seq}, {"acks", acks}};
}

json ClusterRouter::replica_apply(const Call& c) {
  const ShardCall call = shard_call(c);
  const CollectionMap& m = call.m;
  const json& body = call.body;
  const uint32_t s = call.s;
  const uint64_t epoch = engine::get_count(body, "epoch", "", 0, 0, UINT64_MAX);
  const uint64_t seq = engine::get_count(body, "seq", "", 0, 1, UINT64_MAX);
  const uint64_t prev_term = engine::get_count(body, "prev_term", "", 0, 0, UINT64_MAX);
  if (epoch < m.shards[s].epoch) {
    throw ConflictError("epoch: the write carries epoch " + std::to_string(epoch) + ", shard " +
                        std::to_string(s) + " is at epoch " + std::to_string(m.shards[s].epoch));
  }
  const auto local = ensure_local(m, s);
  const uint64_t applied = local->applied_sequence();
  if (seq <= applied) return {{"seq", applied}};  // already holds it
  if (seq != applied + 1 || local->applied_term() != prev_term) {
    throw ConflictError("seq: this replica holds shard " + std::to_string(s) + " up to " +
                        std::to_string(applied) + " (term " +
                        std::to_string(local->applied_term()) + "), and the write is " +
                        std::to_string(seq) + " after term " + std::to_string(prev_term));
  }
  apply_numbered(m, s, seq, epoch, body.at("operations"));
  return {{"seq", seq}};
}

}  // namespace wp::http
