#pragma once
/**
 * @file visited_set.h
 * VisitedSet: the vertices one graph walk has seen, for walks that follow one another on the
 * same thread (hnswlib's visited lists). Every slot holds the tag of the walk that last saw it,
 * so starting a walk costs one increment; the array is cleared only when the 16-bit tag wraps,
 * once every 65,535 walks. Every walker uses it: HNSW's beam search and graph repair
 * (search_context.h), Vamana's greedy search (vamana.cpp), LSH multi-probe (lsh_index.cpp) and
 * the pruning agent's episodes (learn/pruning_env.cpp).
 */
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace wp::index {

class VisitedSet {
 public:
  /// The current walk's marks with its tag in hand: a hot loop copies this into registers, so
  /// that a mark's store cannot make the compiler load the tag again.
  struct Walk {
    uint16_t* tags;
    uint16_t tag;
    bool contains(uint32_t v) const { return tags[v] == tag; }
    void insert(uint32_t v) const { tags[v] = tag; }
    /// Marks v; true when it was marked already.
    bool test_and_set(uint32_t v) const {
      if (tags[v] == tag) return true;
      tags[v] = tag;
      return false;
    }
  };

  /// Starts a new walk over vertices [0, n): nothing is marked.
  void start(size_t n) {
    if (tags_.size() < n) {
      // Half as much again: a graph that grows by a few vertices between walks (a collection
      // taking writes) would otherwise have every walk after each write allocate and clear anew.
      tags_.assign(std::max(n, tags_.size() + tags_.size() / 2), 0);
      tag_ = 0;
    }
    if (++tag_ == 0) {  // the tag wrapped: clear once every 65535 walks
      std::fill(tags_.begin(), tags_.end(), 0);
      tag_ = 1;
    }
  }
  Walk walk() { return {tags_.data(), tag_}; }

  bool contains(uint32_t v) const { return tags_[v] == tag_; }
  void insert(uint32_t v) { tags_[v] = tag_; }
  /// Marks v; true when it was marked already.
  bool test_and_set(uint32_t v) { return walk().test_and_set(v); }

  size_t memory_bytes() const { return tags_.capacity() * sizeof(uint16_t); }

 private:
  std::vector<uint16_t> tags_;
  uint16_t tag_ = 0;
};

}  // namespace wp::index
