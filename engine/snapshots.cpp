// Engine's snapshot methods: create, list, delete and recover collection snapshots
// (engine.h; the file format is snapshot_archive.h).
#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "engine/durable_file.h"
#include "engine/engine.h"
#include "engine/json_value.h"
#include "engine/snapshot_archive.h"
#include "index/error.h"

namespace wp::engine {

namespace fs = std::filesystem;

namespace {

constexpr char kSuffix[] = ".snapshot";
constexpr char kChecksumSuffix[] = ".checksum";
/// How long a recovery waits for the requests in flight on the collection it replaces.
constexpr auto kDrainTimeout = std::chrono::seconds(60);

/// A folder for one operation's work, emptied when made and removed when the scope ends, on
/// every path out.
struct ScratchFolder {
  explicit ScratchFolder(fs::path p) : path(std::move(p)) { fs::remove_all(path); }
  ~ScratchFolder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  const fs::path path;
};

std::string utc(std::time_t t, const char* format) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

/// A snapshot name as the routes may give it: a file name of the snapshot folder, no path.
bool valid_snapshot_name(const std::string& s) {
  const size_t n = sizeof(kSuffix) - 1;
  if (s.size() <= n || s.size() > 255 || s.front() == '.' ||
      s.compare(s.size() - n, n, kSuffix) != 0) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

Engine::SnapshotInfo describe(const fs::path& file) {
  Engine::SnapshotInfo info;
  info.name = file.filename().string();
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) throw NotFoundError("snapshot `" + info.name + "` is gone");
  info.size = static_cast<uint64_t>(st.st_size);
  info.creation_time = utc(st.st_mtime, "%Y-%m-%dT%H:%M:%S");
  std::ifstream sum(file.string() + kChecksumSuffix);
  std::getline(sum, info.checksum);
  return info;
}

/// Whether `path` lies inside `root` (both canonical).
bool inside(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (p == path.end() || *p != *r) return false;
  }
  return p != path.end();
}

/// The snapshot files in `folder` whose names begin with `prefix`, oldest first.
std::vector<Engine::SnapshotInfo> snapshots_in(const fs::path& folder, const std::string& prefix) {
  std::vector<Engine::SnapshotInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string f = e.path().filename().string();
    if (!valid_snapshot_name(f) || f.compare(0, prefix.size(), prefix) != 0 ||
        !e.is_regular_file()) {
      continue;
    }
    try {
      out.push_back(describe(e.path()));
    } catch (const NotFoundError&) {
      // deleted while listing
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Engine::SnapshotInfo& a, const Engine::SnapshotInfo& b) {
              return std::tie(a.creation_time, a.name) < std::tie(b.creation_time, b.name);
            });
  return out;
}

/// A snapshot's name made of `prefix`, a random id and the time `t`.
std::string snapshot_name(const std::string& prefix, std::time_t t, std::string* id) {
  std::random_device rd;
  *id = std::to_string((uint64_t{rd()} << 20) ^ rd());
  return prefix + "-" + *id + "-" + utc(t, "%Y-%m-%d-%H-%M-%S") + kSuffix;
}

/// The storage snapshots' names begin so (Qdrant's `full-snapshot-<time>.snapshot`), then `-`.
constexpr char kFullName[] = "full-snapshot";

/// Writes the snapshot file `file` (its members, its manifest's `info`) and its checksum
/// beside it, and describes it.
Engine::SnapshotInfo write_snapshot(const fs::path& file,
                                    const std::vector<std::pair<std::string, std::string>>& members,
                                    const nlohmann::json& info, snapshot::Kind kind) {
  const std::string sha = snapshot::write_archive(file.string(), members, info, kind);
  write_file_durably(file.string() + kChecksumSuffix, sha);
  return describe(file);
}

/// Deletes a snapshot file and its checksum.
void remove_snapshot(const fs::path& file) {
  fs::remove(file);
  std::error_code ec;
  fs::remove(file.string() + kChecksumSuffix, ec);
  sync_folder(file.parent_path().string());
}

void check_checksum(const std::string& actual, std::string expected) {
  std::transform(expected.begin(), expected.end(), expected.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  WP_THROW_IF_NOT(expected == actual, "checksum ", show_json(expected),
                  " does not match the snapshot's SHA-256 ", actual);
}

}  // namespace

std::string Engine::snapshot_folder(const std::string& collection) const {
  return (fs::path(snapshots_dir_) / collection).string();
}

