#include "engine/collection.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <unordered_set>

#include "engine/json_fields.h"
#include "engine/json_value.h"
#include "engine/learned_index.h"
#include "engine/tune_space.h"
#include "index/distance.h"
#include "index/error.h"
#include "index/index_spec.h"

namespace wp::engine {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr char kConfigKey[] = "config";
/// The sequence of the last apply_sequenced() (a cluster shard replica's place in its order).
constexpr char kAppliedSequenceMeta[] = "applied_sequence";
/// Internal ids are below this: payload indexes keep them as uint32.
constexpr uint64_t kMaxInternal = UINT32_MAX;
/// A write takes effect a piece of points at a time: searches of the collection wait for one
/// piece's exclusive section, not for the whole batch to go into the index (seconds for a large
/// one), and new points are linked into the index after it, beside searches (Index::link). A
/// piece is sized to take about kPieceTime by the rate of the last one: an HNSW insertion of 128
/// dimensions took 50 us at 10k points and 170 us at 1M, where pieces of a fixed 64 points held
/// searches up 5 ms when all of it was exclusive.
constexpr size_t kMinPiece = 16, kMaxPiece = 1024;
constexpr std::chrono::microseconds kPieceTime{2000};

/// What the filters ask of a point a write leaves, before it is stored: its vectors as the write
/// gives them (has_vector), how the collection's text indexes read texts (match.text).
class StagedFacts final : public PointFacts {
 public:
  StagedFacts(const PointWrite& p, const Collection& c) : p_(p), c_(c) {}
  bool holds(std::string_view name) const override {
    const std::string n(name);
    return p_.vectors.count(n) != 0 || p_.sparse.count(n) != 0 || p_.multi.count(n) != 0;
  }
  const TextParams* text_params(std::string_view key) const override {
    return c_.text_params_of(key);
  }

 private:
  const PointWrite& p_;
  const Collection& c_;
};

/// Collection::set_link_threads (0: automatic).
std::atomic<size_t> link_threads_setting{0};

/// The index file and its meta of space number `space` in `folder`: "index.wpi" and "index.meta"
/// for the unnamed vector (as before named vectors), "index.<space>.wpi" and ".meta" for named ones
/// (the meta holds the name; snapshot_archive.cpp admits these names).
std::pair<fs::path, fs::path> index_files(const std::string& folder, bool named, size_t space) {
  const std::string base = named ? "index." + std::to_string(space) : "index";
  return {fs::path(folder) / (base + ".wpi"), fs::path(folder) / (base + ".meta")};
}

/// A new empty index as `spec` says, inserting on at most `max_insert_threads` threads (0: no
/// bound). Kind "rl" without its learnt graph (no index file, or one that no longer matches the
/// store) serves the graph the agent starts from until trained again.
std::unique_ptr<index::Index> make_served_index(index::IndexSpec spec, size_t dim,
                                                size_t max_insert_threads) {
  if (spec.kind == index::IndexKind::kRl) spec.graph = index::unpruned_level0();
  std::unique_ptr<index::Index> idx = index::make_index(spec, dim);
  idx->set_max_insert_threads(max_insert_threads);
  return idx;
}
}  // namespace

void Collection::set_link_threads(size_t n) {
  link_threads_setting = n;
}

size_t Collection::link_threads(bool searched) {
  const size_t n = link_threads_setting;
  if (n) return n;
  if (!searched) return 0;  // every core: nobody waits
  // Every core but one while searches come in, as Qdrant's optimizer_cpu_budget leaves CPUs to
  // searches: on the two cores here, one link thread gave searches beside an ingest a p99 2-5x
  // lower than two, at the same ingest rate; an upload nobody searches meanwhile was 10-30%
  // slower on one thread, hence every core then (docs/server.md).
  const unsigned cores = std::thread::hardware_concurrency();
  return cores > 1 ? cores - 1 : 1;
}

Collection::Collection(std::string name, std::string dir,
                       const std::optional<CollectionConfig>& config)
    : name_(std::move(name)), dir_(std::move(dir)) {
  fs::create_directories(fs::path(dir_) / "store");
  store_ = std::make_unique<PointStore>((fs::path(dir_) / "store").string());
  if (config) {
    config_ = *config;
    store_->put_meta(kConfigKey, config_.to_stored().dump());
  } else {
    const auto stored = store_->get_meta(kConfigKey);
    WP_THROW_INTERNAL_IF_NOT(stored, "collection '", name_, "' has no stored config");
    config_ = CollectionConfig::from_stored(json::parse(*stored));
  }
  if (const auto seq = store_->get_meta(kAppliedSequenceMeta)) {
    unsigned long long sequence = 0, term = 0;
    char end;
    WP_THROW_INTERNAL_IF_NOT(std::sscanf(seq->c_str(), "%llu %llu%c", &sequence, &term, &end) == 2,
                             "collection '", name_, "': damaged applied sequence");
    applied_sequence_ = sequence;
    applied_term_ = term;
  }
  named_ = config_.named();
  for (const auto& [vname, v] : config_.vectors) {
    shapes_.push_back(VectorShape{vname, v.dim, v.metric()});
    total_dim_ += v.dim;
  }
  sparse_.resize(config_.sparse_vectors.size());
  size_t s = 0;
  for (const auto& [vname, v] : config_.sparse_vectors) {
    sparse_[s].name = vname;
    sparse_[s++].modifier = v.modifier;
  }
  for (const auto& [vname, v] : config_.multivectors) {
    multi_.push_back(MultiSpace{vname, MultiVectorSpace(v.dim, v.metric)});
  }
  load();
}

bool VectorSelector::wants(const std::string& name) const {
  return all || std::find(names.begin(), names.end(), name) != names.end();
}

const VectorShape& Collection::vector_shape(const std::string& name,
                                            const std::string& field) const {
  return shapes_[space_of(name, field)];
}

std::optional<size_t> Collection::find_space(std::string_view name) const {
  for (size_t i = 0; i < shapes_.size(); ++i) {
    if (shapes_[i].name == name) return i;
  }
  return std::nullopt;
}

std::optional<size_t> Collection::find_sparse(std::string_view name) const {
  for (size_t i = 0; i < sparse_.size(); ++i) {
    if (sparse_[i].name == name) return i;
  }
  return std::nullopt;
}

std::optional<size_t> Collection::find_multi(std::string_view name) const {
  for (size_t i = 0; i < multi_.size(); ++i) {
    if (multi_[i].name == name) return i;
  }
  return std::nullopt;
}

size_t Collection::space_of(const std::string& name, const std::string& field) const {
  if (const std::optional<size_t> i = find_space(name)) return *i;
  WP_THROW_IF_NOT(!find_sparse(name), field, ": ", show_json(json(name)),
                  " is a sparse vector, which this request cannot use (it reads dense vectors)");
  WP_THROW_IF_NOT(!find_multi(name), field, ": ", show_json(json(name)),
                  " is a multivector, which this request cannot use (it reads single vectors)");
  (void)config_.vector(name, field);  // throws the error that lists the names
  throw InternalError("vector space missing");
}

index::IndexSpec Collection::spec_for(size_t space, const index::IndexSpec& requested) const {
  index::IndexSpec spec = requested;
  spec.metric = shapes_[space].metric;
  spec.validate();
  return spec;
}

void Collection::check_selector(const VectorSelector& sel, const std::string& field) const {
  for (const std::string& name : sel.names) {
    if (!find_sparse(name) && !find_multi(name)) space_of(name, field);
  }
}

CollectionConfig Collection::config() const {
  std::shared_lock<RwMutex> lock(mu_);
  return config_;
}

Collection::~Collection() {
  wait_for_build();
}

void Collection::wait_for_build() {
  std::thread t;
  {
    std::lock_guard<std::mutex> g(build_mu_);
    t = std::move(builder_);
  }
  if (t.joinable()) t.join();
}

void Collection::rebuild_index(const index::IndexSpec& requested, const json& learned,
                               const std::string& vector) {
  const size_t space = space_of(vector, "using");
  const index::IndexSpec spec = spec_for(space, requested);
  const bool is_learned = spec.kind == index::IndexKind::kRl;
  WP_THROW_IF_NOT(!is_learned || learned_builder(index::index_kind_name(spec.kind)), "type: \"",
                  index::index_kind_name(spec.kind),
                  "\" needs a waypoint built with LibTorch (WAYPOINT_WITH_TORCH=ON)");
  start_job("building", vector, spec,
            [this, space, spec, learned] { build_and_swap(space, spec, learned); });
}

void Collection::rebuild_indexes(const std::map<std::string, index::IndexSpec>& specs) {
  std::vector<std::pair<size_t, index::IndexSpec>> plan;
  for (const auto& [vector, requested] : specs) {
    const size_t space = space_of(vector, "vectors");
    const index::IndexSpec spec = spec_for(space, requested);
    WP_THROW_IF_NOT(spec.kind != index::IndexKind::kRl, "vectors.", vector,
                    ": a learned index is built by PUT /collections/", name_, "/vector_index");
    plan.emplace_back(space, spec);
  }
  if (plan.empty()) return;
  start_job("building", shapes_[plan[0].first].name, plan[0].second, [this, plan] {
    for (const auto& [space, spec] : plan) {
      {
        std::lock_guard<std::mutex> g(build_mu_);
        status_.vector = shapes_[space].name;
        status_.target = spec;
      }
      build_progress_ = 0.0;
      build_and_swap(space, spec, json::object());
    }
  });
}

