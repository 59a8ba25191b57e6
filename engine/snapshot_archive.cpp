#include "engine/snapshot_archive.h"

#include <openssl/evp.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "engine/collection_config.h"
#include "engine/durable_file.h"
#include "engine/json_value.h"
#include "index/error.h"

namespace wp::engine::snapshot {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kBlock = 512;
/// ustar's 11 octal digits hold sizes below 8 GiB.
constexpr uint64_t kMaxMemberBytes = (uint64_t{1} << 33) - 1;
/// Manifests are small (one line per file); a larger one is damage, not data.
constexpr uint64_t kMaxManifestBytes = 16 << 20;
constexpr size_t kMaxMembers = 100000;
constexpr int kVersion = 1;

std::string hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

/// SHA-256 over bytes given in pieces (OpenSSL's EVP interface).
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    WP_THROW_INTERNAL_IF_NOT(ctx_ && EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1,
                             "cannot start SHA-256");
  }
  void add(const void* p, size_t n) { EVP_DigestUpdate(ctx_.get(), p, n); }
  std::string hex_digest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &n);
    return hex(md, n);
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

/// xxh64 over bytes given in pieces.
class Xxh64 {
 public:
  Xxh64() : st_(XXH64_createState(), XXH64_freeState) { XXH64_reset(st_.get(), 0); }
  void add(const void* p, size_t n) { XXH64_update(st_.get(), p, n); }
  std::string hex_digest() const { return hex64(XXH64_digest(st_.get())); }

 private:
  std::unique_ptr<XXH64_state_t, XXH_errorcode (*)(XXH64_state_t*)> st_;
};

void put_octal(char* field, size_t width, uint64_t v) {
  // width - 1 digits, then NUL.
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(v));
}

unsigned header_sum(const std::array<char, kBlock>& h) {
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  }
  return sum;
}

std::array<char, kBlock> make_header(const std::string& name, uint64_t size, uint64_t mtime) {
  WP_THROW_INTERNAL_IF_NOT(name.size() < 100, "snapshot member name too long: ", name);
  WP_THROW_INTERNAL_IF_NOT(size <= kMaxMemberBytes, "snapshot member ", name, " is ", size,
                           " bytes, more than a tar member holds");
  std::array<char, kBlock> h{};
  std::memcpy(h.data(), name.data(), name.size());
  put_octal(h.data() + 100, 8, 0644);
  put_octal(h.data() + 108, 8, 0);
  put_octal(h.data() + 116, 8, 0);
  put_octal(h.data() + 124, 12, size);
  put_octal(h.data() + 136, 12, mtime);
  h[156] = '0';
  std::memcpy(h.data() + 257, "ustar", 6);
  std::memcpy(h.data() + 263, "00", 2);
  char sum[8];
  std::snprintf(sum, sizeof sum, "%06o", header_sum(h));
  std::memcpy(h.data() + 148, sum, 7);
  h[155] = ' ';
  return h;
}

/// The archive file being written: bytes go to the file and the whole-file hash.
class Writer {
 public:
  explicit Writer(const std::string& path)
      : path_(path), f_(std::fopen(path.c_str(), "wb")), mtime_(std::time(nullptr)) {
    if (!f_) throw InternalError("cannot write snapshot " + path);
  }
  ~Writer() {
    if (f_) std::fclose(f_);
  }
  void put(const void* p, size_t n) {
    if (n == 0) return;
    if (std::fwrite(p, 1, n, f_) != n) throw InternalError("cannot write snapshot " + path_);
    sha_.add(p, n);
    written_ += n;
  }
  uint64_t mtime() const { return mtime_; }
  void pad() {
    static const char zeros[kBlock] = {};
    put(zeros, (kBlock - written_ % kBlock) % kBlock);
  }
  /// Header, data and padding of one member from memory.
  void member(const std::string& name, const std::string& data) {
    const auto h = make_header(name, data.size(), mtime_);
    put(h.data(), h.size());
    put(data.data(), data.size());
    pad();
  }
  /// fsyncs and closes; returns the file's SHA-256.
  std::string finish() {
    static const char zeros[2 * kBlock] = {};
    put(zeros, sizeof zeros);
    const bool ok = std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0;
    std::fclose(f_);
    f_ = nullptr;
    if (!ok) throw InternalError("cannot write snapshot " + path_);
    return sha_.hex_digest();
  }

