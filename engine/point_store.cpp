#include "engine/point_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <cstring>

#include "engine/json_value.h"
#include "index/error.h"

namespace wp::engine {

namespace {
constexpr char kPointPrefix[] = "p:";
constexpr char kMetaPrefix[] = "m:";

void check(const rocksdb::Status& s, const std::string& what) {
  if (!s.ok()) throw InternalError(what + ": " + s.ToString());
}
}  // namespace

PointStore::PointStore(const std::string& dir) : dir_(dir) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.IncreaseParallelism(2);
  // Memtables of 4 MiB (RocksDB's default is 64 MiB): writes are held in memory only until then,
  // so a server taking a steady trickle of writes keeps a flat RSS (the soak test saw it climb by
  // the whole default over minutes), and each collection costs little memory.
  options.write_buffer_size = size_t{4} << 20;
  rocksdb::DB* db = nullptr;
  check(rocksdb::DB::Open(options, dir, &db), "cannot open point store '" + dir + "'");
  db_.reset(db);
}

PointStore::~PointStore() {
  if (db_) {
    db_->FlushWAL(true);
    db_->Close();
  }
}

std::optional<std::string> PointStore::get_meta(const std::string& name) const {
  std::string v;
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kMetaPrefix + name, &v);
  if (s.IsNotFound()) return std::nullopt;
  check(s, "cannot read metadata '" + name + "'");
  return v;
}

void PointStore::put_meta(const std::string& name, const std::string& value) {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  check(db_->Put(wo, kMetaPrefix + name, value), "cannot write metadata '" + name + "'");
}

namespace {
/// The vector count that marks named vectors in a record (an unnamed vector is never this long).
constexpr uint32_t kNamedMark = 0xFFFFFFFFu;

void put_u32(std::string& out, uint32_t v) {
  out.append(reinterpret_cast<const char*>(&v), 4);
}

void put_floats(std::string& out, const std::vector<float>& v) {
  put_u32(out, static_cast<uint32_t>(v.size()));
  if (!v.empty()) out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}
}  // namespace

std::string PointStore::encode(const Record& r) {
  const std::vector<uint8_t> payload = nlohmann::json::to_msgpack(r.payload);
  std::string v;
  size_t floats = 0;
  for (const auto& [name, x] : r.vectors) floats += 8 + name.size() + x.size() * sizeof(float);
  v.reserve(16 + floats + payload.size());
  v.append(reinterpret_cast<const char*>(&r.internal), 8);
  if (r.vectors.size() == 1 && r.vectors.count("")) {
    put_floats(v, r.vectors.begin()->second);
  } else {
    put_u32(v, kNamedMark);
    put_u32(v, static_cast<uint32_t>(r.vectors.size()));
    for (const auto& [name, x] : r.vectors) {
      put_u32(v, static_cast<uint32_t>(name.size()));
      v += name;
      put_floats(v, x);
    }
  }
  v.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  return v;
}

namespace {

/// nlohmann's DOM builder, refusing MessagePack nested deeper than kMaxJsonDepth before the
/// reader recurses into it (a damaged record nested 100k deep overflowed the stack: found by
/// fuzz_point_record in a 10-minute run). Payloads are stored from parsed bodies, which are never
/// deeper.
class DepthLimitedDom {
 public:
  explicit DepthLimitedDom(nlohmann::json& out) : dom_(out, true) {}
  using json = nlohmann::json;
  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return dom_.number_float(v, s);
  }
  bool string(json::string_t& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool key(json::string_t& v) { return dom_.key(v); }
  bool start_object(std::size_t n) { return deeper() && dom_.start_object(n); }
  bool end_object() { return --depth_, dom_.end_object(); }
  bool start_array(std::size_t n) { return deeper() && dom_.start_array(n); }
  bool end_array() { return --depth_, dom_.end_array(); }
  template <class Exception>
  bool parse_error(std::size_t at, const std::string& token, const Exception& e) {
    return dom_.parse_error(at, token, e);
  }

 private:
  bool deeper() {
    if (++depth_ > kMaxJsonDepth) throw InternalError("stored payload nested too deeply");
    return true;
  }
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  size_t depth_ = 0;
};

}  // namespace

