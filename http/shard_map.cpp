#include "http/shard_map.h"

#include <xxhash.h>

#include "engine/json_fields.h"
#include "index/error.h"

namespace wp::http::cluster {

using nlohmann::json;

const char* state_name(ReplicaState s) {
  switch (s) {
    case ReplicaState::kActive:
      return "Active";
    case ReplicaState::kSyncing:
      return "Partial";
    case ReplicaState::kDead:
      return "Dead";
  }
  return "Dead";
}

namespace {

ReplicaState state_of(const std::string& s) {
  if (s == "Active") return ReplicaState::kActive;
  if (s == "Partial") return ReplicaState::kSyncing;
  if (s == "Dead") return ReplicaState::kDead;
  throw InternalError("shard map: unknown replica state '" + s + "'");
}

}  // namespace

json CollectionMap::to_json() const {
  json shards_json = json::array();
  for (const Shard& s : shards) {
    json replicas = json::object();
    for (const auto& [node, state] : s.replicas) replicas[std::to_string(node)] = state_name(state);
    json moves = json::object();
    for (const auto& [to, from] : s.moves) moves[std::to_string(to)] = from;
    shards_json.push_back(
        {{"epoch", s.epoch}, {"primary", s.primary}, {"replicas", replicas}, {"moves", moves}});
  }
  return {{"uid", uid},
          {"config", config},
          {"payload_indexes", payload_indexes},
          {"update", update},
          {"shard_number", shard_number},
          {"replication_factor", replication_factor},
          {"write_consistency_factor", write_consistency_factor},
          {"shards", shards_json}};
}

CollectionMap CollectionMap::from_json(const std::string& name, const json& j) {
  try {
    CollectionMap m;
    m.name = name;
    m.uid = j.at("uid").get<std::string>();
    m.config = j.at("config");
    m.payload_indexes = j.value("payload_indexes", json::object());
    WP_THROW_INTERNAL_IF_NOT(m.payload_indexes.is_object(), "payload indexes");
    m.update = j.value("update", json::object());
    WP_THROW_INTERNAL_IF_NOT(m.update.is_object(), "collection update");
    m.shard_number = static_cast<uint32_t>(engine::stored_count(j, "shard_number", UINT32_MAX));
    m.replication_factor =
        static_cast<uint32_t>(engine::stored_count(j, "replication_factor", UINT32_MAX));
    m.write_consistency_factor =
        static_cast<uint32_t>(engine::stored_count(j, "write_consistency_factor", UINT32_MAX));
    for (const json& s : j.at("shards")) {
      Shard shard;
      shard.epoch = engine::stored_count(s, "epoch");
      shard.primary = engine::stored_count(s, "primary");
      for (const auto& [node, state] : s.at("replicas").items()) {
        shard.replicas[std::stoull(node)] = state_of(state.get<std::string>());
      }
      if (s.contains("moves")) {
        const json& moves = s.at("moves");
        for (const auto& move : moves.items()) {
          shard.moves[std::stoull(move.key())] = engine::stored_count(moves, move.key().c_str());
        }
      }
      m.shards.push_back(std::move(shard));
    }
    WP_THROW_INTERNAL_IF_NOT(m.shards.size() == m.shard_number && m.shard_number >= 1,
                             "shard count");
    return m;
  } catch (const InternalError&) {
    throw;
  } catch (const std::exception& e) {
    throw InternalError("shard map of collection '" + name + "' is damaged: " + e.what());
  }
}

std::string CollectionMap::local_name(uint32_t s) const {
  return name + "." + uid + "." + std::to_string(s);
}

uint32_t CollectionMap::shard_of(const engine::PointId& id) const {
  const std::string key = id.key();
  return static_cast<uint32_t>(XXH64(key.data(), key.size(), 0) % shard_number);
}

std::string CollectionMap::distance(const std::string& vector_name) const {
  const json& v = config.at("vectors");
  const json& params = v.contains("size") ? v : v.at(vector_name);
  return params.at("distance").get<std::string>();
}

bool CollectionMap::multivector(const std::string& vector_name) const {
  const json& v = config.at("vectors");
  const json& params = v.contains("size") ? v : v.at(vector_name);
  return params.contains("multivector_config") && !params["multivector_config"].is_null();
}

std::vector<Shard> place(uint32_t shard_number, uint32_t replication_factor,
                         const std::vector<uint64_t>& nodes) {
  std::vector<Shard> out(shard_number);
  for (uint32_t s = 0; s < shard_number; ++s) {
    for (uint32_t r = 0; r < replication_factor; ++r) {
      const uint64_t node = nodes[(s + r) % nodes.size()];
      if (r == 0) out[s].primary = node;
      out[s].replicas[node] = ReplicaState::kActive;
    }
  }
  return out;
}

bool parse_local_name(const std::string& local, std::string& uid, uint32_t& shard) {
  const size_t last = local.rfind('.');
  if (last == std::string::npos || last == 0) return false;
  const size_t before = local.rfind('.', last - 1);
  if (before == std::string::npos) return false;
  const std::string digits = local.substr(last + 1);
  if (digits.empty() || digits.size() > 6 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  uid = local.substr(before + 1, last - before - 1);
  if (uid.size() != 16 || uid.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return false;
  }
  shard = static_cast<uint32_t>(std::stoul(digits));
  return true;
}

}  // namespace wp::http::cluster
