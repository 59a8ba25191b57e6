// Collection and storage snapshots: the archive format and its reader, the engine's create /
// list / delete / recover, the multipart upload parser, and the REST routes (handler level, no
// sockets).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "engine/engine.h"
#include "engine/snapshot_archive.h"
#include "http/api.h"
#include "http/multipart.h"
#include "index/error.h"
#include "test_util.h"

using namespace wp::engine;
using nlohmann::json;
using wp::test::read_file;
namespace fs = std::filesystem;

namespace {

CollectionConfig config(size_t dim) {
  CollectionConfig c;
  c.vectors[""].dim = dim;
  c.vectors[""].index.metric = wp::index::Metric::kL2;
  c.vectors[""].index.hnsw.M = 12;
  c.vectors[""].index.hnsw.ef_construction = 100;
  return c;
}

/// n random points of dimension 8, ids 0..n-1, payload {"n": i, "tag": "t<i % 5>"}.
std::vector<PointWrite> points(size_t n, uint64_t seed) {
  const wp::index::Matrix m = wp::test::random_matrix(n, 8, seed);
  std::vector<PointWrite> out(n);
  for (size_t i = 0; i < n; ++i) {
    out[i].id = PointId::number(i);
    out[i].vectors[""].assign(m.row(i), m.row(i) + 8);
    out[i].payload = {{"n", i}, {"tag", "t" + std::to_string(i % 5)}};
  }
  return out;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

/// Everything a client can read of a collection: every point with payload and vector, the
/// payload schema, and the ids of ten searches.
json state(Engine& eng, const std::string& name) {
  auto c = eng.collection(name);
  json out;
  const auto page = c->scroll(nullptr, 10000, std::nullopt, true, true);
  for (const PointRead& p : page.points) {
    out["points"].push_back({p.id.to_json(), p.payload, p.vectors.at("")});
  }
  for (const auto& [key, f] : c->info().payload_fields) out["schema"][key] = f.points;
  const wp::index::Matrix q = wp::test::random_matrix(10, 8, 99);
  for (size_t i = 0; i < q.n; ++i) {
    SearchQuery sq;
    sq.vector.assign(q.row(i), q.row(i) + 8);
    sq.limit = 5;
    for (const ScoredPoint& s : c->search(sq)) out["search"].push_back(s.point.id.to_json());
  }
  return out;
}

/// Collects an archive's members in memory.
struct MemorySink : snapshot::Sink {
  std::map<std::string, std::string> files;
  std::string current;
  void begin(const std::string& name, uint64_t) override { current = name; }
  void write(const char* d, size_t n) override { files[current].append(d, n); }
  void end() override {}
};

/// A collection "c" of 300 points with a payload index, in an engine over tmp's "data".
class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    open();
    eng_->create_collection("c", config(8));
    eng_->collection("c")->upsert(points(300, 1), true);
    eng_->collection("c")->create_payload_index("tag", PayloadSchema::kKeyword);
  }
  void open() { eng_ = std::make_unique<Engine>(tmp_.file("data")); }
  std::string file_url(const Engine::SnapshotInfo& s, const std::string& collection = "c") {
    return "file://" + (fs::path(eng_->snapshots_dir()) / collection / s.name).string();
  }
  std::string path_of(const Engine::SnapshotInfo& s) {
    return (fs::path(eng_->snapshots_dir()) / "c" / s.name).string();
  }

  wp::test::TempDir tmp_;
  std::unique_ptr<Engine> eng_;
};

}  // namespace

TEST_F(SnapshotTest, RecoveringRestoresEveryPointPayloadIndexAndSearchAsSnapshotted) {
  const json before = state(*eng_, "c");
  const Engine::SnapshotInfo s = eng_->create_snapshot("c");
  EXPECT_EQ(s.size, fs::file_size(path_of(s)));
  EXPECT_EQ(s.checksum, snapshot::sha256_file(path_of(s)));
  EXPECT_EQ(s.checksum.size(), 64u);
  // Changes after the snapshot: removals, new points, payload edits, a dropped payload index.
  auto c = eng_->collection("c");
  c->remove({PointId::number(1), PointId::number(2), PointId::number(3)}, true);
  c->upsert(points(400, 2), true);
  c->delete_payload_index("tag");
  c.reset();  // a request in flight: recovery waits for it (RecoveryWhileRequestsRun...)
  ASSERT_NE(state(*eng_, "c"), before);

  eng_->recover_snapshot_location("c", file_url(s), s.checksum);
  EXPECT_EQ(state(*eng_, "c"), before);
  EXPECT_TRUE(eng_->collection("c")->index_loaded_from_file())
      << "the snapshot's index file matches its store: it is loaded, not rebuilt";
  EXPECT_EQ(eng_->collection("c")->info().payload_fields.count("tag"), 1u);
  // And it lasts: a restart serves the recovered collection.
  eng_.reset();
  open();
  EXPECT_EQ(state(*eng_, "c"), before);
}

