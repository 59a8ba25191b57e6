#include "engine/engine.h"

#include <filesystem>
#include <random>

#include "engine/json_value.h"
#include "index/error.h"

namespace wp::engine {

namespace fs = std::filesystem;

namespace {
fs::path collections_dir(const std::string& data) {
  return fs::path(data) / "collections";
}
}  // namespace

Engine::Engine(const std::string& data_dir) : data_dir_(data_dir) {
  const fs::path root = collections_dir(data_dir);
  fs::create_directories(root);
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    if (name.rfind(".deleted-", 0) == 0 || name.rfind(".creating-", 0) == 0) {
      fs::remove_all(entry.path());  // leftovers of an interrupted delete or create
      continue;
    }
    collections_[name] = std::make_shared<Collection>(name, entry.path().string(), std::nullopt);
  }
}

Engine::~Engine() {
  try {
    save_indexes();
  } catch (const std::exception&) {
    // Index files are derived: the next start rebuilds what could not be saved.
  }
}

void Engine::create_collection(const std::string& name, const CollectionConfig& config) {
  validate_collection_name(name);
  std::unique_lock<RwMutex> lock(mu_);
  if (collections_.count(name)) {
    throw ConflictError("collection `" + show_text(name) + "` already exists");
  }
  // Built under a temporary name and renamed into place once its config is durable.
  const fs::path tmp = collections_dir(data_dir_) / (".creating-" + name);
  fs::remove_all(tmp);
  { Collection scratch(name, tmp.string(), config); }
  const fs::path dir = collections_dir(data_dir_) / name;
  fs::rename(tmp, dir);
  collections_[name] = std::make_shared<Collection>(name, dir.string(), std::nullopt);
}

bool Engine::delete_collection(const std::string& name) {
  std::shared_ptr<Collection> victim;
  {
    std::unique_lock<RwMutex> lock(mu_);
    auto it = collections_.find(name);
    if (it == collections_.end()) return false;
    victim = std::move(it->second);
    collections_.erase(it);
  }
  const fs::path dir = victim->dir();
  victim.reset();  // closes the store once the last in-flight request lets go of it
  std::random_device rd;
  const fs::path gone = collections_dir(data_dir_) / (".deleted-" + std::to_string(rd()));
  std::error_code ec;
  fs::rename(dir, gone, ec);
  fs::remove_all(ec ? dir : gone, ec);
  return true;
}

std::shared_ptr<Collection> Engine::collection(const std::string& name) const {
  std::shared_lock<RwMutex> lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    throw NotFoundError("Collection `" + show_text(name) + "` doesn't exist!");
  }
  return it->second;
}

bool Engine::exists(const std::string& name) const {
  std::shared_lock<RwMutex> lock(mu_);
  return collections_.count(name) != 0;
}

std::vector<std::string> Engine::names() const {
  std::shared_lock<RwMutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& kv : collections_) out.push_back(kv.first);
  return out;
}

void Engine::save_indexes() const {
  std::shared_lock<RwMutex> lock(mu_);
  for (const auto& kv : collections_) kv.second->save_index();
}

}  // namespace wp::engine
