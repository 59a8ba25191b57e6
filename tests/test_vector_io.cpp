#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>

#include "index/error.h"
#include "index/vector_io.h"
#include "test_util.h"

#ifdef WAYPOINT_HAVE_HDF5
#include <hdf5.h>
#endif

using namespace wp::index;

namespace {
void write_raw(const std::string& path, const void* p, size_t n) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(p), n);
}
}  // namespace

TEST(VectorIo, FvecsIvecsRoundTrip) {
  wp::test::TempDir tmp;
  const Matrix m = wp::test::random_matrix(13, 7, 1);
  write_fvecs(tmp.file("a.fvecs"), m);
  const Matrix r = read_fvecs(tmp.file("a.fvecs"));
  EXPECT_EQ(r.n, 13u);
  EXPECT_EQ(r.d, 7u);
  EXPECT_EQ(r.data, m.data);
  EXPECT_EQ(read_fvecs(tmp.file("a.fvecs"), 5).n, 5u);
  EXPECT_EQ(read_vectors(tmp.file("a.fvecs")).data, m.data);

  IntMatrix im(3, 4);
  for (size_t i = 0; i < im.data.size(); ++i) im.data[i] = static_cast<int32_t>(i * 7);
  write_ivecs(tmp.file("a.ivecs"), im);
  EXPECT_EQ(read_ivecs(tmp.file("a.ivecs")).data, im.data);
}

TEST(VectorIo, ReadsSiftsmallWithTheDocumentedShape) {
  const Matrix base = read_fvecs(wp::test::data_dir() + "/siftsmall/base.fvecs");
  EXPECT_EQ(base.n, 10000u);
  EXPECT_EQ(base.d, 128u);
  const IntMatrix gt = read_ivecs(wp::test::data_dir() + "/siftsmall/groundtruth.ivecs");
  EXPECT_EQ(gt.n, 100u);
  EXPECT_EQ(gt.d, 100u);
}

TEST(VectorIo, BvecsAndBinFormats) {
  wp::test::TempDir tmp;
  // bvecs: int32 d then d bytes per record.
  std::vector<char> b;
  for (int r = 0; r < 2; ++r) {
    int32_t d = 3;
    b.insert(b.end(), reinterpret_cast<char*>(&d), reinterpret_cast<char*>(&d) + 4);
    for (int j = 0; j < 3; ++j) b.push_back(static_cast<char>(r * 10 + j + 200));
  }
  write_raw(tmp.file("x.bvecs"), b.data(), b.size());
  const Matrix bv = read_bvecs(tmp.file("x.bvecs"));
  ASSERT_EQ(bv.n, 2u);
  EXPECT_EQ(bv.row(1)[2], 212.0f);

  // fbin / u8bin / ibin: uint32 n, uint32 d, values.
  const uint32_t hdr[2] = {2, 3};
  const float fv[6] = {1, 2, 3, 4, 5, 6};
  std::vector<char> fb(reinterpret_cast<const char*>(hdr), reinterpret_cast<const char*>(hdr) + 8);
  fb.insert(fb.end(), reinterpret_cast<const char*>(fv), reinterpret_cast<const char*>(fv) + 24);
  write_raw(tmp.file("x.fbin"), fb.data(), fb.size());
  EXPECT_EQ(read_fbin(tmp.file("x.fbin")).data, std::vector<float>(fv, fv + 6));
  EXPECT_EQ(read_vectors(tmp.file("x.fbin")).row(1)[0], 4.0f);

  const uint8_t u8[6] = {9, 8, 7, 6, 5, 255};
  std::vector<char> ub(reinterpret_cast<const char*>(hdr), reinterpret_cast<const char*>(hdr) + 8);
  ub.insert(ub.end(), u8, u8 + 6);
  write_raw(tmp.file("x.u8bin"), ub.data(), ub.size());
  EXPECT_EQ(read_u8bin(tmp.file("x.u8bin")).row(1)[2], 255.0f);

  const int32_t iv[6] = {0, -1, 2, 3, 4, 5};
  std::vector<char> ib(reinterpret_cast<const char*>(hdr), reinterpret_cast<const char*>(hdr) + 8);
  ib.insert(ib.end(), reinterpret_cast<const char*>(iv), reinterpret_cast<const char*>(iv) + 24);
  write_raw(tmp.file("x.ibin"), ib.data(), ib.size());
  EXPECT_EQ(read_ibin(tmp.file("x.ibin")).row(0)[1], -1);
}

