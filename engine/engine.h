#pragma once
/**
 * @file engine.h
 * Engine: the collections of one data folder (`<data>/collections/<name>/`). Creating a
 * collection writes its config durably before it is visible; deleting renames its folder out of
 * the way first, so a crash never leaves half a collection behind under its name.
 */
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/collection.h"

namespace wp::engine {

class Engine {
 public:
  /// Opens every collection under `data_dir` (created when missing). Snapshots live in
  /// `snapshots_dir` (default `<data_dir>/snapshots`), one folder per collection.
  explicit Engine(const std::string& data_dir, const std::string& snapshots_dir = "");
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
  /// The alias table `aliases` after `actions`, checked as update_aliases() checks them
  /// (`is_collection` says which names are collections); a cluster keeps its table in etcd.
  static std::map<std::string, std::string> apply_alias_actions(
      std::map<std::string, std::string> aliases, const std::vector<AliasAction>& actions,
      const std::function<bool(const std::string&)>& is_collection);
  /// Alias -> collection, every one, or those of `collection` only.
  std::map<std::string, std::string> aliases(const std::string* collection = nullptr) const;
  /// Saves the index files of every collection (derived data; the store is always durable).
  void save_indexes() const;

  const std::string& data_dir() const { return data_dir_; }

  // Snapshots (engine/snapshots.cpp; the file format is snapshot_archive.h).

  /// A collection snapshot (Qdrant's SnapshotDescription).
  struct SnapshotInfo {
    std::string name;           ///< `<collection>-<id>-<YYYY-MM-DD-HH-MM-SS>.snapshot`
    std::string creation_time;  ///< UTC, `YYYY-MM-DDTHH:MM:SS`
    uint64_t size = 0;
    std::string checksum;  ///< SHA-256 of the file in hex (empty when its sidecar is missing)
  };
  /// Writes a snapshot of the collection (or alias): a consistent copy of its store, index and
  /// config (Collection::checkpoint_to), packed into one file with a checksum. Writes to the
  /// collection wait while the store is checkpointed and the index saved.
  SnapshotInfo create_snapshot(const std::string& collection);
  /// The collection's snapshots, oldest first. NotFoundError for an unknown collection.
  std::vector<SnapshotInfo> list_snapshots(const std::string& collection) const;
  /// The file of one snapshot (to send it). NotFoundError for an unknown collection or snapshot.
  std::string snapshot_file(const std::string& collection, const std::string& snapshot) const;
  /// Deletes a snapshot file. NotFoundError as snapshot_file().
  void delete_snapshot(const std::string& collection, const std::string& snapshot);
  /**
   * Replaces the collection (or creates it, under a valid name; an alias means its collection)
   * with the one in a snapshot, given as a `file://` URL of a file under the snapshots folder
   * (UserError naming `location` otherwise). When `checksum` is not empty the file's SHA-256
   * must equal it. The snapshot is unpacked and opened beside the collection first: a damaged,
   * truncated or foreign file is a UserError and leaves the collection as it was. Then requests
   * to the collection get UnavailableError while the old one finishes its requests and closes,
   * and the two folders are exchanged in one rename (a crash leaves the old collection or the
   * new, never neither).
   */
  void recover_snapshot_location(const std::string& collection, const std::string& location,
                                 const std::string& checksum);
  /// The same from the bytes of an uploaded snapshot file.
  void recover_snapshot_bytes(const std::string& collection, std::string_view bytes,
                              const std::string& checksum);
  const std::string& snapshots_dir() const { return snapshots_dir_; }

