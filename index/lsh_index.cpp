#include "index/lsh_index.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "index/error.h"
#include "index/index_file.h"
#include "index/neighbor_selection.h"
#include "index/omp_team.h"
#include "index/visited_set.h"

namespace wp::index {

void LshParams::validate() const {
  kBits.check(static_cast<double>(bits));
  kTables.check(static_cast<double>(tables));
  kKeyBits.check(static_cast<double>(key_bits));
  kProbes.check(static_cast<double>(probes));
  kCandidates.check(static_cast<double>(candidates));
}

LshIndex::LshIndex(size_t dim, Metric metric, const LshParams& params)
    : LshIndex(dim, metric, params, HashModel::random(dim, params.bits, params.seed)) {}

LshIndex::LshIndex(size_t dim, Metric metric, const LshParams& params, HashModel model)
    : Index(dim, metric), params_(params), model_(std::move(model)) {
  params_.validate();
  model_.validate();
  WP_THROW_IF_NOT(model_.input_dim == dim, "the hash model takes ", model_.input_dim,
                  "-dimensional vectors, the index holds ", dim);
  params_.bits = model_.bits;
  WP_THROW_IF_NOT(params_.key_bits <= model_.bits, "key_bits (", params_.key_bits,
                  ") exceeds the model's ", model_.bits, " bits");
  words_ = model_.words();
  dist_ = distance_fn(metric, dim);
  tables_.resize(params_.tables);
}

size_t LshIndex::key_bits() const {
  return key_positions_.empty() ? 0 : key_positions_[0].size();
}

bool LshIndex::get_vector(label_t id, float* out) const {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return false;
  std::copy(vec(it->second), vec(it->second) + dim_, out);
  return true;
}

bool LshIndex::get_code(label_t id, uint64_t* out) const {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return false;
  std::copy(code(it->second), code(it->second) + words_, out);
  return true;
}

uint32_t LshIndex::table_key(size_t t, const uint64_t* c) const {
  uint32_t key = 0;
  const auto& pos = key_positions_[t];
  for (size_t j = 0; j < pos.size(); ++j) {
    key |= static_cast<uint32_t>((c[pos[j] >> 6] >> (pos[j] & 63)) & 1) << j;
  }
  return key;
}

void LshIndex::table_insert(uint32_t s) {
  for (size_t t = 0; t < tables_.size(); ++t) tables_[t][table_key(t, code(s))].push_back(s);
}

void LshIndex::table_erase(uint32_t s) {
  for (size_t t = 0; t < tables_.size(); ++t) {
    auto it = tables_[t].find(table_key(t, code(s)));
    if (it == tables_[t].end()) continue;
    auto& v = it->second;
    auto at = std::find(v.begin(), v.end(), s);
    if (at != v.end()) {
      *at = v.back();
      v.pop_back();
    }
    if (v.empty()) tables_[t].erase(it);
  }
}

void LshIndex::build_tables() {
  // Table t's key: b bit positions from a seeded permutation of the P bits, taken in turn, so
  // that tables use disjoint bits while L x b <= P.
  // Auto key length: about 16 points per bucket at the current size, 4..24 bits.
  size_t b = params_.key_bits;
  if (b == 0) {
    b = 4;
    while (b < 24 && (labels_.size() >> (b + 1)) >= 16) ++b;
    b = std::min(b, model_.bits);
  }
  std::vector<uint16_t> perm(model_.bits);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), std::mt19937_64(params_.seed + 1));
  key_positions_.assign(params_.tables, {});
  for (size_t t = 0; t < params_.tables; ++t) {
    for (size_t j = 0; j < b; ++j) key_positions_[t].push_back(perm[(t * b + j) % model_.bits]);
  }
  for (auto& t : tables_) t.clear();
  for (uint32_t s = 0; s < labels_.size(); ++s) table_insert(s);
}

