#include "engine/engine.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "engine/durable_file.h"
#include "engine/json_value.h"
#include "index/error.h"

namespace wp::engine {

namespace fs = std::filesystem;

namespace {
fs::path collections_dir(const std::string& data) {
  return fs::path(data) / "collections";
}

fs::path aliases_file(const std::string& data) {
  return fs::path(data) / "aliases.json";
}

UnavailableError being_recovered(const std::string& name) {
  return UnavailableError("collection `" + show_text(name) +
                          "` is being recovered from a snapshot: retry");
}

}  // namespace

Engine::Engine(const std::string& data_dir, const std::string& snapshots_dir)
    : data_dir_(data_dir),
      snapshots_dir_(snapshots_dir.empty() ? (fs::path(data_dir) / "snapshots").string()
                                           : snapshots_dir) {
  const fs::path root = collections_dir(data_dir);
  fs::create_directories(root);
  fs::create_directories(snapshots_dir_);
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    if (name.front() == '.') {
      // Leftovers of an interrupted delete, create or recovery (`.deleted-`, `.creating-`,
      // `.recovering-`): collection names never start with '.'.
      fs::remove_all(entry.path());
      continue;
    }
    try {
      collections_[name] = std::make_shared<Collection>(name, entry.path().string(), std::nullopt);
    } catch (const std::exception& e) {
      // One damaged collection must not keep the others from serving.
      damaged_[name] = e.what();
      std::fprintf(stderr, "collection `%s` could not be opened: %s\n", name.c_str(), e.what());
    }
  }
  const fs::path aliases = aliases_file(data_dir);
  if (fs::exists(aliases)) {
    try {
      std::ifstream in(aliases);
      const nlohmann::json stored = nlohmann::json::parse(in);
      for (const auto& [alias, target] : stored.items()) {
        // An alias of a collection deleted before its aliases were rewritten goes with it.
        const std::string to = target.get<std::string>();
        if (collections_.count(to) || damaged_.count(to)) aliases_[alias] = to;
      }
    } catch (const std::exception& e) {
      throw InternalError("aliases file " + aliases.string() + " is damaged: " + e.what());
    }
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
  if (collections_.count(name) || recovering_.count(name) || damaged_.count(name)) {
    throw ConflictError("collection `" + show_text(name) + "` already exists");
  }
  if (aliases_.count(name)) {
    throw ConflictError("`" + show_text(name) + "` is already an alias of collection `" +
                        aliases_.at(name) + "`");
  }
  // Built under a temporary name and renamed into place once its config is durable.
  const fs::path tmp = collection_folder(".creating-" + name);
  fs::remove_all(tmp);
  { Collection scratch(name, tmp.string(), config); }
  const fs::path dir = collection_folder(name);
  fs::rename(tmp, dir);
  collections_[name] = std::make_shared<Collection>(name, dir.string(), std::nullopt);
}

bool Engine::delete_collection(const std::string& name) {
  std::shared_ptr<Collection> victim;
  {
    std::unique_lock<RwMutex> lock(mu_);
    if (recovering_.count(name)) throw being_recovered(name);
    auto it = collections_.find(name);
    if (it == collections_.end() && !damaged_.count(name)) return false;
    if (it != collections_.end()) {
      victim = std::move(it->second);
      collections_.erase(it);
    }
    damaged_.erase(name);
    std::map<std::string, std::string> kept = aliases_;
    for (auto a = kept.begin(); a != kept.end();) {
      a = a->second == name ? kept.erase(a) : std::next(a);
    }
    if (kept.size() != aliases_.size()) {
      save_aliases(kept);
      aliases_ = std::move(kept);
    }
  }
  const fs::path dir = collection_folder(name);
  victim.reset();  // closes the store once the last in-flight request lets go of it
  std::random_device rd;
  const fs::path gone = collection_folder(".deleted-" + std::to_string(rd()));
  std::error_code ec;
  fs::rename(dir, gone, ec);
  fs::remove_all(ec ? dir : gone, ec);
  return true;
}

std::shared_ptr<Collection> Engine::collection(const std::string& name) const {
  std::shared_lock<RwMutex> lock(mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    auto alias = aliases_.find(name);
    if (alias != aliases_.end()) it = collections_.find(alias->second);
  }
  if (it == collections_.end()) {
    if (recovering_.count(name)) throw being_recovered(name);
    auto alias = aliases_.find(name);
    if (damaged_.count(name)) throw damaged(name);
    if (alias != aliases_.end() && damaged_.count(alias->second)) throw damaged(alias->second);
    throw NotFoundError("Collection `" + show_text(name) + "` doesn't exist!");
  }
  return it->second;
}

InternalError Engine::damaged(const std::string& name) const {
  return InternalError("collection `" + show_text(name) + "` could not be opened at start (" +
                       damaged_.at(name) + "): delete it, or recover it from a snapshot");
}

std::string Engine::resolve(const std::string& name) const {
  std::shared_lock<RwMutex> lock(mu_);
  auto alias = aliases_.find(name);
  return alias != aliases_.end() && !collections_.count(name) ? alias->second : name;
}

std::string Engine::collection_folder(const std::string& name) const {
  return (collections_dir(data_dir_) / name).string();
}

void Engine::save_aliases(const std::map<std::string, std::string>& aliases) const {
  write_file_durably(aliases_file(data_dir_).string(), nlohmann::json(aliases).dump());
}

std::map<std::string, std::string> Engine::apply_alias_actions(
    std::map<std::string, std::string> next, const std::vector<AliasAction>& actions,
    const std::function<bool(const std::string&)>& is_collection) {
  auto free_name = [&](const std::string& alias) {
    validate_collection_name(alias);
    if (is_collection(alias)) {
      throw ConflictError("`" + show_text(alias) + "` is a collection's name");
    }
    if (next.count(alias)) {
      throw ConflictError("alias `" + show_text(alias) + "` already exists (of collection `" +
                          next.at(alias) + "`)");
    }
  };
  auto existing = [&](const std::string& alias) {
    auto it = next.find(alias);
    if (it == next.end()) throw NotFoundError("Alias `" + show_text(alias) + "` doesn't exist!");
    return it;
  };
  for (const AliasAction& a : actions) {
    switch (a.kind) {
      case AliasAction::Kind::kCreate:
        if (!is_collection(a.target)) {
          throw NotFoundError("Collection `" + show_text(a.target) + "` doesn't exist!");
        }
        free_name(a.alias);
        next[a.alias] = a.target;
        break;
      case AliasAction::Kind::kDelete:
        next.erase(existing(a.alias));
        break;
      case AliasAction::Kind::kRename: {
        auto it = existing(a.alias);
        const std::string target = it->second;
        next.erase(it);
        free_name(a.target);
        next[a.target] = target;
        break;
      }
    }
  }
  return next;
}

void Engine::update_aliases(const std::vector<AliasAction>& actions) {
  std::unique_lock<RwMutex> lock(mu_);
  std::map<std::string, std::string> next = apply_alias_actions(
      aliases_, actions, [&](const std::string& name) { return collections_.count(name) != 0; });
  save_aliases(next);
  aliases_ = std::move(next);
}

std::map<std::string, std::string> Engine::aliases(const std::string* collection) const {
  std::shared_lock<RwMutex> lock(mu_);
  if (!collection) return aliases_;
  if (!collections_.count(*collection) && !damaged_.count(*collection)) {
    throw NotFoundError("Collection `" + show_text(*collection) + "` doesn't exist!");
  }
  std::map<std::string, std::string> out;
  for (const auto& [alias, target] : aliases_) {
    if (target == *collection) out[alias] = target;
  }
  return out;
}

bool Engine::exists(const std::string& name) const {
  std::shared_lock<RwMutex> lock(mu_);
  return collections_.count(name) != 0 || damaged_.count(name) != 0;
}

std::vector<std::string> Engine::names() const {
  std::shared_lock<RwMutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& kv : collections_) out.push_back(kv.first);
  for (const auto& kv : damaged_) out.push_back(kv.first);
  std::sort(out.begin(), out.end());
  return out;
}

void Engine::save_indexes() const {
  std::shared_lock<RwMutex> lock(mu_);
  for (const auto& kv : collections_) kv.second->save_index();
}

}  // namespace wp::engine
