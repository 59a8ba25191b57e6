#include "engine/sparse_vector.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "index/error.h"

namespace wp::engine {

void sort_sparse(SparseVector& v, const std::string& field) {
  WP_THROW_IF_NOT(v.indices.size() == v.values.size(), field, ": ", v.indices.size(),
                  " indices and ", v.values.size(),
                  " values: a sparse vector has one value per index");
  WP_THROW_IF_NOT(v.indices.size() <= kMaxSparseSize, field, ": ", v.indices.size(),
                  " indices; a sparse vector has at most ", kMaxSparseSize);
  for (size_t i = 0; i < v.values.size(); ++i) {
    WP_THROW_IF_NOT(std::isfinite(v.values[i]), field, ".values[", i, "]: ", v.values[i],
                    " is not a finite 32-bit float");
  }
  if (std::is_sorted(v.indices.begin(), v.indices.end())) {
    for (size_t i = 1; i < v.indices.size(); ++i) {
      WP_THROW_IF_NOT(v.indices[i] != v.indices[i - 1], field, ".indices: index ", v.indices[i],
                      " is given twice");
    }
    return;
  }
  std::vector<size_t> order(v.indices.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return v.indices[a] < v.indices[b]; });
  SparseVector sorted;
  sorted.indices.reserve(order.size());
  sorted.values.reserve(order.size());
  for (size_t i : order) {
    WP_THROW_IF_NOT(sorted.indices.empty() || sorted.indices.back() != v.indices[i], field,
                    ".indices: index ", v.indices[i], " is given twice");
    sorted.indices.push_back(v.indices[i]);
    sorted.values.push_back(v.values[i]);
  }
  v = std::move(sorted);
}

double sparse_dot(const SparseVector& a, const SparseVector& b) {
  double sum = 0;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a.indices[i] < b.indices[j]) {
      ++i;
    } else if (b.indices[j] < a.indices[i]) {
      ++j;
    } else {
      sum += double{a.values[i++]} * double{b.values[j++]};
    }
  }
  return sum;
}

const char* sparse_modifier_name(SparseModifier m) {
  return m == SparseModifier::kIdf ? "idf" : "none";
}

namespace {
size_t heap_bytes(const SparseVector& v) {
  return v.indices.capacity() * sizeof(uint32_t) + v.values.capacity() * sizeof(float);
}
}  // namespace

const SparseVector* SparseIndex::get(uint64_t id) const {
  return id < has_.size() && has_[id] ? &vectors_[id] : nullptr;
}

void SparseIndex::unpost(uint64_t id, const SparseVector& v) {
  for (uint32_t dim : v.indices) {
    auto it = postings_.find(dim);
    if (it == postings_.end()) continue;
    std::vector<Posting>& list = it->second;
    for (size_t j = 0; j < list.size(); ++j) {
      if (list[j].id != id) continue;
      list[j] = list.back();
      list.pop_back();
      --posted_;
      break;
    }
    if (list.empty()) postings_.erase(it);
  }
}

void SparseIndex::set(uint64_t id, SparseVector v) {
  WP_THROW_INTERNAL_IF_NOT(id <= UINT32_MAX, "sparse vector of internal id ", id);
  if (id >= has_.size()) {
    has_.resize(id + 1);
    vectors_.resize(id + 1);
  }
  if (has_[id]) {
    unpost(id, vectors_[id]);
    if (vectors_[id].size() > 0) --nonempty_;
  } else {
    has_[id] = true;
    ++count_;
  }
  if (v.size() > 0) ++nonempty_;
  max_size_ = std::max(max_size_, v.size());
  for (size_t j = 0; j < v.size(); ++j) {
    postings_[v.indices[j]].push_back({static_cast<uint32_t>(id), v.values[j]});
  }
  posted_ += v.size();
  vector_bytes_ -= heap_bytes(vectors_[id]);
  vector_bytes_ += heap_bytes(v);
  vectors_[id] = std::move(v);
}

