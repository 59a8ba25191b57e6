#pragma once
// Helpers shared by the tests: dataset paths, temporary files, seeded random data.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include "index/dataset.h"
#include "index/matrix.h"

namespace wp::test {

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

/// Squared Euclidean distance in double, written out here so that tests check the library's
/// distances against an oracle that shares no code with them.
inline double l2(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s;
}

}  // namespace wp::test