// Named vectors: every space's index file travels in the snapshot (index.<space>.wpi and
// .meta) and is loaded, not rebuilt; points keep exactly the vectors they had.
TEST_F(SnapshotTest, ANamedVectorCollectionRecoversEverySpaceAndLoadsItsIndexes) {
  CollectionConfig cfg;
  cfg.vectors["a"] = config(8).vectors.at("");
  cfg.vectors["b"] = config(3).vectors.at("");
  cfg.vectors["b"].index.metric = wp::index::Metric::kCosine;
  eng_->create_collection("n", cfg);
  auto c = eng_->collection("n");
  std::vector<PointWrite> pts = points(200, 3);
  for (size_t i = 0; i < pts.size(); ++i) {
    pts[i].vectors["a"] = pts[i].vectors.at("");
    pts[i].vectors.erase("");
    if (i % 3 != 0) pts[i].vectors["b"] = {1.0f + i, 2.0f, -1.0f * (i % 7)};
    if (i % 5 == 0) pts[i].vectors.erase("a");  // some points only in b, one in neither
  }
  c->upsert(pts, true);
  auto read_all = [&] {
    return json(
        eng_->collection("n")->scroll(nullptr, 1000, std::nullopt, true, true).points.size());
  };
  auto vectors = [&] {
    json out;
    for (const PointRead& p :
         eng_->collection("n")->scroll(nullptr, 1000, std::nullopt, false, true).points) {
      out.push_back({p.id.to_json(), p.vectors});
    }
    return out;
  };
  const json before = vectors();
  ASSERT_EQ(read_all(), 200);
  EXPECT_EQ(c->info().vectors, (std::map<std::string, size_t>{{"a", 160}, {"b", 133}}));
  const Engine::SnapshotInfo s = eng_->create_snapshot("n");
  c->remove({PointId::number(1)}, true);
  c.reset();
  eng_->recover_snapshot_location("n", file_url(s, "n"), s.checksum);
  EXPECT_EQ(vectors(), before);
  EXPECT_TRUE(eng_->collection("n")->index_loaded_from_file());
  eng_.reset();
  open();
  EXPECT_EQ(vectors(), before);
  EXPECT_TRUE(eng_->collection("n")->index_loaded_from_file());
}

TEST_F(SnapshotTest, RecoveringUnderANewNameCreatesTheCollectionAndAnAliasNamesItsTarget) {
  const Engine::SnapshotInfo s = eng_->create_snapshot("c");
  const json before = state(*eng_, "c");
  eng_->recover_snapshot_location("copy", file_url(s), "");
  EXPECT_EQ(state(*eng_, "copy"), before);
  EXPECT_EQ(eng_->names(), (std::vector<std::string>{"c", "copy"}));
  // Recovering through an alias replaces the alias's collection.
  eng_->update_aliases({{Engine::AliasAction::Kind::kCreate, "al", "copy"}});
  eng_->collection("copy")->remove({PointId::number(0)}, true);
  eng_->recover_snapshot_location("al", file_url(s), "");
  EXPECT_EQ(state(*eng_, "copy"), before);
  EXPECT_EQ(eng_->names(), (std::vector<std::string>{"c", "copy"}));
  EXPECT_THROW(eng_->recover_snapshot_location("bad/name", file_url(s), ""), wp::UserError);
}

TEST_F(SnapshotTest, ListDeleteAndNamesThatAreNotSnapshots) {
  EXPECT_TRUE(eng_->list_snapshots("c").empty());
  const Engine::SnapshotInfo a = eng_->create_snapshot("c");
  const Engine::SnapshotInfo b = eng_->create_snapshot("c");
  ASSERT_NE(a.name, b.name);
  const auto listed = eng_->list_snapshots("c");
  ASSERT_EQ(listed.size(), 2u);
  for (const auto& l : listed) {
    EXPECT_TRUE(l.name == a.name || l.name == b.name);
    EXPECT_EQ(l.checksum, snapshot::sha256_file(path_of(l)));
  }
  EXPECT_EQ(eng_->snapshot_file("c", a.name), path_of(a));
  for (const std::string& bad :
       std::vector<std::string>{"../c/" + a.name, "missing.snapshot", ".hidden.snapshot",
                                a.name + ".checksum", "", "a/b.snapshot"}) {
    EXPECT_THROW(eng_->snapshot_file("c", bad), wp::NotFoundError) << bad;
    EXPECT_THROW(eng_->delete_snapshot("c", bad), wp::NotFoundError) << bad;
  }
  EXPECT_THROW(eng_->list_snapshots("nope"), wp::NotFoundError);
  EXPECT_THROW(eng_->create_snapshot("nope"), wp::NotFoundError);
  eng_->delete_snapshot("c", a.name);
  EXPECT_FALSE(fs::exists(path_of(a)));
  EXPECT_FALSE(fs::exists(path_of(a) + ".checksum"));
  ASSERT_EQ(eng_->list_snapshots("c").size(), 1u);
  EXPECT_EQ(eng_->list_snapshots("c")[0].name, b.name);
  EXPECT_THROW(eng_->delete_snapshot("c", a.name), wp::NotFoundError);
  // Snapshots outlive their collection (they are its backups): recover brings it back.
  ASSERT_TRUE(eng_->delete_collection("c"));
  eng_->recover_snapshot_location("c", file_url(b), b.checksum);
  EXPECT_EQ(eng_->collection("c")->size(), 300u);
}