void LshIndex::refit() {
  // b_p = -median_i (w_p . e(x_i)): every bit splits the stored data in half.
  const size_t n = labels_.size(), P = model_.bits;
  std::vector<float> proj(n * P);
  std::fill(model_.offsets.begin(), model_.offsets.end(), 0.0f);
#pragma omp parallel
  {
    HashModel::Scratch scratch;
#pragma omp for schedule(dynamic, 64)
    for (int64_t s = 0; s < static_cast<int64_t>(n); ++s) {
      model_.project(vec(s), proj.data() + s * P, scratch);
    }
  }
#pragma omp parallel
  {
    std::vector<float> col(n);
#pragma omp for
    for (int64_t p = 0; p < static_cast<int64_t>(P); ++p) {
      for (size_t s = 0; s < n; ++s) col[s] = proj[s * P + p];
      std::nth_element(col.begin(), col.begin() + n / 2, col.end());
      model_.offsets[p] = -col[n / 2];
    }
  }
#pragma omp parallel for
  for (int64_t s = 0; s < static_cast<int64_t>(n); ++s) {
    float* row = proj.data() + s * P;
    for (size_t p = 0; p < P; ++p) row[p] += model_.offsets[p];
    HashModel::pack(row, P, codes_.data() + s * words_);
  }
  fitted_at_ = n;
  build_tables();
}

void LshIndex::add(MatrixView x, const label_t* ids) {
  check_vectors(x, "vectors");
  const OmpTeamScope team(insert_team(0));  // the hashing, the refits
  // Stage the batch: a replaced id keeps its slot, a new one takes the next slot.
  std::vector<uint32_t> slot(x.n);
  for (size_t i = 0; i < x.n; ++i) {
    auto it = slot_of_.find(ids[i]);
    if (it != slot_of_.end()) {
      slot[i] = it->second;
      table_erase(it->second);
    } else {
      slot[i] = static_cast<uint32_t>(labels_.size());
      slot_of_.emplace(ids[i], slot[i]);
      labels_.push_back(ids[i]);
    }
  }
  codes_.resize(labels_.size() * words_);
  vectors_.resize(labels_.size() * dim_);
  for (size_t i = 0; i < x.n; ++i) {
    float* v = vectors_.data() + size_t{slot[i]} * dim_;
    std::copy(x.row(i), x.row(i) + dim_, v);
    if (metric_ == Metric::kCosine) normalize(v, dim_);
  }
  // Each time the data has grown 4x (from 64 points) random planes refit their thresholds, so
  // that bits stay balanced as a collection fills up, and the tables re-choose their key length;
  // the amortised cost is O(1) per point.
  const size_t n = labels_.size();
  const bool grown = n >= 64 && n >= 4 * fitted_at_;
  if (grown && model_.fit_offsets) {
    refit();
    return;
  }
#pragma omp parallel for schedule(dynamic, 64) if (x.n > 256)
  for (int64_t i = 0; i < static_cast<int64_t>(x.n); ++i) {
    const uint32_t s = slot[i];
    thread_local std::vector<float> proj;
    thread_local HashModel::Scratch scratch;
    proj.resize(model_.bits);
    model_.project(vec(s), proj.data(), scratch);
    HashModel::pack(proj.data(), model_.bits, codes_.data() + size_t{s} * words_);
  }
  if (grown || key_positions_.size() != tables_.size()) {
    fitted_at_ = n;
    build_tables();
    return;
  }
  for (size_t i = 0; i < x.n; ++i) {
    // A batch may hold an id twice: insert each slot once.
    if (i + 1 < x.n && std::find(slot.begin() + i + 1, slot.end(), slot[i]) != slot.end()) continue;
    table_insert(slot[i]);
  }
}

bool LshIndex::remove(label_t id) {
  auto it = slot_of_.find(id);
  if (it == slot_of_.end()) return false;
  const uint32_t hole = it->second;
  const uint32_t last = static_cast<uint32_t>(labels_.size() - 1);
  table_erase(hole);
  slot_of_.erase(it);
  if (hole != last) {
    // The last slot moves into the hole: codes and vectors stay dense for the scan.
    table_erase(last);
    std::copy(code(last), code(last) + words_, codes_.data() + size_t{hole} * words_);
    std::copy(vec(last), vec(last) + dim_, vectors_.data() + size_t{hole} * dim_);
    labels_[hole] = labels_[last];
    slot_of_[labels_[hole]] = hole;
    table_insert(hole);
  }
  labels_.pop_back();
  codes_.resize(labels_.size() * words_);
  vectors_.resize(labels_.size() * dim_);
  return true;
}

namespace {
/// Perturbation sets of query-directed multi-probe: subsets of the key's bits, by increasing sum
/// of their (sorted) confidences; generated with the shift/expand heap of Lv et al. 2007.
struct ProbeSet {
  float score;
  uint32_t flip;  ///< the key bits this set flips
  uint8_t last;   ///< the largest index into the sorted confidences it holds
  bool operator>(const ProbeSet& o) const { return score > o.score; }
};
}  // namespace