 private:
  std::string path_;
  std::FILE* f_;
  Sha256 sha_;
  uint64_t written_ = 0;
  uint64_t mtime_;  ///< of every member: when the snapshot was written
};

[[noreturn]] void damaged(const std::string& what) {
  throw UserError("snapshot is damaged or not a waypoint snapshot: " + what);
}

/// An octal field: digits, then NUL or space padding only.
uint64_t read_octal(const char* field, size_t width, const char* what) {
  uint64_t v = 0;
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  size_t digits = 0;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
    if (v > (UINT64_MAX >> 3)) damaged(std::string(what) + " field overflows");
    v = v * 8 + static_cast<uint64_t>(field[i] - '0');
  }
  for (; i < width; ++i) {
    if (field[i] != '\0' && field[i] != ' ') damaged(std::string(what) + " field is not octal");
  }
  if (digits == 0) damaged(std::string(what) + " field is empty");
  return v;
}

bool read_block(std::istream& in, std::array<char, kBlock>& b) {
  in.read(b.data(), kBlock);
  return static_cast<size_t>(in.gcount()) == kBlock;
}

bool all_zero(const std::array<char, kBlock>& b) {
  for (char c : b) {
    if (c != 0) return false;
  }
  return true;
}

/// The manifest's `format` for an archive of `kind`.
const char* format_of(Kind kind) {
  return kind == Kind::kStorage ? "waypoint-storage-snapshot" : "waypoint-snapshot";
}

}  // namespace

bool allowed_member(const std::string& name, Kind kind) {
  if (kind == Kind::kStorage) {
    // "cN/" and a collection's member (not its manifest: the storage's serves), within the
    // 99 bytes a ustar name holds.
    if (name == kManifest) return true;
    const size_t slash = name.find('/');
    if (name.size() > 99 || slash == std::string::npos || slash < 2 || slash > 7 ||
        name[0] != 'c') {
      return false;
    }
    const std::string number = name.substr(1, slash - 1);
    const std::string rest = name.substr(slash + 1);
    return number.find_first_not_of("0123456789") == std::string::npos &&
           (number.size() == 1 || number[0] != '0') && rest != kManifest &&
           allowed_member(rest, Kind::kCollection);
  }
  if (name == kManifest || name == "index.wpi" || name == "index.meta") return true;
  // A named vector's index files (collection.cpp): "index.<space number>.wpi" and ".meta".
  if (name.size() > 6 && name.compare(0, 6, "index.") == 0) {
    const size_t dot = name.find('.', 6);
    const std::string number = name.substr(6, dot == std::string::npos ? 0 : dot - 6);
    const std::string ext = dot == std::string::npos ? "" : name.substr(dot);
    return !number.empty() && number.size() <= 3 &&
           number.find_first_not_of("0123456789") == std::string::npos &&
           (ext == ".wpi" || ext == ".meta");
  }
  const std::string prefix = "store/";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
  const std::string file = name.substr(prefix.size());
  if (file == "." || file == ".." || file.size() > 90) return false;
  for (char c : file) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

FolderSink::FolderSink(std::string dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
}

FolderSink::~FolderSink() {
  if (out_) std::fclose(out_);
}

void FolderSink::begin(const std::string& name, uint64_t) {
  const fs::path path = fs::path(dir_) / name;  // a name the reader allowed: no way out of dir_
  fs::create_directories(path.parent_path());
  path_ = path.string();
  out_ = std::fopen(path_.c_str(), "wb");
  if (!out_) throw InternalError("cannot write " + path_);
}

void FolderSink::write(const char* data, size_t n) {
  if (std::fwrite(data, 1, n, out_) != n) throw InternalError("cannot write " + path_);
}

void FolderSink::end() {
  const bool ok = std::fflush(out_) == 0 && ::fsync(fileno(out_)) == 0;
  std::fclose(out_);
  out_ = nullptr;
  if (!ok) throw InternalError("cannot write " + path_);
}

std::string write_archive(const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& members,
                          json info, Kind kind) {
  const std::string tmp = path + ".tmp";
  std::string sha;
  {
    Writer w(tmp);
    json files = json::array();
    std::vector<char> buf(1 << 20);
    for (const auto& [name, source] : members) {
      WP_THROW_INTERNAL_IF_NOT(allowed_member(name, kind) && name != kManifest,
                               "not a snapshot member name: ", name);
      std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(source.c_str(), "rb"),
                                                         std::fclose);
      if (!in) throw InternalError("cannot read " + source);
      const uint64_t size = fs::file_size(source);
      const auto h = make_header(name, size, w.mtime());
      w.put(h.data(), h.size());
      Xxh64 xxh;
      uint64_t left = size;
      while (left > 0) {
        const size_t n = std::fread(buf.data(), 1, std::min<uint64_t>(left, buf.size()), in.get());
        if (n == 0) throw InternalError("cannot read " + source + " (shorter than its size)");
        w.put(buf.data(), n);
        xxh.add(buf.data(), n);
        left -= n;
      }
      w.pad();
      files.push_back({{"name", name}, {"size", size}, {"xxh64", xxh.hex_digest()}});
    }
    info["format"] = format_of(kind);
    info["version"] = kVersion;
    info["files"] = std::move(files);
    w.member(kManifest, info.dump(1));
    sha = w.finish();
  }
  fs::rename(tmp, path);
  sync_folder(fs::path(path).parent_path().string());
  return sha;
}