void Collection::auto_index(const AutoTuneRequest& req, const std::string& vector) {
  const size_t space = space_of(vector, "using");
  size_t held = 0;
  {
    std::shared_lock<RwMutex> lock(mu_);
    held = indexes_[space]->size();
  }
  WP_THROW_IF_NOT(held >= tune::kMinAutoTunePoints,
                  "type \"auto\" tunes on the collection's vectors and needs at least ",
                  tune::kMinAutoTunePoints, ", it holds ", held);
  tune::Space::standard(req.types);  // the types are checked before the job starts
  WP_THROW_IF_NOT(std::find(req.types.begin(), req.types.end(), "rl") == req.types.end() ||
                      learned_builder("rl"),
                  "types: \"rl\" needs a waypoint built with LibTorch (WAYPOINT_WITH_TORCH=ON)");
  start_job("tuning", vector, std::nullopt, [this, req, space] {
    // Tune on a snapshot without holding writes back (90% of the progress); then build the
    // winner as a rebuild does.
    index::Matrix vectors;
    std::vector<index::label_t> labels;
    snapshot(space, vectors, labels);
    const tune::AutoTuneResult r =
        tune::auto_tune(vectors, config().vectors.at(shapes_[space].name).index, req,
                        [this](double f) { build_progress_ = 0.9 * f; });
    {
      std::lock_guard<std::mutex> g(build_mu_);
      status_.tune = r.outcome;
      status_.target = r.spec;
    }
    build_and_swap(space, r.spec, r.learned);
  });
}

void Collection::start_job(const std::string& state, const std::string& vector,
                           const std::optional<index::IndexSpec>& target,
                           std::function<void()> job) {
  std::lock_guard<std::mutex> g(build_mu_);
  if (status_.state == "building" || status_.state == "tuning") {
    throw ConflictError("an index build is already running on collection `" + name_ + "`");
  }
  if (builder_.joinable()) builder_.join();  // the previous build has finished
  status_.state = state;
  status_.vector = vector;
  status_.error.clear();
  status_.target = target;
  status_.tune.reset();
  build_progress_ = 0.0;
  builder_ = std::thread([this, job = std::move(job)] {
    try {
      job();
      std::lock_guard<std::mutex> g2(build_mu_);
      status_.state = "ready";
      status_.target.reset();
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> g2(build_mu_);
      status_.state = "failed";
      status_.error = e.what();
    }
    build_progress_ = 1.0;
  });
}

void Collection::snapshot(size_t space, index::Matrix& vectors,
                          std::vector<index::label_t>& labels) const {
  std::shared_lock<RwMutex> lock(mu_);
  const index::Index& idx = *indexes_[space];
  vectors = index::Matrix(idx.size(), shapes_[space].dim);
  labels.clear();
  for (uint64_t i = 0; i < entries_.size() && labels.size() < vectors.n; ++i) {
    if (entries_[i].live && idx.get_vector(i, vectors.row(labels.size()))) labels.push_back(i);
  }
  vectors.n = labels.size();
}

void Collection::build_and_swap(size_t space, const index::IndexSpec& next, const json& learned) {
  // Snapshot the live points (vectors from the served index) with writes held back for a moment;
  // from then on, writes go on and note the labels they touch, and are replayed into the new
  // index at the swap (so no write is lost, and no writer waits for the whole build).
  std::vector<index::label_t> labels;
  index::Matrix vectors;
  {
    std::lock_guard<std::mutex> writer(write_mu_);
    snapshot(space, vectors, labels);
    touched_during_build_.emplace();
  }
  struct StopNoting {
    Collection* c;
    ~StopNoting() {
      std::lock_guard<std::mutex> writer(c->write_mu_);
      c->touched_during_build_.reset();
    }
  } stop_noting{this};
  const double from = build_progress_;
  auto progress = [this, from](double f) { build_progress_ = from + (1 - from) * f; };
  std::unique_ptr<index::Index> fresh;
  if (next.kind == index::IndexKind::kRl) {
    fresh = build_learned_index(next, learned, vectors, labels, progress);
  } else {
    fresh = make_served_index(next, shapes_[space].dim,
                              config().vectors.at(shapes_[space].name).max_indexing_threads);
    index::add_all(*fresh, index::view(vectors), labels.data(), 5000,
                   [&](size_t done) { progress(static_cast<double>(done) / labels.size()); });
  }
  vectors = index::Matrix();
  std::lock_guard<std::mutex> writer(write_mu_);
  // Replay what changed since the snapshot: each touched label now either has a vector in the
  // served index of the space (its current one) or none. Only this writer changes entries_ and
  // the indexes now.
  const index::Index& served = *indexes_[space];
  std::vector<index::label_t> gone, changed;
  for (const uint64_t label : *touched_during_build_) {
    if (served.contains(label)) {
      changed.push_back(label);
    } else if (fresh->contains(label)) {
      gone.push_back(label);
    }
  }
  if (!gone.empty()) fresh->remove_batch(gone.data(), gone.size());
  if (!changed.empty()) {
    index::Matrix m(changed.size(), shapes_[space].dim);
    for (size_t i = 0; i < changed.size(); ++i) served.get_vector(changed[i], m.row(i));
    fresh->add(index::view(m), changed.data());
  }
  CollectionConfig stored = config();
  stored.vectors.at(shapes_[space].name).index = next;
  store_->put_meta(kConfigKey, stored.to_stored().dump());
  // (a setting changed during the build: set_max_indexing_threads waits for write_mu_)
  fresh->set_max_insert_threads(stored.vectors.at(shapes_[space].name).max_indexing_threads);
  std::unique_lock<RwMutex> lock(mu_);
  indexes_[space] = std::move(fresh);
  config_ = stored;
}

void Collection::set_max_indexing_threads(const std::map<std::string, size_t>& threads) {
  if (threads.empty()) return;
  for (const auto& [name, n] : threads) (void)space_of(name, "vectors");
  std::lock_guard<std::mutex> writer(write_mu_);  // between writes and before a build's swap
  CollectionConfig stored = config();
  for (const auto& [name, n] : threads) stored.vectors.at(name).max_indexing_threads = n;
  store_->put_meta(kConfigKey, stored.to_stored().dump());
  std::unique_lock<RwMutex> lock(mu_);
  config_ = stored;
  for (size_t space = 0; space < shapes_.size(); ++space) {
    indexes_[space]->set_max_insert_threads(
        config_.vectors.at(shapes_[space].name).max_indexing_threads);
  }
}

void Collection::set_sparse_modifiers(const std::map<std::string, SparseModifier>& modifiers) {
  if (modifiers.empty()) return;
  for (const auto& [name, m] : modifiers) {
    WP_THROW_IF_NOT(find_sparse(name), "sparse_vectors: ", no_vector_named(name));
  }
  std::lock_guard<std::mutex> writer(write_mu_);
  CollectionConfig stored = config();
  for (const auto& [name, m] : modifiers) stored.sparse_vectors.at(name).modifier = m;
  store_->put_meta(kConfigKey, stored.to_stored().dump());
  std::unique_lock<RwMutex> lock(mu_);
  config_ = stored;
  for (SparseSpace& space : sparse_)
    space.modifier = config_.sparse_vectors.at(space.name).modifier;
}

IndexStatus Collection::index_status(const std::string& vector) const {
  const size_t space = space_of(vector, "using");
  IndexStatus s;
  {
    std::lock_guard<std::mutex> g(build_mu_);
    s = status_;
  }
  s.progress = build_progress_;
  if (s.vector != vector) {  // the last build was of another space: this one is served as is
    s = IndexStatus{};
    s.vector = vector;
  }
  std::shared_lock<RwMutex> lock(mu_);
  s.served = config_.vectors.at(shapes_[space].name).index;
  s.max_insert_threads = indexes_[space]->max_insert_threads();
  return s;
}

