#include "engine/point_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <cmath>
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
  if (!r.sparse.empty()) {
    v += kSparseMark;
    put_u32(v, static_cast<uint32_t>(r.sparse.size()));
    for (const auto& [name, x] : r.sparse) {
      put_u32(v, static_cast<uint32_t>(name.size()));
      v += name;
      put_u32(v, static_cast<uint32_t>(x.size()));
      if (x.size() == 0) continue;
      v.append(reinterpret_cast<const char*>(x.indices.data()), x.size() * sizeof(uint32_t));
      v.append(reinterpret_cast<const char*>(x.values.data()), x.size() * sizeof(float));
    }
  }
  v.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  return v;
}

namespace {

/// A SAX reader of nlohmann's (its DOM builder, or its acceptor that builds nothing) refusing
/// MessagePack nested deeper than kMaxJsonDepth before the reader recurses into it (a damaged
/// record nested 100k deep overflowed the stack: found by fuzz_point_record in a 10-minute run).
/// Payloads are stored from parsed bodies, which are never deeper.
template <class Inner>
class DepthLimited {
 public:
  using json = nlohmann::json;
  template <class... Args>
  explicit DepthLimited(Args&&... args) : inner_(std::forward<Args>(args)...) {}
  bool null() { return inner_.null(); }
  bool boolean(bool v) { return inner_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return inner_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return inner_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return inner_.number_float(v, s);
  }
  bool string(json::string_t& v) { return inner_.string(v); }
  bool binary(json::binary_t& v) { return inner_.binary(v); }
  bool key(json::string_t& v) { return inner_.key(v); }
  bool start_object(std::size_t n) { return deeper() && inner_.start_object(n); }
  bool end_object() { return --depth_, inner_.end_object(); }
  bool start_array(std::size_t n) { return deeper() && inner_.start_array(n); }
  bool end_array() { return --depth_, inner_.end_array(); }
  template <class Exception>
  bool parse_error(std::size_t at, const std::string& token, const Exception& e) {
    return inner_.parse_error(at, token, e);
  }

 private:
  bool deeper() {
    if (++depth_ > kMaxJsonDepth) throw InternalError("stored payload nested too deeply");
    return true;
  }
  Inner inner_;
  size_t depth_ = 0;
};

template <class Sax>
bool read_msgpack(std::string_view bytes, Sax* sax) {
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  return nlohmann::json::sax_parse(p, p + bytes.size(), sax,
                                   nlohmann::json::input_format_t::msgpack);
}

}  // namespace

SparseVector PointStore::read_sparse(uint32_t n, const char* indices, const char* values) {
  SparseVector x;
  x.indices.resize(n);
  x.values.resize(n);
  if (n > 0) {
    std::memcpy(x.indices.data(), indices, size_t{n} * sizeof(uint32_t));
    std::memcpy(x.values.data(), values, size_t{n} * sizeof(float));
  }
  for (uint32_t i = 1; i < n; ++i) {
    WP_THROW_INTERNAL_IF_NOT(x.indices[i - 1] < x.indices[i], "stored sparse vector not sorted");
  }
  for (float f : x.values) {
    WP_THROW_INTERNAL_IF_NOT(std::isfinite(f), "stored sparse vector with a value not finite");
  }
  return x;
}

PointStore::RecordView PointStore::view(std::string_view key, std::string_view value) {
  WP_THROW_INTERNAL_IF_NOT(key.size() >= sizeof(kPointPrefix) - 1, "point key too short");
  RecordView v;
  v.key = key.substr(sizeof(kPointPrefix) - 1);
  v.value = value;
  v.payload = value.substr(each_vector(value, [](std::string_view, uint32_t, const char*) {}));
  std::memcpy(&v.internal, value.data(), 8);
  return v;
}

void PointStore::check_payload(std::string_view msgpack) {
  DepthLimited<nlohmann::detail::json_sax_acceptor<nlohmann::json>> acceptor;
  WP_THROW_INTERNAL_IF_NOT(read_msgpack(msgpack, &acceptor), "stored payload is not MessagePack");
}

