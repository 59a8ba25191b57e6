// ClusterRouter: a collection's cluster-wide settings. Aliases (one etcd key), PATCH
// /collections/{name} and payload indexes: each checked as one node checks it, kept in etcd (so
// that replicas made later apply it), then applied by every replica.
#include <chrono>
#include <thread>

#include "http/cluster_router.h"
#include "http/cluster_router_detail.h"

namespace wp::http {

namespace {

/// `body` (a PATCH /collections/{name} body) merged into `into`: its values win, objects merge,
/// nulls change nothing.
void merge_update(json& into, const json& body) {
  for (const auto& [key, value] : body.items()) {
    if (value.is_null()) continue;
    if (value.is_object() && into.contains(key) && into[key].is_object()) {
      merge_update(into[key], value);
    } else {
      into[key] = value;
    }
  }
}

}  // namespace

std::map<std::string, std::string> ClusterRouter::alias_table(const std::string& text) {
  std::map<std::string, std::string> out;
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return out;
  for (const auto& [alias, target] : j.items()) {
    if (target.is_string()) out[alias] = target.get<std::string>();
  }
  return out;
}

ClusterRouter::AliasRead ClusterRouter::read_aliases() {
  AliasRead a;
  a.key = node_.options().prefix + kAliasesKey;
  const etcd::Range r = etcd_.get(a.key);
  if (r.kvs.empty()) {
    a.unchanged = etcd::Compare::missing(a.key);
  } else {
    a.table = alias_table(r.kvs[0].value);
    a.unchanged = etcd::Compare::mod_revision(a.key, r.kvs[0].mod_revision);
  }
  return a;
}

std::map<std::string, std::string> ClusterRouter::aliases(const std::string* collection) const {
  const auto kv = node_.entry(kAliasesKey);
  std::map<std::string, std::string> out = kv ? alias_table(kv->value) : decltype(out)();
  if (!collection) return out;
  for (auto it = out.begin(); it != out.end();) {
    it = it->second == *collection ? std::next(it) : out.erase(it);
  }
  return out;
}

json ClusterRouter::update_aliases(const Call& c) {
  const auto actions = read_alias_actions(parse_body(*c.body));
  for (int attempt = 0; attempt < 20; ++attempt) {
    const AliasRead read = read_aliases();
    // Every collection an action found is still that collection when the table is written
    // (deleting a collection deletes its aliases in the same transaction).
    std::vector<etcd::Compare> compares{read.unchanged};
    auto is_collection = [&](const std::string& name) {
      const std::string ckey = node_.options().prefix + kCollectionsKey + name;
      const etcd::Range cr = etcd_.get(ckey);
      if (cr.kvs.empty()) return false;
      compares.push_back(etcd::Compare::mod_revision(ckey, cr.kvs[0].mod_revision));
      return true;
    };
    const auto next = engine::Engine::apply_alias_actions(read.table, actions, is_collection);
    const etcd::TxnResult t = etcd_.txn(compares, {etcd::Op::put(read.key, json(next).dump())});
    if (t.succeeded) {
      node_.wait_for(t.revision, std::chrono::seconds(5));
      return true;
    }
  }
  throw UnavailableError("aliases: the table changed 20 times meanwhile");
}

json ClusterRouter::update_collection(const std::string& name, const Call& c) {
  const CollectionMap m = need(name);
  const json body = parse_body(*c.body);
  // Checked as one node checks it before the map keeps it.
  qdrant_collection_update(body, collection_config_from_qdrant(m.config));
  update_map(name, [&](CollectionMap& fresh) {
    if (fresh.uid != m.uid) return false;
    merge_update(fresh.update, body);
    return true;
  });
  on_every_replica(
      m, [&](uint64_t node, const std::string& local) { return patch_local(node, local, body); });
  return true;
}

void ClusterRouter::on_every_replica(
    const CollectionMap& m, const std::function<Answer(uint64_t, const std::string&)>& call) {
  for (uint32_t s = 0; s < m.shard_number; ++s) {
    for (const auto& [replica, state] : m.shards[s].replicas) {
      Answer a;
      try {
        a = call(replica, m.local_name(s));
      } catch (const TransportError& e) {
        if (state == ReplicaState::kActive) throw UnavailableError(e.what());
        continue;  // a dead replica applies the map when it comes back
      }
      if (a.status != 200) rethrow(a.status, a.body, "shard " + std::to_string(s) + ": ");
    }
  }
}

ClusterRouter::Answer ClusterRouter::patch_local(uint64_t node, const std::string& local,
                                                 const json& body) {
  // A replica answers 409 while an index build runs: the update waits for it, a while.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    Answer a = forward(node, "PATCH", "/collections/" + local, body);
    if (a.status != 409 || std::chrono::steady_clock::now() > until) return a;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

json ClusterRouter::payload_index(const std::string& method, const Call& c) {
  const std::string& name = c.path.at("name");
  const CollectionMap m = need(name);
  const bool create = method == "PUT";
  const json body = create ? parse_body(*c.body) : json();
  // Checked as one node checks it before the map keeps it.
  const std::string field = create ? read_payload_index_body(body).key : c.path.at("field_name");
  // Kept in the map, so that a replica made later (a move, a new replica) makes it too.
  update_map(name, [&](CollectionMap& fresh) {
    if (fresh.uid != m.uid) return false;
    if (create) {
      fresh.payload_indexes[field] = body;
    } else {
      fresh.payload_indexes.erase(field);
    }
    return true;
  });
  const std::string path = create ? "/index" : "/index/" + c.path.at("field_name");
  on_every_replica(m, [&](uint64_t node, const std::string& local) {
    return forward(node, method, "/collections/" + local + path, body);
  });
  return api_.update_result(true);
}

}  // namespace wp::http