void Collection::load() {
  const size_t spaces = shapes_.size();
  // An index file is trusted only if it was written for exactly this state of the store and
  // passes every check of the loader; anything else is rebuilt from the store. The meta says
  // which: a space whose file was written at the store's sequence for its vector takes its
  // vectors from the file (the points' count and the file are checked below), and its vectors
  // are not gathered from the store unless the file then fails a check. Gathering them all was
  // 40% of a restart at 1M x 128 (copying 512 MB into a growing array and its page faults).
  std::vector<std::optional<uint64_t>> file_points(spaces);
  const uint64_t sequence = store_->sequence();
  for (size_t space = 0; space < spaces; ++space) {
    const fs::path meta = index_files(dir_, named_, space).second;
    if (!fs::exists(meta)) continue;
    try {
      std::ifstream in(meta);
      const json m = json::parse(in);
      if (stored_count(m, "sequence") == sequence &&
          m.value("vector", std::string()) == shapes_[space].name) {
        file_points[space] = stored_count(m, "points");
      }
    } catch (const std::exception&) {
      // rebuilt
    }
  }
  // Those files are read on a thread of their own while the store is scanned: the two took
  // about as long at 1M x 128 (3 s each), each bound by its own reading and page faults. A file
  // that cannot be read leaves its space to be rebuilt.
  std::future<std::vector<std::unique_ptr<index::Index>>> files =
      std::async(std::launch::async, [&] {
        std::vector<std::unique_ptr<index::Index>> read(spaces);
        for (size_t space = 0; space < spaces; ++space) {
          if (!file_points[space]) continue;
          try {
            read[space] = index::load_index(index_files(dir_, named_, space).first.string());
          } catch (const std::exception&) {
            // rebuilt
          }
        }
        return read;
      });
  std::vector<index::Matrix> vectors;
  std::vector<std::vector<index::label_t>> labels(spaces);
  for (const VectorShape& shape : shapes_) vectors.emplace_back(0, shape.dim);
  // Reads the store, gathering the vectors of the spaces in `gather` (in the order of the
  // points, as their labels are listed); with `first`, the points' labels and entries too. The
  // records are read in place: a payload is kept as the bytes stored (decoding each record into
  // copies and a JSON tree that was packed again made a restart at 1M x 128 with 3-key payloads
  // take 4.3-4.9 s, 3.6-4.3 s without them and with the id table loaded in bulk, below).
  auto read_store = [&](const std::vector<bool>& gather, bool first) {
    std::vector<bool> seen(spaces);
    store_->scan_in_place([&](const PointStore::RecordView& r) {
      std::fill(seen.begin(), seen.end(), false);
      // One reading of the record for its dense and its sparse vectors (these only the first
      // time: they are not gathered again for a space's index).
      r.vectors(
          [&](std::string_view vname, uint32_t dim, const char* floats) {
            const std::optional<size_t> i = find_space(vname);
            if (!i && first) {
              // A multivector: its values flat, rows of its space's dimension.
              const std::optional<size_t> m = find_multi(vname);
              WP_THROW_INTERNAL_IF_NOT(m, "stored point with a vector of wrong name");
              MultiVectorSpace& space = multi_[*m].vectors;
              WP_THROW_INTERNAL_IF_NOT(dim > 0 && dim % space.dim() == 0 &&
                                           dim <= kMaxMultiValues && !space.contains(r.internal),
                                       "stored point with a multivector of wrong size");
              std::vector<float> values(dim);
              std::memcpy(values.data(), floats, size_t{dim} * sizeof(float));
              WP_THROW_INTERNAL_IF_NOT(index::all_finite(values.data(), dim),
                                       "stored multivector with values not finite");
              space.set(r.internal, std::move(values));
              return;
            }
            if (!i && find_multi(vname)) return;
            WP_THROW_INTERNAL_IF_NOT(i && dim == shapes_[*i].dim && !seen[*i],
                                     "stored point with a vector of wrong name or dimension");
            seen[*i] = true;
            if (gather[*i]) {
              std::vector<float>& to = vectors[*i].data;
              const size_t at = to.size();
              to.resize(at + dim);
              std::memcpy(to.data() + at, floats, size_t{dim} * sizeof(float));
            }
            if (first) labels[*i].push_back(r.internal);
          },
          [&](std::string_view vname, uint32_t n, const char* indices, const char* values) {
            if (!first) return;
            const std::optional<size_t> i = find_sparse(vname);
            WP_THROW_INTERNAL_IF_NOT(i && !sparse_[*i].index.contains(r.internal),
                                     "stored point with a sparse vector of wrong name");
            sparse_[*i].index.set(r.internal, PointStore::read_sparse(n, indices, values));
          });
      if (!first) return;
      const uint64_t internal = r.internal;
      if (internal >= entries_.size()) entries_.resize(internal + 1);
      entries_[internal] = Entry{r.id(), PackedPayload::from_msgpack(r.payload), true};
      payload_bytes_ += entries_[internal].payload.heap_bytes();
      next_internal_ = std::max(next_internal_, internal + 1);
      ++live_;
    });
  };
  std::vector<bool> gather(spaces);
  for (size_t space = 0; space < spaces; ++space) gather[space] = !file_points[space];
  read_store(gather, true);
  WP_THROW_INTERNAL_IF_NOT(next_internal_ <= kMaxInternal, "stored internal id out of range");
  entries_.resize(next_internal_);
  std::vector<uint64_t> live;  // the store's keys: distinct ids
  live.reserve(live_);
  for (uint64_t i = 0; i < next_internal_; ++i) {
    if (entries_[i].live) live.push_back(i);
  }
  ids_.insert_new(live, id_of(), std::hash<PointId>());
  for (const auto& [key, schema] : config_.payload_schema) {
    const TextParams* text = text_params_of(key);
    payload_indexes_.install(build_field_index(key, schema, text ? *text : TextParams{}));
  }
  for (uint64_t i = next_internal_; i-- > 0;) {
    if (!entries_[i].live) free_internal_.push_back(i);  // the lowest is reused first
  }

  std::vector<std::unique_ptr<index::Index>> from_files = files.get();
  index_from_file_ = true;
  for (size_t space = 0; space < spaces; ++space) {
    const VectorShape& shape = shapes_[space];
    const std::vector<index::label_t>& held = labels[space];
    const size_t max_threads = config_.vectors.at(shape.name).max_indexing_threads;
    std::unique_ptr<index::Index> loaded;
    if (auto& idx = from_files[space]; idx && file_points[space] == held.size()) {
      bool ok =
          idx->dim() == shape.dim && idx->metric() == shape.metric && idx->size() == held.size();
      for (size_t i = 0; ok && i < held.size(); ++i) ok = idx->contains(held[i]);
      if (ok) {
        loaded = std::move(idx);
        loaded->set_max_insert_threads(max_threads);
      }
    }
    if (!loaded) {
      index_from_file_ = false;
      if (!gather[space]) {  // left to the file, which failed: read them now
        std::vector<bool> only(spaces);
        only[space] = true;
        read_store(only, false);
      }
      vectors[space].n = held.size();
      WP_THROW_INTERNAL_IF_NOT(vectors[space].data.size() == held.size() * shape.dim,
                               "stored vectors changed while loading");
      loaded = make_served_index(config_.vectors.at(shape.name).index, shape.dim, max_threads);
      if (!held.empty()) loaded->add(index::view(vectors[space]), held.data());
    }
    vectors[space] = index::Matrix();
    indexes_.push_back(std::move(loaded));
  }
  if (index_from_file_) files_at_ = sequence;
}

void Collection::upsert(std::vector<PointWrite> points, bool wait) {
  WriteOp op;
  op.points = std::move(points);
  apply_one(std::move(op), wait);
}

void Collection::update_vectors(std::vector<PointWrite> points, bool wait) {
  WriteOp op;
  op.kind = WriteOp::Kind::kUpdateVectors;
  op.points = std::move(points);
  apply_one(std::move(op), wait);
}

size_t Collection::remove(const std::vector<PointId>& ids, bool wait) {
  WriteOp op;
  op.kind = WriteOp::Kind::kDelete;
  op.ids = ids;
  return apply_one(std::move(op), wait);
}

size_t Collection::remove_matching(const Filter& filter, bool wait) {
  WriteOp op;
  op.kind = WriteOp::Kind::kDelete;
  op.filter = &filter;
  return apply_one(std::move(op), wait);
}

size_t Collection::edit_payloads(const std::vector<PointId>* ids, const Filter* filter,
                                 const std::function<void(json&)>& edit, bool wait) {
  WriteOp op;
  op.kind = WriteOp::Kind::kEditPayload;
  if (ids) op.ids = *ids;
  if (!ids) op.filter = filter;
  op.edit = edit;
  return apply_one(std::move(op), wait);
}

size_t Collection::apply_one(WriteOp op, bool wait) {
  std::vector<WriteOp> ops;
  ops.push_back(std::move(op));
  return apply(std::move(ops), wait)[0];
}

std::vector<size_t> Collection::apply(std::vector<WriteOp> ops, bool wait) {
  return apply_impl(std::move(ops), wait, nullptr);
}

std::vector<size_t> Collection::apply_sequenced(std::vector<WriteOp> ops, uint64_t sequence,
                                                uint64_t term) {
  const Sequence at{sequence, term};
  return apply_impl(std::move(ops), true, &at);
}

