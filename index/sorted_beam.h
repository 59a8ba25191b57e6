#pragma once
/**
 * @file sorted_beam.h
 * The beam of a greedy graph walk of width ef kept as one array sorted by distance (as DiskANN's
 * NeighborPriorityQueue): the best ef vertices found so far, each marked once expanded. The walk
 * expands the nearest one not yet expanded and ends when all are.
 *
 * It expands the vertices that hnswlib's two heaps expand (a frontier of vertices to expand and
 * a bounded heap of the best ef; a vertex is expanded when it is the nearest left and no farther
 * than the ef-th best), ties in distance aside: a vertex taken in costs a binary search and a
 * move of the farther entries, where the heaps paid a sift-down in each (the frontier's pop, the
 * top's eviction). SIFT10K at ef 64: the same distance computations a query, and 1.27-1.30x
 * hnswlib's QPS in the same run where the heaps gave 1.04-1.06x (docs/hnsw.md). Both the served
 * walk (hnsw_search.h) and the pruning agent's training walk (learn/pruning_env.cpp) use it, so
 * that a learnt graph is served as it was trained.
 */
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "index/neighbor_selection.h"

namespace wp::index {

class SortedBeam {
 public:
  struct Entry {
    float distance;
    uint32_t id;
    bool expanded;
  };

  /// Starts an empty beam of width `ef` (at least 1).
  void start(size_t ef) {
    if (entries_.size() < ef) entries_.resize(ef);
    ef_ = ef;
    size_ = next_ = nearest_new_ = 0;
  }

  /// Starts a walk of width `ef` from `id` at `distance`.
  void start(size_t ef, float distance, uint32_t id) {
    start(ef);
    insert(distance, id);
  }

  /// The distance a vertex must be below to enter a full beam (infinite while it is not full).
  float bound() const {
    return size_ == ef_ ? entries_[size_ - 1].distance : std::numeric_limits<float>::infinity();
  }

  /// Whether a vertex at `distance` enters the beam (it is full and `distance` is not below its
  /// farthest: it does not).
  bool admits(float distance) const {
    return size_ < ef_ || distance < entries_[size_ - 1].distance;
  }

  /// Takes a vertex in (`admits(distance)` must hold): after the entries no farther than it; when
  /// the beam is full, its farthest entry falls off the end.
  void insert(float distance, uint32_t id) {
    Entry* e = entries_.data();
    size_t lo = 0, hi = size_;  // the first entry farther than `distance`
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (e[mid].distance <= distance) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    std::memmove(e + lo + 1, e + lo, (std::min(size_, ef_ - 1) - lo) * sizeof(Entry));
    e[lo] = {distance, id, false};
    size_ += size_ < ef_;
    nearest_new_ = std::min(nearest_new_, lo);
  }

  /// The nearest entry not yet expanded, or nullptr when every one is (valid until the next
  /// insert).
  const Entry* nearest_unexpanded() {
    // Every entry before next_ is expanded, and so is the one there unless one taken in since
    // the last call sits at or before it.
    next_ = std::min(next_, nearest_new_);
    nearest_new_ = size_;
    while (next_ < size_ && entries_[next_].expanded) ++next_;
    return next_ < size_ ? &entries_[next_] : nullptr;
  }

  /// Marks the entry nearest_unexpanded() gave expanded.
  void expand_nearest() { entries_[next_].expanded = true; }

  /// The nearest vertex not yet expanded, marked expanded; false when every one is.
  bool next(uint32_t* id) {
    const Entry* e = nearest_unexpanded();
    if (!e) return false;
    *id = e->id;
    expand_nearest();
    return true;
  }

  size_t size() const { return size_; }
  /// Entry i, nearest first.
  const Entry& operator[](size_t i) const { return entries_[i]; }

  /// The entries as a max-heap of candidates (farthest first, which is a max-heap).
  void to_heap(std::vector<Candidate>& out) const {
    out.resize(size_);
    for (size_t i = 0; i < size_; ++i) out[size_ - 1 - i] = {entries_[i].distance, entries_[i].id};
  }

  size_t memory_bytes() const { return entries_.capacity() * sizeof(Entry); }

 private:
  std::vector<Entry> entries_;
  size_t ef_ = 0, size_ = 0, next_ = 0, nearest_new_ = 0;
};

}  // namespace wp::index