TEST(VectorIo, MalformedFilesAreUserErrors) {
  wp::test::TempDir tmp;
  EXPECT_THROW(read_fvecs(tmp.file("missing.fvecs")), wp::UserError);
  // Truncated record.
  const Matrix m = wp::test::random_matrix(4, 8, 2);
  write_fvecs(tmp.file("t.fvecs"), m);
  std::filesystem::resize_file(tmp.file("t.fvecs"), 4 * (4 + 32) - 3);
  EXPECT_THROW(read_fvecs(tmp.file("t.fvecs")), wp::UserError);
  // Absurd dimension.
  const int32_t bad[2] = {-5, 0};
  write_raw(tmp.file("b.fvecs"), bad, sizeof bad);
  EXPECT_THROW(read_fvecs(tmp.file("b.fvecs")), wp::UserError);
  // Records of different dimensions.
  std::vector<char> mixed;
  for (int32_t d : {2, 1}) {
    mixed.insert(mixed.end(), reinterpret_cast<char*>(&d), reinterpret_cast<char*>(&d) + 4);
    mixed.insert(mixed.end(), 4 * 2, 0);
  }
  mixed.resize(mixed.size() - 4);  // second record: d=1 followed by 4 bytes (=12 bytes total)
  write_raw(tmp.file("m.fvecs"), mixed.data(), mixed.size());
  EXPECT_THROW(read_fvecs(tmp.file("m.fvecs")), wp::UserError);
  // bin header that lies about the size.
  const uint32_t hdr[2] = {100, 3};
  write_raw(tmp.file("l.fbin"), hdr, sizeof hdr);
  EXPECT_THROW(read_fbin(tmp.file("l.fbin")), wp::UserError);
  EXPECT_THROW(read_vectors(tmp.file("x.txt")), wp::UserError);
}

#ifdef WAYPOINT_HAVE_HDF5
namespace {
template <typename T>
void h5_write(hid_t f, const char* name, hid_t type, const std::vector<T>& v, hsize_t n,
              hsize_t d) {
  hsize_t dims[2] = {n, d};
  hid_t space = H5Screate_simple(2, dims, nullptr);
  hid_t ds = H5Dcreate2(f, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(ds);
  H5Sclose(space);
}
}  // namespace

TEST(VectorIo, AnnBenchmarksHdf5) {
  ASSERT_TRUE(hdf5_supported());
  wp::test::TempDir tmp;
  const std::string path = tmp.file("toy-4-angular.hdf5");
  {
    hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    h5_write<float>(f, "train", H5T_NATIVE_FLOAT, {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0}, 3, 4);
    h5_write<float>(f, "test", H5T_NATIVE_FLOAT, {1, 0.1f, 0, 0}, 1, 4);
    h5_write<int32_t>(f, "neighbors", H5T_NATIVE_INT32, {0, 1}, 1, 2);
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 7);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "distance", str, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, str, "angular");
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(str);
    H5Fclose(f);
  }
  const AnnHdf5 h = read_ann_hdf5(path);
  EXPECT_EQ(h.train.n, 3u);
  EXPECT_EQ(h.test.d, 4u);
  EXPECT_EQ(h.neighbors.row(0)[1], 1);
  EXPECT_EQ(h.distance, "angular");
  const Dataset ds = load_dataset(path);
  EXPECT_EQ(ds.metric, Metric::kCosine);
  EXPECT_EQ(ds.groundtruth.d, 2u);
  EXPECT_THROW(read_ann_hdf5(tmp.file("nope.hdf5")), wp::UserError);
}
#else
TEST(VectorIo, AnnBenchmarksHdf5) {
  GTEST_SKIP() << "built with -DWAYPOINT_WITH_HDF5=OFF";
}
#endif

// Found by fuzz_vector_file (issue 15): a .fbin header of 0 rows copied from a null buffer (UB).
TEST(VectorIo, FuzzFoundAnEmptyBinFileReadsAsNoRows) {
  wp::test::TempDir tmp;
  const std::string path = tmp.file("empty.fbin");
  {
    std::ofstream out(path, std::ios::binary);
    const uint32_t header[2] = {0, 3};
    out.write(reinterpret_cast<const char*>(header), sizeof header);
  }
  const auto m = wp::index::read_fbin(path);
  EXPECT_EQ(m.n, 0u);
  EXPECT_EQ(m.d, 3u);
}