std::vector<size_t> Collection::apply_impl(std::vector<WriteOp> ops, bool wait,
                                           const Sequence* sequence) {
  std::lock_guard<std::mutex> writer(write_mu_);
  // Only this writer changes ids_ and entries_: reading them here needs no lock.
  // What the operations so far have made of the points they touched (nullopt: removed), over
  // the committed state; `order` keeps the first touch of each, so the write is deterministic.
  std::unordered_map<PointId, std::optional<PointWrite>> staged;
  std::vector<PointId> order;
  auto stage = [&](const PointId& id, std::optional<PointWrite> p) {
    auto [it, fresh] = staged.try_emplace(id);
    if (fresh) order.push_back(id);
    it->second = std::move(p);
  };
  auto exists = [&](const PointId& id) {
    auto it = staged.find(id);
    return it != staged.end() ? it->second.has_value() : internal_of(id).has_value();
  };
  // The point as the operations so far leave it (it must exist). A committed point's payload is
  // in memory; its vectors are read from the store only when `with_vectors`.
  auto current = [&](const PointId& id, bool with_vectors) -> PointWrite {
    if (auto it = staged.find(id); it != staged.end()) return *it->second;
    if (!with_vectors) {
      const std::optional<uint64_t> internal = internal_of(id);
      WP_THROW_INTERNAL_IF_NOT(internal, "point ", show_json(id.to_json()), " is not in memory");
      return PointWrite{id, {}, entries_[*internal].payload.unpack(), {}};
    }
    std::optional<PointStore::Record> r = store_->get(id);
    WP_THROW_INTERNAL_IF_NOT(r, "point ", show_json(id.to_json()), " is missing from the store");
    PointWrite p{id, std::move(r->vectors), std::move(r->payload), std::move(r->sparse)};
    split_multi(p.vectors, p.multi);
    return p;
  };
  auto not_found = [](const PointId& id) {
    return NotFoundError("No point with id " + show_json(id.to_json()) + " found");
  };
  // The ids an operation selects (each once), as the operations so far leave the collection.
  auto selected = [&](const WriteOp& op) {
    std::vector<PointId> ids;
    if (op.ids) {
      std::unordered_set<PointId> seen;
      for (const PointId& id : *op.ids) {
        if (!exists(id)) {
          if (op.kind != WriteOp::Kind::kDelete) throw not_found(id);
        } else if (seen.insert(id).second) {
          ids.push_back(id);
        }
      }
      return ids;
    }
    const Filter every;
    const Filter& filter = op.filter ? *op.filter : every;
    for_each_match(filter, [&](uint64_t i) {
      if (!staged.count(entries_[i].id)) ids.push_back(entries_[i].id);
    });
    for (const PointId& id : order) {
      const std::optional<PointWrite>& p = staged.at(id);
      if (!p) continue;
      const StagedFacts facts(*p, *this);
      if (filter.matches(id, p->payload, &facts)) ids.push_back(id);
    }
    return ids;
  };
  // Each vector names a space of the collection and has its dimension and valid values.
  auto check_vectors = [&](const NamedVectors& vs, const std::string& at) {
    for (const auto& [vname, v] : vs) {
      const std::string field = named_ ? at + "." + vname : at;
      if (const std::optional<size_t> m = find_multi(vname)) {
        throw UserError(field + ": " + show_json(json(vname)) + " is a multivector: give it as " +
                        "an array of vectors of " + std::to_string(multi_[*m].vectors.dim()) +
                        " numbers");
      }
      const VectorShape& shape = shapes_[space_of(vname, named_ ? at : at + "." + vname)];
      WP_THROW_IF_NOT(v.size() == shape.dim, field, ": expected dimension ", shape.dim, ", got ",
                      v.size());
      index::check_vector(v.data(), v.size(), shape.metric, field);
    }
  };
  // Each sparse vector names a sparse space and is valid (then sorted by index).
  auto check_sparse = [&](SparseVectors& vs, const std::string& at) {
    for (auto& [vname, v] : vs) {
      const std::string field = at + "." + vname;
      if (const std::optional<size_t> dense = find_space(vname)) {
        throw UserError(field + ": " + show_json(json(vname)) + " is a dense vector: give it as " +
                        "an array of " + std::to_string(shapes_[*dense].dim) +
                        " numbers, not a sparse vector");
      }
      if (const std::optional<size_t> m = find_multi(vname)) {
        throw UserError(field + ": " + show_json(json(vname)) + " is a multivector: give it as " +
                        "an array of vectors of " + std::to_string(multi_[*m].vectors.dim()) +
                        " numbers, not a sparse vector");
      }
      if (!find_sparse(vname)) (void)space_of(vname, at);  // throws the error listing the names
      sort_sparse(v, field);
    }
  };
  // Each multivector names a multivector space and is valid (then normalised for Cosine).
  auto check_multi_vectors = [&](MultiVectors& vs, const std::string& at) {
    for (auto& [vname, v] : vs) {
      const std::string field = named_ ? at + "." + vname : at;
      if (const std::optional<size_t> dense = find_space(vname)) {
        throw UserError(field + ": " + show_json(json(vname)) + " is a dense vector: give it as " +
                        "an array of " + std::to_string(shapes_[*dense].dim) +
                        " numbers, not an array of vectors");
      }
      WP_THROW_IF_NOT(!find_sparse(vname), field, ": ", show_json(json(vname)),
                      " is a sparse vector: give it as {\"indices\": [...], \"values\": [...]}, "
                      "not an array of vectors");
      const std::optional<size_t> m = find_multi(vname);
      if (!m) (void)space_of(vname, named_ ? at : field);  // throws the error listing the names
      const MultiVectorSpace& space = multi_[*m].vectors;
      check_multi(v, space.dim(), space.metric(), field);
    }
  };

  std::vector<size_t> counts(ops.size(), 0);
  for (size_t o = 0; o < ops.size(); ++o) {
    WriteOp& op = ops[o];
    switch (op.kind) {
      case WriteOp::Kind::kUpsert:
      case WriteOp::Kind::kUpdateVectors:
        for (size_t i = 0; i < op.points.size(); ++i) {
          PointWrite& p = op.points[i];
          const std::string at = op.where + "points[" + std::to_string(i) + "]";
          check_vectors(p.vectors, at + ".vector");
          check_sparse(p.sparse, at + ".vector");
          check_multi_vectors(p.multi, at + ".vector");
          if (op.kind == WriteOp::Kind::kUpdateVectors) {
            WP_THROW_IF_NOT(!p.vectors.empty() || !p.sparse.empty() || !p.multi.empty(), at,
                            ".vector: expected at least one vector");
            if (!exists(p.id)) throw not_found(p.id);
            // The vectors of other names stay: the point's are read when there may be some.
            PointWrite now = current(p.id, named_ || !sparse_.empty());
            for (auto& [vname, v] : p.vectors) now.vectors[vname] = std::move(v);
            for (auto& [vname, v] : p.sparse) now.sparse[vname] = std::move(v);
            for (auto& [vname, v] : p.multi) now.multi[vname] = std::move(v);
            p = std::move(now);
          } else {
            WP_THROW_IF_NOT(named_ || p.vectors.count("") || p.multi.count(""), at,
                            ".vector: missing");
            if (p.payload.is_null()) p.payload = json::object();
            WP_THROW_IF_NOT(p.payload.is_object(), at, ".payload: expected an object, got ",
                            show_json(p.payload));
          }
        }
        for (PointWrite& p : op.points) {
          const PointId id = p.id;
          stage(id, std::move(p));
        }
        counts[o] = op.points.size();
        break;
      case WriteOp::Kind::kDelete:
        for (const PointId& id : selected(op)) {
          stage(id, std::nullopt);
          ++counts[o];
        }
        break;
      case WriteOp::Kind::kDeleteVectors:
        WP_THROW_IF_NOT(!op.vector_names.empty(), op.where,
                        "vector: expected the names of the vectors to delete");
        for (const std::string& vname : op.vector_names) {
          if (!find_sparse(vname) && !find_multi(vname)) space_of(vname, op.where + "vector");
        }
        for (const PointId& id : selected(op)) {
          PointWrite p = current(id, true);
          for (const std::string& vname : op.vector_names) {
            p.vectors.erase(vname);
            p.sparse.erase(vname);
            p.multi.erase(vname);
          }
          stage(id, std::move(p));
          ++counts[o];
        }
        break;
      case WriteOp::Kind::kEditPayload:
        for (const PointId& id : selected(op)) {
          PointWrite p = current(id, true);
          op.edit(p.payload);
          WP_THROW_IF_NOT(p.payload.is_object(), op.where, "payload: expected an object, got ",
                          show_json(p.payload));
          stage(id, std::move(p));
          ++counts[o];
        }
        break;
    }
  }

  std::vector<PointWrite> points;
  std::vector<PointId> removals;
  for (const PointId& id : order) {
    std::optional<PointWrite>& p = staged.at(id);
    if (p) {
      points.push_back(std::move(*p));
    } else if (internal_of(id)) {
      removals.push_back(id);
    }
  }
  if (!points.empty() || !removals.empty() || sequence) {
    commit(std::move(points), removals, wait, sequence);
  }
  return counts;
}

void Collection::commit(std::vector<PointWrite> points, const std::vector<PointId>& removals,
                        bool wait, const Sequence* sequence) {
  std::vector<PointStore::Record> records;
  records.reserve(points.size());
  uint64_t next = next_internal_;
  size_t reused = 0;     // taken from the back of free_internal_ once the store has the batch
  size_t fresh_ids = 0;  // ids not in the collection yet
  for (PointWrite& p : points) {
    // A multivector is stored as its values, flat, under its name (split_multi reads it back).
    for (auto& [vname, v] : p.multi) p.vectors[vname] = std::move(v.values);
    const std::optional<uint64_t> known = internal_of(p.id);  // only this writer modifies ids_
    uint64_t internal;
    if (known) {
      internal = *known;
    } else {
      ++fresh_ids;
      if (reused < free_internal_.size()) {
        internal = free_internal_[free_internal_.size() - 1 - reused++];
      } else {
        WP_THROW_IF_NOT(next < kMaxInternal, "points: the collection holds at most ", kMaxInternal,
                        " points");
        internal = next++;
      }
    }
    records.push_back(
        {p.id, internal, std::move(p.vectors), std::move(p.payload), std::move(p.sparse)});
  }
  if (sequence) {
    const std::pair<std::string, std::string> meta{
        kAppliedSequenceMeta,
        std::to_string(sequence->sequence) + " " + std::to_string(sequence->term)};
    store_->apply(records, removals, wait, &meta);
    applied_term_ = sequence->term;
    applied_sequence_ = sequence->sequence;
  } else {
    store_->apply(records, removals, wait);
  }
  free_internal_.resize(free_internal_.size() - reused);
  if (!removals.empty()) apply_removals(removals);

  // Only changed vectors go to an index: an unchanged one would replace its vertex and its
  // repaired links, and re-upserting a collection would then wear its graph down (measured:
  // recall@10 at ef 64 from 0.995 to 0.983 on SIFT10K after two passes). A vector a point no
  // longer has leaves its index. Only this writer changes the indexes, so reading them here needs
  // no lock.
  struct Change {
    index::Matrix added;
    std::vector<index::label_t> labels, dropped;
    std::vector<size_t> added_by, dropped_by;  ///< the record each label and drop is of
  };
  std::vector<Change> changes(shapes_.size());
  for (size_t space = 0; space < shapes_.size(); ++space) {
    const VectorShape& shape = shapes_[space];
    const index::Index& idx = *indexes_[space];
    Change& c = changes[space];
    c.added = index::Matrix(records.size(), shape.dim);
    std::vector<float> stored(shape.dim), given(shape.dim);
    for (size_t i = 0; i < records.size(); ++i) {
      const PointStore::Record& r = records[i];
      const auto it = r.vectors.find(shape.name);
      const bool had = r.internal < entries_.size() && entries_[r.internal].live &&
                       idx.get_vector(r.internal, stored.data());
      if (it == r.vectors.end()) {
        if (had) {
          c.dropped.push_back(r.internal);
          c.dropped_by.push_back(i);
        }
        continue;
      }
      if (had) {
        given = it->second;
        if (shape.metric == index::Metric::kCosine) index::normalize(given.data(), given.size());
        if (std::memcmp(given.data(), stored.data(), given.size() * sizeof(float)) == 0) continue;
      }
      std::copy(it->second.begin(), it->second.end(), c.added.row(c.labels.size()));
      c.labels.push_back(r.internal);
      c.added_by.push_back(i);
    }
    c.added.n = c.labels.size();
  }
  // What growing the id tables takes (a rehash of every id) is made now, while searches go on,
  // and taken under the lock below. Only this writer changes ids_ and the indexes.
  std::optional<index::SlotTable<uint64_t>> grown_ids;
  if (ids_.grows_for(ids_.size() + fresh_ids)) {
    grown_ids = ids_.rehashed(ids_.size() + fresh_ids, id_of(), std::hash<PointId>());
  }
  for (size_t space = 0; space < shapes_.size(); ++space) {
    if (!changes[space].labels.empty()) indexes_[space]->prepare_add(changes[space].labels.size());
  }
  // A piece of the records at a time: their entries and their vectors change together under the
  // exclusive lock, and searches are answered between pieces and while new points are linked
  // in, each finding every point of the batch either as it was or as written.
  std::unique_lock<RwMutex> lock(mu_, std::defer_lock);
  std::vector<size_t> added_done(shapes_.size()), dropped_done(shapes_.size());
  uint64_t searches_seen = searches_.load(std::memory_order_relaxed);
  // Into an empty index the write goes whole: a graph built from a batch is better than one grown
  // a piece at a time, and there is nothing yet for a search to find.
  bool whole = false;
  for (const auto& idx : indexes_) whole = whole || idx->size() == 0;
  for (size_t begin = 0, end; begin < records.size(); begin = end) {
    end = whole ? records.size() : std::min(records.size(), begin + write_piece_);
    lock.lock();
    const auto piece_start = std::chrono::steady_clock::now();
    next_internal_ = next;  // filters size their bitsets by it: it covers every entry made
    if (grown_ids) {
      ids_ = std::move(*grown_ids);
      grown_ids.reset();
    }
    for (size_t i = begin; i < end; ++i) {
      PointStore::Record& r = records[i];
      if (r.internal >= entries_.size()) entries_.resize(r.internal + 1);
      Entry& e = entries_[r.internal];
      const uint32_t id32 = static_cast<uint32_t>(r.internal);
      const bool fresh = !e.live;  // a new point (a live entry at r.internal is this id's own)
      if (fresh) {
        ++live_;
      } else {
        if (!payload_indexes_.empty()) payload_indexes_.remove(id32, MsgValue(e.payload));
        payload_bytes_ -= e.payload.heap_bytes();
      }
      payload_indexes_.add(id32, r.payload);
      e = Entry{r.id, PackedPayload(r.payload), true};
      payload_bytes_ += e.payload.heap_bytes();
      if (fresh) ids_.assign(r.internal, id_of(), std::hash<PointId>());
      for (SparseSpace& space : sparse_) {
        auto it = r.sparse.find(space.name);
        if (it == r.sparse.end()) {
          space.index.remove(r.internal);
        } else if (const SparseVector* had = space.index.get(r.internal);
                   !had || *had != it->second) {
          space.index.set(r.internal, std::move(it->second));
        }
      }
      for (MultiSpace& space : multi_) {
        auto it = r.vectors.find(space.name);
        if (it == r.vectors.end()) {
          space.vectors.remove(r.internal);
        } else if (const std::vector<float>* had = space.vectors.get(r.internal);
                   !had || *had != it->second) {
          space.vectors.set(r.internal, std::move(it->second));
        }
      }
    }
    for (size_t space = 0; space < shapes_.size(); ++space) {
      Change& c = changes[space];
      size_t& a = added_done[space];
      size_t& d = dropped_done[space];
      const size_t a_end =
          std::lower_bound(c.added_by.begin() + a, c.added_by.end(), end) - c.added_by.begin();
      const size_t d_end = std::lower_bound(c.dropped_by.begin() + d, c.dropped_by.end(), end) -
                           c.dropped_by.begin();
      if (d_end > d) indexes_[space]->remove_batch(c.dropped.data() + d, d_end - d);
      if (a_end > a) {
        index::Index& idx = *indexes_[space];
        const index::MatrixView rows{c.added.row(a), a_end - a, c.added.d};
        // New points are linked in while searches run (below); a vector that replaces one is
        // linked here, so that no search finds the point missing in between, and so is a write
        // into an empty index (one build, nothing yet to find).
        bool replaces = whole;
        for (size_t i = a; i < a_end && !replaces; ++i) replaces = idx.contains(c.labels[i]);
        if (replaces) {
          idx.add(rows, c.labels.data() + a);
        } else {
          idx.place(rows, c.labels.data() + a);
        }
      }
      a = a_end;
      d = d_end;
    }
    lock.unlock();
    {
      // The slow part of indexing new points (linking them into a graph) beside searches, which
      // find each of them whole or not yet; nothing else changes the indexes meanwhile.
      std::shared_lock<RwMutex> reading(mu_);
      const uint64_t searched = searches_.load(std::memory_order_relaxed);
      const size_t threads = link_threads(searched != searches_seen);
      searches_seen = searched;
      for (auto& idx : indexes_) idx->link(threads);
    }
    if (!whole && end - begin >= kMinPiece) {
      const double per_point =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - piece_start).count() /
          static_cast<double>(end - begin);
      const double fits = std::chrono::duration<double>(kPieceTime).count() / per_point;
      write_piece_ = static_cast<size_t>(
          std::clamp(fits, static_cast<double>(kMinPiece), static_cast<double>(kMaxPiece)));
    }
  }
  if (touched_during_build_) {
    for (const Change& c : changes) {
      touched_during_build_->insert(c.labels.begin(), c.labels.end());
      touched_during_build_->insert(c.dropped.begin(), c.dropped.end());
    }
  }
}

