#pragma once
/**
 * @file shard_map.h
 * A collection spread over a cluster, as etcd holds it (key `<prefix>collections/<name>`): the
 * Qdrant create body its shards are made from, `shard_number`, `replication_factor`,
 * `write_consistency_factor`, and per shard its primary, its replicas' states and an epoch that
 * rises with every change of either. The map changes only by compare-and-swap on the key's
 * revision (ClusterRouter).
 *
 * A point's shard is xxh64 of its id's canonical key (engine::PointId::key(): the same point
 * whatever form its id was written in) modulo shard_number. Shard s of a collection lives on
 * each of its replica nodes as a local collection `<name>.<uid>.<s>`: the uid (random at
 * creation) keeps a collection created again under the same name apart from the old one's
 * leftovers.
 */
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/point_id.h"

namespace wp::http::cluster {

enum class ReplicaState { kActive, kSyncing, kDead };
const char* state_name(ReplicaState s);  ///< Qdrant's names: "Active", "Partial", "Dead"

struct Shard {
  uint64_t epoch = 1;
  uint64_t primary = 0;  ///< a node id, one of `replicas`
  std::map<uint64_t, ReplicaState> replicas;
  /// Moves under way (move_shard): once replica `to` is active, replica `from` is dropped (and
  /// `to` becomes the primary if `from` was). to -> from.
  std::map<uint64_t, uint64_t> moves;
};

struct CollectionMap {
  std::string name;
  std::string uid;
  nlohmann::json config;  ///< the create body less the cluster fields
  /// The payload indexes every replica has: field name -> the PUT .../index body that made it
  /// (a replica made later makes them too).
  nlohmann::json payload_indexes = nlohmann::json::object();
  /// The PATCH /collections/{name} bodies applied, merged into one (later values win, as they
  /// do applied one after another): a replica made later applies it. Its size is bounded by the
  /// keys a PATCH has, however many PATCHes came.
  nlohmann::json update = nlohmann::json::object();
  uint32_t shard_number = 1;
  uint32_t replication_factor = 1;
  uint32_t write_consistency_factor = 1;
  std::vector<Shard> shards;
  int64_t revision = 0;  ///< etcd's mod_revision of the key it was read from (0: not stored)

  nlohmann::json to_json() const;
  /// Throws InternalError on a value this version did not write.
  static CollectionMap from_json(const std::string& name, const nlohmann::json& j);

  /// The local collection that holds shard `s` on its replica nodes.
  std::string local_name(uint32_t s) const;
  /// The shard of a point.
  uint32_t shard_of(const engine::PointId& id) const;
  /// The distance of the vector space `name` ("" the unnamed one): "Cosine", "Euclid", "Dot".
  std::string distance(const std::string& vector_name) const;
  /// Whether vector `vector_name` is a multivector (its MaxSim scores are higher-better whatever
  /// its distance).
  bool multivector(const std::string& vector_name) const;
};

/// Shards placed over `nodes` (sorted ids): shard s on nodes[(s + r) % n] for r < replication,
/// the first of them its primary, every replica active, epoch 1.
std::vector<Shard> place(uint32_t shard_number, uint32_t replication_factor,
                         const std::vector<uint64_t>& nodes);

/// Whether `local` is a shard collection's local name; sets its collection uid and shard.
bool parse_local_name(const std::string& local, std::string& uid, uint32_t& shard);

}  // namespace wp::http::cluster
