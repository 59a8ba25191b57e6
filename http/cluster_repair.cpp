// ClusterRouter: repair (a shard's log, activation, failover, catch-up, snapshots) and the cluster
// operations.
#include "http/cluster_router.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "http/cluster_router_detail.h"

namespace wp::http {

json ClusterRouter::shard_log(const Call& c) {
  const CollectionMap m = need(c.path.at("name"));
  const uint32_t s = shard_param(c, m);
  auto param = [&](const char* key) -> uint64_t {
    const auto it = c.query.find(key);
    WP_THROW_IF_NOT(it != c.query.end() && !it->second.empty() && it->second.size() <= 20 &&
                        it->second.find_first_not_of("0123456789") == std::string::npos,
                    key, ": expected an integer");
    return std::stoull(it->second);
  };
  WP_THROW_IF_NOT(c.query.count("uid") && c.query.at("uid") == m.uid, "uid: not this collection's");
  const uint64_t after = param("after"), term = param("term");
  std::lock_guard<std::mutex> order(shard_mutex(m.local_name(s)));
  WP_THROW_IF_NOT(engine_.exists(m.local_name(s)), "shard ", s, " is not held here");
  const auto local = engine_.collection(m.local_name(s));
  const uint64_t applied = local->applied_sequence();
  if (after > applied) return {{"diverged", true}, {"last", applied}};
  if (after == applied) {
    return after == 0 || term == local->applied_term()
               ? json{{"last", applied}, {"entries", json::array()}}
               : json{{"diverged", true}, {"last", applied}};
  }
  std::lock_guard<std::mutex> lock(logs_mu_);
  const ShardLog& log = logs_[m.local_name(s)];
  const uint64_t first = log.entries.empty() ? applied + 1 : log.entries.front().seq;
  // The entry `after` itself is needed to check its term (none for after == 0).
  if (after == 0 ? first != 1 : first > after) return {{"gone", true}, {"last", applied}};
  json entries = json::array();
  size_t bytes = 0;
  for (const LogEntry& e : log.entries) {
    if (e.seq == after && e.term != term) return {{"diverged", true}, {"last", applied}};
    if (e.seq <= after) continue;
    entries.push_back({{"seq", e.seq}, {"term", e.term}, {"operations", e.operations}});
    bytes += e.bytes;
    if (entries.size() >= 1000 || bytes >= (size_t{16} << 20)) break;
  }
  return {{"last", applied}, {"entries", entries}};
}

json ClusterRouter::activate(const Call& c) {
  // Holding the shard's order: no write can come between the check and the change.
  const ShardCall call = shard_call(c);
  const std::string& name = c.path.at("name");
  const CollectionMap& m = call.m;
  const uint32_t s = call.s;
  const uint64_t replica = engine::get_count(call.body, "node", "", 0, 1, UINT64_MAX);
  const uint64_t seq = engine::get_count(call.body, "seq", "", 0, 0, UINT64_MAX);
  const uint64_t term = engine::get_count(call.body, "term", "", 0, 0, UINT64_MAX);
  WP_THROW_IF_NOT(m.shards[s].primary == node_.id(), "node ", node_.id(),
                  " is not the primary of shard ", s);
  const auto local = ensure_local(m, s);
  if (seq != local->applied_sequence() || term != local->applied_term()) {
    throw ConflictError("seq: the primary holds shard " + std::to_string(s) + " up to " +
                        std::to_string(local->applied_sequence()) + ", the replica " +
                        std::to_string(seq));
  }
  const bool done = update_map(name, [&](CollectionMap& fresh) {
    if (fresh.uid != m.uid) return false;
    Shard& sh = fresh.shards[s];
    auto it = sh.replicas.find(replica);
    if (it == sh.replicas.end() || it->second != ReplicaState::kSyncing ||
        sh.primary != node_.id()) {
      throw ConflictError("replica " + std::to_string(replica) + " of shard " + std::to_string(s) +
                          " is not syncing from this primary");
    }
    it->second = ReplicaState::kActive;
    // A move completes: the replica it replaces goes (and hands the primary over).
    if (const auto move = sh.moves.find(replica); move != sh.moves.end()) {
      sh.replicas.erase(move->second);
      if (sh.primary == move->second) sh.primary = replica;
      sh.moves.erase(move);
    }
    ++sh.epoch;
    return true;
  });
  WP_THROW_IF_NOT(done, "collection `", name, "` was deleted meanwhile");
  return true;
}

json ClusterRouter::operate(const std::string& name, const Call& c) {
  const CollectionMap m = need(name);
  const json body = parse_body(*c.body);
  WP_THROW_IF_NOT(body.is_object() && body.size() == 1,
                  "body: expected one of {\"move_shard\" | \"replicate_shard\" | "
                  "\"drop_replica\" | \"rebalance\": {...}}");
  const std::string op = body.begin().key();
  const json& args = body.begin().value();
  WP_THROW_IF_NOT(args.is_object(), op, ": expected an object");
  const auto peers = node_.peers();
  auto shard_arg = [&]() {
    return static_cast<uint32_t>(engine::get_count(args, "shard_id", op, 0, 0, m.shard_number - 1));
  };
  auto peer_arg = [&](const char* key) {
    WP_THROW_IF_NOT(args.contains(key), op, ".", key, ": missing");
    const uint64_t id = engine::get_count(args, key, op, 0, 1, UINT64_MAX);
    WP_THROW_IF_NOT(
        peers.count(id), op, ".", key, ": node ", id, " is not in the cluster (nodes: ",
        [&] {
          std::string list;
          for (const auto& [p, url] : peers) list += (list.empty() ? "" : ", ") + std::to_string(p);
          return list;
        }(),
        ")");
    return id;
  };
  if (op == "move_shard" || op == "replicate_shard") {
    engine::check_fields(args, op, {"shard_id", "from_peer_id", "to_peer_id", "method"});
    const uint32_t s = shard_arg();
    const uint64_t from = peer_arg("from_peer_id"), to = peer_arg("to_peer_id");
    const bool move = op == "move_shard";
    const bool ok = update_map(name, [&](CollectionMap& fresh) {
      if (fresh.uid != m.uid) return false;
      Shard& sh = fresh.shards[s];
      WP_THROW_IF_NOT(sh.replicas.count(from), op, ".from_peer_id: node ", from,
                      " holds no replica of shard ", s);
      WP_THROW_IF_NOT(!sh.replicas.count(to), op, ".to_peer_id: node ", to,
                      " already holds a replica of shard ", s);
      sh.replicas[to] = ReplicaState::kSyncing;  // it copies from the primary, then turns active
      if (move) sh.moves[to] = from;
      ++sh.epoch;
      return true;
    });
    WP_THROW_IF_NOT(ok, "collection `", name, "` was deleted meanwhile");
    return true;
  }
  if (op == "drop_replica") {
    engine::check_fields(args, op, {"shard_id", "peer_id"});
    const uint32_t s = shard_arg();
    WP_THROW_IF_NOT(args.contains("peer_id"), op, ".peer_id: missing");
    const uint64_t peer = engine::get_count(args, "peer_id", op, 0, 1, UINT64_MAX);
    const bool ok = update_map(name, [&](CollectionMap& fresh) {
      if (fresh.uid != m.uid) return false;
      Shard& sh = fresh.shards[s];
      WP_THROW_IF_NOT(sh.replicas.count(peer), op, ".peer_id: node ", peer,
                      " holds no replica of shard ", s);
      uint64_t other = 0;
      for (const auto& [r, state] : sh.replicas) {
        if (r != peer && state == ReplicaState::kActive && peers.count(r)) other = r;
      }
      WP_THROW_IF_NOT(other != 0 || sh.replicas.at(peer) != ReplicaState::kActive, op, ": node ",
                      peer, " holds the last active replica of shard ", s);
      sh.replicas.erase(peer);
      sh.moves.erase(peer);
      for (auto it = sh.moves.begin(); it != sh.moves.end();) {
        it = it->second == peer ? sh.moves.erase(it) : std::next(it);
      }
      if (sh.primary == peer) sh.primary = other;
      ++sh.epoch;
      return true;
    });
    WP_THROW_IF_NOT(ok, "collection `", name, "` was deleted meanwhile");
    return true;
  }
  if (op == "rebalance") {
    // A waypoint extension: moves replicas from the nodes holding the most to those holding the
    // fewest, at most one move per shard at a time, until the counts differ by one at most.
    engine::check_fields(args, op, {});
    size_t moves = 0;
    const bool ok = update_map(name, [&](CollectionMap& fresh) {
      if (fresh.uid != m.uid) return false;
      moves = 0;
      std::map<uint64_t, size_t> load;
      for (const auto& [p, url] : peers) load[p] = 0;
      for (const Shard& sh : fresh.shards) {
        for (const auto& [r, state] : sh.replicas) {
          if (!sh.moves.count(r) && load.count(r)) ++load[r];
        }
      }
      for (uint32_t s = 0; s < fresh.shard_number; ++s) {
        Shard& sh = fresh.shards[s];
        if (!sh.moves.empty()) continue;
        auto most = std::max_element(load.begin(), load.end(), [&](const auto& a, const auto& b) {
          return (sh.replicas.count(a.first) ? a.second : 0) <
                 (sh.replicas.count(b.first) ? b.second : 0);
        });
        auto least = load.end();
        for (auto it = load.begin(); it != load.end(); ++it) {
          if (!sh.replicas.count(it->first) &&
              (least == load.end() || it->second < least->second)) {
            least = it;
          }
        }
        if (most == load.end() || least == load.end() || !sh.replicas.count(most->first) ||
            most->second <= least->second + 1) {
          continue;
        }
        sh.replicas[least->first] = ReplicaState::kSyncing;
        sh.moves[least->first] = most->first;
        ++sh.epoch;
        --most->second;
        ++least->second;
        ++moves;
      }
      return moves > 0;
    });
    WP_THROW_IF_NOT(ok, "collection `", name, "` was deleted meanwhile");
    return json{{"moves", moves}};
  }
  throw UserError(op +
                  ": not a cluster operation (expected move_shard, replicate_shard, "
                  "drop_replica or rebalance)");
}

void ClusterRouter::fail_over(const CollectionMap& seen,
                              const std::map<uint64_t, std::string>& peers) {
  bool needed = false;
  for (const Shard& sh : seen.shards) {
    needed |= !peers.count(sh.primary);
    for (const auto& [r, state] : sh.replicas) {
      needed |= state != ReplicaState::kDead && !peers.count(r);
    }
  }
  if (!needed) return;
  update_map(seen.name, [&](CollectionMap& m) {
    if (m.uid != seen.uid) return false;
    bool changed = false;
    for (uint32_t s = 0; s < m.shard_number; ++s) {
      Shard& sh = m.shards[s];
      bool bump = false;
      // The primary's replica is marked dead only with a successor (below): no write is
      // acknowledged without the primary, so it holds them all, and a primary marked dead
      // without one would stay so when its node came back (catch_up has no primary to ask).
      for (auto& [r, state] : sh.replicas) {
        if (state != ReplicaState::kDead && !peers.count(r) && r != sh.primary) {
          state = ReplicaState::kDead;
          bump = true;
        }
      }
      if (!peers.count(sh.primary)) {
        // The most up-to-date active replica that answers. Every active one holds every
        // acknowledged write; the most up-to-date also keeps what was not yet acknowledged.
        uint64_t best = 0, best_seq = 0;
        for (const auto& [r, state] : sh.replicas) {
          if (state != ReplicaState::kActive || r == sh.primary) continue;
          try {
            const Answer a = forward(r, "GET", "/collections/" + m.local_name(s) + "/cluster",
                                     nullptr, std::chrono::seconds(2));
            if (a.status != 200) continue;
            const uint64_t seq =
                a.body["result"]["local_shards"][0].value("applied_sequence", uint64_t{0});
            if (best == 0 || seq > best_seq) {
              best = r;
              best_seq = seq;
            }
          } catch (const std::exception&) {
          }
        }
        if (best != 0) {
          if (auto old = sh.replicas.find(sh.primary); old != sh.replicas.end()) {
            old->second = ReplicaState::kDead;
          }
          sh.primary = best;
          bump = true;
        }
      }
      if (bump) {
        ++sh.epoch;
        changed = true;
      }
    }
    return changed;
  });
}

void ClusterRouter::copy_snapshot(const CollectionMap& m, uint32_t s, uint64_t primary) {
  const std::string local = m.local_name(s);
  const Answer made =
      forward(primary, "POST", "/collections/" + local + "/snapshots", json::object());
  const json info =
      result_of(made.status, made.body, "snapshot of shard " + std::to_string(s) + ": ");
  const std::string file = info.at("name");
  // The file, streamed to disk under this node's snapshots folder (a shard may be larger than
  // memory): a plain GET on the primary (its answer is the file, not JSON).
  const auto peers = node_.peers();
  WP_THROW_IF_NOT(peers.count(primary), "node ", primary, " left the cluster");
  const auto [host, port] = parse_endpoint(peers.at(primary));
  const std::filesystem::path folder = std::filesystem::path(engine_.snapshots_dir()) / ".catch-up";
  std::filesystem::create_directories(folder);
  const std::filesystem::path path = folder / (local + ".snapshot");
  struct Remove {  // the copy goes whatever happens
    std::filesystem::path p;
    ~Remove() {
      std::error_code ec;
      std::filesystem::remove(p, ec);
    }
  } remove{path};
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    WP_THROW_INTERNAL_IF_NOT(out, "cannot write ", path.string());
    Connection conn(host, port);
    conn.connect(std::chrono::seconds(2));
    Connection::Parser parser;
    parser.body_limit(size_t{1} << 40);
    std::vector<std::pair<std::string, std::string>> headers{{"waypoint-internal", "1"}};
    if (!api_key_.empty()) headers.emplace_back("api-key", api_key_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
    conn.send(bhttp::verb::get, "/collections/" + local + "/snapshots/" + file, "", parser,
              std::chrono::minutes(1), nullptr, headers);
    WP_THROW_IF_NOT(parser.get().result_int() == 200, "snapshot download: HTTP ",
                    parser.get().result_int());
    for (;;) {  // each part written out as it comes: memory holds one read
      std::string& part = parser.get().body();
      out.write(part.data(), static_cast<std::streamsize>(part.size()));
      part.clear();
      if (parser.is_done()) break;
      WP_THROW_IF_NOT(std::chrono::steady_clock::now() < deadline,
                      "snapshot download: over an hour");
      conn.read_some(parser, std::chrono::minutes(1));
    }
    out.flush();
    WP_THROW_INTERNAL_IF_NOT(out, "cannot write ", path.string());
  }
  {
    std::lock_guard<std::mutex> order(shard_mutex(local));
    engine_.recover_snapshot_location(local, "file://" + path.string(),
                                      info.value("checksum", std::string()));
    std::lock_guard<std::mutex> lock(logs_mu_);
    logs_.erase(local);
  }
  try {
    forward(primary, "DELETE", "/collections/" + local + "/snapshots/" + file, nullptr);
  } catch (const std::exception&) {
  }
}

void ClusterRouter::catch_up(const std::string& name, uint32_t s) {
  for (int round = 0; round < 10000; ++round) {
    {
      std::lock_guard<std::mutex> lock(reconcile_mu_);
      if (stopping_) return;
    }
    const auto found = find(name);
    if (!found) return;
    const CollectionMap& m = *found;
    const Shard& sh = m.shards.at(s);
    const auto me = sh.replicas.find(node_.id());
    if (me == sh.replicas.end() || me->second == ReplicaState::kActive ||
        sh.primary == node_.id() || !node_.peers().count(sh.primary) || node_.fenced()) {
      return;
    }
    if (me->second == ReplicaState::kDead) {
      // Syncing first: the primary then sends new writes here as well.
      update_map(name, [&](CollectionMap& fresh) {
        if (fresh.uid != m.uid) return false;
        auto it = fresh.shards[s].replicas.find(node_.id());
        if (it == fresh.shards[s].replicas.end() || it->second != ReplicaState::kDead) return false;
        it->second = ReplicaState::kSyncing;
        ++fresh.shards[s].epoch;
        return true;
      });
      continue;
    }
    uint64_t applied, term;
    {
      // Not held past here: a snapshot's recovery waits for every holder to let go.
      const auto local = ensure_local(m, s);
      applied = local->applied_sequence();
      term = local->applied_term();
    }
    const Answer a =
        forward(sh.primary, "GET",
                "/waypoint/cluster/collections/" + name + "/shards/" + std::to_string(s) +
                    "/log?uid=" + m.uid + "&after=" + std::to_string(applied) +
                    "&term=" + std::to_string(term),
                nullptr);
    const json log = result_of(a.status, a.body, "catching up shard " + std::to_string(s) + ": ");
    if (log.value("gone", false) || log.value("diverged", false)) {
      copy_snapshot(m, s, sh.primary);
      continue;
    }
    const json& entries = log.at("entries");
    if (entries.empty()) {
      const Answer done = forward(
          sh.primary, "POST",
          "/waypoint/cluster/collections/" + name + "/shards/" + std::to_string(s) + "/activate",
          {{"uid", m.uid}, {"node", node_.id()}, {"seq", applied}, {"term", term}});
      if (done.status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    std::lock_guard<std::mutex> order(shard_mutex(m.local_name(s)));
    for (const json& e : entries) {
      const uint64_t seq = e.at("seq");
      const auto now = engine_.collection(m.local_name(s));
      if (seq <= now->applied_sequence()) continue;  // a forwarded write came first
      if (seq != now->applied_sequence() + 1) break;
      apply_numbered(m, s, seq, e.at("term"), e.at("operations"));
    }
  }
}

}  // namespace wp::http
