#pragma once
/**
 * @file snapshot_archive.h
 * The file a collection snapshot is: a POSIX tar archive (ustar; `tar tf` lists it, `tar xf`
 * unpacks it) of the collection's folder as a snapshot sees it, with a manifest as its last
 * member:
 *
 *   store/...        a RocksDB checkpoint of the point store (config and payload schemas in it)
 *   index.wpi        the vector index, saved at the checkpoint's sequence number, and
 *   index.meta       its sequence (derived data: a mismatch only means a rebuild on open)
 *   index.N.wpi/.meta the same for named vector number N (collection.cpp), instead of the two
 *   snapshot.json    {"format": "waypoint-snapshot", "version": 1, "collection", "created",
 *                     "files": [{"name", "size", "xxh64"}]}
 *
 * A storage snapshot (Qdrant's full snapshot, Engine::create_full_snapshot) is the same format
 * over every collection: collection N's members under a folder `cN/` (`c0/store/...`,
 * `c0/index.wpi`), and its manifest (format `waypoint-storage-snapshot`) also holds
 * `"collections": [{"name", "folder"}]` and `"aliases": {alias: collection}`.
 *
 * The reader trusts nothing: every header's checksum, octal fields, type and name (only the
 * names above; no path leaves the folder), sizes against what follows, zeros in the padding,
 * each member's xxh64 and size against the manifest, the manifest listing exactly the members
 * before it, and the two zero blocks that end the archive (so a truncated file is refused). Any
 * fault is a UserError that says what is damaged.
 */
#include <cstdint>
#include <istream>
#include <map>
#include <set>
#include <streambuf>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace wp::engine::snapshot {

/// A streambuf reading bytes in memory in place.
struct ViewBuf : std::streambuf {
  explicit ViewBuf(std::string_view b) {
    char* p = const_cast<char*>(b.data());  // only read: streambuf's interface is not const
    setg(p, p, p + b.size());
  }
};

/// An istream over bytes in memory, without copying them (the buffer is a base, built first).
class ViewStream : private ViewBuf, public std::istream {
 public:
  explicit ViewStream(std::string_view bytes)
      : ViewBuf(bytes), std::istream(static_cast<ViewBuf*>(this)) {}
};

/// Member name of the manifest.
inline constexpr char kManifest[] = "snapshot.json";

/// What an archive holds: one collection, or every collection of a storage (members under `cN/`).
enum class Kind { kCollection, kStorage };

/// Where the reader puts the members it unpacks (a folder, or memory in the fuzz target).
class Sink {
 public:
  virtual ~Sink() = default;
  /// A member begins: `name` is one the format allows, `size` its length in bytes.
  virtual void begin(const std::string& name, uint64_t size) = 0;
  virtual void write(const char* data, size_t n) = 0;
  virtual void end() = 0;
};

/// Unpacks into a folder (created when missing, as are the folders member names hold).
class FolderSink : public Sink {
 public:
  explicit FolderSink(std::string dir);
  ~FolderSink() override;
  void begin(const std::string& name, uint64_t size) override;
  void write(const char* data, size_t n) override;
  void end() override;

 private:
  std::string dir_;
  std::FILE* out_ = nullptr;
  std::string path_;
};

/**
 * Writes the archive to `path` (replaced atomically: written beside it, fsynced, renamed):
 * `members` as (name in the archive, file to read), then the manifest made of `info` and the
 * members' sizes and hashes. Returns the SHA-256 of the whole file in hex (Qdrant's checksum).
 */
std::string write_archive(const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& members,
                          nlohmann::json info, Kind kind = Kind::kCollection);

/// Reads an archive of `kind` from `in`, giving each member to `sink`; returns the manifest.
/// UserError when anything in it is damaged or not what the format allows.
nlohmann::json read_archive(std::istream& in, Sink& sink, Kind kind = Kind::kCollection);

/// What a storage snapshot's manifest lists.
struct StorageListing {
  std::vector<std::pair<std::string, std::string>> collections;  ///< name, folder ("cN")
  std::map<std::string, std::string> aliases;                    ///< alias -> collection
};

/// The listing of a storage snapshot's `manifest`, checked: distinct valid collection names,
/// each with a folder "cN" of its own among `folders` (those its members lie in), every one of
/// `folders` listed, aliases of valid names naming its collections. UserError saying what is
/// damaged.
StorageListing storage_listing(const nlohmann::json& manifest,
                               const std::set<std::string>& folders);

/// SHA-256 of a file's bytes, in lowercase hex.
std::string sha256_file(const std::string& path);
/// SHA-256 of bytes in memory, in lowercase hex.
std::string sha256_bytes(std::string_view bytes);

/// Whether `name` is a member name the format of `kind` allows (exposed for tests).
bool allowed_member(const std::string& name, Kind kind = Kind::kCollection);

}  // namespace wp::engine::snapshot