json read_archive(std::istream& in, Sink& sink, Kind kind) {
  struct Read {
    uint64_t size;
    std::string xxh64;
  };
  std::map<std::string, Read> seen;
  std::vector<std::string> order;
  std::array<char, kBlock> h;
  std::vector<char> buf(1 << 16);
  for (;;) {
    if (!read_block(in, h)) damaged("it ends inside a header (truncated?)");
    if (all_zero(h)) damaged("it ends before its manifest `" + std::string(kManifest) + "`");
    if (read_octal(h.data() + 148, 8, "header checksum") != header_sum(h)) {
      damaged("a header's checksum does not match (after member " +
              (order.empty() ? std::string("none") : "`" + order.back() + "`") + ")");
    }
    if (std::memcmp(h.data() + 257, "ustar", 5) != 0) damaged("a header is not ustar");
    if (h[156] != '0' && h[156] != '\0') damaged("a member is not a regular file");
    if (h[345] != '\0') damaged("a member name uses the ustar prefix field");
    const size_t len = strnlen(h.data(), 100);
    if (len == 100) damaged("a member name is not terminated");
    const std::string name(h.data(), len);
    if (!allowed_member(name, kind)) {
      damaged("member `" + name + "` is not part of a " +
              (kind == Kind::kStorage ? "storage snapshot" : "collection snapshot"));
    }
    if (seen.count(name)) damaged("member `" + name + "` appears twice");
    const uint64_t size = read_octal(h.data() + 124, 12, "size");
    if (size > kMaxMemberBytes) damaged("member `" + name + "` is too large");
    if (order.size() >= kMaxMembers)
      damaged("more than " + std::to_string(kMaxMembers) + " members");
    const bool manifest = name == kManifest;
    if (manifest && size > kMaxManifestBytes) damaged("the manifest is too large");
    std::string manifest_text;
    Xxh64 xxh;
    if (!manifest) sink.begin(name, size);
    uint64_t left = size;
    while (left > 0) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      in.read(buf.data(), want);
      if (static_cast<size_t>(in.gcount()) != want) {
        damaged("member `" + name + "` is cut short (truncated?)");
      }
      if (manifest) {
        manifest_text.append(buf.data(), want);
      } else {
        sink.write(buf.data(), want);
        xxh.add(buf.data(), want);
      }
      left -= want;
    }
    const size_t padding = (kBlock - size % kBlock) % kBlock;
    in.read(buf.data(), padding);
    if (static_cast<size_t>(in.gcount()) != padding) damaged("the archive is truncated");
    // Padding is zeros as written: with the headers' checksums and the members' hashes, no byte
    // of a snapshot goes unchecked.
    if (std::any_of(buf.begin(), buf.begin() + padding, [](char c) { return c != 0; })) {
      damaged("the padding after member `" + name + "` is not zeros");
    }
    if (!manifest) {
      sink.end();
      seen[name] = {size, xxh.hex_digest()};
      order.push_back(name);
      continue;
    }
    // The manifest: last member, then the end-of-archive blocks.
    for (int i = 0; i < 2; ++i) {
      if (!read_block(in, h) || !all_zero(h)) {
        damaged("no end-of-archive blocks after the manifest (truncated, or members after it)");
      }
    }
    json m;
    try {
      m = json::parse(manifest_text);
    } catch (const json::exception&) {
      damaged("the manifest is not JSON");
    }
    const json format = m.is_object() ? m.value("format", json()) : json();
    if (format != format_of(kind)) {
      std::string what = "the manifest does not say format `" + std::string(format_of(kind)) + "`";
      if (format == format_of(Kind::kCollection)) what += " (it is one collection's snapshot)";
      if (format == format_of(Kind::kStorage)) what += " (it is a storage snapshot)";
      damaged(what);
    }
    if (m.value("version", json()) != kVersion) {
      throw UserError("snapshot format version " + m.value("version", json()).dump() +
                      " is not one this server reads (it reads " + std::to_string(kVersion) + ")");
    }
    const json files = m.value("files", json());
    if (!files.is_array() || files.size() != order.size()) {
      damaged("the manifest lists " + (files.is_array() ? std::to_string(files.size()) : "no") +
              " files, the archive holds " + std::to_string(order.size()));
    }
    for (size_t i = 0; i < files.size(); ++i) {
      const json& f = files[i];
      if (!f.is_object() || f.value("name", json()) != order[i]) {
        damaged("the manifest's file " + std::to_string(i) + " is not member `" + order[i] + "`");
      }
      const Read& r = seen.at(order[i]);
      if (f.value("size", json()) != r.size || f.value("xxh64", json()) != r.xxh64) {
        damaged("member `" + order[i] + "` does not match the manifest's size and hash");
      }
    }
    return m;
  }
}