void Collection::apply_removals(const std::vector<PointId>& ids) {
  std::unique_lock<RwMutex> lock(mu_);
  std::vector<index::label_t> labels;
  labels.reserve(ids.size());
  for (const PointId& id : ids) {
    const std::optional<uint64_t> internal = internal_of(id);
    if (!internal) continue;
    ids_.erase(id, id_of(), std::hash<PointId>());  // while the entry still holds the id
    labels.push_back(*internal);
    Entry& e = entries_[*internal];
    if (!payload_indexes_.empty()) {
      payload_indexes_.remove(static_cast<uint32_t>(*internal), MsgValue(e.payload));
    }
    payload_bytes_ -= e.payload.heap_bytes();
    e.live = false;
    e.payload = PackedPayload();
    --live_;
  }
  for (auto& idx : indexes_) idx->remove_batch(labels.data(), labels.size());  // one repair each
  for (SparseSpace& space : sparse_) {
    for (const index::label_t label : labels) space.index.remove(label);
  }
  for (MultiSpace& space : multi_) {
    for (const index::label_t label : labels) space.vectors.remove(label);
  }
  if (touched_during_build_) touched_during_build_->insert(labels.begin(), labels.end());
  free_internal_.insert(free_internal_.end(), labels.begin(), labels.end());
}

// Not an anonymous namespace: LazyFilter, a member class of Collection, holds one (g++ warns of
// that in a unity build, where this file is read as included: -Wsubobject-linkage).
namespace detail {

/// The points payload indexes give (Candidates), as a search's index tests them: by their test
/// when given by one (IdTest: a range over many values), else by a binary search of the sorted
/// ids while it has made few tests (one per 500 ids), then by a bitset of them, made once
/// (setting 500 bits costs about as much as 2 binary searches of a long list, so a search that
/// needs the bitset pays about half more than making it first). A walk at 50% of 1M points
/// tests ~350 points (more now and then): setting 500,000 bits was most of that search, and
/// zeroing a bitset of 1M ids half the cost of a selective one. Measured at 1M: with one test
/// per 200 ids, 10% matching lost ~10%; with one per 1000, 50% kept 4,705 QPS of the
/// 6,013-6,141. The index may list listed ids too (for_each), for a scan of the matches alone.
class PostingsFilter final : public index::IdFilter {
 public:
  PostingsFilter(Candidates c, uint64_t capacity) : c_(std::move(c)), capacity_(capacity) {}
  bool contains(uint64_t id) const override {
    if (const IdTest* t = c_.test()) {
      return id <= UINT32_MAX && t->contains(static_cast<uint32_t>(id));
    }
    const IdList& ids = c_.ids();
    if (!bits_ && ++tests_ * kSearchesPerBitset > ids.size()) {
      bits_ = std::make_unique<index::BitsetFilter>(capacity_, ids.data(), ids.size());
    }
    if (bits_) return bits_->contains(id);
    return id <= UINT32_MAX &&
           std::binary_search(ids.begin(), ids.end(), static_cast<uint32_t>(id));
  }
  int64_t count() const override { return c_.test() ? -1 : static_cast<int64_t>(c_.ids().size()); }
  const Candidates& candidates() const { return c_; }
  int64_t estimate() const override {
    return c_.test() ? static_cast<int64_t>(c_.test()->estimate) : count();
  }
  bool for_each(const std::function<void(uint64_t)>& fn) const override {
    if (c_.test()) return false;  // a scan tests every id: listing them costs more
    for (const uint32_t id : c_.ids()) fn(id);
    return true;
  }

 private:
  static constexpr size_t kSearchesPerBitset = 500;
  Candidates c_;
  uint64_t capacity_;
  mutable size_t tests_ = 0;
  mutable std::unique_ptr<index::BitsetFilter> bits_;
};

}  // namespace detail

using detail::PostingsFilter;

/// A filter the index tests point by point as it reaches them (index_filter): the payload of
/// each point among `narrow` (the payload indexes' superset of the matches, when they give
/// one), counted into payload_tests_. One search uses it, on one thread.
class Collection::LazyFilter final : public index::IdFilter {
 public:
  LazyFilter(const Collection& c, const Filter& f, int64_t estimate,
             std::optional<Candidates> narrow)
      : collection_(c), filter_(f), estimate_(estimate) {
    if (narrow) narrow_ = std::make_unique<PostingsFilter>(std::move(*narrow), c.next_internal_);
  }
  ~LazyFilter() override {
    collection_.payload_tests_.fetch_add(tested_, std::memory_order_relaxed);
  }
  bool contains(uint64_t i) const override {
    if (narrow_ && !narrow_->contains(i)) return false;
    ++tested_;
    return collection_.passes(filter_, i);
  }
  int64_t estimate() const override { return estimate_; }
  bool costly() const override { return true; }
  /// A scan's matches, listed by testing the payloads in order of the points (of the narrowing
  /// postings when given) as count() lists them, rather than in the index's order of slots,
  /// which reads each slot's label from its record first (at 60k points of 128 dimensions, 1%:
  /// the scan in order of slots ran at 79-88% of the listing's QPS).
  bool for_each(const std::function<void(uint64_t)>& fn) const override {
    collection_.for_each_match(filter_, narrow_ ? &narrow_->candidates() : nullptr, fn);
    return true;
  }

 private:
  const Collection& collection_;
  const Filter& filter_;
  int64_t estimate_;
  std::unique_ptr<PostingsFilter> narrow_;
  mutable uint64_t tested_ = 0;
};

/// What the filters ask of a stored point: the vectors it holds, those its spaces' indexes hold
/// (has_vector), and how its collection's text indexes read texts (match.text).
class Collection::EntryFacts final : public PointFacts {
 public:
  EntryFacts(const Collection& c, uint64_t i) : c_(c), i_(i) {}
  bool holds(std::string_view name) const override {
    if (const std::optional<size_t> space = c_.find_space(name)) {
      return c_.indexes_[*space]->contains(i_);
    }
    if (const std::optional<size_t> sparse = c_.find_sparse(name)) {
      return c_.sparse_[*sparse].index.contains(i_);
    }
    const std::optional<size_t> multi = c_.find_multi(name);
    return multi && c_.multi_[*multi].vectors.contains(i_);
  }
  const TextParams* text_params(std::string_view key) const override {
    return c_.text_params_of(key);
  }