// Every way a snapshot can be bad is refused, says what is wrong, and leaves the collection as
// it was (same state, same object served) and no folder behind.
TEST_F(SnapshotTest, DamagedForeignOrMisplacedSnapshotsAreRefusedAndChangeNothing) {
  const Engine::SnapshotInfo s = eng_->create_snapshot("c");
  eng_->collection("c")->remove({PointId::number(7)}, true);
  const json before = state(*eng_, "c");
  const auto served = eng_->collection("c");
  const std::string good = read_file(path_of(s));
  const fs::path folder = fs::path(eng_->snapshots_dir()) / "c";

  auto expect_refused = [&](const std::string& bytes, const std::string& why,
                            const std::string& message_has) {
    write_file((folder / "bad.snapshot").string(), bytes);
    try {
      eng_->recover_snapshot_location("c", "file://" + (folder / "bad.snapshot").string(), "");
      ADD_FAILURE() << why << ": recovered";
    } catch (const wp::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(message_has), std::string::npos)
          << why << ": " << e.what();
    }
    try {
      eng_->recover_snapshot_bytes("c", bytes, "");
      ADD_FAILURE() << why << ": recovered from bytes";
    } catch (const wp::UserError&) {
    }
    EXPECT_EQ(served.get(), eng_->collection("c").get()) << why;
    EXPECT_EQ(state(*eng_, "c"), before) << why;
  };
  // Truncated anywhere: inside a header, inside a member, inside the manifest, before the end.
  for (const size_t cut : {size_t{0}, size_t{100}, size_t{512 + 7}, good.size() / 2,
                           good.size() - 1024 - 600, good.size() - 1024, good.size() - 1}) {
    expect_refused(good.substr(0, cut), "cut at " + std::to_string(cut), "snapshot is damaged");
  }
  // One byte changed in a member (the store's first file), in a header, in the manifest.
  for (const size_t at : {size_t{512 + 40}, size_t{130}, good.size() - 1024 - 200}) {
    std::string b = good;
    b[at] ^= 0x5a;
    expect_refused(b, "byte " + std::to_string(at) + " flipped", "snapshot is damaged");
  }
  expect_refused("", "empty file", "snapshot is damaged");
  expect_refused(std::string(4096, '\0'), "zeros", "before its manifest");
  expect_refused("PK\x03\x04 not a tar at all", "a zip", "snapshot is damaged");
  // A well-formed archive whose store is no collection: the manifest matches, opening fails.
  {
    wp::test::TempDir other;
    write_file(other.file("CURRENT"), "MANIFEST-000001\n");
    snapshot::write_archive(other.file("x.snapshot"), {{"store/CURRENT", other.file("CURRENT")}},
                            json::object());
    expect_refused(read_file(other.file("x.snapshot")), "not a collection",
                   "its collection does not open");
  }
  // Checksums, schemes and places.
  EXPECT_THROW(eng_->recover_snapshot_location("c", file_url(s), std::string(64, '0')),
               wp::UserError);
  EXPECT_THROW(eng_->recover_snapshot_bytes("c", good, "abc"), wp::UserError);
  for (const std::string& loc : std::vector<std::string>{
           "http://127.0.0.1:1/x.snapshot", path_of(s), "file://relative/x.snapshot",
           "file://" + (folder / ".." / ".." / "collections" / "c" / "index.meta").string(),
           "file://" + tmp_.file("data/aliases.json"), "file://" + (folder / "missing").string(),
           "file://" + folder.string()}) {
    try {
      eng_->recover_snapshot_location("c", loc, "");
      ADD_FAILURE() << loc << ": recovered";
    } catch (const wp::UserError& e) {
      EXPECT_NE(std::string(e.what()).find("location"), std::string::npos) << e.what();
    }
  }
  // A symbolic link under the snapshots folder to a file outside it is outside.
  fs::copy_file(path_of(s), tmp_.file("outside.snapshot"));
  fs::create_symlink(tmp_.file("outside.snapshot"), folder / "link.snapshot");
  EXPECT_THROW(
      eng_->recover_snapshot_location("c", "file://" + (folder / "link.snapshot").string(), ""),
      wp::UserError);
  EXPECT_EQ(state(*eng_, "c"), before);
  for (const auto& e : fs::directory_iterator(tmp_.file("data/collections"))) {
    EXPECT_EQ(e.path().filename(), "c") << "left behind: " << e.path();
  }
}