bool SparseIndex::remove(uint64_t id) {
  if (!contains(id)) return false;
  unpost(id, vectors_[id]);
  if (vectors_[id].size() > 0) --nonempty_;
  vector_bytes_ -= heap_bytes(vectors_[id]);
  vectors_[id] = SparseVector();
  has_[id] = false;
  --count_;
  return true;
}

double SparseIndex::idf(uint32_t dim) const {
  const auto it = postings_.find(dim);
  const double n = it == postings_.end() ? 0.0 : static_cast<double>(it->second.size());
  const double total = static_cast<double>(nonempty_);
  return std::log((total - n + 0.5) / (n + 0.5) + 1.0);
}

SparseVector SparseIndex::weighed(const SparseVector& query, SparseModifier modifier) const {
  SparseVector q = query;
  if (modifier == SparseModifier::kIdf) {
    for (size_t j = 0; j < q.size(); ++j) {
      q.values[j] = static_cast<float>(q.values[j] * idf(q.indices[j]));
    }
  }
  return q;
}

std::vector<SparseIndex::Hit> SparseIndex::search(const SparseVector& query, size_t k,
                                                  const std::function<bool(uint64_t)>& accept,
                                                  const float* threshold) const {
  // Scores are summed in an array over the internal ids, kept by each thread and cleared where
  // touched, and the points reached listed in arrays kept alike: no allocation per query but
  // its answer once they are as long as the space's ids.
  thread_local std::vector<float> sums;
  thread_local std::vector<uint32_t> touched;
  thread_local std::vector<bool> seen;
  thread_local std::vector<Hit> hits;  // every point reached, scored
  if (sums.size() < has_.size()) {
    sums.resize(has_.size());
    seen.resize(has_.size());
  }
  touched.clear();
  for (size_t j = 0; j < query.size(); ++j) {
    const auto it = postings_.find(query.indices[j]);
    if (it == postings_.end()) continue;
    const float w = query.values[j];
    for (const Posting& p : it->second) {
      if (!seen[p.id]) {
        seen[p.id] = true;
        touched.push_back(p.id);
      }
      sums[p.id] += w * p.value;
    }
  }
  hits.clear();
  for (uint32_t id : touched) {
    const float score = sums[id];
    sums[id] = 0;
    seen[id] = false;
    if (threshold && !(score >= *threshold)) continue;
    hits.push_back({score, id});
  }
  auto better = [](const Hit& a, const Hit& b) {
    return a.score != b.score ? a.score > b.score : a.id < b.id;
  };
  if (accept) {
    // The filter is tested best first, only until k points pass: a query over common dimensions
    // reaches most points, and testing each (a payload read where no index serves the filter)
    // was half its time (100k points, 4 Zipf terms: 3.2 ms filtered against 1.9 ms).
    auto worse = [&](const Hit& a, const Hit& b) { return better(b, a); };
    std::make_heap(hits.begin(), hits.end(), worse);
    std::vector<Hit> kept;
    for (auto end = hits.end(); end != hits.begin() && kept.size() < k; --end) {
      std::pop_heap(hits.begin(), end, worse);
      if (accept((end - 1)->id)) kept.push_back(*(end - 1));
    }
    return kept;
  }
  const auto top = hits.begin() + static_cast<std::ptrdiff_t>(std::min(k, hits.size()));
  std::partial_sort(hits.begin(), top, hits.end(), better);
  return std::vector<Hit>(hits.begin(), top);
}

size_t SparseIndex::memory_bytes() const {
  size_t bytes = vectors_.capacity() * sizeof(SparseVector) + has_.capacity() / 8 + vector_bytes_;
  bytes += posted_ * sizeof(Posting) + postings_.size() * (sizeof(std::vector<Posting>) + 32);
  return bytes;
}

}  // namespace wp::engine
