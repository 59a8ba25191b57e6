// Reference kernels: plain loops, four partial sums so the compiler can vectorise with SSE2.
#include <cstddef>
#include <cstdint>

namespace wp::index::detail {

float l2sqr_scalar(const float* a, const float* b, size_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    float t0 = a[i] - b[i], t1 = a[i + 1] - b[i + 1];
    float t2 = a[i + 2] - b[i + 2], t3 = a[i + 3] - b[i + 3];
    s0 += t0 * t0;
    s1 += t1 * t1;
    s2 += t2 * t2;
    s3 += t3 * t3;
  }
  for (; i < d; ++i) {
    float t = a[i] - b[i];
    s0 += t * t;
  }
  return (s0 + s1) + (s2 + s3);
}

float ip_scalar(const float* a, const float* b, size_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < d; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

float neg_ip_scalar(const float* a, const float* b, size_t d) {
  return -ip_scalar(a, b, d);
}

float l2sqr_u8_scalar(const float* q, const uint8_t* c, size_t d) {
  float s0 = 0, s1 = 0;
  size_t i = 0;
  for (; i + 2 <= d; i += 2) {
    const float t0 = q[i] - c[i], t1 = q[i + 1] - c[i + 1];
    s0 += t0 * t0;
    s1 += t1 * t1;
  }
  for (; i < d; ++i) {
    const float t = q[i] - c[i];
    s0 += t * t;
  }
  return s0 + s1;
}

float ip_u8_scalar(const float* q, const uint8_t* c, size_t d) {
  float s0 = 0, s1 = 0;
  size_t i = 0;
  for (; i + 2 <= d; i += 2) {
    s0 += q[i] * c[i];
    s1 += q[i + 1] * c[i + 1];
  }
  for (; i < d; ++i) s0 += q[i] * c[i];
  return s0 + s1;
}

namespace {
#include "index/hamming_impl.h"
// SWAR popcount: no POPCNT instruction in the baseline x86-64 build.
uint32_t popcount_swar(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ull);
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<uint32_t>((x * 0x0101010101010101ull) >> 56);
}
}  // namespace

void hamming_scan_scalar(const uint64_t* q, const uint64_t* codes, size_t n, size_t words,
                         uint32_t* out) {
  hamming_scan_impl(q, codes, n, words, out, popcount_swar);
}

double max_sim_scalar(const float* q, size_t qn, const float* p, size_t pn, size_t d, bool l2) {
  double sum = 0;
  for (size_t a = 0; a < qn; ++a) {
    float best = -__builtin_inff();
    for (size_t r = 0; r < pn; ++r) {
      const float s =
          l2 ? -l2sqr_scalar(q + a * d, p + r * d, d) : ip_scalar(q + a * d, p + r * d, d);
      best = s > best ? s : best;
    }
    sum += best;
  }
  return sum;
}

}  // namespace wp::index::detail