PointStore::Record PointStore::decode(const std::string& key, const std::string& value) {
  WP_THROW_INTERNAL_IF_NOT(value.size() >= 12, "point record too short");
  WP_THROW_INTERNAL_IF_NOT(key.size() >= sizeof(kPointPrefix) - 1, "point key too short");
  Record r;
  r.id = PointId::from_key(key.substr(sizeof(kPointPrefix) - 1));
  std::memcpy(&r.internal, value.data(), 8);
  size_t at = 8;
  auto u32 = [&] {
    WP_THROW_INTERNAL_IF_NOT(value.size() - at >= 4, "point record truncated");
    uint32_t x = 0;
    std::memcpy(&x, value.data() + at, 4);
    at += 4;
    return x;
  };
  auto floats = [&](uint32_t dim) {
    WP_THROW_INTERNAL_IF_NOT((value.size() - at) / sizeof(float) >= dim, "point record truncated");
    std::vector<float> x(dim);
    if (dim > 0) std::memcpy(x.data(), value.data() + at, dim * sizeof(float));
    at += size_t{dim} * sizeof(float);
    return x;
  };
  const uint32_t first = u32();
  if (first != kNamedMark) {
    r.vectors[""] = floats(first);
  } else {
    const uint32_t count = u32();
    for (uint32_t i = 0; i < count; ++i) {
      const uint32_t len = u32();
      WP_THROW_INTERNAL_IF_NOT(len >= 1 && len <= value.size() - at, "point record truncated");
      std::string name = value.substr(at, len);
      at += len;
      const uint32_t dim = u32();
      WP_THROW_INTERNAL_IF_NOT(r.vectors.emplace(std::move(name), floats(dim)).second,
                               "point record names a vector twice");
    }
  }
  const auto* pl = reinterpret_cast<const uint8_t*>(value.data() + at);
  DepthLimitedDom dom(r.payload);
  nlohmann::json::sax_parse(pl, pl + (value.size() - at), &dom,
                            nlohmann::json::input_format_t::msgpack);
  return r;
}

void PointStore::apply(const std::vector<Record>& upserts, const std::vector<PointId>& deletes,
                       bool sync, const std::pair<std::string, std::string>* meta) {
  rocksdb::WriteBatch batch;
  if (meta) check(batch.Put(kMetaPrefix + meta->first, meta->second), "batch put metadata");
  for (const PointId& id : deletes) check(batch.Delete(kPointPrefix + id.key()), "batch delete");
  for (const Record& r : upserts)
    check(batch.Put(kPointPrefix + r.id.key(), encode(r)), "batch put");
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  check(db_->Write(wo, &batch), "cannot write points");
}

std::optional<PointStore::Record> PointStore::get(const PointId& id) const {
  std::string v;
  const std::string key = kPointPrefix + id.key();
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &v);
  if (s.IsNotFound()) return std::nullopt;
  check(s, "cannot read a point");
  return decode(key, v);
}

void PointStore::scan(const std::optional<PointId>& from, const std::function<bool(Record&&)>& fn,
                      bool whole) const {
  rocksdb::ReadOptions ro;
  ro.fill_cache = !whole;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  const std::string prefix = kPointPrefix;
  for (it->Seek(from ? prefix + from->key() : prefix); it->Valid(); it->Next()) {
    const std::string key = it->key().ToString();
    if (key.compare(0, prefix.size(), prefix) != 0) break;
    if (!fn(decode(key, it->value().ToString()))) return;
  }
  check(it->status(), "cannot scan points");
}

uint64_t PointStore::sequence() const {
  return db_->GetLatestSequenceNumber();
}

uint64_t PointStore::checkpoint(const std::string& dir) const {
  rocksdb::Checkpoint* raw = nullptr;
  check(rocksdb::Checkpoint::Create(db_.get(), &raw),
        "cannot checkpoint point store '" + dir_ + "'");
  std::unique_ptr<rocksdb::Checkpoint> cp(raw);
  uint64_t seq = 0;
  check(cp->CreateCheckpoint(dir, 0, &seq), "cannot checkpoint point store '" + dir_ + "'");
  return seq;
}

}  // namespace wp::engine