void Engine::add_checkpoint_members(const std::string& dir, const std::string& prefix,
                                    std::vector<std::pair<std::string, std::string>>& members) {
  std::vector<fs::path> store_files;
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "store")) {
    store_files.push_back(e.path());
  }
  std::sort(store_files.begin(), store_files.end());
  for (const fs::path& f : store_files) {
    members.emplace_back(prefix + "store/" + f.filename().string(), f.string());
  }
  std::vector<std::string> index_files;  // of every vector space
  for (const auto& f : fs::directory_iterator(dir)) {
    const std::string name = f.path().filename().string();
    if (f.is_regular_file() && snapshot::allowed_member(name) && name != snapshot::kManifest) {
      index_files.push_back(name);
    }
  }
  std::sort(index_files.begin(), index_files.end());
  for (const std::string& f : index_files) {
    members.emplace_back(prefix + f, (fs::path(dir) / f).string());
  }
}

Engine::SnapshotInfo Engine::create_snapshot(const std::string& name) {
  const std::shared_ptr<Collection> c = collection(name);
  const fs::path folder = snapshot_folder(c->name());
  fs::create_directories(folder);
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::string id;
  const std::string file_name = snapshot_name(c->name(), t, &id);
  const ScratchFolder scratch(folder / (".work-" + id));
  const fs::path& work = scratch.path;
  c->checkpoint_to(work.string());
  std::vector<std::pair<std::string, std::string>> members;
  add_checkpoint_members(work.string(), "", members);
  const nlohmann::json info{{"collection", c->name()}, {"created", utc(t, "%Y-%m-%dT%H:%M:%SZ")}};
  return write_snapshot(folder / file_name, members, info, snapshot::Kind::kCollection);
}

std::vector<Engine::SnapshotInfo> Engine::list_snapshots(const std::string& name) const {
  const std::shared_ptr<Collection> c = collection(name);
  return snapshots_in(snapshot_folder(c->name()), "");
}

std::string Engine::snapshot_file(const std::string& name, const std::string& snapshot) const {
  const std::shared_ptr<Collection> c = collection(name);
  const fs::path file = fs::path(snapshot_folder(c->name())) / snapshot;
  if (!valid_snapshot_name(snapshot) || !fs::is_regular_file(file)) {
    throw NotFoundError("Snapshot `" + show_text(snapshot) + "` of collection `" + c->name() +
                        "` doesn't exist!");
  }
  return file.string();
}

void Engine::delete_snapshot(const std::string& name, const std::string& snapshot) {
  remove_snapshot(snapshot_file(name, snapshot));
}

void Engine::recover_snapshot_location(const std::string& name, const std::string& location,
                                       const std::string& checksum) {
  const std::string scheme = "file://";
  WP_THROW_IF_NOT(location.rfind(scheme, 0) == 0, "location ", show_json(location),
                  " is not a file:// URL: snapshots are recovered from files under the snapshots "
                  "folder, or uploaded to /collections/{name}/snapshots/upload");
  const fs::path path = location.substr(scheme.size());
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  WP_THROW_IF_NOT(!ec && path.is_absolute(), "location ", show_json(location),
                  " names no file (file:// takes an absolute path, file:///folder/name)");
  const fs::path root = fs::canonical(snapshots_dir_);
  WP_THROW_IF_NOT(inside(real, root) && fs::is_regular_file(real), "location ", show_json(location),
                  " is not a file under the snapshots folder ", root.string());
  if (!checksum.empty()) check_checksum(snapshot::sha256_file(real.string()), checksum);
  std::ifstream in(real, std::ios::binary);
  WP_THROW_INTERNAL_IF_NOT(in, "cannot read ", real.string());
  recover_snapshot(name, in);
}

void Engine::recover_snapshot_bytes(const std::string& name, std::string_view bytes,
                                    const std::string& checksum) {
  if (!checksum.empty()) check_checksum(snapshot::sha256_bytes(bytes), checksum);
  snapshot::ViewStream in(bytes);
  recover_snapshot(name, in);
}

std::shared_ptr<void> Engine::begin_recovery(const std::string& name) {
  {
    std::unique_lock<RwMutex> lock(mu_);
    if (recovering_.count(name)) {
      throw ConflictError("collection `" + show_text(name) +
                          "` is already being recovered from a snapshot");
    }
    recovering_.insert(name);
  }
  return std::shared_ptr<void>(nullptr, [this, name](void*) {
    std::unique_lock<RwMutex> lock(mu_);
    recovering_.erase(name);
  });
}

void Engine::recover_snapshot(const std::string& requested, std::istream& in) {
  const std::string name = resolve(requested);
  validate_collection_name(name);
  const std::shared_ptr<void> recovering = begin_recovery(name);
  std::random_device rd;
  // Removed at the end: the snapshot when it failed; the replaced collection when not
  const ScratchFolder scratch(collection_folder(".recovering-" + std::to_string(rd())));
  const fs::path& tmp = scratch.path;
  {
    snapshot::FolderSink sink(tmp.string());
    snapshot::read_archive(in, sink);
  }
  check_recovered(name, tmp.string());
  install_recovered(name, tmp.string());
}

