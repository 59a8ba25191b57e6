#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "index/distance.h"
#include "index/error.h"
#include "test_util.h"

using namespace wp::index;

namespace {
double ref_l2(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s;
}
double ref_ip(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) s += double(a[i]) * b[i];
  return s;
}
}  // namespace

using DistanceKernelsOf = wp::test::PerIsa;
INSTANTIATE_TEST_SUITE_P(Isa, DistanceKernelsOf, wp::test::kAllIsas, wp::test::isa_name);

TEST_P(DistanceKernelsOf, EachMatchesTheDoubleReferenceAtManyDimensions) {
  {
    const DistanceKernels& k = kernels_for(GetParam());
    for (size_t d : {1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 100, 128, 784, 1000}) {
      const Matrix m = wp::test::random_matrix(2, d, d);
      const double l2 = ref_l2(m.row(0), m.row(1), d), ip = ref_ip(m.row(0), m.row(1), d);
      EXPECT_NEAR(k.l2sqr(m.row(0), m.row(1), d), l2, 1e-4 * (1 + l2)) << k.name << " d=" << d;
      EXPECT_NEAR(k.inner_product(m.row(0), m.row(1), d), ip, 1e-4 * (1 + std::abs(ip)))
          << k.name << " d=" << d;
      EXPECT_FLOAT_EQ(k.neg_inner_product(m.row(0), m.row(1), d),
                      -k.inner_product(m.row(0), m.row(1), d));
    }
  }
}

TEST_P(DistanceKernelsOf, CodeKernelsMatchTheReference) {
  std::mt19937 rng(3);
  {
    const DistanceKernels& k = kernels_for(GetParam());
    for (size_t d : {1, 5, 8, 16, 17, 33, 64, 128, 784}) {
      const Matrix q = wp::test::random_matrix(1, d, d + 100);
      std::vector<uint8_t> c(d);
      for (auto& x : c) x = static_cast<uint8_t>(rng() % 256);
      double l2 = 0, ip = 0;
      for (size_t i = 0; i < d; ++i) {
        l2 += (double(q.row(0)[i]) - c[i]) * (double(q.row(0)[i]) - c[i]);
        ip += double(q.row(0)[i]) * c[i];
      }
      EXPECT_NEAR(k.l2sqr_u8(q.row(0), c.data(), d), l2, 1e-4 * (1 + l2)) << k.name << " " << d;
      EXPECT_NEAR(k.inner_product_u8(q.row(0), c.data(), d), ip, 1e-3 * (1 + std::abs(ip)))
          << k.name << " " << d;
    }
  }
}

// MaxSim at row counts below, at and past its blocks of four rows, and dimensions with tails.
TEST_P(DistanceKernelsOf, MaxSimMatchesTheDoubleReference) {
  const DistanceKernels& k = kernels_for(GetParam());
  for (size_t d : {1, 7, 16, 17, 96, 128, 130}) {
    for (size_t qn : {1, 3, 5}) {
      for (size_t pn : {1, 3, 4, 5, 9}) {
        const Matrix q = wp::test::random_matrix(qn, d, d + qn),
                     p = wp::test::random_matrix(pn, d, d + 7 * pn);
        for (const bool l2 : {false, true}) {
          double want = 0;
          for (size_t a = 0; a < qn; ++a) {
            double best = -std::numeric_limits<double>::infinity();
            for (size_t r = 0; r < pn; ++r) {
              best = std::max(best,
                              l2 ? -ref_l2(q.row(a), p.row(r), d) : ref_ip(q.row(a), p.row(r), d));
            }
            want += best;
          }
          EXPECT_NEAR(k.max_sim(q.row(0), qn, p.row(0), pn, d, l2), want,
                      1e-4 * (1 + std::abs(want)))
              << k.name << " d=" << d << " " << qn << "x" << pn << (l2 ? " l2" : " ip");
        }
      }
    }
  }
}

TEST(Distance, BestKernelIsSupportedAndUsedByDefault) {
  EXPECT_TRUE(isa_supported(best_isa()));
  EXPECT_EQ(kernels().isa, best_isa());
  EXPECT_EQ(distance_fn(Metric::kL2, 128), kernels_for_dim(128).l2sqr);
  EXPECT_EQ(distance_fn(Metric::kCosine, 128), kernels_for_dim(128).neg_inner_product);
}

TEST(Distance, WideVectorsUseAvx512WhenTheCpuHasIt) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "this CPU lacks AVX-512";
  if (std::getenv("WAYPOINT_ISA")) GTEST_SKIP() << "WAYPOINT_ISA overrides the choice";
  EXPECT_EQ(kernels_for_dim(784).isa, Isa::kAvx512);
}

TEST(Distance, NormalizeGivesUnitLengthAndKeepsZero) {
  Matrix m = wp::test::random_matrix(1, 37, 5);
  const double before = std::sqrt(ref_ip(m.row(0), m.row(0), 37));
  EXPECT_NEAR(normalize(m.row(0), 37), before, 1e-4);
  EXPECT_NEAR(ref_ip(m.row(0), m.row(0), 37), 1.0, 1e-5);
  float zero[4] = {0, 0, 0, 0};
  EXPECT_EQ(normalize(zero, 4), 0.0f);
  EXPECT_EQ(zero[0], 0.0f);
}

TEST(Distance, AllFiniteRejectsNanAndInf) {
  float v[3] = {1, 2, 3};
  EXPECT_TRUE(all_finite(v, 3));
  v[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(all_finite(v, 3));
  v[1] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(all_finite(v, 3));
}

TEST(Distance, CheckVectorRefusesEveryNonFiniteValueAndAcceptsTheLargestFloats) {
  // check_vector finds non-finite values by the sum of squares it takes for the norm: each kind
  // at each place, and the largest finite floats (whose squares a float sum would overflow).
  const float inf = std::numeric_limits<float>::infinity();
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), inf, -inf}) {
    for (size_t at = 0; at < 130; ++at) {
      std::vector<float> v(130, 0.5f);
      v[at] = bad;
      for (const Metric m : {Metric::kL2, Metric::kInnerProduct, Metric::kCosine}) {
        try {
          check_vector(v.data(), v.size(), m, "vector");
          ADD_FAILURE() << bad << " at " << at << " was accepted";
        } catch (const wp::UserError& e) {
          EXPECT_NE(std::string(e.what()).find("only finite numbers"), std::string::npos)
              << bad << " at " << at << ": " << e.what();
        }
      }
    }
  }
  std::vector<float> big(130, std::numeric_limits<float>::max());
  big[7] = -std::numeric_limits<float>::max();
  EXPECT_NO_THROW(check_vector(big.data(), big.size(), Metric::kCosine, "vector"));
  // Finite, but too long for l2 and ip: the other refusal.
  try {
    check_vector(big.data(), big.size(), Metric::kL2, "vector");
    ADD_FAILURE() << "a norm past kMaxVectorNorm was accepted";
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds"), std::string::npos) << e.what();
  }
}

TEST(Metric, ParseAndName) {
  EXPECT_EQ(parse_metric("l2"), Metric::kL2);
  EXPECT_EQ(parse_metric("ip"), Metric::kInnerProduct);
  EXPECT_EQ(parse_metric("cosine"), Metric::kCosine);
  EXPECT_STREQ(metric_name(Metric::kCosine), "cosine");
  try {
    parse_metric("hamming", "metric");
    FAIL();
  } catch (const wp::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("metric must be one of"), std::string::npos);
  }
}
