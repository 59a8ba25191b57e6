// Point ids (engine/point_id.h: a number or a UUID in 24 bytes) and the slot tables that map ids
// to internal ids and labels to graph slots (index/slot_table.h: open addressing over slots),
// each against a plain reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_map>

#include "engine/chunked_vector.h"
#include "engine/point_id.h"
#include "index/error.h"
#include "index/slot_table.h"

namespace wp::engine {
namespace {

std::string random_uuid(std::mt19937_64& rng) {
  static const char kHex[] = "0123456789abcdefABCDEF";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) s += '-';
    s += kHex[rng() % 22];
  }
  return s;
}

TEST(PointIds, AUuidKeepsItsTextLowerCaseAndTheKeyOrder) {
  static_assert(sizeof(PointId) <= 24, "a collection keeps one PointId a point");
  const PointId u = PointId::uuid("5C56C793-69f3-4FBF-87e6-c4bf54c28c26");
  EXPECT_TRUE(u.is_uuid());
  EXPECT_EQ(u.uuid_string(), "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  EXPECT_EQ(u.to_json(), "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  EXPECT_EQ(u.key(), "u5c56c793-69f3-4fbf-87e6-c4bf54c28c26");  // the store's keys: unchanged
  EXPECT_EQ(u.num(), 0u);
  EXPECT_EQ(PointId::uuid("00000000-0000-0000-0000-000000000000").uuid_string(),
            "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(PointId::uuid("ffffffff-ffff-ffff-ffff-ffffffffffff").uuid_string(),
            "ffffffff-ffff-ffff-ffff-ffffffffffff");
  EXPECT_NE(PointId::uuid("00000000-0000-0000-0000-000000000007"), PointId::number(7));
  EXPECT_THROW(PointId::uuid("5c56c793-69f3-4fbf-87e6-c4bf54c28c2g"), UserError);

  // operator< is the order of key() (the store's iteration order), and ids round-trip their key.
  std::mt19937_64 rng(3);
  std::vector<PointId> ids;
  for (int i = 0; i < 500; ++i) {
    ids.push_back(i % 2 ? PointId::uuid(random_uuid(rng)) : PointId::number(rng() >> (rng() % 64)));
  }
  ids.push_back(PointId::number(0));
  ids.push_back(PointId::number(~uint64_t{0}));
  for (const PointId& a : ids) {
    EXPECT_EQ(PointId::from_key(a.key()), a);
    if (a.is_uuid()) {
      EXPECT_EQ(PointId::uuid(a.uuid_string()), a);
    }
    for (int j = 0; j < 20; ++j) {
      const PointId& b = ids[rng() % ids.size()];
      EXPECT_EQ(a < b, a.key() < b.key()) << a.key() << " " << b.key();
      EXPECT_EQ(a == b, a.key() == b.key());
      if (a == b) {
        EXPECT_EQ(a.hash(), b.hash());
      }
    }
  }
}

/// A SlotTable of internal ids keyed by PointId (as a collection keeps them) against
/// std::unordered_map under random inserts, erases and lookups, with ids that cluster
/// (consecutive numbers) and UUIDs, through growth and backward-shift deletions.
TEST(PointIds, TheIdTableAgreesWithAHashMapThroughInsertsAndErases) {
  std::mt19937_64 rng(11);
  std::vector<PointId> entries;  // by internal id, as a collection's entries
  std::vector<uint64_t> free_internal;
  auto id_of = [&](uint64_t internal) -> const PointId& { return entries[internal]; };
  index::SlotTable<uint64_t> table;
  const std::hash<PointId> hash;
  std::unordered_map<PointId, uint64_t> reference;
  uint64_t next_number = 0;
  for (int step = 0; step < 200000; ++step) {
    const int op = static_cast<int>(rng() % 10);
    if (op < 5 || reference.empty()) {  // insert a new id
      const PointId id = rng() % 4 == 0
                             ? PointId::uuid(random_uuid(rng))
                             : PointId::number(next_number++ * (rng() % 3 == 0 ? 64 : 1));
      if (reference.count(id)) continue;
      uint64_t internal;
      if (!free_internal.empty()) {
        internal = free_internal.back();
        free_internal.pop_back();
        entries[internal] = id;
      } else {
        internal = entries.size();
        entries.push_back(id);
      }
      table.assign(internal, id_of, hash);
      reference[id] = internal;
    } else if (op < 8) {  // erase a present id
      auto it = reference.begin();
      std::advance(it, static_cast<long>(rng() % std::min<size_t>(reference.size(), 64)));
      const PointId id = it->first;
      table.erase(id, id_of, hash);
      free_internal.push_back(it->second);
      reference.erase(it);
      table.erase(id, id_of, hash);  // erasing an absent id changes nothing
    } else {                         // look up an id that may or may not be there
      const PointId id =
          rng() % 2 && !entries.empty() ? entries[rng() % entries.size()] : PointId::number(rng());
      const auto found = table.find(id, id_of, hash);
      const auto it = reference.find(id);
      ASSERT_EQ(found.has_value(), it != reference.end()) << id.key();
      if (found) {
        ASSERT_EQ(*found, it->second);
      }
    }
    ASSERT_EQ(table.size(), reference.size());
  }
  for (const auto& [id, internal] : reference) {
    const auto found = table.find(id, id_of, hash);
    ASSERT_TRUE(found.has_value()) << id.key();
    EXPECT_EQ(*found, internal);
  }
  // At most half full: 16 to 32 bytes an id here (8-byte slots), where the map's node alone
  // took 64 and more.
  EXPECT_LE(table.memory_bytes(), 32 * std::max<size_t>(reference.size(), 16));
  // assign() of a slot whose key the table holds replaces that slot (as map[key] = slot).
  if (!reference.empty()) {
    const auto [id, internal] = *reference.begin();
    entries.push_back(id);  // a second entry with the same id
    const size_t before = table.size();
    table.assign(entries.size() - 1, id_of, hash);
    EXPECT_EQ(table.size(), before);
    EXPECT_EQ(table.find(id, id_of, hash), std::optional<uint64_t>(entries.size() - 1));
  }
}

TEST(PointIds, ALabelTableOfThirtyTwoBitSlotsFindsEveryLabel) {
  // As HnswGraph keeps label -> slot: labels read from the slots, 4-byte slots.
  std::vector<uint64_t> label_of_slot;
  auto key_of = [&](uint32_t s) { return label_of_slot[s]; };
  auto hash = [](uint64_t l) { return index::mix_hash(l); };
  index::SlotTable<uint32_t> table;
  std::mt19937_64 rng(5);
  for (uint32_t s = 0; s < 50000; ++s) {
    label_of_slot.push_back(s % 3 == 0 ? rng() : s);  // dense and scattered labels
    table.assign(s, key_of, hash);
  }
  for (uint32_t s = 0; s < 50000; s += 2) table.erase(label_of_slot[s], key_of, hash);
  EXPECT_EQ(table.size(), 25000u);
  for (uint32_t s = 0; s < 50000; ++s) {
    EXPECT_EQ(table.find(label_of_slot[s], key_of, hash),
              s % 2 ? std::optional<uint32_t>(s) : std::nullopt);
  }
  EXPECT_LE(table.memory_bytes(), 4u * 4 * 50000);
  // The slot find compares first (read ahead of it by a scan of listed ids): a slot of the
  // table always for a label it holds, the label's own most of the time (at most half full).
  size_t own = 0;
  for (uint32_t s = 1; s < 50000; s += 2) {
    const std::optional<uint32_t> first = table.first_probe(label_of_slot[s], hash);
    ASSERT_TRUE(first.has_value()) << s;
    ASSERT_LT(*first, 50000u);
    EXPECT_EQ(*first % 2, 1u) << "an erased slot";
    own += *first == s;
  }
  EXPECT_GT(own, 25000u * 3 / 4);
  EXPECT_FALSE(index::SlotTable<uint32_t>().first_probe(uint64_t{7}, hash).has_value());
}

TEST(PointIds, ATableRehashedAsideFindsEveryIdAndTakesTheNewOnesWithoutGrowing) {
  // What a writer makes while searches still read the table (rehashed is const), then moves in.
  std::vector<uint64_t> label_of_slot;
  auto key_of = [&](uint32_t s) { return label_of_slot[s]; };
  auto hash = [](uint64_t l) { return index::mix_hash(l); };
  index::SlotTable<uint32_t> table;
  std::mt19937_64 rng(3);
  for (uint32_t s = 0; s < 1000; ++s) {
    label_of_slot.push_back(rng());
    table.assign(s, key_of, hash);
  }
  const size_t bytes = table.memory_bytes();
  EXPECT_FALSE(table.grows_for(1000));
  ASSERT_TRUE(table.grows_for(6000));
  index::SlotTable<uint32_t> grown = table.rehashed(6000, key_of, hash);
  EXPECT_EQ(table.memory_bytes(), bytes);  // the table read is unchanged
  EXPECT_EQ(grown.size(), 1000u);
  EXPECT_FALSE(grown.grows_for(6000));
  for (uint32_t s = 0; s < 1000; ++s) {
    EXPECT_EQ(grown.find(label_of_slot[s], key_of, hash), std::optional<uint32_t>(s));
  }
  const size_t grown_bytes = grown.memory_bytes();
  for (uint32_t s = 1000; s < 6000; ++s) {
    label_of_slot.push_back(s % 2 ? rng() : s);
    grown.assign(s, key_of, hash);
  }
  EXPECT_EQ(grown.memory_bytes(), grown_bytes) << "the 5000 new ids made the table grow";
  for (uint32_t s = 0; s < 6000; ++s) {
    EXPECT_EQ(grown.find(label_of_slot[s], key_of, hash), std::optional<uint32_t>(s));
  }
  // A table asked for fewer items than it holds room for keeps its size.
  EXPECT_EQ(grown.rehashed(10, key_of, hash).memory_bytes(), grown_bytes);
}

namespace {
/// A table holding `held` slots of random labels, and `n` slots more to load in bulk (labels
/// dense and scattered, held + 0 .. held + n - 1): the bulk loads' tests.
struct BulkLoad {
  std::vector<uint64_t> label_of_slot;
  index::SlotTable<uint32_t> table;
  std::vector<uint32_t> fresh;
  static size_t hash(uint64_t l) { return index::mix_hash(l); }
  auto key_of() const {
    return [this](uint32_t s) { return label_of_slot[s]; };
  }
  BulkLoad(size_t held, size_t n, std::mt19937_64& rng) {
    for (uint32_t s = 0; s < held; ++s) {
      label_of_slot.push_back(rng());
      table.assign(s, key_of(), hash);
    }
    for (uint32_t s = 0; s < n; ++s) {
      label_of_slot.push_back(s % 2 ? rng() : s);
      fresh.push_back(static_cast<uint32_t>(held + s));
    }
  }
};
}  // namespace

// A bulk load of distinct keys (a collection's ids as its store is opened): every count around
// the read-ahead window, into an empty table and into one that holds ids already; the table is
// sized once (as rehashed for the total) and at most half full.
TEST(PointIds, ATableLoadedWithNewIdsInBulkFindsEveryOne) {
  auto hash = BulkLoad::hash;
  std::mt19937_64 rng(9);
  for (const size_t held : {0, 100}) {
    for (const size_t n : {0, 1, 15, 16, 17, 33, 5000}) {
      BulkLoad b(held, n, rng);
      const std::vector<uint64_t>& label_of_slot = b.label_of_slot;
      index::SlotTable<uint32_t>& table = b.table;
      const std::vector<uint32_t>& fresh = b.fresh;
      const auto key_of = b.key_of();
      const size_t expected_bytes =
          table.rehashed(held + n, key_of, hash).memory_bytes();  // before the new ids
      table.insert_new(fresh, key_of, hash);
      EXPECT_EQ(table.size(), held + n);
      // (nothing held and nothing loaded: the table stays empty)
      EXPECT_EQ(table.memory_bytes(), held + n ? expected_bytes : 0) << held << " + " << n;
      EXPECT_FALSE(table.grows_for(held + n));
      for (uint32_t s = 0; s < held + n; ++s) {
        ASSERT_EQ(table.find(label_of_slot[s], key_of, hash), std::optional<uint32_t>(s))
            << held << " + " << n << ": slot " << s;
      }
      EXPECT_FALSE(table.find(uint64_t{1} << 63, key_of, hash).has_value());
    }
  }
}

// The same bulk load for keys that are not trusted (an index file's labels): loaded whole when
// distinct; otherwise the first slot whose key is held already, by the table or by a slot given
// before it, whatever the window of read-ahead.
TEST(PointIds, ABulkLoadOfUntrustedKeysFindsTheFirstKeyHeldTwice) {
  auto hash = BulkLoad::hash;
  std::mt19937_64 rng(10);
  for (const size_t held : {0, 100}) {
    for (const size_t n : {1, 15, 16, 17, 33, 5000}) {
      BulkLoad b(held, n, rng);
      std::vector<uint64_t>& label_of_slot = b.label_of_slot;
      const index::SlotTable<uint32_t>& base = b.table;
      const std::vector<uint32_t>& fresh = b.fresh;
      const auto key_of = b.key_of();
      index::SlotTable<uint32_t> table = base;
      EXPECT_FALSE(table.insert_distinct(fresh, key_of, hash).has_value()) << held << " + " << n;
      EXPECT_EQ(table.size(), held + n);
      for (uint32_t s = 0; s < held + n; ++s) {
        ASSERT_EQ(table.find(label_of_slot[s], key_of, hash), std::optional<uint32_t>(s));
      }
      // A label given twice: the later slot is named, at the first, the middle and the last.
      for (const size_t at : {size_t{0}, n / 2, n - 1}) {
        if (n < 2 && at == 0) continue;
        const size_t dup = at == 0 ? 1 : at;  // slot held + dup repeats an earlier label
        const uint64_t saved = label_of_slot[held + dup];
        label_of_slot[held + dup] = label_of_slot[held + dup - 1];
        index::SlotTable<uint32_t> t = base;
        EXPECT_EQ(t.insert_distinct(fresh, key_of, hash),
                  std::optional<uint32_t>(static_cast<uint32_t>(held + dup)))
            << held << " + " << n << " at " << dup;
        label_of_slot[held + dup] = saved;
      }
      if (held) {  // a label the table holds already
        const uint64_t saved = label_of_slot[held + n - 1];
        label_of_slot[held + n - 1] = label_of_slot[7];
        index::SlotTable<uint32_t> t = base;
        EXPECT_EQ(t.insert_distinct(fresh, key_of, hash),
                  std::optional<uint32_t>(static_cast<uint32_t>(held + n - 1)));
        label_of_slot[held + n - 1] = saved;
      }
    }
  }
}

TEST(ChunkedVector, ElementsStayWhereTheyAreAsItGrowsAndShrinkingResetsThem) {
  ChunkedVector<std::string, 4> v;  // chunks of 16
  v.resize(10);
  v[3] = "three";
  const std::string* at3 = &v[3];
  v.resize(1000);  // 63 chunks more
  EXPECT_EQ(&v[3], at3) << "an element moved as the vector grew";
  EXPECT_EQ(v[3], "three");
  EXPECT_EQ(v.size(), 1000u);
  EXPECT_EQ(v.capacity(), 1008u);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::to_string(i);
  v.resize(20);
  EXPECT_EQ(v.capacity(), 32u);  // whole chunks past the size are freed
  EXPECT_EQ(v[19], "19");
  v.resize(40);  // regrown: the elements past the old size are new
  EXPECT_EQ(v[19], "19");
  for (size_t i = 20; i < 40; ++i) EXPECT_EQ(v[i], "") << i;
  v.resize(0);
  EXPECT_EQ(v.capacity(), 0u);
}

}  // namespace
}  // namespace wp::engine
