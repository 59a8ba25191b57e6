#pragma once
/**
 * @file simd_reduce.h
 * The one loop behind every SIMD distance kernel: squared L2 or inner product of a float vector
 * against float or uint8 values, two accumulators, then a scalar tail.
 *
 * Included only by distance_avx2.cpp and distance_avx512.cpp, each with its own traits type `S`
 * declared in an anonymous namespace: every instantiation then has internal linkage, so code
 * compiled for AVX can never be picked by the linker for a caller on a CPU without it.
 *
 * S provides: type V (a register of S::W floats), zero(), load(const float*), load(const uint8_t*)
 * (widened to floats), add, sub, fmadd(a, b, c) = a * b + c, and hsum(V).
 */
#include <cstddef>

namespace wp::index::detail {

/// s += (x - y)^2 lane by lane with kL2, else s += x * y.
template <class S, bool kL2>
inline void accumulate(typename S::V& s, typename S::V x, typename S::V y) {
  if constexpr (kL2) {
    const typename S::V t = S::sub(x, y);
    s = S::fmadd(t, t, s);
  } else {
    s = S::fmadd(x, y, s);
  }
}

/// The scalar term of one dimension: (a - b)^2 with kL2, else a * b.
template <bool kL2>
inline float term(float a, float b) {
  return kL2 ? (a - b) * (a - b) : a * b;
}

template <class S, bool kL2, typename T>
inline float simd_reduce(const float* a, const T* b, size_t d) {
  using V = typename S::V;
  V s0 = S::zero(), s1 = S::zero();
  auto step = [&](V& s, size_t i) { accumulate<S, kL2>(s, S::load(a + i), S::load(b + i)); };
  size_t i = 0;
  for (; i + 2 * S::W <= d; i += 2 * S::W) {
    step(s0, i);
    step(s1, i + S::W);
  }
  if (i + S::W <= d) {
    step(s0, i);
    i += S::W;
  }
  float s = S::hsum(S::add(s0, s1));
  for (; i < d; ++i) s += term<kL2>(a[i], static_cast<float>(b[i]));
  return s;
}

/**
 * MaxSim (multivectors' late interaction): for each of the `qn` rows of `q`, its highest
 * similarity among the `pn` rows of `p` (each `d` floats), summed in double; the similarity is
 * the inner product, or the negated squared L2 distance with kL2. Four rows of `p` at a time
 * against one row of `q`: each load of the query serves four sums, and no call per pair.
 */
template <class S, bool kL2>
inline double simd_max_sim(const float* q, size_t qn, const float* p, size_t pn, size_t d) {
  using V = typename S::V;
  auto sim = [](float s) { return kL2 ? -s : s; };
  double sum = 0;
  for (size_t a = 0; a < qn; ++a) {
    const float* x = q + a * d;
    float best = -__builtin_inff();
    size_t r = 0;
    for (; r + 4 <= pn; r += 4) {
      const float* y = p + r * d;
      V s0 = S::zero(), s1 = S::zero(), s2 = S::zero(), s3 = S::zero();
      size_t i = 0;
      for (; i + S::W <= d; i += S::W) {
        const V xv = S::load(x + i);
        accumulate<S, kL2>(s0, xv, S::load(y + i));
        accumulate<S, kL2>(s1, xv, S::load(y + d + i));
        accumulate<S, kL2>(s2, xv, S::load(y + 2 * d + i));
        accumulate<S, kL2>(s3, xv, S::load(y + 3 * d + i));
      }
      float t[4] = {S::hsum(s0), S::hsum(s1), S::hsum(s2), S::hsum(s3)};
      for (; i < d; ++i) {
        for (size_t k = 0; k < 4; ++k) t[k] += term<kL2>(x[i], y[k * d + i]);
      }
      for (const float v : t) best = sim(v) > best ? sim(v) : best;
    }
    for (; r < pn; ++r) {
      const float v = sim(simd_reduce<S, kL2>(x, p + r * d, d));
      best = v > best ? v : best;
    }
    sum += best;
  }
  return sum;
}

}  // namespace wp::index::detail
