#pragma once
/**
 * @file slot_table.h
 * A hash table of slots: small integers that name where an item lives (a graph's vertex, a
 * collection's entry), found by a key the caller reads from the item itself. Open addressing
 * with linear probing, at most half full, deletion by backward shift (no tombstones): a table of
 * n items holds 2n to 4n slot values and nothing else, where std::unordered_map<Key, Slot>
 * allocated a node (key, value, next pointer, cached hash) per item plus a bucket pointer.
 *
 * Every call takes `key_of(slot)`, the key of the item a slot names, and `hash(key)`; the caller
 * must keep key_of answering for every slot in the table (erase a slot before its item's key
 * changes).
 */
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "index/prefetch.h"

namespace wp::index {

/// A well-mixed 64-bit hash (splitmix64's finaliser): probing by the low bits spreads
/// consecutive numbers too.
inline size_t mix_hash(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return static_cast<size_t>(x ^ (x >> 31));
}

template <typename Slot>
class SlotTable {
 public:
  /// The slot whose key is `key`, if any.
  template <typename Key, typename KeyOf, typename Hash>
  std::optional<Slot> find(const Key& key, const KeyOf& key_of, const Hash& hash) const {
    if (slots_.empty()) return std::nullopt;
    for (size_t i = home(hash(key));; i = next(i)) {
      if (slots_[i] == kEmpty) return std::nullopt;
      if (key_of(slots_[i]) == key) return slots_[i];
    }
  }

  /// The slot find(key) compares first (the one at the key's home: the key's own most of the
  /// time in a table at most half full), if any: for reading its item ahead of find.
  template <typename Key, typename Hash>
  std::optional<Slot> first_probe(const Key& key, const Hash& hash) const {
    if (slots_.empty()) return std::nullopt;
    const Slot s = slots_[home(hash(key))];
    return s == kEmpty ? std::nullopt : std::optional<Slot>(s);
  }

  /// Makes `slot` the one found for its key (key_of(slot)), replacing a slot of the same key.
  template <typename KeyOf, typename Hash>
  void assign(Slot slot, const KeyOf& key_of, const Hash& hash) {
    if (2 * (size_ + 1) > slots_.size()) grow(key_of, hash);
    const auto& key = key_of(slot);
    size_t i = home(hash(key));
    for (; slots_[i] != kEmpty; i = next(i)) {
      if (key_of(slots_[i]) == key) {
        slots_[i] = slot;
        return;
      }
    }
    slots_[i] = slot;
    ++size_;
  }

  /// Adds `slots`, whose keys are distinct and none in the table (a bulk load: the ids of a
  /// store's records), sizing the table for them once: no key is compared, and each slot's home
  /// is read ahead while the ones before it are placed. Assigned one by one (at 1M ids) the
  /// table grew 17 times and each placement waited on two cache misses, its home and the item a
  /// taken slot names.
  template <typename KeyOf, typename Hash>
  void insert_new(const std::vector<Slot>& slots, const KeyOf& key_of, const Hash& hash) {
    (void)load<false>(slots, key_of, hash);
  }
  /// The same bulk load for keys that should be distinct but are not trusted (an index file's
  /// labels): the keys along each slot's probe run are compared, and the first slot whose key
  /// is already held (by the table or an earlier one of `slots`) is returned, the table then
  /// holding the slots before it. key_of answers for every slot held and given; an array of the
  /// keys read once in order beats reading each key where its item lies, at random.
  template <typename KeyOf, typename Hash>
  std::optional<Slot> insert_distinct(const std::vector<Slot>& slots, const KeyOf& key_of,
                                      const Hash& hash) {
    return load<true>(slots, key_of, hash);
  }

  /// Removes the slot of `key`, if any; key_of must still answer it for that slot.
  template <typename Key, typename KeyOf, typename Hash>
  void erase(const Key& key, const KeyOf& key_of, const Hash& hash) {
    if (slots_.empty()) return;
    size_t i = home(hash(key));
    for (;; i = next(i)) {
      if (slots_[i] == kEmpty) return;
      if (key_of(slots_[i]) == key) break;
    }
    // Backward shift: move up each later slot of the run whose home is not cyclically in (i, j].
    for (size_t j = next(i); slots_[j] != kEmpty; j = next(j)) {
      const size_t h = home(hash(key_of(slots_[j])));
      const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (!stays) {
        slots_[i] = slots_[j];
        i = j;
      }
    }
    slots_[i] = kEmpty;
    --size_;
  }

  /// A copy of this table that holds `items` items without growing (or this table's size, when
  /// larger). Made aside while the table is only read (searches may go on), then moved in where
  /// the table is written, so that the rehash holds up no one: assign() rehashed every item
  /// each time the table doubled.
  template <typename KeyOf, typename Hash>
  SlotTable rehashed(size_t items, const KeyOf& key_of, const Hash& hash) const {
    size_t n = 16;
    while (2 * items > n) n *= 2;
    SlotTable t;
    t.place(slots_, std::max(n, slots_.size()), key_of, hash);
    t.size_ = size_;
    return t;
  }
  /// Whether holding `items` items would make assign() grow the table.
  bool grows_for(size_t items) const { return 2 * items > slots_.size(); }

  size_t size() const { return size_; }
  void clear() {
    slots_.clear();
    size_ = 0;
  }
  size_t memory_bytes() const { return slots_.capacity() * sizeof(Slot); }

 private:
  static constexpr Slot kEmpty = static_cast<Slot>(~Slot{0});

  size_t home(size_t h) const { return h & (slots_.size() - 1); }
  size_t next(size_t i) const { return (i + 1) & (slots_.size() - 1); }

  /// insert_new (kCompare false) and insert_distinct (true).
  template <bool kCompare, typename KeyOf, typename Hash>
  std::optional<Slot> load(const std::vector<Slot>& slots, const KeyOf& key_of, const Hash& hash) {
    if (grows_for(size_ + slots.size())) *this = rehashed(size_ + slots.size(), key_of, hash);
    constexpr size_t kAhead = 16;
    size_t homes[kAhead];
    for (size_t j = 0; j < slots.size() + kAhead; ++j) {
      if (j >= kAhead) {  // place slot j - kAhead, whose home was read ahead
        const Slot slot = slots[j - kAhead];
        size_t i = homes[(j - kAhead) % kAhead];
        for (; slots_[i] != kEmpty; i = next(i)) {
          if constexpr (kCompare) {
            if (key_of(slots_[i]) == key_of(slot)) return slot;
          }
        }
        slots_[i] = slot;
        ++size_;
      }
      if (j < slots.size()) {
        homes[j % kAhead] = home(hash(key_of(slots[j])));
        prefetch(&slots_[homes[j % kAhead]]);
      }
    }
    return std::nullopt;
  }

  template <typename KeyOf, typename Hash>
  void grow(const KeyOf& key_of, const Hash& hash) {
    const std::vector<Slot> old = std::move(slots_);
    place(old, old.empty() ? 16 : 2 * old.size(), key_of, hash);
  }
  /// Makes the table `n` slots long (a power of two) holding the slots of `from`.
  template <typename KeyOf, typename Hash>
  void place(const std::vector<Slot>& from, size_t n, const KeyOf& key_of, const Hash& hash) {
    slots_.assign(n, kEmpty);
    for (const Slot s : from) {
      if (s == kEmpty) continue;
      size_t i = home(hash(key_of(s)));
      while (slots_[i] != kEmpty) i = next(i);
      slots_[i] = s;
    }
  }

  std::vector<Slot> slots_;  ///< kEmpty where free; a power of two long
  size_t size_ = 0;
};

}  // namespace wp::index