void Engine::check_recovered(const std::string& name, const std::string& unpacked) {
  // Opened once where it lies: a store RocksDB cannot open, a missing or damaged config, or a
  // damaged point is refused here, with the collection still as it was.
  try {
    Collection scratch(name, unpacked, std::nullopt);
    if (!scratch.index_loaded_from_file()) scratch.save_index();  // built once, not twice
  } catch (const std::exception& e) {
    throw UserError(std::string("snapshot is damaged: its collection does not open: ") + e.what());
  }
}

void Engine::install_recovered(const std::string& name, const std::string& unpacked) {
  const fs::path tmp = unpacked;
  // The old collection leaves the table (its requests now get UnavailableError) and is closed
  // once the requests in flight on it are done.
  std::shared_ptr<Collection> old;
  {
    std::unique_lock<RwMutex> lock(mu_);
    if (auto it = collections_.find(name); it != collections_.end()) {
      old = std::move(it->second);
      collections_.erase(it);
    }
  }
  if (old) {
    const auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
    while (old.use_count() > 1 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (old.use_count() > 1) {
      std::unique_lock<RwMutex> lock(mu_);
      collections_[name] = std::move(old);
      throw UnavailableError("collection `" + name +
                             "` is still serving requests: recovery abandoned, retry");
    }
    old.reset();  // closes its store and waits for its index build
  }
  const fs::path dir = collection_folder(name);
  if (fs::exists(dir)) {
    // One rename exchanges the two folders: a crash leaves the old collection or the new.
    if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
      throw InternalError("cannot exchange " + tmp.string() + " and " + dir.string() + ": " +
                          std::strerror(errno));
    }
  } else {
    fs::rename(tmp, dir);
  }
  sync_folder(dir.parent_path().string());
  auto fresh = std::make_shared<Collection>(name, dir.string(), std::nullopt);
  std::unique_lock<RwMutex> lock(mu_);
  collections_[name] = std::move(fresh);
  damaged_.erase(name);  // a collection that did not open is replaced by the snapshot's
}

Engine::SnapshotInfo Engine::create_full_snapshot() {
  std::vector<std::shared_ptr<Collection>> collections;
  std::map<std::string, std::string> aliases;
  {
    std::shared_lock<RwMutex> lock(mu_);
    for (const auto& [name, c] : collections_) collections.push_back(c);
    aliases = aliases_;
  }
  const fs::path folder = snapshots_dir_;
  fs::create_directories(folder);
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::string id;
  const std::string file_name = snapshot_name(kFullName, t, &id);
  const ScratchFolder scratch(folder / (".work-full-" + id));
  const fs::path& work = scratch.path;
  std::vector<std::pair<std::string, std::string>> members;
  nlohmann::json listed = nlohmann::json::array();
  std::set<std::string> names;
  for (size_t i = 0; i < collections.size(); ++i) {
    const std::string sub = "c" + std::to_string(i);
    collections[i]->checkpoint_to((work / sub).string());
    add_checkpoint_members((work / sub).string(), sub + "/", members);
    listed.push_back({{"name", collections[i]->name()}, {"folder", sub}});
    names.insert(collections[i]->name());
  }
  nlohmann::json alias_table = nlohmann::json::object();
  for (const auto& [alias, target] : aliases) {
    if (names.count(target)) alias_table[alias] = target;
  }
  const nlohmann::json info{{"created", utc(t, "%Y-%m-%dT%H:%M:%SZ")},
                            {"collections", std::move(listed)},
                            {"aliases", std::move(alias_table)}};
  return write_snapshot(folder / file_name, members, info, snapshot::Kind::kStorage);
}

std::vector<Engine::SnapshotInfo> Engine::list_full_snapshots() const {
  return snapshots_in(snapshots_dir_, std::string(kFullName) + "-");
}

std::string Engine::full_snapshot_file(const std::string& snapshot) const {
  const fs::path file = fs::path(snapshots_dir_) / snapshot;
  if (!valid_snapshot_name(snapshot) || snapshot.rfind(std::string(kFullName) + "-", 0) != 0 ||
      !fs::is_regular_file(file)) {
    throw NotFoundError("Snapshot `" + show_text(snapshot) + "` doesn't exist!");
  }
  return file.string();
}

void Engine::delete_full_snapshot(const std::string& snapshot) {
  remove_snapshot(full_snapshot_file(snapshot));
}

