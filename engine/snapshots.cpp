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
#include <random>
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

/// Runs a function when the scope ends (clean-ups on every path out).
template <typename F>
struct Finally {
  F f;
  ~Finally() { f(); }
};
template <typename F>
Finally(F) -> Finally<F>;

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

Engine::SnapshotInfo Engine::create_snapshot(const std::string& name) {
  const std::shared_ptr<Collection> c = collection(name);
  const fs::path folder = snapshot_folder(c->name());
  fs::create_directories(folder);
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::random_device rd;
  const std::string id = std::to_string((uint64_t{rd()} << 20) ^ rd());
  const std::string file_name = c->name() + "-" + id + "-" + utc(t, "%Y-%m-%d-%H-%M-%S") + kSuffix;
  const fs::path work = folder / (".work-" + id);
  fs::remove_all(work);
  Finally clean{[&] {
    std::error_code ec;
    fs::remove_all(work, ec);
  }};
  c->checkpoint_to(work.string());
  std::vector<std::pair<std::string, std::string>> members;
  std::vector<fs::path> store_files;
  for (const auto& e : fs::directory_iterator(work / "store")) store_files.push_back(e.path());
  std::sort(store_files.begin(), store_files.end());
  for (const fs::path& f : store_files) {
    members.emplace_back("store/" + f.filename().string(), f.string());
  }
  std::vector<std::string> index_files;  // of every vector space
  for (const auto& f : fs::directory_iterator(work)) {
    const std::string name = f.path().filename().string();
    if (f.is_regular_file() && snapshot::allowed_member(name) && name != snapshot::kManifest) {
      index_files.push_back(name);
    }
  }
  std::sort(index_files.begin(), index_files.end());
  for (const std::string& f : index_files) members.emplace_back(f, (work / f).string());
  const nlohmann::json info{{"collection", c->name()}, {"created", utc(t, "%Y-%m-%dT%H:%M:%SZ")}};
  const fs::path file = folder / file_name;
  const std::string sha = snapshot::write_archive(file.string(), members, info);
  write_file_durably(file.string() + kChecksumSuffix, sha);
  return describe(file);
}

std::vector<Engine::SnapshotInfo> Engine::list_snapshots(const std::string& name) const {
  const std::shared_ptr<Collection> c = collection(name);
  const fs::path folder = snapshot_folder(c->name());
  std::vector<SnapshotInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    const std::string f = e.path().filename().string();
    if (!valid_snapshot_name(f) || !e.is_regular_file()) continue;
    try {
      out.push_back(describe(e.path()));
    } catch (const NotFoundError&) {
      // deleted while listing
    }
  }
  std::sort(out.begin(), out.end(), [](const SnapshotInfo& a, const SnapshotInfo& b) {
    return std::tie(a.creation_time, a.name) < std::tie(b.creation_time, b.name);
  });
  return out;
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
  const fs::path file = snapshot_file(name, snapshot);
  fs::remove(file);
  std::error_code ec;
  fs::remove(file.string() + kChecksumSuffix, ec);
  sync_folder(file.parent_path().string());
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

void Engine::recover_snapshot(const std::string& requested, std::istream& in) {
  const std::string name = resolve(requested);
  validate_collection_name(name);
  {
    std::unique_lock<RwMutex> lock(mu_);
    if (recovering_.count(name)) {
      throw ConflictError("collection `" + show_text(name) +
                          "` is already being recovered from a snapshot");
    }
    recovering_.insert(name);
  }
  Finally done{[&] {
    std::unique_lock<RwMutex> lock(mu_);
    recovering_.erase(name);
  }};
  std::random_device rd;
  const fs::path tmp = collection_folder(".recovering-" + std::to_string(rd()));
  fs::remove_all(tmp);
  Finally clean{[&] {
    std::error_code ec;
    fs::remove_all(tmp, ec);  // the snapshot when it failed; the replaced collection when not
  }};
  {
    snapshot::FolderSink sink(tmp.string());
    snapshot::read_archive(in, sink);
  }
  // Opened once where it lies: a store RocksDB cannot open, a missing or damaged config, or a
  // damaged point is refused here, with the collection still as it was.
  try {
    Collection scratch(name, tmp.string(), std::nullopt);
    if (!scratch.index_loaded_from_file()) scratch.save_index();  // built once, not twice
  } catch (const std::exception& e) {
    throw UserError(std::string("snapshot is damaged: its collection does not open: ") + e.what());
  }
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

}  // namespace wp::engine