  /**
   * A storage snapshot (Qdrant's full snapshot, `POST /snapshots`): one file in the snapshots
   * folder, `full-snapshot-<id>-<YYYY-MM-DD-HH-MM-SS>.snapshot`, holding a consistent copy of
   * each collection (checkpointed one after the other, as create_snapshot() does) and the alias
   * table (snapshot_archive.h). Damaged collections are left out.
   */
  SnapshotInfo create_full_snapshot();
  /// The storage snapshots, oldest first.
  std::vector<SnapshotInfo> list_full_snapshots() const;
  /// The file of one storage snapshot. NotFoundError when there is none of that name.
  std::string full_snapshot_file(const std::string& snapshot) const;
  void delete_full_snapshot(const std::string& snapshot);
  /**
   * Recovers every collection and alias of the storage snapshot at `path` (`waypoint serve
   * --storage-snapshot`, before the server listens), each collection as recover_snapshot_*()
   * does. Without `force`, a collection or alias of the snapshot that exists already is a
   * UserError, found before anything changes (Qdrant's --force-snapshot replaces them). A
   * damaged, truncated or foreign file is a UserError, found before anything changes. Returns
   * the names of the collections recovered.
   */
  std::vector<std::string> recover_full_snapshot(const std::string& path, bool force);
  /// The same for collection snapshot files, each given as (collection name, path) (Qdrant's
  /// `--snapshot PATH:NAME`): every one unpacked and opened before any replaces a collection.
  std::vector<std::string> recover_snapshot_files(
      const std::vector<std::pair<std::string, std::string>>& files, bool force);

 private:
  /// recover_snapshot_*() after the checksum: unpacks `in`, checks, swaps in.
  void recover_snapshot(const std::string& collection, std::istream& in);
  /// Marks `name` as being recovered (ConflictError if it is already); the mark goes when the
  /// returned guard does.
  std::shared_ptr<void> begin_recovery(const std::string& name);
  /// Opens the collection unpacked in folder `unpacked` once, as collection `name`: UserError
  /// when it does not open. Its index is saved there when it had to be built.
  static void check_recovered(const std::string& name, const std::string& unpacked);
  /// Puts the collection unpacked in folder `unpacked` (checked) in the place of collection
  /// `name` (created when missing); `unpacked` then holds the old collection, or nothing. The
  /// caller holds begin_recovery(name).
  void install_recovered(const std::string& name, const std::string& unpacked);
  /// The end of both recoveries at start: the collections unpacked in their folders (name,
  /// folder) and `aliases` put in place, refused (`flag` named) before anything changes where
  /// one exists and `force` is not given, every collection opened before any is swapped in.
  std::vector<std::string> install_unpacked(
      const std::vector<std::pair<std::string, std::string>>& unpacked,
      const std::map<std::string, std::string>& aliases, bool force, const std::string& flag);
  /// The members of a collection checkpointed into `dir` (Collection::checkpoint_to), added to
  /// `members` as (`prefix` + name in a snapshot, file).
  static void add_checkpoint_members(const std::string& dir, const std::string& prefix,
                                     std::vector<std::pair<std::string, std::string>>& members);
  /// The collection's name behind `name` (an alias's target, else `name`).
  std::string resolve(const std::string& name) const;
  /// `<snapshots>/<collection>`, where the collection's snapshot files are.
  std::string snapshot_folder(const std::string& collection) const;
  /// `<data>/collections/<name>` (`name` may be one of the server's own `.`-folders).
  std::string collection_folder(const std::string& name) const;

  std::string data_dir_;
  mutable RwMutex mu_;
  /// Writes aliases_ durably (the caller holds mu_ exclusively).
  void save_aliases(const std::map<std::string, std::string>& aliases) const;

  std::map<std::string, std::shared_ptr<Collection>> collections_;
  /// Collections whose folder did not open at start, with why: listed, their requests answered
  /// with that reason (a 500), deletable and recoverable from a snapshot; the others serve.
  std::map<std::string, std::string> damaged_;
  /// The 500 of a damaged collection's requests.
  InternalError damaged(const std::string& name) const;
  std::map<std::string, std::string> aliases_;  ///< alias -> collection name
  std::string snapshots_dir_;
  /// Collections being recovered from a snapshot: requests to them get UnavailableError, and
  /// create, delete and another recovery wait their turn (guarded by mu_).
  std::set<std::string> recovering_;
};

}  // namespace wp::engine