 private:
  const Collection& c_;
  uint64_t i_;
};

bool Collection::filter_holds(const Filter& filter, uint64_t i) const {
  const EntryFacts facts(*this, i);
  return filter.matches(entries_[i].id, entries_[i].payload, &facts);
}

bool Collection::passes(const Filter& filter, uint64_t i) const {
  return i < entries_.size() && entries_[i].live && filter_holds(filter, i);
}

template <typename F>
void Collection::for_each_match(const Filter& filter, const F& fn) const {
  const std::optional<Candidates> c = filter.candidates(ListingLookup(payload_indexes_));
  for_each_match(filter, c ? &*c : nullptr, fn);
}

template <typename F>
void Collection::for_each_match(const Filter& filter, const Candidates* c, const F& fn) const {
  uint64_t tested = 0;
  if (c) {
    for (const uint32_t i : c->ids()) {
      if (c->exact) {
        if (i < entries_.size() && entries_[i].live) fn(i);
      } else {
        ++tested;
        if (passes(filter, i)) fn(i);
      }
    }
  } else {
    for (uint64_t i = 0; i < entries_.size(); ++i) {
      tested += entries_[i].live;
      if (passes(filter, i)) fn(i);
    }
  }
  payload_tests_.fetch_add(tested, std::memory_order_relaxed);
}

std::unique_ptr<index::IdFilter> Collection::index_filter(const Filter& filter, bool exact) const {
  std::optional<Candidates> c = filter.candidates(payload_indexes_);
  // A filter no payload index serves tests every payload to list its matches (20-50 ns each,
  // read in place: 4-10 ms a search at 200k points), and one they narrow to a superset tests
  // each point of it. When
  // probes of those points find matches, the index is given the test instead, with the number
  // of matches the probes estimate: a graph index then walks where that tests far fewer
  // payloads than listing (a walk tests about 1.5 ef / selectivity: about a thousand at 10%
  // matching, ef 64) and scans, testing every point as listing would, where it does not.
  // Probing stops at the 16th match (32 probes at 50%); when the probes find none (1024 of them
  // below about 0.3% matching), the matches are listed up front. `n`: the points a listing
  // tests, those of listed candidates or every point (candidates given by a test are probed
  // among all points, the test first).
  const bool listed = c && !c->test();
  const size_t n = listed ? c->ids().size() : entries_.size();
  if ((!c || !c->exact) && !exact && n >= 1024) {
    // At most 3% more tests where they find too few (10k points: 312 probes), 0.1% at 1M.
    const size_t probes = std::min<size_t>(1024, n / 32);
    size_t live = 0, tested = 0, matched = 0;
    for (size_t j = 0; j < probes && matched < 16; ++j) {
      const uint64_t at = spread_probe(j, n);
      const uint64_t i = listed ? c->ids()[at] : at;
      if (i >= entries_.size() || !entries_[i].live) continue;
      ++live;
      if (c && c->test() && !c->test()->contains(static_cast<uint32_t>(i))) continue;
      ++tested;
      matched += filter_holds(filter, i);
    }
    payload_tests_.fetch_add(tested, std::memory_order_relaxed);
    if (matched > 0) {
      const double estimate =
          static_cast<double>(matched) / static_cast<double>(live) * (listed ? n : live_);
      return std::make_unique<LazyFilter>(*this, filter, static_cast<int64_t>(estimate),
                                          std::move(c));
    }
  }
  // Else the matches are given as a set, so that the index knows their number and can choose
  // between walking the graph and scanning the matches alone. Payload indexes give them in
  // O(matches), lend them exactly as they hold them, or give a test of each point with their
  // estimated number (a range over many values).
  if (c && c->exact) {
    // Taken as listed: the payload indexes hold live points alone, and the index could not
    // return another. Reading each point's entry to check would cost more than the search at
    // large selectivities (half of 200k points: 64 B entries, 6 MB read a search).
    if (!c->test() && c->ids().empty()) return nullptr;
    return std::make_unique<PostingsFilter>(std::move(*c), next_internal_);
  }
  auto bits = std::make_unique<index::BitsetFilter>(next_internal_);
  for_each_match(filter, c ? &*c : nullptr, [&](uint64_t i) { bits->set(i); });
  if (bits->count() == 0) return nullptr;
  return bits;
}

std::unique_ptr<FieldIndex> Collection::build_field_index(const std::string& key,
                                                          PayloadSchema schema,
                                                          TextParams text) const {
  auto index = std::make_unique<FieldIndex>(key, schema, text);
  // Each point's packed payload is read in place (nothing unpacked).
  index->begin_bulk();
  for (uint64_t i = 0; i < entries_.size(); ++i) {
    if (entries_[i].live) index->add(static_cast<uint32_t>(i), MsgValue(entries_[i].payload));
  }
  index->end_bulk();
  return index;
}

void Collection::create_payload_index(const std::string& key, PayloadSchema schema,
                                      TextParams text) {
  std::lock_guard<std::mutex> writer(write_mu_);
  if (schema != PayloadSchema::kText) {  // a keyword index keeps its prefix option alone
    const bool prefix = schema == PayloadSchema::kKeyword && text.prefix;
    text = {};
    text.prefix = prefix;
  }
  // Built while searches go on: only this writer changes entries_.
  std::unique_ptr<FieldIndex> index = build_field_index(key, schema, text);
  CollectionConfig stored = config();
  stored.payload_schema[key] = schema;
  stored.text_params.erase(key);
  if (!text.is_default()) stored.text_params[key] = text;
  store_->put_meta(kConfigKey, stored.to_stored().dump());
  std::unique_lock<RwMutex> lock(mu_);
  payload_indexes_.install(std::move(index));
  config_.payload_schema = stored.payload_schema;
  config_.text_params = stored.text_params;
}

const TextParams* Collection::text_params_of(std::string_view key) const {
  if (config_.text_params.empty()) return nullptr;
  const auto it = config_.text_params.find(key);
  return it == config_.text_params.end() ? nullptr : &it->second;
}

std::vector<Collection::FacetHit> Collection::facet(const std::string& key, const Filter* filter,
                                                    size_t limit) const {
  std::shared_lock<RwMutex> lock(mu_);
  const FieldIndex* index = payload_indexes_.find(key);
  const bool countable = index && index->schema() != PayloadSchema::kText &&
                         index->schema() != PayloadSchema::kDatetime &&
                         index->schema() != PayloadSchema::kGeo;
  WP_THROW_IF_NOT(countable, "key: facet needs a keyword, integer, float, bool or uuid payload ",
                  "index of ", show_json(json(key)), " (PUT /collections/", name_, "/index)",
                  index ? std::string(", not a ") + payload_schema_name(index->schema()) : "");
  std::vector<uint64_t> passing;  // a bitmap of the points the filter holds for
  const bool filtered = filter && !filter->empty();
  if (filtered) {
    passing.assign(entries_.size() / 64 + 1, 0);
    for_each_match(*filter, [&](uint64_t i) { passing[i / 64] |= uint64_t{1} << (i % 64); });
  }
  std::vector<FacetHit> hits;
  index->for_each_posting([&](const json& value, const IdList& ids) {
    size_t n = ids.size();
    if (filtered) {
      n = 0;
      for (const uint32_t i : ids) n += (passing[i / 64] >> (i % 64)) & 1;
    }
    if (n) hits.push_back({value, n});
  });
  auto before = [](const FacetHit& a, const FacetHit& b) {
    return a.count != b.count ? a.count > b.count : a.value < b.value;
  };
  const size_t keep = std::min(limit, hits.size());
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(keep), hits.end(),
                    before);
  hits.resize(keep);
  return hits;
}

void Collection::delete_payload_index(const std::string& key) {
  std::lock_guard<std::mutex> writer(write_mu_);
  CollectionConfig stored = config();
  if (!stored.payload_schema.erase(key)) {
    throw NotFoundError("no payload index on " + show_json(json(key)) + " in collection " + name_);
  }
  stored.text_params.erase(key);
  store_->put_meta(kConfigKey, stored.to_stored().dump());
  std::unique_lock<RwMutex> lock(mu_);
  payload_indexes_.drop(key);
  config_.payload_schema = stored.payload_schema;
  config_.text_params = stored.text_params;
}

float Collection::score_of(float distance, index::Metric metric) const {
  // Qdrant reports Euclidean distance (not squared) for Euclid, the similarity otherwise.
  return metric == index::Metric::kL2 ? std::sqrt(std::max(distance, 0.0f)) : -distance;
}

PointRead Collection::read_point(uint64_t internal, bool with_payload,
                                 const VectorSelector& sel) const {
  const Entry& e = entries_[internal];
  PointRead p{e.id, with_payload ? e.payload.unpack() : json(), {}, {}, {}};
  if (!sel.any()) return p;
  for (const SparseSpace& space : sparse_) {
    if (!sel.wants(space.name)) continue;
    if (const SparseVector* v = space.index.get(internal)) p.sparse[space.name] = *v;
  }
  for (const MultiSpace& space : multi_) {
    if (!sel.wants(space.name)) continue;
    if (const std::vector<float>* v = space.vectors.get(internal)) {
      p.multi[space.name] = MultiVector{space.vectors.dim(), *v};
    }
  }
  for (size_t space = 0; space < shapes_.size(); ++space) {
    if (!sel.wants(shapes_[space].name)) continue;
    std::vector<float> v(shapes_[space].dim);
    if (indexes_[space]->get_vector(internal, v.data())) {
      p.vectors[shapes_[space].name] = std::move(v);
    }
  }
  return p;
}

size_t Collection::check_sparse_query(const SearchQuery& q) const {
  const std::optional<size_t> space = find_sparse(q.vector_name);
  WP_THROW_INTERNAL_IF_NOT(space, "no sparse space ", q.vector_name);
  WP_THROW_IF_NOT(q.sparse, "vector: ", show_json(json(q.vector_name)),
                  " is a sparse vector: search it with a sparse vector ({\"indices\": [...], "
                  "\"values\": [...]})");
  WP_THROW_IF_NOT(q.limit >= 1 && q.limit + q.offset <= index::kMaxK,
                  "limit + offset must be in 1..", index::kMaxK, ", got limit ", q.limit,
                  " and offset ", q.offset);
  check_selector(q.with_vector, "with_vector");
  return *space;
}

