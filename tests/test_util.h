#pragma once
// Helpers shared by the tests: dataset paths, temporary files, seeded random data.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <thread>

#include "index/dataset.h"
#include "index/distance.h"
#include "index/matrix.h"

namespace wp::test {

/// Whether this build runs under a sanitizer (ASan or TSan: work runs 5-10x slower), for tests
/// whose workload only has to be long, not of a given size.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

inline std::string data_dir() {
  return WAYPOINT_DATA_DIR;
}

/// Loads a test dataset ("siftsmall", "digits": committed under tests/data, see its README); the
/// test fails if it is absent.
inline index::Dataset load_test_data(const std::string& name) {
  const std::string dir = data_dir() + "/" + name;
  if (!std::filesystem::exists(dir)) {
    ADD_FAILURE() << "dataset " << dir << " missing (WAYPOINT_DATA_DIR points elsewhere?)";
    return {};
  }
  return index::load_dataset(dir);
}

/// A file's bytes (empty when it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Waits up to `limit` for `done`, checking every `poll`; returns whether it came (for tests of
/// servers and clusters, where a change shows up a little later).
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(10),
                       std::chrono::milliseconds poll = std::chrono::milliseconds(20)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(poll);
  }
  return done();
}

/// A fresh temporary folder, removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / ("wp_test_" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// n x d standard normal values from a fixed seed.
inline index::Matrix random_matrix(size_t n, size_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  index::Matrix m(n, d);
  for (float& v : m.data) v = g(rng);
  return m;
}

/// A test run once per instruction set (INSTANTIATE_TEST_SUITE_P(Isa, Suite, wp::test::kAllIsas,
/// wp::test::isa_name)); on a CPU without that set the instance is skipped, and says so.
class PerIsa : public ::testing::TestWithParam<index::Isa> {
 protected:
  void SetUp() override {
    if (!index::isa_supported(GetParam())) {
      GTEST_SKIP() << "this CPU lacks " << isa_label(GetParam());
    }
  }
  static const char* isa_label(index::Isa isa) {
    return isa == index::Isa::kScalar ? "scalar" : isa == index::Isa::kAvx2 ? "avx2" : "avx512";
  }
};
inline const auto kAllIsas =
    ::testing::Values(index::Isa::kScalar, index::Isa::kAvx2, index::Isa::kAvx512);
inline std::string isa_name(const ::testing::TestParamInfo<index::Isa>& info) {
  return info.param == index::Isa::kScalar ? "scalar"
         : info.param == index::Isa::kAvx2 ? "avx2"
                                           : "avx512";
}

/// Squared Euclidean distance in double, written out here so that tests check the library's
/// distances against an oracle that shares no code with them.
inline double l2(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s;
}

}  // namespace wp::test
