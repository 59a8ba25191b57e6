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

template <class S, bool kL2, typename T>
inline float simd_reduce(const float* a, const T* b, size_t d) {
  using V = typename S::V;
  V s0 = S::zero(), s1 = S::zero();
  auto step = [&](V& s, size_t i) {
    const V x = S::load(a + i), y = S::load(b + i);
    if constexpr (kL2) {
      const V t = S::sub(x, y);
      s = S::fmadd(t, t, s);
    } else {
      s = S::fmadd(x, y, s);
    }
  };
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
  for (; i < d; ++i) {
    if constexpr (kL2) {
      const float t = a[i] - static_cast<float>(b[i]);
      s += t * t;
    } else {
      s += a[i] * static_cast<float>(b[i]);
    }
  }
  return s;
}

}  // namespace wp::index::detail