PointStore::Record PointStore::decode(std::string_view key, std::string_view value) {
  const RecordView v = view(key, value);
  Record r;
  r.id = v.id();
  r.internal = v.internal;
  v.vectors([&](std::string_view name, uint32_t dim, const char* floats) {
    std::vector<float> x(dim);
    if (dim > 0) std::memcpy(x.data(), floats, dim * sizeof(float));
    WP_THROW_INTERNAL_IF_NOT(r.vectors.emplace(std::string(name), std::move(x)).second,
                             "point record names a vector twice");
  });
  v.sparse([&](std::string_view name, uint32_t n, const char* indices, const char* values) {
    WP_THROW_INTERNAL_IF_NOT(
        !r.vectors.count(std::string(name)) &&
            r.sparse.emplace(std::string(name), read_sparse(n, indices, values)).second,
        "point record names a vector twice");
  });
  DepthLimited<nlohmann::detail::json_sax_dom_parser<nlohmann::json>> dom(r.payload, true);
  read_msgpack(v.payload, &dom);
  return r;
}

void PointStore::apply(const std::vector<Record>& upserts, const std::vector<PointId>& deletes,
                       bool sync, const std::pair<std::string, std::string>* meta) {
  // The batch is reserved whole: grown by its appends, a batch of megabytes (100 multivectors of
  // 32 x 128 floats is 1.6 MB) was copied a dozen times into fresh pages, 14% of such an ingest.
  std::vector<std::string> values;
  values.reserve(upserts.size());
  constexpr size_t kEntryBytes = 64;  // an entry's tag, lengths and key (a UUID's is 38 bytes)
  size_t bytes = 64 + deletes.size() * kEntryBytes;
  if (meta) bytes += kEntryBytes + meta->first.size() + meta->second.size();
  for (const Record& r : upserts) {
    values.push_back(encode(r));
    bytes += kEntryBytes + values.back().size();
  }
  rocksdb::WriteBatch batch(bytes);
  if (meta) check(batch.Put(kMetaPrefix + meta->first, meta->second), "batch put metadata");
  for (const PointId& id : deletes) check(batch.Delete(kPointPrefix + id.key()), "batch delete");
  for (size_t i = 0; i < upserts.size(); ++i) {
    check(batch.Put(kPointPrefix + upserts[i].id.key(), values[i]), "batch put");
  }
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

void PointStore::for_each_stored(
    const std::optional<PointId>& from, bool whole,
    const std::function<bool(std::string_view key, std::string_view value)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.fill_cache = !whole;
  // A whole scan reads the files in order, 64 KiB a read. Left to itself the iterator read each
  // 4 KiB block with a pread of its own: 143,437 of them opening 1M x 128 points (strace -c),
  // the scan's largest part. Larger reads did no better (128 KiB) or worse (2 MiB: each read
  // into fresh pages; docs/server.md, "Restart, twenty-second session").
  if (whole) ro.readahead_size = size_t{64} << 10;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  const std::string prefix = kPointPrefix;
  for (it->Seek(from ? prefix + from->key() : prefix); it->Valid(); it->Next()) {
    const std::string_view key = it->key().ToStringView();
    if (key.compare(0, prefix.size(), prefix) != 0) break;
    if (!fn(key, it->value().ToStringView())) return;
  }
  check(it->status(), "cannot scan points");
}

void PointStore::scan(const std::optional<PointId>& from, const std::function<bool(Record&&)>& fn,
                      bool whole) const {
  for_each_stored(from, whole, [&](std::string_view key, std::string_view value) {
    return fn(decode(key, value));
  });
}

void PointStore::scan_in_place(const std::function<void(const RecordView&)>& fn) const {
  for_each_stored(std::nullopt, true, [&](std::string_view key, std::string_view value) {
    const RecordView v = view(key, value);
    check_payload(v.payload);
    fn(v);
    return true;
  });
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
