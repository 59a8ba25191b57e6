// `waypoint serve`: the engine behind the Qdrant-compatible HTTP API (http/'s command).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "engine/command/command.h"
#include "engine/engine.h"
#include "engine/json_value.h"
#include "http/cluster_node.h"
#include "http/cluster_router.h"
#include "http/server.h"
#include "index/dataset.h"
#include "index/error.h"

namespace wp::cli {

namespace {

/// Loads a dataset folder into the collection "demo" (Euclid) unless it exists: the Quick start's
/// embedded default. Labels, when the folder has them, become the payload {"label": n}.
void load_demo(engine::Engine& eng, const std::string& dir) {
  if (eng.exists("demo")) return;
  const index::Dataset ds = index::load_dataset(dir);
  engine::CollectionConfig cfg;
  cfg.vectors[""].dim = ds.base.d;
  cfg.vectors[""].index.metric = index::Metric::kL2;
  cfg.vectors[""].index.hnsw.M = 16;
  cfg.vectors[""].index.hnsw.ef_construction = 100;
  eng.create_collection("demo", cfg);
  std::vector<engine::PointWrite> points(ds.base.n);
  for (size_t i = 0; i < ds.base.n; ++i) {
    points[i].id = engine::PointId::number(i);
    points[i].vectors[""].assign(ds.base.row(i), ds.base.row(i) + ds.base.d);
    if (i < ds.labels.n) points[i].payload = {{"label", ds.labels.row(i)[0]}};
  }
  eng.collection("demo")->upsert(std::move(points), true);
  std::printf("loaded demo collection 'demo': %zu points of dimension %zu from %s\n", ds.base.n,
              ds.base.d, dir.c_str());
}

int cmd_serve(Args& args) {
  http::limit_malloc_arenas();  // first, before any thread allocates
  // Options from --config (a JSON object with the same names) unless given on the command line.
  nlohmann::json file = nlohmann::json::object();
  const std::string config_path = args.str("config", "");
  if (!config_path.empty()) {
    std::ifstream in(config_path);
    WP_THROW_IF_NOT(in.good(), "--config: cannot read '", config_path, "'");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    engine::check_json_depth(text, "--config");
    try {
      file = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw UserError("--config: '" + config_path + "' is not valid JSON: " + e.what());
    }
    WP_THROW_IF_NOT(file.is_object(), "--config: expected a JSON object");
  }
  // Every key of the file is one of the options (underscores for dashes) and is checked as the
  // command line checks it; an option given on the command line wins over the file.
  std::set<std::string> known;  // the keys read below
  auto text_setting = [&](const char* flag, const char* key, const std::string& def) {
    known.insert(key);
    if (args.has(flag) || !file.contains(key)) return args.str(flag, def);
    WP_THROW_IF_NOT(file[key].is_string(), "--config: ", key, " must be a string, got ",
                    file[key].dump());
    return file[key].get<std::string>();
  };
  auto int_setting = [&](const char* flag, const char* key, long long def, long long lo,
                         long long hi) {
    known.insert(key);
    if (args.has(flag) || !file.contains(key)) return args.integer(flag, def, lo, hi);
    const nlohmann::json& v = file[key];
    WP_THROW_IF_NOT(v.is_number_integer(), "--config: ", key, " must be an integer, got ",
                    v.dump());
    const long long x =
        v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi) ? hi + 1 : v.get<long long>();
    WP_THROW_IF_NOT(x >= lo && x <= hi, "--config: ", key, " must be in ", lo, "..", hi, ", got ",
                    v.dump());
    return x;
  };
  const std::string data = text_setting("data", "data", "./waypoint-data");
  http::ServerOptions so;
  so.host = text_setting("host", "host", "127.0.0.1");
  so.port = static_cast<uint16_t>(int_setting("port", "port", 6333, 0, 65535));
  so.threads = static_cast<int>(int_setting("threads", "threads", 2, 1, 1024));
  const size_t indexing_threads =
      static_cast<size_t>(int_setting("indexing-threads", "indexing_threads", 0, 0, 1024));
  so.idle_timeout = std::chrono::seconds(int_setting("idle-timeout", "idle_timeout", 60, 1, 86400));
  so.poll = std::chrono::microseconds(int_setting("poll-us", "poll_us", 0, 0, 100000));
  // Connections handed to the server thread on the core their packets arrive on (a boolean in
  // the file).
  if (file.contains("steer_connections") && file["steer_connections"].is_boolean()) {
    file["steer_connections"] = file["steer_connections"].get<bool>() ? "true" : "false";
  }
  const std::string steer = text_setting("steer-connections", "steer_connections", "true");
  WP_THROW_IF_NOT(steer == "true" || steer == "false",
                  "--steer-connections: expected true or false, got '", steer, "'");
  so.steer_connections = steer == "true";
  so.max_connections =
      static_cast<size_t>(int_setting("max-connections", "max_connections", 1024, 1, 1 << 20));
  so.max_bodies_in_flight =
      static_cast<size_t>(int_setting("max-bodies-mb", "max_bodies_mb", 256, 1, 1 << 20)) << 20;
  // Answers of at least so many bytes gzipped for clients that accept it (0: never).
  so.compress_min_bytes = static_cast<size_t>(
      int_setting("compress-min-bytes", "compress_min_bytes", 16384, 0, int64_t{1} << 40));
  http::ApiOptions ao;
  ao.api_key = text_setting("api-key", "api_key", "");
  ao.read_only_api_key = text_setting("read-only-api-key", "read_only_api_key", "");
  so.tls_cert = text_setting("tls-cert", "tls_cert", "");
  so.tls_key = text_setting("tls-key", "tls_key", "");
  // Qdrant's service.enable_cors: a web page of any origin may call the API (its key still
  // checked on every request but the preflight). A boolean in the file, as in Qdrant's.
  if (file.contains("enable_cors") && file["enable_cors"].is_boolean()) {
    file["enable_cors"] = file["enable_cors"].get<bool>() ? "true" : "false";
  }
  const std::string cors = text_setting("enable-cors", "enable_cors", "true");
  WP_THROW_IF_NOT(cors == "true" || cors == "false", "--enable-cors: expected true or false, got '",
                  cors, "'");
  so.cors = cors == "true";
  ao.max_body_bytes = static_cast<size_t>(int_setting("max-body-mb", "max_body_mb", 32, 1, 4096))
                      << 20;
  ao.max_upload_bytes =
      static_cast<size_t>(int_setting("max-upload-mb", "max_upload_mb", 1024, 1, 1 << 20)) << 20;
  // A filtered read that takes this long notes its filter's unindexed keys (GET /issues; 1.2 s,
  // Qdrant's default; 0: every filtered read).
  ao.slow_query_seconds =
      static_cast<double>(int_setting("slow-query-ms", "slow_query_ms", 1200, 0, 86400000)) / 1e3;
  const std::string snapshots = text_setting("snapshots-dir", "snapshots_dir", "");
  const std::string demo = text_setting("demo", "demo", "");
  // Qdrant's --storage-snapshot and --force-snapshot: every collection and alias of a storage
  // snapshot recovered before the server listens. On the command line only: a config file that
  // named one would recover it again at every start.
  const std::string storage_snapshot = args.str("storage-snapshot", "");
  // And --snapshot PATH:NAME[,PATH:NAME...]: collection snapshots (the name after the last ':').
  std::vector<std::pair<std::string, std::string>> snapshot_files;  // name, path
  for (const std::string& item : args.list("snapshot", "")) {
    const size_t colon = item.rfind(':');
    WP_THROW_IF_NOT(colon != std::string::npos && colon > 0 && colon + 1 < item.size(),
                    "--snapshot: expected PATH:NAME (a snapshot file and the collection it "
                    "becomes), got '",
                    item, "'");
    snapshot_files.emplace_back(item.substr(colon + 1), item.substr(0, colon));
  }
  const bool force_snapshot = args.flag("force-snapshot");
  // Cluster mode (docs/cluster.md): membership and the cluster map in etcd.
  known.insert("cluster");
  bool cluster = args.flag("cluster");
  if (!cluster && file.contains("cluster")) {
    WP_THROW_IF_NOT(file["cluster"].is_boolean(), "--config: cluster must be true or false, got ",
                    file["cluster"].dump());
    cluster = file["cluster"].get<bool>();
  }
  http::ClusterOptions co;
  co.etcd = text_setting("etcd", "etcd", "");
  // node_id: an integer in the file (a string of digits also), digits on the command line.
  if (file.contains("node_id") && file["node_id"].is_number_unsigned()) {
    file["node_id"] = std::to_string(file["node_id"].get<uint64_t>());
  }
  const std::string node_id = text_setting("node-id", "node_id", "");
  co.advertise = text_setting("advertise", "advertise", "");
  co.lease_ttl = int_setting("lease-ttl", "lease_ttl", 10, 2, 3600);
  if (cluster) {
    WP_THROW_IF_NOT(!co.etcd.empty(), "--cluster needs --etcd http://HOST:PORT");
    WP_THROW_IF_NOT(!node_id.empty(), "--cluster needs --node-id N (an integer, 1 or more)");
    WP_THROW_IF_NOT(
        node_id.size() <= 16 && node_id.find_first_not_of("0123456789") == std::string::npos,
        "--node-id must be an integer in 1..2^53-1, got '", node_id, "'");
    co.node_id = std::stoull(node_id);
  } else {
    WP_THROW_IF_NOT(co.etcd.empty() && node_id.empty() && co.advertise.empty(),
                    "--etcd, --node-id and --advertise need --cluster");
  }
  WP_THROW_IF_NOT(!cluster || (storage_snapshot.empty() && snapshot_files.empty()),
                  "--storage-snapshot and --snapshot recover one server's collections; a "
                  "cluster's are sharded (give them without --cluster)");
  WP_THROW_IF_NOT(!force_snapshot || !storage_snapshot.empty() || !snapshot_files.empty(),
                  "--force-snapshot needs --storage-snapshot FILE or --snapshot PATH:NAME");
  for (const auto& [key, value] : file.items()) {
    WP_THROW_IF_NOT(known.count(key), "--config: unknown setting '", key, "'");
  }
  args.finish();

