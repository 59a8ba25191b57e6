#include "index/index_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>

namespace wp::index {

namespace {
constexpr char kMagic[8] = {'W', 'A', 'Y', 'P', 'O', 'I', 'N', 'T'};

struct FileHeader {
  char magic[8];
  uint32_t version;
  uint32_t type;
  uint64_t payload_bytes;
  uint64_t checksum;
};
static_assert(sizeof(FileHeader) == 32, "header layout is part of the format");

std::string errno_text() {
  return std::strerror(errno);
}

bool known_type(uint32_t t) {
  return t >= 1 && t <= static_cast<uint32_t>(IndexType::kHashModel);
}
}  // namespace

struct BinaryWriter::State {
  std::string path;
  std::string tmp_path;
  IndexType type;
  FILE* f = nullptr;
  XXH3_state_t* hash = nullptr;
  uint64_t bytes = 0;
  bool done = false;
};

BinaryWriter::BinaryWriter(const std::string& path, IndexType type) : st_(new State) {
  st_->path = path;
  st_->tmp_path = path + ".tmp";
  st_->type = type;
  st_->f = std::fopen(st_->tmp_path.c_str(), "wb");
  if (!st_->f) throw UserError("cannot write '" + st_->tmp_path + "': " + errno_text());
  st_->hash = XXH3_createState();
  WP_THROW_INTERNAL_IF_NOT(st_->hash, "XXH3_createState failed");
  XXH3_64bits_reset(st_->hash);
  FileHeader h{};  // placeholder, patched by finish()
  if (std::fwrite(&h, sizeof h, 1, st_->f) != 1) {
    throw InternalError("write failed on '" + st_->tmp_path + "': " + errno_text());
  }
}

BinaryWriter::~BinaryWriter() {
  if (st_->f) std::fclose(st_->f);
  if (st_->hash) XXH3_freeState(st_->hash);
  if (!st_->done) std::remove(st_->tmp_path.c_str());
}

void BinaryWriter::write_bytes(const void* p, size_t n) {
  if (n == 0) return;
  if (std::fwrite(p, 1, n, st_->f) != n) {
    throw InternalError("write failed on '" + st_->tmp_path + "': " + errno_text());
  }
  XXH3_64bits_update(st_->hash, p, n);
  st_->bytes += n;
}

void BinaryWriter::finish() {
  FileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kIndexFormatVersion;
  h.type = static_cast<uint32_t>(st_->type);
  h.payload_bytes = st_->bytes;
  h.checksum = XXH3_64bits_digest(st_->hash);
  bool ok = std::fseek(st_->f, 0, SEEK_SET) == 0 && std::fwrite(&h, sizeof h, 1, st_->f) == 1 &&
            std::fflush(st_->f) == 0 && ::fsync(fileno(st_->f)) == 0;
  ok = (std::fclose(st_->f) == 0) && ok;
  st_->f = nullptr;
  if (!ok) throw InternalError("cannot finish '" + st_->tmp_path + "': " + errno_text());
  if (std::rename(st_->tmp_path.c_str(), st_->path.c_str()) != 0) {
    throw InternalError("cannot rename '" + st_->tmp_path + "' to '" + st_->path +
                        "': " + errno_text());
  }
  st_->done = true;
}

BinaryReader::BinaryReader(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UserError("cannot open index file '" + path + "': " + errno_text());
  struct stat st {};
  const bool stated = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  const size_t file_bytes = stated ? static_cast<size_t>(st.st_size) : 0;
  if (stated && file_bytes >= sizeof(FileHeader)) {
    // Populated up front: the pages are read once, in order, by the checksum and then the copy.
    void* base = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (base != MAP_FAILED) {
      map_.base = base;
      map_.bytes = file_bytes;
    }
  }
  const int map_errno = errno;
  ::close(fd);
  check(stated, "not a regular file");
  check(file_bytes >= sizeof(FileHeader), "file shorter than its header");
  if (!map_.base) {
    throw UserError("cannot map index file '" + path + "': " + std::strerror(map_errno));
  }
  FileHeader h{};
  std::memcpy(&h, map_.base, sizeof h);
  check(std::memcmp(h.magic, kMagic, sizeof kMagic) == 0, "bad magic (not a waypoint index)");
  if (h.version != kIndexFormatVersion) {
    throw UserError("'" + path + "': index format version " + std::to_string(h.version) +
                    " is not supported (expected " + std::to_string(kIndexFormatVersion) + ")");
  }
  check(known_type(h.type), "unknown index type tag");
  type_ = static_cast<IndexType>(h.type);
  check(file_bytes - sizeof h == h.payload_bytes,
        "file length does not match the header (truncated or extended)");
  data_ = static_cast<const char*>(map_.base) + sizeof h;
  size_ = h.payload_bytes;
  check(XXH3_64bits(data_, size_) == h.checksum, "checksum mismatch");
}

BinaryReader::Mapping::~Mapping() {
  if (base) ::munmap(base, bytes);
}

void BinaryReader::read_bytes(void* dst, size_t n) {
  check(n <= remaining(), "payload ends early");
  if (n) std::memcpy(dst, data_ + pos_, n);
  pos_ += n;
}

std::string BinaryReader::read_string(uint64_t max_len) {
  const uint64_t n = read<uint64_t>();
  check(n <= max_len && n <= remaining(), "string length out of range");
  std::string s(data_ + pos_, n);
  pos_ += n;
  return s;
}

void BinaryReader::check(bool cond, const char* what) const {
  if (!cond) throw UserError("'" + path_ + "': corrupt index file: " + what);
}

}  // namespace wp::index
