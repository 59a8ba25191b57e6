#pragma once
/**
 * @file engine.h
 * Engine: the collections of one data folder (`<data>/collections/<name>/`). Creating a
 * collection writes its config durably before it is visible; deleting renames its folder out of
 * the way first, so a crash never leaves half a collection behind under its name.
 */
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "engine/collection.h"

namespace wp::engine {

class Engine {
 public:
  /// Opens every collection under `data_dir` (created when missing).
  explicit Engine(const std::string& data_dir);
  /// Saves every index file.
  ~Engine();

  /// Throws ConflictError when the name exists, UserError when it is invalid.
  void create_collection(const std::string& name, const CollectionConfig& config);
  /// Returns false when there was no such collection.
  bool delete_collection(const std::string& name);
  /// Throws NotFoundError naming the collection.
  std::shared_ptr<Collection> collection(const std::string& name) const;
  bool exists(const std::string& name) const;
  std::vector<std::string> names() const;

  /// One change of Qdrant's `POST /collections/aliases`.
  struct AliasAction {
    enum class Kind { kCreate, kDelete, kRename } kind;
    std::string alias;   ///< create, delete: the alias; rename: the old name
    std::string target;  ///< create: the collection; rename: the new name
  };
  /**
   * Applies `actions` in order, all or none: each is checked against the state the ones before
   * it leave (create: the collection exists, NotFoundError; the alias is a valid name used by no
   * alias or collection, ConflictError; delete and rename: the alias exists, NotFoundError); the
   * new aliases are written durably (`<data>/aliases.json`) before they are seen. Every route
   * naming a collection (collection()) accepts an alias of it; deleting a collection deletes its
   * aliases.
   */
  void update_aliases(const std::vector<AliasAction>& actions);
  /// Alias -> collection, every one, or those of `collection` only.
  std::map<std::string, std::string> aliases(const std::string* collection = nullptr) const;
  /// Saves the index files of every collection (derived data; the store is always durable).
  void save_indexes() const;

  const std::string& data_dir() const { return data_dir_; }

 private:
  std::string data_dir_;
  mutable RwMutex mu_;
  /// Writes aliases_ durably (the caller holds mu_ exclusively).
  void save_aliases(const std::map<std::string, std::string>& aliases) const;

  std::map<std::string, std::shared_ptr<Collection>> collections_;
  std::map<std::string, std::string> aliases_;  ///< alias -> collection name
};

}  // namespace wp::engine