// A storage snapshot holds every collection (named vectors too) and alias: recovered into an
// empty server it serves all of them as they were, index files loaded; recovered where they
// exist it changes nothing unless forced, and forced it puts them back as snapshotted.
TEST_F(SnapshotTest, AStorageSnapshotRecoversEveryCollectionAndAlias) {
  CollectionConfig named;
  named.vectors["a"] = config(8).vectors.at("");
  named.vectors["b"] = config(3).vectors.at("");
  eng_->create_collection("n", named);
  std::vector<PointWrite> pts = points(50, 4);
  for (size_t i = 0; i < pts.size(); ++i) {
    pts[i].vectors["a"] = pts[i].vectors.at("");
    pts[i].vectors.erase("");
    if (i % 2) pts[i].vectors["b"] = {1.0f, 2.0f, 1.0f * i};
  }
  eng_->collection("n")->upsert(pts, true);
  eng_->update_aliases({{Engine::AliasAction::Kind::kCreate, "al", "c"},
                        {Engine::AliasAction::Kind::kCreate, "named", "n"}});
  auto everything = [](Engine& eng) {
    json out;
    out["c"] = state(eng, "c");
    if (eng.exists("n")) {
      for (const PointRead& p :
           eng.collection("n")->scroll(nullptr, 1000, std::nullopt, true, true).points) {
        out["n"].push_back({p.id.to_json(), p.vectors});
      }
    }
    for (const auto& [alias, target] : eng.aliases()) out["aliases"][alias] = target;
    out["names"] = eng.names();
    return out;
  };
  const json before = everything(*eng_);

  const Engine::SnapshotInfo s = eng_->create_full_snapshot();
  const fs::path file = fs::path(eng_->snapshots_dir()) / s.name;
  EXPECT_EQ(s.name.rfind("full-snapshot-", 0), 0u) << s.name;
  EXPECT_EQ(s.size, fs::file_size(file));
  EXPECT_EQ(s.checksum, snapshot::sha256_file(file.string()));
  ASSERT_EQ(eng_->list_full_snapshots().size(), 1u);
  EXPECT_EQ(eng_->list_full_snapshots()[0].name, s.name);
  EXPECT_TRUE(eng_->list_snapshots("c").empty()) << "no collection snapshot is left behind";
  // The system's tar reads each collection's members in its own folder, the manifest last.
  const std::string listing = tmp_.file("list.txt");
  ASSERT_EQ(std::system(("tar tf " + file.string() + " > " + listing).c_str()), 0);
  const std::string members = read_file(listing);
  EXPECT_NE(members.find("c0/store/CURRENT\n"), std::string::npos) << members;
  EXPECT_NE(members.find("c1/index.1.wpi\n"), std::string::npos) << members;  // n's space b
  EXPECT_EQ(members.substr(members.size() - 14), "snapshot.json\n") << members;

  // Into an empty server.
  {
    Engine other(tmp_.file("other"));
    EXPECT_EQ(other.recover_full_snapshot(file.string(), false),
              (std::vector<std::string>{"c", "n"}));
    EXPECT_EQ(everything(other), before);
    EXPECT_TRUE(other.collection("c")->index_loaded_from_file());
    EXPECT_TRUE(other.collection("n")->index_loaded_from_file());
  }
  {
    Engine reopened(tmp_.file("other"));  // and it lasts
    EXPECT_EQ(everything(reopened), before);
  }

  // Where the collections exist: refused unless forced, before anything changes.
  eng_->collection("c")->remove({PointId::number(1)}, true);
  eng_->update_aliases({{Engine::AliasAction::Kind::kDelete, "al", ""},
                        {Engine::AliasAction::Kind::kCreate, "al", "n"}});
  ASSERT_TRUE(eng_->delete_collection("n"));
  const json changed = everything(*eng_);
  try {
    eng_->recover_full_snapshot(file.string(), false);
    ADD_FAILURE() << "recovered over existing collections";
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("collection `c` exists already; give --force-snapshot"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(everything(*eng_), changed);
  EXPECT_EQ(eng_->recover_full_snapshot(file.string(), true), (std::vector<std::string>{"c", "n"}));
  EXPECT_EQ(everything(*eng_), before);

  eng_->delete_full_snapshot(s.name);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_FALSE(fs::exists(file.string() + ".checksum"));
  EXPECT_TRUE(eng_->list_full_snapshots().empty());
  for (const std::string& bad : {s.name, std::string("c"), std::string("../data/aliases.json"),
                                 std::string("missing.snapshot"), std::string("")}) {
    EXPECT_THROW(eng_->full_snapshot_file(bad), wp::NotFoundError) << bad;
  }
}

// Damaged, truncated, foreign or ill-listed storage snapshots are refused saying what is wrong,
// before any collection or alias changes, and leave no folder behind.
TEST_F(SnapshotTest, BadStorageSnapshotsAreRefusedAndChangeNothing) {
  eng_->update_aliases({{Engine::AliasAction::Kind::kCreate, "al", "c"}});
  const Engine::SnapshotInfo full = eng_->create_full_snapshot();
  const Engine::SnapshotInfo one = eng_->create_snapshot("c");
  const std::string good = read_file((fs::path(eng_->snapshots_dir()) / full.name).string());
  Engine other(tmp_.file("other"));
  other.create_collection("x", config(8));
  auto expect_refused = [&](const std::string& bytes, const std::string& why,
                            const std::string& message_has) {
    write_file(tmp_.file("bad.snapshot"), bytes);
    try {
      other.recover_full_snapshot(tmp_.file("bad.snapshot"), true);
      ADD_FAILURE() << why << ": recovered";
    } catch (const wp::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(message_has), std::string::npos)
          << why << ": " << e.what();
    }
    EXPECT_EQ(other.names(), std::vector<std::string>{"x"}) << why;
    EXPECT_TRUE(other.aliases().empty()) << why;
    for (const auto& e : fs::directory_iterator(tmp_.file("other/collections"))) {
      EXPECT_EQ(e.path().filename(), "x") << why << ": left behind: " << e.path();
    }
  };
  for (const size_t cut : {size_t{0}, size_t{700}, good.size() / 2, good.size() - 1}) {
    expect_refused(good.substr(0, cut), "cut at " + std::to_string(cut), "snapshot is damaged");
  }
  std::string flipped = good;
  flipped[512 + 40] ^= 0x5a;
  expect_refused(flipped, "a byte of a member flipped", "does not match the manifest");
  expect_refused(read_file(path_of(one)), "one collection's snapshot",
                 "is not part of a storage snapshot");
  // And the other way round: a storage snapshot is no collection's.
  try {
    eng_->recover_snapshot_bytes("c", good, "");
    ADD_FAILURE() << "a storage snapshot recovered as a collection";
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("not part of a collection snapshot"), std::string::npos)
        << e.what();
  }
  // Well-formed archives whose manifests list their collections wrongly.
  wp::test::TempDir t;
  write_file(t.file("CURRENT"), "MANIFEST-000001\n");
  auto archive = [&](const std::vector<std::string>& folders, const json& info) {
    std::vector<std::pair<std::string, std::string>> members;
    for (const std::string& f : folders)
      members.emplace_back(f + "/store/CURRENT", t.file("CURRENT"));
    snapshot::write_archive(t.file("x"), members, info, snapshot::Kind::kStorage);
    return read_file(t.file("x"));
  };
  const json c0 = {{"name", "y"}, {"folder", "c0"}};
  expect_refused(archive({"c0"}, json::object()), "no list", "lists no collections");
  expect_refused(archive({"c0", "c1"}, {{"collections", {c0}}}), "a folder not listed",
                 "folder `c1` is not listed");
  expect_refused(archive({"c0"}, {{"collections", {c0, {{"name", "z"}, {"folder", "c1"}}}}}),
                 "a listed folder missing", "folder \"c1\" of collection \"z\" holds nothing");
  expect_refused(archive({"c0"}, {{"collections", {c0, c0}}}), "listed twice", "listed twice");
  expect_refused(archive({"c0"}, {{"collections", {{{"name", "a/b"}, {"folder", "c0"}}}}}),
                 "a bad name", "storage snapshot is damaged");
  expect_refused(archive({"c0"}, {{"collections", {{{"name", "y"}, {"folder", "../c0"}}}}}),
                 "a folder out of place", "is not {\"name\", \"folder\": \"cN\"}");
  expect_refused(archive({"c0"}, {{"collections", {c0}}, {"aliases", {{"al", "nope"}}}}),
                 "an alias of nothing", "alias `al` names no collection of it");
  expect_refused(archive({"c0"}, {{"collections", {c0}}, {"aliases", {{"y", "y"}}}}),
                 "an alias named as a collection", "alias `y` is a collection");
  expect_refused(archive({"c0"}, {{"collections", {c0}}}), "a store that is no collection",
                 "its collection does not open");
  // A good collection beside one that does not open: neither goes in.
  {
    eng_->collection("c")->checkpoint_to(t.file("good"));
    std::vector<std::pair<std::string, std::string>> members;
    for (const auto& e : fs::recursive_directory_iterator(t.file("good"))) {
      if (!e.is_regular_file()) continue;
      members.emplace_back("c0/" + fs::relative(e.path(), t.file("good")).string(),
                           e.path().string());
    }
    members.emplace_back("c1/store/CURRENT", t.file("CURRENT"));
    snapshot::write_archive(
        t.file("two"), members,
        {{"collections", {{{"name", "c"}, {"folder", "c0"}}, {{"name", "z"}, {"folder", "c1"}}}}},
        snapshot::Kind::kStorage);
    expect_refused(read_file(t.file("two")), "the second collection does not open",
                   "its collection does not open");
  }
  EXPECT_THROW(other.recover_full_snapshot(tmp_.file("missing.snapshot"), false), wp::UserError);
  // Conflicts without force: a collection, an alias of the snapshot existing here.
  other.update_aliases({{Engine::AliasAction::Kind::kCreate, "al", "x"}});
  try {
    other.recover_full_snapshot((fs::path(eng_->snapshots_dir()) / full.name).string(), false);
    ADD_FAILURE() << "recovered over an existing alias";
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("alias `al` exists already"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(other.names(), std::vector<std::string>{"x"});
  EXPECT_EQ(other.aliases().at("al"), "x");
}

TEST(SnapshotArchive, StorageMembersLieInTheirCollectionsFolders) {
  using snapshot::Kind;
  for (const char* ok : {"snapshot.json", "c0/store/CURRENT", "c12/index.wpi",
                         "c999999/index.3.meta", "c7/store/000012.sst"}) {
    EXPECT_TRUE(snapshot::allowed_member(ok, Kind::kStorage)) << ok;
  }
  for (const char* bad :
       {"c0/snapshot.json", "store/CURRENT", "index.wpi", "c/index.wpi", "c01/index.wpi",
        "cx/index.wpi", "c1234567/index.wpi", "c0/../x", "c0/store/../../x", "../c0/index.wpi",
        "d0/index.wpi", "c0/c1/index.wpi", "c0/"}) {
    EXPECT_FALSE(snapshot::allowed_member(bad, Kind::kStorage)) << bad;
  }
  EXPECT_FALSE(snapshot::allowed_member("c0/index.wpi"));  // not in a collection's snapshot
  EXPECT_TRUE(snapshot::allowed_member("c12/store/" + std::string(89, 'a'), Kind::kStorage));
  EXPECT_FALSE(snapshot::allowed_member("c123/store/" + std::string(89, 'a'),
                                        Kind::kStorage));  // 100 bytes: no room for its NUL
}

// Searches and writes running while the collection is replaced either succeed or are told to
// retry (UnavailableError); none fails otherwise, and afterwards the snapshot's state is served.
TEST_F(SnapshotTest, RecoveryWhileRequestsRunAnswersEachOrAsksToRetry) {
  const Engine::SnapshotInfo s = eng_->create_snapshot("c");
  const json snapshotted = state(*eng_, "c");
  std::atomic<bool> stop{false};
  std::atomic<int> served{0}, retry{0}, other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      std::mt19937 rng(t);
      while (!stop) {
        try {
          auto c = eng_->collection("c");
          if (t == 0) {
            c->upsert(points(1, rng()), false);
          } else {
            SearchQuery q;
            q.vector.assign(8, 0.5f);
            c->search(q);
          }
          ++served;
        } catch (const wp::UnavailableError&) {
          ++retry;
        } catch (const std::exception& e) {
          ++other;
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (int i = 0; i < 3; ++i) eng_->recover_snapshot_location("c", file_url(s), "");
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(served.load(), 0);
  EXPECT_EQ(other.load(), 0);
  std::printf("requests served %d, asked to retry %d\n", served.load(), retry.load());
  eng_->recover_snapshot_location("c", file_url(s), "");
  EXPECT_EQ(state(*eng_, "c"), snapshotted);
}

TEST(SnapshotArchive, RefusesMemberNamesThatLeaveTheFolderAndChecksTheManifest) {
  for (const char* ok : {"snapshot.json", "index.wpi", "index.meta", "store/CURRENT",
                         "store/000012.sst", "store/MANIFEST-000005"}) {
    EXPECT_TRUE(snapshot::allowed_member(ok)) << ok;
  }
  for (const char* bad : {"../x", "/etc/passwd", "store/../../x", "store/", "store/..", "store/a/b",
                          "index.wpi/", "other", "store/a b", "store/.."}) {
    EXPECT_FALSE(snapshot::allowed_member(bad)) << bad;
  }
  wp::test::TempDir tmp;
  write_file(tmp.file("a"), "alpha");
  write_file(tmp.file("b"), std::string(3000, 'b'));
  const std::string sha = snapshot::write_archive(
      tmp.file("x.tar"), {{"store/A", tmp.file("a")}, {"index.wpi", tmp.file("b")}},
      {{"collection", "c"}});
  const std::string bytes = read_file(tmp.file("x.tar"));
  EXPECT_EQ(sha, snapshot::sha256_bytes(bytes));
  EXPECT_EQ(bytes.size() % 512, 0u);
  MemorySink sink;
  snapshot::ViewStream in(bytes);
  const json manifest = snapshot::read_archive(in, sink);
  EXPECT_EQ(manifest["collection"], "c");
  EXPECT_EQ(manifest["files"].size(), 2u);
  EXPECT_EQ(sink.files["store/A"], "alpha");
  EXPECT_EQ(sink.files["index.wpi"], std::string(3000, 'b'));
  // The system's tar reads it as the same two files and the manifest.
  const std::string listing = tmp.file("list.txt");
  ASSERT_EQ(std::system(("tar tf " + tmp.file("x.tar") + " > " + listing).c_str()), 0);
  EXPECT_EQ(read_file(listing), "store/A\nindex.wpi\nsnapshot.json\n");

  // A member the manifest does not list (the same bytes with a member name rewritten and its
  // header checksum fixed): refused although every header is valid.
  std::string renamed = bytes;
  renamed[6] = 'B';  // "store/A" -> "store/B"
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) {
    sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(renamed[i]);
  }
  char field[8];
  std::snprintf(field, sizeof field, "%06o", sum);
  std::memcpy(&renamed[148], field, 7);
  MemorySink s2;
  snapshot::ViewStream in2(renamed);
  EXPECT_THROW(snapshot::read_archive(in2, s2), wp::UserError);
  // Its path escaping the folder: refused by name before anything is written.
  std::string escape = bytes;
  std::memcpy(&escape[0], "../x\0\0\0", 7);
  MemorySink s3;
  snapshot::ViewStream in3(escape);
  EXPECT_THROW(snapshot::read_archive(in3, s3), wp::UserError);
  EXPECT_TRUE(s3.files.empty());
}

TEST(Multipart, FindsTheNamedPartAndRefusesMalformedBodies) {
  using wp::http::multipart_field;
  const std::string type = "multipart/form-data; boundary=XyZ";
  const std::string body =
      "preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nnope\r\n"
      "--XyZ\r\ncontent-disposition: form-data; name=\"snapshot\"; filename=\"a.snapshot\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\nBYTES\r\n--XyZ\r\nand more\r\n--XyZ--\r\n";
  EXPECT_EQ(multipart_field(body, type, "snapshot"), "BYTES");
  EXPECT_EQ(multipart_field(body, "Multipart/Form-Data; boundary=\"XyZ\"", "other"), "nope");
  // Binary content holding CR, LF and dashes, as the first thing in the body.
  const std::string bin("\r\n-\0--Xy\r\n", 10);
  EXPECT_EQ(multipart_field("--XyZ\r\nContent-Disposition: form-data; name=snapshot\r\n\r\n" + bin +
                                "\r\n--XyZ--",
                            type, "snapshot"),
            bin);
  const std::vector<std::pair<std::string, std::string>> bad{
      {"application/json", "Content-Type"},
      {"multipart/form-data", "boundary"},
      {"multipart/form-data; boundary=", "boundary"},
  };
  for (const auto& [t, word] : bad) {
    try {
      multipart_field(body, t, "snapshot");
      ADD_FAILURE() << t;
    } catch (const wp::UserError& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  }
  for (const std::string& b :
       {std::string(""), std::string("no boundary here"), body.substr(0, body.size() / 2),
        std::string("--XyZ\r\nContent-Disposition: form-data; name=\"snapshot\"\r\n\r\nabc"),
        std::string("--XyZ--\r\n"), std::string("--XyZ"), std::string("--XyZ\r\n\r\n")}) {
    EXPECT_THROW(multipart_field(b, type, "snapshot"), wp::UserError) << b;
  }
  EXPECT_THROW(multipart_field(body, type, "missing"), wp::UserError);
}

namespace {

class SnapshotApiTest : public SnapshotTest {
 protected:
  void SetUp() override {
    SnapshotTest::SetUp();
    api_ = std::make_unique<wp::http::Api>(*eng_, wp::http::ApiOptions{});
  }
  wp::http::Response call(const std::string& method, const std::string& target,
                          const std::string& body = "", const std::string& type = "") {
    wp::http::Request r{method, target, body, "", ""};
    r.content_type = type;
    return api_->handle(r);
  }
  json ok(const std::string& method, const std::string& target, const std::string& body = "",
          const std::string& type = "") {
    const auto r = call(method, target, body, type);
    EXPECT_EQ(r.status, 200u) << method << " " << target << ": " << r.body;
    return json::parse(r.body)["result"];
  }
  std::unique_ptr<wp::http::Api> api_;
};

}  // namespace

TEST_F(SnapshotApiTest, RoutesCreateListDownloadRecoverUploadAndDelete) {
  const json s = ok("POST", "/collections/c/snapshots?wait=true");
  const std::string name = s["name"];
  EXPECT_EQ(s["checksum"].get<std::string>().size(), 64u);
  EXPECT_EQ(ok("GET", "/collections/c/snapshots"), json::array({s}));
  // The download is the file itself, sent by the server from disk.
  const auto dl = call("GET", "/collections/c/snapshots/" + name);
  ASSERT_EQ(dl.status, 200u);
  EXPECT_EQ(dl.content_type, "application/octet-stream");
  const std::string bytes = read_file(dl.file);
  EXPECT_EQ(snapshot::sha256_bytes(bytes), s["checksum"]);
  EXPECT_EQ(call("GET", "/collections/c/snapshots/nope.snapshot").status, 404u);
  EXPECT_EQ(call("GET", "/collections/c/snapshots/..%2F..%2Faliases.json").status, 404u);

  ok("POST", "/collections/c/points/delete?wait=true", R"({"points": [0, 1, 2]})");
  const std::string loc = "file://" + eng_->snapshots_dir() + "/c/" + name;
  EXPECT_EQ(
      ok("PUT", "/collections/c/snapshots/recover",
         json{{"location", loc}, {"priority", "snapshot"}, {"checksum", s["checksum"]}}.dump()),
      true);
  EXPECT_EQ(ok("POST", "/collections/c/points/count", "{}")["count"], 300);

  const std::string type = "multipart/form-data; boundary=b0undary";
  const std::string form =
      "--b0undary\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"s\"\r\n\r\n" +
      bytes + "\r\n--b0undary--\r\n";
  EXPECT_EQ(ok("POST",
               "/collections/up/snapshots/upload?priority=replica&checksum=" +
                   s["checksum"].get<std::string>(),
               form, type),
            true);
  EXPECT_EQ(ok("POST", "/collections/up/points/count", "{}")["count"], 300);

  // Bad requests: 4xx naming the field, nothing changed.
  const std::vector<
      std::tuple<std::string, std::string, std::string, std::string, unsigned, std::string>>
      bad{
          {"PUT", "/collections/c/snapshots/recover", R"({"location": 5})", "", 400, "location"},
          {"PUT", "/collections/c/snapshots/recover", "{}", "", 400, "location"},
          {"PUT", "/collections/c/snapshots/recover",
           json{{"location", loc}, {"priority", "first"}}.dump(), "", 400, "priority"},
          {"PUT", "/collections/c/snapshots/recover", json{{"location", loc}, {"x", 1}}.dump(), "",
           400, "x: unknown field"},
          {"PUT", "/collections/c/snapshots/recover",
           json{{"location", loc}, {"checksum", "00"}}.dump(), "", 400, "checksum"},
          {"PUT", "/collections/c/snapshots/recover", R"({"location": "s3://bucket/x"})", "", 400,
           "location"},
          {"POST", "/collections/c/snapshots/upload", form, "application/json", 400,
           "Content-Type"},
          {"POST", "/collections/c/snapshots/upload?checksum=00", form, type, 400, "checksum"},
          {"POST", "/collections/c/snapshots/upload?priority=x", form, type, 400, "priority"},
          {"POST", "/collections/c/snapshots/upload?colour=x", form, type, 400, "colour"},
          {"POST", "/collections/c/snapshots/upload", form.substr(0, form.size() / 2), type, 400,
           "boundary"},
          {"POST", "/collections/c/snapshots?wait=maybe", "", "", 400, "wait"},
          {"POST", "/collections/nope/snapshots", "", "", 404, "nope"},
          {"DELETE", "/collections/c/snapshots/nope.snapshot", "", "", 404, "nope.snapshot"},
      };
  for (const auto& [method, target, body, ctype, status, word] : bad) {
    const auto r = call(method, target, body, ctype);
    EXPECT_EQ(r.status, status) << method << " " << target << ": " << r.body;
    EXPECT_NE(r.body.find(word), std::string::npos) << r.body;
  }
  EXPECT_EQ(ok("POST", "/collections/c/points/count", "{}")["count"], 300);
  EXPECT_EQ(ok("DELETE", "/collections/c/snapshots/" + name + "?wait=true"), true);
  EXPECT_EQ(ok("GET", "/collections/c/snapshots"), json::array());
}

TEST_F(SnapshotApiTest, StorageSnapshotRoutesCreateListDownloadAndDelete) {
  ok("POST", "/collections/aliases",
     R"({"actions": [{"create_alias": {"collection_name": "c", "alias_name": "al"}}]})");
  EXPECT_EQ(ok("GET", "/snapshots"), json::array());
  const json s = ok("POST", "/snapshots?wait=true");
  const std::string name = s["name"];
  EXPECT_EQ(name.rfind("full-snapshot-", 0), 0u) << name;
  EXPECT_EQ(s["checksum"].get<std::string>().size(), 64u);
  EXPECT_EQ(ok("GET", "/snapshots"), json::array({s}));
  EXPECT_EQ(ok("GET", "/collections/c/snapshots"), json::array());  // no collection's snapshot
  const auto dl = call("GET", "/snapshots/" + name);
  ASSERT_EQ(dl.status, 200u);
  EXPECT_EQ(dl.content_type, "application/octet-stream");
  EXPECT_EQ(snapshot::sha256_bytes(read_file(dl.file)), s["checksum"]);
  // What the download holds recovers into another server.
  Engine other(tmp_.file("other"));
  EXPECT_EQ(other.recover_full_snapshot(dl.file, false), std::vector<std::string>{"c"});
  EXPECT_EQ(state(other, "c"), state(*eng_, "c"));
  EXPECT_EQ(other.aliases().at("al"), "c");

  for (const auto& [method, target, status, word] :
       std::vector<std::tuple<std::string, std::string, unsigned, std::string>>{
           {"GET", "/snapshots/nope.snapshot", 404, "nope.snapshot"},
           {"GET", "/snapshots/c", 404, "`c`"},  // a collection's folder of snapshots
           {"GET", "/snapshots/..%2Fdata%2Faliases.json", 404, "doesn't exist"},
           {"DELETE", "/snapshots/nope.snapshot", 404, "nope.snapshot"},
           {"POST", "/snapshots?wait=maybe", 400, "wait"},
           {"DELETE", "/snapshots/" + name + "?wait=maybe", 400, "wait"},
       }) {
    const auto r = call(method, target);
    EXPECT_EQ(r.status, status) << method << " " << target << ": " << r.body;
    EXPECT_NE(r.body.find(word), std::string::npos) << r.body;
  }
  EXPECT_EQ(ok("DELETE", "/snapshots/" + name + "?wait=true"), true);
  EXPECT_EQ(ok("GET", "/snapshots"), json::array());
  EXPECT_EQ(call("GET", "/snapshots/" + name).status, 404u);
}

// A body over max_body_bytes is refused on every route but the upload, whose limit is
// max_upload_bytes.
TEST_F(SnapshotApiTest, UploadsHaveTheirOwnBodyLimit) {
  wp::http::ApiOptions o;
  o.max_body_bytes = 1000;
  o.max_upload_bytes = 1 << 20;
  api_ = std::make_unique<wp::http::Api>(*eng_, o);
  const json s = ok("POST", "/collections/c/snapshots");
  const std::string bytes = read_file(eng_->snapshot_file("c", s["name"]));
  ASSERT_GT(bytes.size(), 1000u);
  ASSERT_LT(bytes.size(), size_t{1} << 20);
  const std::string form =
      "--b\r\nContent-Disposition: form-data; name=\"snapshot\"\r\n\r\n" + bytes + "\r\n--b--";
  EXPECT_EQ(ok("POST", "/collections/d/snapshots/upload", form, "multipart/form-data; boundary=b"),
            true);
  EXPECT_EQ(call("PUT", "/collections/c/points", std::string(2000, ' ')).status, 413u);
  o.max_upload_bytes = 2000;
  api_ = std::make_unique<wp::http::Api>(*eng_, o);
  EXPECT_EQ(call("POST", "/collections/d/snapshots/upload", form, "multipart/form-data; boundary=b")
                .status,
            413u);
}