std::vector<ScoredPoint> Collection::search_sparse(size_t space, const SearchQuery& q,
                                                   const std::vector<PointId>* among) const {
  SparseVector query = *q.sparse;
  sort_sparse(query, "vector");
  std::shared_lock<RwMutex> lock(mu_);
  const SparseSpace& sp = sparse_[space];
  query = sp.index.weighed(query, sp.modifier);
  std::vector<SparseIndex::Hit> hits;
  const size_t k = q.limit + q.offset;
  if (among) {
    // Rescoring prefetched points: each scored by itself, as Qdrant's plain sparse search does.
    std::unordered_set<uint64_t> seen;
    for (const PointId& id : *among) {
      const std::optional<uint64_t> internal = internal_of(id);
      if (!internal || !seen.insert(*internal).second) continue;
      const SparseVector* v = sp.index.get(*internal);
      if (!v || (q.filter && !filter_holds(*q.filter, *internal))) continue;
      const float score = static_cast<float>(sparse_dot(query, *v));
      if (q.score_threshold && !(score >= *q.score_threshold)) continue;
      hits.push_back({score, *internal});
    }
    std::sort(hits.begin(), hits.end(), [](const SparseIndex::Hit& a, const SparseIndex::Hit& b) {
      return a.score != b.score ? a.score > b.score : a.id < b.id;
    });
  } else {
    std::unique_ptr<index::IdFilter> filter;
    if (q.filter && !q.filter->empty()) {
      // As a graph walk's filter: the index tests the best points first and stops at k that
      // pass, so a filter that no payload index serves is tested on those points alone.
      filter = index_filter(*q.filter, false);
      if (!filter) return {};  // no point matches
    }
    const index::IdFilter* f = filter.get();
    const std::function<bool(uint64_t)> accept =
        f ? std::function<bool(uint64_t)>([f](uint64_t i) { return f->contains(i); }) : nullptr;
    hits = sp.index.search(query, k, accept, q.score_threshold ? &*q.score_threshold : nullptr);
  }
  std::vector<ScoredPoint> out;
  for (size_t j = q.offset; j < hits.size() && out.size() < q.limit; ++j) {
    out.push_back({read_point(hits[j].id, q.with_payload, q.with_vector), hits[j].score});
  }
  return out;
}

void Collection::split_multi(NamedVectors& vectors, MultiVectors& multi) const {
  for (const MultiSpace& space : multi_) {
    auto it = vectors.find(space.name);
    if (it == vectors.end()) continue;
    multi[space.name] = MultiVector{space.vectors.dim(), std::move(it->second)};
    vectors.erase(it);
  }
}