void LshIndex::collect(const uint64_t* qcode, const float* margins, const IdFilter* filter,
                       std::vector<uint32_t>& out) const {
  out.clear();
  const size_t n = labels_.size();
  thread_local VisitedSet seen;
  seen.start(n);
  const size_t b = key_positions_.empty() ? 0 : key_positions_[0].size();
  std::vector<std::pair<float, uint8_t>> conf(b);
  for (size_t t = 0; t < tables_.size(); ++t) {
    const auto& pos = key_positions_[t];
    const uint32_t key = table_key(t, qcode);
    for (size_t j = 0; j < b; ++j) conf[j] = {std::fabs(margins[pos[j]]), static_cast<uint8_t>(j)};
    std::sort(conf.begin(), conf.end());
    auto visit = [&](uint32_t k) {
      auto it = tables_[t].find(k);
      if (it == tables_[t].end()) return;
      for (uint32_t s : it->second) {
        if (seen.test_and_set(s)) continue;
        if (!filter || filter->contains(labels_[s])) out.push_back(s);
      }
    };
    visit(key);
    if (b == 0) continue;
    // A min-heap by score in a reused buffer (no allocation per probe).
    thread_local std::vector<ProbeSet> heap;
    heap.clear();
    auto bit = [&](size_t i) { return uint32_t{1} << conf[i].second; };
    heap.push_back({conf[0].first, bit(0), 0});
    for (size_t probe = 1; probe < params_.probes && !heap.empty(); ++probe) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>());
      const ProbeSet top = heap.back();
      heap.pop_back();
      visit(key ^ top.flip);
      const size_t last = top.last;
      if (last + 1 < b) {
        // shift: replace the last element by the next; expand: add the next.
        heap.push_back({top.score + conf[last + 1].first - conf[last].first,
                        top.flip ^ bit(last) ^ bit(last + 1), static_cast<uint8_t>(last + 1)});
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
        heap.push_back({top.score + conf[last + 1].first, top.flip ^ bit(last + 1),
                        static_cast<uint8_t>(last + 1)});
        std::push_heap(heap.begin(), heap.end(), std::greater<>());
      }
    }
  }
}

namespace {
/**
 * The `want` candidates nearest by Hamming distance, by a counting selection over the P + 2
 * possible values: the threshold T below which fewer than `want` lie, every one below T and
 * enough at T. ham[i] is the distance of slot i (all_slots: `cand` is then overwritten) or of
 * cand[i]; P + 1 marks a filtered-out slot, never taken.
 */
void select_nearest(const std::vector<uint32_t>& ham, size_t bits, size_t want, bool all_slots,
                    std::vector<uint32_t>& cand) {
  thread_local std::vector<uint32_t> hist;
  hist.assign(bits + 2, 0);
  for (uint32_t h : ham) ++hist[h];
  const size_t usable = ham.size() - hist[bits + 1];
  const size_t take = std::min(want, usable);
  size_t below = 0;
  uint32_t T = 0;
  while (below + hist[T] < take) below += hist[T++];
  size_t at_T = take - below;
  size_t w = 0;
  if (all_slots) cand.resize(ham.size());
  for (size_t i = 0; i < ham.size(); ++i) {
    if (ham[i] < T || (ham[i] == T && at_T > 0 && (at_T--, true))) {
      cand[w++] = all_slots ? static_cast<uint32_t>(i) : cand[i];
    }
  }
  cand.resize(w);
}
}  // namespace