  engine::Collection::set_link_threads(indexing_threads);
  engine::Engine eng(data, snapshots);
  if (!storage_snapshot.empty()) {
    const std::vector<std::string> recovered =
        eng.recover_full_snapshot(storage_snapshot, force_snapshot);
    std::printf("recovered %zu collections from storage snapshot %s\n", recovered.size(),
                storage_snapshot.c_str());
  }
  if (!snapshot_files.empty()) {
    const std::vector<std::string> recovered =
        eng.recover_snapshot_files(snapshot_files, force_snapshot);
    std::printf("recovered %zu collections from --snapshot\n", recovered.size());
  }
  if (!demo.empty()) load_demo(eng, demo);
  http::Api api(eng, ao);
  http::Server server(api, so);
  server.listen();
  std::unique_ptr<http::ClusterNode> node;
  std::unique_ptr<http::ClusterRouter> router;
  if (cluster) {
    if (co.advertise.empty()) {
      WP_THROW_IF_NOT(so.host != "0.0.0.0" && so.host != "::", "--cluster with --host ", so.host,
                      " needs --advertise http://HOST:PORT (the address other nodes reach this "
                      "one at)");
      co.advertise = "http://" + so.host + ":" + std::to_string(server.port());
    }
    node = std::make_unique<http::ClusterNode>(co);
    router = std::make_unique<http::ClusterRouter>(eng, *node, api, ao.api_key);
    api.set_cluster(node.get());
    api.set_router(router.get());
    std::printf("waypoint node %llu joined the cluster at %s as %s (lease %lld s)\n",
                static_cast<unsigned long long>(co.node_id), co.etcd.c_str(), co.advertise.c_str(),
                static_cast<long long>(co.lease_ttl));
  }
  std::printf("waypoint listening on %s://%s:%u (data: %s, %zu collections%s%s)\n",
              so.tls_cert.empty() ? "http" : "https", so.host.c_str(), server.port(),
              std::filesystem::absolute(data).c_str(), eng.names().size(),
              ao.api_key.empty() ? "" : ", api key required",
              ao.read_only_api_key.empty() ? "" : ", read-only key accepted");
  std::fflush(stdout);
  server.run();
  api.set_router(nullptr);
  api.set_cluster(nullptr);
  router.reset();
  node.reset();  // leaves the cluster: revokes the lease
  std::printf("waypoint: shutting down, saving index files\n");
  std::fflush(stdout);
  return 0;  // ~Engine saves the index files
}

const CommandRegistration kServe(
    {"serve",
     "[--data ./waypoint-data] [--host 127.0.0.1] [--port 6333] [--api-key K] [--threads 2]\n"
     "          [--max-body-mb 32] [--idle-timeout 60] [--max-connections 1024] [--poll-us 0]\n"
     "          [--max-bodies-mb 256] [--max-upload-mb 1024] [--read-only-api-key K]\n"
     "          [--tls-cert CERT.pem --tls-key KEY.pem] [--snapshots-dir DATA/snapshots]\n"
     "          [--config FILE.json] [--demo DATASET_DIR] [--enable-cors true|false]\n"
     "          [--compress-min-bytes 16384] [--storage-snapshot FILE] [--snapshot PATH:NAME,...]\n"
     "          [--force-snapshot] [--steer-connections true|false] [--slow-query-ms 1200]\n"
     "          [--cluster --etcd http://HOST:2379 --node-id N [--advertise http://HOST:PORT]\n"
     "           [--lease-ttl 10]]",
     10,
     {"cluster", "force-snapshot"},
     &cmd_serve});

}  // namespace

}  // namespace wp::cli