StorageListing storage_listing(const json& manifest, const std::set<std::string>& folders) {
  auto damaged = [](const std::string& what) {
    return UserError("storage snapshot is damaged: " + what);
  };
  auto check_name = [&](const std::string& name) {
    try {
      validate_collection_name(name);
    } catch (const UserError& e) {
      throw damaged(e.what());
    }
  };
  StorageListing out;
  const json listed = manifest.is_object() ? manifest.value("collections", json()) : json();
  if (!listed.is_array()) throw damaged("its manifest lists no collections");
  std::set<std::string> names, listed_folders;
  for (const json& c : listed) {
    const json name = c.is_object() ? c.value("name", json()) : json();
    const json sub = c.is_object() ? c.value("folder", json()) : json();
    if (!name.is_string() || !sub.is_string() ||
        !allowed_member(sub.get<std::string>() + "/index.wpi", Kind::kStorage)) {
      throw damaged("a collection of its manifest is not {\"name\", \"folder\": \"cN\"}: " +
                    show_json(c));
    }
    check_name(name.get<std::string>());
    if (!names.insert(name.get<std::string>()).second ||
        !listed_folders.insert(sub.get<std::string>()).second) {
      throw damaged("collection " + show_json(name) + " or folder " + show_json(sub) +
                    " is listed twice");
    }
    if (!folders.count(sub.get<std::string>())) {
      throw damaged("folder " + show_json(sub) + " of collection " + show_json(name) +
                    " holds nothing");
    }
    out.collections.emplace_back(name.get<std::string>(), sub.get<std::string>());
  }
  for (const std::string& f : folders) {
    if (!listed_folders.count(f)) throw damaged("folder `" + show_text(f) + "` is not listed");
  }
  const json aliases = manifest.value("aliases", json::object());
  if (!aliases.is_object()) throw damaged("its aliases are not an object");
  for (const auto& [alias, target] : aliases.items()) {
    if (!target.is_string() || !names.count(target.get<std::string>())) {
      throw damaged("alias `" + show_text(alias) + "` names no collection of it");
    }
    check_name(alias);
    if (names.count(alias)) throw damaged("alias `" + show_text(alias) + "` is a collection");
    out.aliases[alias] = target.get<std::string>();
  }
  return out;
}

std::string sha256_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!in) throw InternalError("cannot read " + path);
  Sha256 sha;
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), in.get())) > 0) sha.add(buf.data(), n);
  return sha.hex_digest();
}

std::string sha256_bytes(std::string_view bytes) {
  Sha256 sha;
  sha.add(bytes.data(), bytes.size());
  return sha.hex_digest();
}

}  // namespace wp::engine::snapshot
