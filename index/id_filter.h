#pragma once
/**
 * @file id_filter.h
 * Filters over external ids, applied inside the graph traversal (a vertex that fails the filter is
 * still walked through but never returned).
 */
#include <cstdint>
#include <functional>
#include <vector>

namespace wp::index {

/// A set of allowed ids.
class IdFilter {
 public:
  virtual ~IdFilter() = default;
  /// True when `id` may be returned.
  virtual bool contains(uint64_t id) const = 0;
  /// How many ids pass, when known (lets an index choose an exact scan for selective filters);
  /// -1 when unknown.
  virtual int64_t count() const { return -1; }
  /// How many ids pass, for choosing between a walk and a scan alone (never taken as the exact
  /// number): count() when known, else an estimate (from a sample), else -1.
  virtual int64_t estimate() const { return count(); }
  /// True when contains() costs far more than a distance (it reads what the id stands for, such
  /// as a payload): a walk then saves only where it reaches few of the ids a scan would test.
  virtual bool costly() const { return false; }
  /// Calls fn(id) for every id that passes, in increasing order, and returns true, when the
  /// filter can list them (an exact scan then costs the matches, not every vertex; a costly
  /// filter lists by testing every id in its own order, cheaper than in the index's); returns
  /// false, calling nothing, when it cannot.
  virtual bool for_each(const std::function<void(uint64_t)>& fn) const { return false; }
};

/// A dense bitset over ids [0, capacity). Ids beyond it are not contained.
class BitsetFilter : public IdFilter {
 public:
  explicit BitsetFilter(uint64_t capacity) : words_((capacity + 63) / 64, 0), capacity_(capacity) {}
  /// Holding `ids`, given sorted and unique (those >= capacity left out): no test of each bit.
  BitsetFilter(uint64_t capacity, const uint32_t* ids, size_t n) : BitsetFilter(capacity) {
    for (size_t j = 0; j < n && ids[j] < capacity; ++j, ++count_) {
      words_[ids[j] >> 6] |= uint64_t{1} << (ids[j] & 63);
    }
  }

  /// Adds id (ignored when id >= capacity).
  void set(uint64_t id) {
    if (id >= capacity_) return;
    uint64_t& w = words_[id >> 6];
    const uint64_t bit = uint64_t{1} << (id & 63);
    count_ += (w & bit) ? 0 : 1;
    w |= bit;
  }
  bool contains(uint64_t id) const override {
    return id < capacity_ && (words_[id >> 6] >> (id & 63)) & 1;
  }
  int64_t count() const override { return count_; }
  bool for_each(const std::function<void(uint64_t)>& fn) const override {
    for (size_t w = 0; w < words_.size(); ++w) {
      for (uint64_t b = words_[w]; b; b &= b - 1) fn(w * 64 + __builtin_ctzll(b));
    }
    return true;
  }

 private:
  std::vector<uint64_t> words_;
  uint64_t capacity_;
  int64_t count_ = 0;
};

/// Wraps any predicate; its count is unknown unless given.
class PredicateFilter : public IdFilter {
 public:
  explicit PredicateFilter(std::function<bool(uint64_t)> pred, int64_t count = -1)
      : pred_(std::move(pred)), count_(count) {}
  bool contains(uint64_t id) const override { return pred_(id); }
  int64_t count() const override { return count_; }

 private:
  std::function<bool(uint64_t)> pred_;
  int64_t count_;
};

}  // namespace wp::index