std::vector<ScoredPoint> Collection::search_multi(const SearchQuery& q,
                                                  const std::vector<PointId>* among) const {
  const std::optional<size_t> m = find_multi(q.vector_name);
  WP_THROW_INTERNAL_IF_NOT(m, "no multivector space ", q.vector_name);
  const MultiVectorSpace& space = multi_[*m].vectors;
  WP_THROW_IF_NOT(q.multi, "vector: ", show_json(json(q.vector_name)),
                  " is a multivector: search it with an array of vectors of ", space.dim(),
                  " numbers");
  MultiVector query = *q.multi;
  check_multi(query, space.dim(), space.metric(), "vector");
  WP_THROW_IF_NOT(query.values.size() <= kMaxMultiQueryValues, "vector: a query of ", query.rows(),
                  " vectors of ", space.dim(), " values exceeds the ", kMaxMultiQueryValues,
                  " values a multivector query may hold");
  WP_THROW_IF_NOT(q.limit >= 1 && q.limit + q.offset <= index::kMaxK,
                  "limit + offset must be in 1..", index::kMaxK, ", got limit ", q.limit,
                  " and offset ", q.offset);
  check_selector(q.with_vector, "with_vector");
  // An exact scan (Qdrant's multivector search with hnsw m 0, as ColBERT reranking uses it):
  // the best k kept in a heap whose top is the worst of them.
  using Hit = std::pair<float, uint64_t>;  // score, internal id
  const auto better = [](const Hit& a, const Hit& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  const size_t k = q.limit + q.offset;
  std::vector<Hit> best;
  std::shared_lock<RwMutex> lock(mu_);
  auto consider = [&](uint64_t i) {
    if (!space.contains(i)) return;
    const float score = space.score(query, i);
    if (q.score_threshold && !(score >= *q.score_threshold)) return;
    const Hit hit{score, i};
    if (best.size() == k && !better(hit, best.front())) return;
    best.push_back(hit);
    std::push_heap(best.begin(), best.end(), better);
    if (best.size() > k) {
      std::pop_heap(best.begin(), best.end(), better);
      best.pop_back();
    }
  };
  if (among) {
    std::unordered_set<uint64_t> seen;
    for (const PointId& id : *among) {
      const std::optional<uint64_t> internal = internal_of(id);
      if (!internal || !seen.insert(*internal).second) continue;
      if (q.filter && !filter_holds(*q.filter, *internal)) continue;
      consider(*internal);
    }
  } else if (q.filter && !q.filter->empty()) {
    for_each_match(*q.filter, consider);
  } else {
    for (uint64_t i = 0; i < next_internal_; ++i) {
      if (entries_[i].live) consider(i);
    }
  }
  std::sort(best.begin(), best.end(), better);
  std::vector<ScoredPoint> out;
  for (size_t j = q.offset; j < best.size() && out.size() < q.limit; ++j) {
    out.push_back({read_point(best[j].second, q.with_payload, q.with_vector), best[j].first});
  }
  return out;
}

size_t Collection::check_query(const SearchQuery& q) const {
  const size_t space = space_of(q.vector_name, "using");
  WP_THROW_IF_NOT(!q.multi, "vector: ", show_json(json(q.vector_name)),
                  " is a dense vector: search it with an array of ", shapes_[space].dim,
                  " numbers, not an array of vectors");
  WP_THROW_IF_NOT(!q.sparse, "vector: ", show_json(json(q.vector_name)),
                  " is a dense vector: search it with an array of ", shapes_[space].dim,
                  " numbers, not a sparse vector");
  const VectorShape& shape = shapes_[space];
  WP_THROW_IF_NOT(q.vector.size() == shape.dim, "vector: expected dimension ", shape.dim, ", got ",
                  q.vector.size(), named_ ? " (vector " + show_json(json(shape.name)) + ")" : "");
  index::check_vector(q.vector.data(), q.vector.size(), shape.metric, "vector");
  WP_THROW_IF_NOT(q.limit >= 1 && q.limit + q.offset <= index::kMaxK,
                  "limit + offset must be in 1..", index::kMaxK, ", got limit ", q.limit,
                  " and offset ", q.offset);
  check_selector(q.with_vector, "with_vector");
  return space;
}

bool Collection::within(float score, const std::optional<float>& threshold, index::Metric metric) {
  if (!threshold) return true;
  return metric == index::Metric::kL2 ? score <= *threshold : score >= *threshold;
}

std::vector<ScoredPoint> Collection::rescore(const std::vector<PointId>& ids,
                                             const SearchQuery& q) const {
  if (find_sparse(q.vector_name)) return search_sparse(check_sparse_query(q), q, &ids);
  if (find_multi(q.vector_name)) return search_multi(q, &ids);
  const size_t space = check_query(q);
  const VectorShape& shape = shapes_[space];
  std::vector<float> query = q.vector;
  if (shape.metric == index::Metric::kCosine) index::normalize(query.data(), query.size());
  const index::DistanceFn distance = index::distance_fn(shape.metric, shape.dim);
  std::shared_lock<RwMutex> lock(mu_);
  const index::Index& idx = *indexes_[space];
  std::vector<std::pair<float, uint64_t>> scored;  // distance, internal id
  std::vector<float> v(shape.dim);
  std::unordered_set<uint64_t> seen;
  for (const PointId& id : ids) {
    const std::optional<uint64_t> internal = internal_of(id);
    if (!internal || !seen.insert(*internal).second) continue;
    if (q.filter && !filter_holds(*q.filter, *internal)) continue;
    if (idx.get_vector(*internal, v.data())) {
      scored.emplace_back(distance(query.data(), v.data(), shape.dim), *internal);
    }
  }
  std::sort(scored.begin(), scored.end());
  std::vector<ScoredPoint> out;
  for (size_t j = q.offset; j < scored.size() && out.size() < q.limit; ++j) {
    const float score = score_of(scored[j].first, shape.metric);
    if (!within(score, q.score_threshold, shape.metric)) break;
    out.push_back({read_point(scored[j].second, q.with_payload, q.with_vector), score});
  }
  return out;
}

void Collection::visit(
    const std::vector<PointId>& ids,
    const std::function<void(const PointId&, const PackedPayload&,
                             const std::function<bool(const Filter&)>&)>& fn) const {
  std::shared_lock<RwMutex> lock(mu_);
  std::unordered_set<uint64_t> seen;
  for (const PointId& id : ids) {
    const std::optional<uint64_t> internal = internal_of(id);
    if (!internal || !seen.insert(*internal).second) continue;
    const uint64_t i = *internal;
    const std::function<bool(const Filter&)> holds = [&](const Filter& f) {
      return filter_holds(f, i);
    };
    fn(entries_[i].id, entries_[i].payload, holds);
  }
}

std::vector<ScoredPoint> Collection::search(const SearchQuery& q) const {
  searches_.fetch_add(1, std::memory_order_relaxed);
  if (find_sparse(q.vector_name)) return search_sparse(check_sparse_query(q), q, nullptr);
  if (find_multi(q.vector_name)) return search_multi(q, nullptr);
  const size_t space = check_query(q);
  const VectorShape& shape = shapes_[space];
  std::shared_lock<RwMutex> lock(mu_);
  const index::Index& idx = *indexes_[space];
  std::vector<ScoredPoint> out;
  if (idx.size() == 0) return out;
  const size_t k = q.limit + q.offset;
  index::SearchParams params;
  params.ef = q.ef;
  params.exact = q.exact;
  std::unique_ptr<index::IdFilter> filter;
  if (q.filter && !q.filter->empty()) {
    filter = index_filter(*q.filter, q.exact);
    if (!filter) return out;  // no point matches
    params.filter = filter.get();
  }
  std::vector<index::label_t> labels(k);
  std::vector<float> distances(k);
  idx.search_one(q.vector.data(), k, params, labels.data(), distances.data());
  out.reserve(std::min(q.limit, idx.size()));
  for (size_t j = q.offset; j < k; ++j) {
    if (labels[j] == index::kNoLabel) break;
    const float score = score_of(distances[j], shape.metric);
    if (!within(score, q.score_threshold, shape.metric)) break;  // sorted: nothing further passes
    out.push_back({read_point(labels[j], q.with_payload, q.with_vector), score});
  }
  return out;
}

std::vector<PointRead> Collection::retrieve(const std::vector<PointId>& ids, bool with_payload,
                                            const VectorSelector& with_vector) const {
  check_selector(with_vector, "with_vector");
  std::shared_lock<RwMutex> lock(mu_);
  std::vector<PointRead> out;
  for (const PointId& id : ids) {
    if (const std::optional<uint64_t> internal = internal_of(id)) {
      out.push_back(read_point(*internal, with_payload, with_vector));
    }
  }
  return out;
}

size_t Collection::count(const Filter* filter) const {
  std::shared_lock<RwMutex> lock(mu_);
  if (!filter || filter->empty()) return live_;
  size_t n = 0;
  for_each_match(*filter, [&](uint64_t) { ++n; });
  return n;
}

std::vector<PointRead> Collection::sample(const Filter* filter, size_t n, bool with_payload,
                                          const VectorSelector& with_vector,
                                          const std::string* holding) const {
  check_selector(with_vector, "with_vector");
  const size_t space = holding ? space_of(*holding, "using") : SIZE_MAX;  // SIZE_MAX: any
  std::shared_lock<RwMutex> lock(mu_);
  const bool filtered = filter && !filter->empty();
  uint64_t tested = 0;
  auto passes_all = [&](uint64_t i) {
    const Entry& e = entries_[i];
    if (!e.live || (space != SIZE_MAX && !indexes_[space]->contains(i))) return false;
    if (!filtered) return true;
    ++tested;
    return filter_holds(*filter, i);
  };
  thread_local std::mt19937_64 rng(std::random_device{}());
  const uint64_t slots = entries_.size();
  std::vector<uint64_t> chosen;
  if (slots > 0 && n > 0) {
    // Slots drawn at random first, each tried once: every one that passes is uniform among the
    // points that pass. Where too few pass for 8 tries a point to find n (a selective filter, or
    // fewer than n points), one pass over every point keeps a uniform sample (a reservoir).
    std::unordered_set<uint64_t> tried;
    const uint64_t tries = std::min<uint64_t>(slots, 8 * static_cast<uint64_t>(n) + 64);
    while (tried.size() < tries && chosen.size() < n) {
      const uint64_t i = rng() % slots;
      if (tried.insert(i).second && passes_all(i)) chosen.push_back(i);
    }
    if (chosen.size() < n) {
      chosen.clear();
      uint64_t seen = 0;
      for (uint64_t i = 0; i < slots; ++i) {
        if (!passes_all(i)) continue;
        if (chosen.size() < n) {
          chosen.push_back(i);
        } else if (const uint64_t j = rng() % (seen + 1); j < n) {
          chosen[j] = i;
        }
        ++seen;
      }
      std::shuffle(chosen.begin(), chosen.end(), rng);
    }
  }
  payload_tests_.fetch_add(tested, std::memory_order_relaxed);
  std::vector<PointRead> out;
  out.reserve(chosen.size());
  for (const uint64_t i : chosen) out.push_back(read_point(i, with_payload, with_vector));
  return out;
}

Collection::Page Collection::scroll(const Filter* filter, size_t limit,
                                    const std::optional<PointId>& offset, bool with_payload,
                                    const VectorSelector& with_vector) const {
  WP_THROW_IF_NOT(limit >= 1 && limit <= index::kMaxK, "limit must be in 1..", index::kMaxK,
                  ", got ", limit);
  check_selector(with_vector, "with_vector");
  std::shared_lock<RwMutex> lock(mu_);
  Page page;
  // The store iterates in id order; memory says which points are live right now.
  store_->scan(offset, [&](PointStore::Record&& r) {
    const std::optional<uint64_t> internal = internal_of(r.id);
    if (!internal) return true;
    if (filter && !filter->empty() && !filter_holds(*filter, *internal)) return true;
    if (page.points.size() == limit) {
      page.next = r.id;
      return false;
    }
    page.points.push_back(read_point(*internal, with_payload, with_vector));
    return true;
  });
  return page;
}

std::vector<Collection::Ordered> Collection::ordered(const std::string& key, bool descending,
                                                     std::optional<double> start_from,
                                                     const Filter* filter, size_t limit,
                                                     bool with_payload,
                                                     const VectorSelector& with_vector) const {
  WP_THROW_IF_NOT(limit >= 1 && limit <= index::kMaxK, "limit must be in 1..", index::kMaxK,
                  ", got ", limit);
  check_selector(with_vector, "with_vector");
  std::shared_lock<RwMutex> lock(mu_);
  const FieldIndex* index = payload_indexes_.find(key);
  const auto no_index = [&] {
    return UserError("order_by.key: ordering needs an integer or float payload index of " +
                     show_json(json(key)) + " (PUT /collections/" + name_ + "/index)");
  };
  if (!index) throw no_index();
  std::vector<uint64_t> passing;  // a bitmap of the points the filter holds for
  const bool filtered = filter && !filter->empty();
  if (filtered) {
    passing.assign(entries_.size() / 64 + 1, 0);
    for_each_match(*filter, [&](uint64_t i) { passing[i / 64] |= uint64_t{1} << (i % 64); });
  }
  std::vector<Ordered> out;
  const bool numeric =
      index->for_each_number(descending, start_from, [&](double v, const IdList& ids) {
        for (const uint32_t i : ids) {
          if (filtered && !((passing[i / 64] >> (i % 64)) & 1)) continue;
          out.push_back({v, read_point(i, with_payload, with_vector)});
          if (out.size() == limit) return false;
        }
        return true;
      });
  if (!numeric) throw no_index();
  return out;
}

size_t Collection::most_vector_values() const {
  std::shared_lock<RwMutex> lock(mu_);
  size_t n = total_dim_;
  for (const SparseSpace& space : sparse_) n += 2 * space.index.max_size();
  for (const MultiSpace& space : multi_) n += space.vectors.max_values();
  return n;
}

size_t Collection::size() const {
  std::shared_lock<RwMutex> lock(mu_);
  return live_;
}

CollectionInfo Collection::info() const {
  std::shared_lock<RwMutex> lock(mu_);
  CollectionInfo info{live_, config_, entries_.size(), {}, {}};
  for (const auto& [key, index] : payload_indexes_.fields()) {
    info.payload_fields[key] = {index->schema(), index->points(), index->memory_bytes(),
                                index->text_params()};
  }
  for (size_t space = 0; space < shapes_.size(); ++space) {
    info.vectors[shapes_[space].name] = indexes_[space]->size();
  }
  for (const SparseSpace& space : sparse_) info.vectors[space.name] = space.index.size();
  for (const MultiSpace& space : multi_) info.vectors[space.name] = space.vectors.size();
  return info;
}

size_t MemoryUse::total() const {
  size_t n = payloads + payload_indexes + points;
  for (const auto& [name, bytes] : vectors) n += bytes;
  return n;
}

MemoryUse Collection::memory() const {
  std::shared_lock<RwMutex> lock(mu_);
  MemoryUse m;
  for (size_t space = 0; space < shapes_.size(); ++space) {
    m.vectors[shapes_[space].name] = indexes_[space]->memory_bytes();
  }
  for (const SparseSpace& space : sparse_) m.vectors[space.name] = space.index.memory_bytes();
  for (const MultiSpace& space : multi_) m.vectors[space.name] = space.vectors.memory_bytes();
  m.payloads = payload_bytes_;
  for (const auto& [key, index] : payload_indexes_.fields()) {
    m.payload_indexes += index->memory_bytes();
  }
  m.points =
      entries_.memory_bytes() + free_internal_.capacity() * sizeof(uint64_t) + ids_.memory_bytes();
  return m;
}

void Collection::save_index() const {
  std::lock_guard<std::mutex> writer(write_mu_);  // not while a write links points in
  std::shared_lock<RwMutex> lock(mu_);
  // A server restarted and stopped without a write wrote its files again (2.8 s at 1M points).
  const uint64_t sequence = store_->sequence();
  bool held = files_at_ == sequence;
  for (size_t space = 0; held && space < shapes_.size(); ++space) {
    const auto [file, meta] = index_files(dir_, named_, space);
    held = fs::exists(file) && fs::exists(meta);
  }
  if (held) return;
  save_index_files(dir_, sequence);
  files_at_ = sequence;
}

void Collection::checkpoint_to(const std::string& dir) {
  std::lock_guard<std::mutex> writer(write_mu_);
  std::shared_lock<RwMutex> lock(mu_);
  fs::create_directories(dir);
  const uint64_t seq = store_->checkpoint((fs::path(dir) / "store").string());
  save_index_files(dir, seq);
}

void Collection::save_index_files(const std::string& folder, uint64_t sequence) const {
  for (size_t space = 0; space < shapes_.size(); ++space) {
    const auto [file, meta] = index_files(folder, named_, space);
    fs::remove(meta);  // a crash between the two writes must not pair a new file with old meta
    indexes_[space]->save(file.string());
    const std::string tmp = meta.string() + ".tmp";
    {
      std::ofstream out(tmp);
      out << json{{"sequence", sequence},
                  {"points", indexes_[space]->size()},
                  {"vector", shapes_[space].name}}
                 .dump();
      WP_THROW_INTERNAL_IF_NOT(out.flush(), "cannot write ", tmp);
    }
    fs::rename(tmp, meta);
  }
}

}  // namespace wp::engine