std::vector<std::string> Engine::recover_full_snapshot(const std::string& path, bool force) {
  std::ifstream in(path, std::ios::binary);
  WP_THROW_IF_NOT(in, "--storage-snapshot: cannot read ", path);
  std::random_device rd;
  // Unpacked among the collections' folders, so that each is exchanged with one rename.
  const ScratchFolder scratch(collection_folder(".recovering-full-" + std::to_string(rd())));
  const fs::path& tmp = scratch.path;
  nlohmann::json manifest;
  {
    snapshot::FolderSink sink(tmp.string());
    manifest = snapshot::read_archive(in, sink, snapshot::Kind::kStorage);
  }
  std::set<std::string> folders;
  for (const auto& e : fs::directory_iterator(tmp)) folders.insert(e.path().filename().string());
  const snapshot::StorageListing listing = snapshot::storage_listing(manifest, folders);
  std::vector<std::pair<std::string, std::string>> unpacked;  // name, folder
  for (const auto& [name, sub] : listing.collections)
    unpacked.emplace_back(name, (tmp / sub).string());
  return install_unpacked(unpacked, listing.aliases, force, "--storage-snapshot");
}

std::vector<std::string> Engine::recover_snapshot_files(
    const std::vector<std::pair<std::string, std::string>>& files, bool force) {
  std::random_device rd;
  const ScratchFolder scratch(collection_folder(".recovering-files-" + std::to_string(rd())));
  const fs::path& tmp = scratch.path;
  std::vector<std::pair<std::string, std::string>> unpacked;  // name, folder
  std::set<std::string> names;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& [name, path] = files[i];
    validate_collection_name(name);
    WP_THROW_IF_NOT(names.insert(name).second, "--snapshot: collection `", name,
                    "` is given twice");
    std::ifstream in(path, std::ios::binary);
    WP_THROW_IF_NOT(in, "--snapshot: cannot read ", path);
    const fs::path folder = tmp / ("c" + std::to_string(i));
    snapshot::FolderSink sink(folder.string());
    try {
      snapshot::read_archive(in, sink);
    } catch (const UserError& e) {
      throw UserError("--snapshot " + path + ": " + e.what());
    }
    unpacked.emplace_back(name, folder.string());
  }
  return install_unpacked(unpacked, {}, force, "--snapshot");
}

std::vector<std::string> Engine::install_unpacked(
    const std::vector<std::pair<std::string, std::string>>& unpacked,
    const std::map<std::string, std::string>& aliases, bool force, const std::string& flag) {
  std::vector<AliasAction> actions;
  for (const auto& [alias, target] : aliases) {
    AliasAction a;
    a.kind = AliasAction::Kind::kCreate;
    a.alias = alias;
    a.target = target;
    actions.push_back(std::move(a));
  }
  // Nothing changes before every conflict is known.
  {
    std::shared_lock<RwMutex> lock(mu_);
    for (const auto& [name, folder] : unpacked) {
      WP_THROW_IF_NOT(force || (!collections_.count(name) && !damaged_.count(name)), flag,
                      ": collection `", name,
                      "` exists already; give --force-snapshot to replace it");
      WP_THROW_IF_NOT(!aliases_.count(name), flag, ": collection `", name,
                      "` of the snapshot is an alias here; delete the alias first");
    }
    for (const AliasAction& a : actions) {
      WP_THROW_IF_NOT(!collections_.count(a.alias) && !damaged_.count(a.alias), flag, ": alias `",
                      a.alias, "` is a collection's name here");
      WP_THROW_IF_NOT(force || !aliases_.count(a.alias), flag, ": alias `", a.alias,
                      "` exists already; give --force-snapshot to replace it");
    }
  }
  // Every collection opens before any replaces one here.
  std::vector<std::shared_ptr<void>> recovering;
  for (const auto& [name, folder] : unpacked) {
    recovering.push_back(begin_recovery(name));
    check_recovered(name, folder);
  }
  std::vector<std::string> recovered;
  for (const auto& [name, folder] : unpacked) {
    install_recovered(name, folder);
    recovered.push_back(name);
  }
  if (!actions.empty()) {
    std::vector<AliasAction> all;
    const std::map<std::string, std::string> now = this->aliases();
    for (const AliasAction& a : actions) {
      if (now.count(a.alias)) {
        AliasAction drop;
        drop.kind = AliasAction::Kind::kDelete;
        drop.alias = a.alias;
        all.push_back(std::move(drop));
      }
    }
    all.insert(all.end(), actions.begin(), actions.end());
    update_aliases(all);
  }
  return recovered;
}

}  // namespace wp::engine