SearchStats LshIndex::search_one(const float* q, size_t k, const SearchParams& params,
                                 label_t* labels, float* distances) const {
  std::fill(labels, labels + k, kNoLabel);
  std::fill(distances, distances + k, 0.0f);
  SearchStats st;
  const size_t n = labels_.size();
  if (n == 0) return st;
  thread_local std::vector<float> qn, proj;
  thread_local HashModel::Scratch scratch;
  thread_local std::vector<uint64_t> qcode;
  thread_local std::vector<uint32_t> cand, ham;
  thread_local std::vector<Candidate> best;
  if (metric_ == Metric::kCosine) {
    qn.assign(q, q + dim_);
    normalize(qn.data(), dim_);
    q = qn.data();
  }
  proj.resize(model_.bits);
  model_.project(q, proj.data(), scratch);
  qcode.resize(words_);
  HashModel::pack(proj.data(), model_.bits, qcode.data());

  const size_t want = std::max(k, params.ef ? params.ef : params_.candidates);
  const HammingScanFn scan = kernels().hamming_scan;
  auto scan_all = [&] {
    ham.resize(n);
    scan(qcode.data(), codes_.data(), n, words_, ham.data());
    if (params.filter) {
      for (uint32_t s = 0; s < n; ++s) {
        if (!params.filter->contains(labels_[s])) ham[s] = static_cast<uint32_t>(model_.bits + 1);
      }
    }
    select_nearest(ham, model_.bits, want, true, cand);
  };
  if (params.exact) {
    cand.clear();
    for (uint32_t s = 0; s < n; ++s) {
      if (!params.filter || params.filter->contains(labels_[s])) cand.push_back(s);
    }
  } else if (tables_.empty()) {
    scan_all();
  } else {
    collect(qcode.data(), proj.data(), params.filter, cand);
    if (cand.size() < k) {
      // Too few candidates in the probed buckets (a sparse region, a selective filter).
      scan_all();
    } else if (cand.size() > want) {
      ham.resize(cand.size());
      for (size_t i = 0; i < cand.size(); ++i)
        scan(qcode.data(), code(cand[i]), 1, words_, &ham[i]);
      select_nearest(ham, model_.bits, want, false, cand);
    }
  }
  best.clear();
  for (uint32_t s : cand) best.push_back({dist_(q, vec(s), dim_), s});
  st.distance_computations = best.size();
  const size_t m = std::min(k, best.size());
  std::partial_sort(best.begin(), best.begin() + m, best.end());
  for (size_t j = 0; j < m; ++j) {
    labels[j] = labels_[best[j].id];
    distances[j] = best[j].distance;
  }
  return st;
}

size_t LshIndex::memory_bytes() const {
  size_t table_bytes = 0;
  for (const auto& t : tables_) {
    table_bytes += t.bucket_count() * sizeof(void*);
    for (const auto& [key, v] : t) table_bytes += sizeof(key) + sizeof(v) + 16 + v.capacity() * 4;
  }
  return codes_.capacity() * sizeof(uint64_t) + vectors_.capacity() * sizeof(float) +
         labels_.capacity() * sizeof(label_t) +
         slot_of_.size() * (sizeof(label_t) + sizeof(uint32_t) + 2 * sizeof(void*)) +
         model_.planes.size() * sizeof(float) + table_bytes;
}

void LshIndex::save(const std::string& path) const {
  BinaryWriter out(path, IndexType::kLsh);
  write_dim_metric(out);
  out.write<uint64_t>(params_.bits);
  out.write<uint64_t>(params_.tables);
  out.write<uint64_t>(params_.key_bits);
  out.write<uint64_t>(params_.probes);
  out.write<uint64_t>(params_.candidates);
  out.write<uint64_t>(params_.seed);
  out.write<uint64_t>(fitted_at_);
  model_.write(out);
  out.write_vector(labels_);
  out.write_vector(codes_);
  out.write_vector(vectors_);
  out.finish();
}

std::unique_ptr<Index> LshIndex::load(BinaryReader& in) {
  const auto [dim, metric] = read_dim_metric(in);
  LshParams p;
  p.bits = in.read<uint64_t>();
  p.tables = in.read<uint64_t>();
  p.key_bits = in.read<uint64_t>();
  p.probes = in.read<uint64_t>();
  p.candidates = in.read<uint64_t>();
  p.seed = in.read<uint64_t>();
  const uint64_t fitted_at = in.read<uint64_t>();
  HashModel model = HashModel::read(in);
  std::unique_ptr<LshIndex> idx;
  try {
    idx = std::make_unique<LshIndex>(dim, metric, p, std::move(model));
  } catch (const UserError& e) {
    in.check(false, e.what());
  }
  idx->fitted_at_ = fitted_at;
  idx->labels_ = in.read_vector<label_t>(in.remaining() / sizeof(label_t));
  const size_t n = idx->labels_.size();
  idx->codes_ = in.read_vector<uint64_t>(in.remaining() / sizeof(uint64_t));
  in.check(idx->codes_.size() == n * idx->words_, "code block does not match the id count");
  idx->vectors_ = in.read_vector<float>(in.remaining() / sizeof(float));
  in.check(idx->vectors_.size() == n * dim, "vector block does not match the id count");
  in.expect_end();
  for (uint32_t s = 0; s < n; ++s) {
    in.check(idx->slot_of_.emplace(idx->labels_[s], s).second, "duplicate id");
  }
  idx->build_tables();
  return idx;
}

}  // namespace wp::index
