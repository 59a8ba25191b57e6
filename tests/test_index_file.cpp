#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include <xxhash.h>

#include "index/error.h"
#include "index/index.h"
#include "index/index_file.h"
#include "index/param_range.h"
#include "test_util.h"

using namespace wp::index;

namespace {
void flip_byte(const std::string& path, size_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c;
  f.read(&c, 1);
  c ^= 0x5a;
  f.seekp(offset);
  f.write(&c, 1);
}

void write_sample(const std::string& path) {
  BinaryWriter w(path, IndexType::kFlat);
  w.write<uint32_t>(42);
  w.write_vector(std::vector<float>{1, 2, 3});
  w.write_string("hello");
  w.finish();
}
}  // namespace

TEST(IndexFile, RoundTripThroughHeaderAndChecksum) {
  wp::test::TempDir tmp;
  write_sample(tmp.file("a.idx"));
  BinaryReader r(tmp.file("a.idx"));
  EXPECT_EQ(r.type(), IndexType::kFlat);
  EXPECT_EQ(r.read<uint32_t>(), 42u);
  EXPECT_EQ(r.read_vector<float>(10), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(r.read_string(), "hello");
  r.expect_end();
  EXPECT_FALSE(std::filesystem::exists(tmp.file("a.idx.tmp")));
}

TEST(IndexFile, EveryFlippedByteIsDetected) {
  wp::test::TempDir tmp;
  write_sample(tmp.file("a.idx"));
  const size_t size = std::filesystem::file_size(tmp.file("a.idx"));
  for (size_t off = 0; off < size; ++off) {
    write_sample(tmp.file("b.idx"));
    flip_byte(tmp.file("b.idx"), off);
    EXPECT_THROW(BinaryReader r(tmp.file("b.idx")), wp::UserError) << "offset " << off;
  }
}

TEST(IndexFile, TruncatedAndExtendedFilesAreRejected) {
  wp::test::TempDir tmp;
  write_sample(tmp.file("a.idx"));
  const size_t size = std::filesystem::file_size(tmp.file("a.idx"));
  for (size_t keep : {size_t{0}, size_t{5}, size_t{31}, size_t{32}, size - 1}) {
    write_sample(tmp.file("t.idx"));
    std::filesystem::resize_file(tmp.file("t.idx"), keep);
    EXPECT_THROW(BinaryReader r(tmp.file("t.idx")), wp::UserError) << "kept " << keep;
  }
  write_sample(tmp.file("e.idx"));
  std::filesystem::resize_file(tmp.file("e.idx"), size + 8);
  EXPECT_THROW(BinaryReader r(tmp.file("e.idx")), wp::UserError);
}

TEST(IndexFile, ReadsBeyondThePayloadAreErrors) {
  wp::test::TempDir tmp;
  write_sample(tmp.file("a.idx"));
  BinaryReader r(tmp.file("a.idx"));
  r.read<uint32_t>();
  EXPECT_THROW(r.read_vector<float>(2), wp::UserError);  // length 3 above the allowed 2
  BinaryReader r2(tmp.file("a.idx"));
  r2.read<uint32_t>();
  r2.read_vector<float>(10);
  r2.read_string();
  EXPECT_THROW(r2.read<uint64_t>(), wp::UserError);
}

TEST(IndexFile, NotAnIndexFile) {
  wp::test::TempDir tmp;
  std::ofstream(tmp.file("x.idx")) << "this is plain text, long enough to hold a header......";
  try {
    BinaryReader r(tmp.file("x.idx"));
    FAIL();
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("bad magic"), std::string::npos) << e.what();
  }
  EXPECT_THROW(BinaryReader r(tmp.file("none.idx")), wp::UserError);
}

// Found by fuzz_index_file (issue 15): an HNSW file whose M was 1.8e19 made the error message
// convert it to long long (UB); it is refused with the value shown as a number.
TEST(IndexFile, FuzzFoundHugeIntegerParametersAreRefusedCleanly) {
  const wp::index::ParamRange r{"M", "M", "M", 2, 128, true, "links per node"};
  try {
    r.check(1.78703e19);
    FAIL() << "accepted";
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("got 1.78703e+19"), std::string::npos) << e.what();
  }
  EXPECT_THROW(r.check(std::nan("")), wp::UserError);
}

// Every input fuzz_index_file found (kept as tests/fuzz/corpus/fuzz_index_file/regression-*),
// wrapped in a valid container as the target does: loading is refused with a UserError, or what
// loads can be searched. Under ASan (CI) a read out of bounds fails it: the HNSW loader used to
// accept an upper-level link to a vertex without that level, and search read past its lists.
TEST(IndexFile, FuzzFoundFilesAreRefusedOrSearchable) {
  namespace fs = std::filesystem;
  wp::test::TempDir tmp;
  size_t replayed = 0;
  for (const auto& entry : fs::directory_iterator(WAYPOINT_FUZZ_CORPUS "/fuzz_index_file")) {
    if (entry.path().filename().string().rfind("regression-", 0) != 0) continue;
    const std::string input = wp::test::read_file(entry.path().string());
    ASSERT_FALSE(input.empty());
    const uint32_t tag = 1 + static_cast<uint8_t>(input[0]) % 5;
    if (tag == static_cast<uint32_t>(wp::index::IndexType::kHashModel)) continue;
    const std::string payload = input.substr(1);
    std::string file(32, '\0');
    const uint32_t version = wp::index::kIndexFormatVersion;
    const uint64_t length = payload.size(), sum = XXH3_64bits(payload.data(), payload.size());
    std::memcpy(&file[0], "WAYPOINT", 8);
    std::memcpy(&file[8], &version, 4);
    std::memcpy(&file[12], &tag, 4);
    std::memcpy(&file[16], &length, 8);
    std::memcpy(&file[24], &sum, 8);
    std::ofstream(tmp.file("x.idx"), std::ios::binary) << file << payload;
    ++replayed;
    try {
      const auto idx = wp::index::load_index(tmp.file("x.idx"));
      if (idx->dim() == 0 || idx->dim() > 4096) continue;
      std::vector<float> q(idx->dim(), 0.5f);
      wp::index::label_t labels[5];
      float distances[5];
      idx->search_one(q.data(), 5, wp::index::SearchParams{}, labels, distances);
    } catch (const wp::UserError&) {
    }
  }
  EXPECT_GE(replayed, 3u);
}
