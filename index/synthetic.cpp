#include "index/synthetic.h"

#include <cmath>
#include <vector>

#include "index/error.h"

namespace wp::index {

namespace {

/// splitmix64: a fast, well-mixed 64-bit stream; its own code so the data is the same with any
/// standard library (std::normal_distribution's algorithm is not specified).
struct Stream {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in (0, 1].
  double uniform() {
    return (static_cast<double>(next() >> 11) + 1.0) * (1.0 / 9007199254740992.0);
  }
  /// Standard normal (Box-Muller, one of the pair).
  double normal() {
    const double u = uniform(), v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
};

Stream stream_of(uint64_t seed, uint64_t what, uint64_t i) {
  Stream s{seed * 0x9e3779b97f4a7c15ULL ^ (what << 56) ^ i};
  s.next();
  return s;
}

/// The mixture: centres (clusters x d) and each cluster's basis (clusters x local_dim x d).
struct Mixture {
  std::vector<float> centres, bases;
};

Mixture mixture_of(const SyntheticSpec& s) {
  Mixture m;
  m.centres.resize(s.clusters * s.d);
  m.bases.resize(s.clusters * s.local_dim * s.d);
  for (size_t c = 0; c < s.clusters; ++c) {
    Stream r = stream_of(s.seed, 1, c);
    for (size_t j = 0; j < s.d; ++j) m.centres[c * s.d + j] = static_cast<float>(r.normal());
    // Random directions scaled to unit expected length: a Gaussian basis, not orthonormalised
    // (near-orthogonal in high dimension).
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.d));
    float* b = &m.bases[c * s.local_dim * s.d];
    for (size_t j = 0; j < s.local_dim * s.d; ++j) b[j] = static_cast<float>(r.normal() * scale);
  }
  return m;
}

}  // namespace

void SyntheticSpec::validate() const {
  WP_THROW_IF_NOT(d >= 1 && d <= 65536, "d must be in 1..65536, got ", d);
  WP_THROW_IF_NOT(clusters >= 1 && clusters <= 1000000, "clusters must be in 1..1000000, got ",
                  clusters);
  WP_THROW_IF_NOT(local_dim >= 1 && local_dim <= d, "local-dim must be in 1..d (", d, "), got ",
                  local_dim);
  WP_THROW_IF_NOT(clusters * local_dim * d <= (size_t{1} << 31),
                  "clusters x local-dim x d must be at most 2^31 (the mixture's bases), got ",
                  clusters * local_dim * d);
  WP_THROW_IF_NOT(std::isfinite(spread) && spread >= 0 && spread <= 100,
                  "spread must be in 0..100, got ", spread);
  WP_THROW_IF_NOT(std::isfinite(noise) && noise >= 0 && noise <= 100,
                  "noise must be in 0..100, got ", noise);
}

Matrix synthetic_rows(const SyntheticSpec& spec, size_t first, size_t count) {
  spec.validate();
  const Mixture m = mixture_of(spec);
  Matrix out(count, spec.d);
  const size_t d = spec.d, r = spec.local_dim;
#pragma omp parallel
  {
    std::vector<double> z(r), x(d);
#pragma omp for schedule(static, 1024)
    for (int64_t k = 0; k < static_cast<int64_t>(count); ++k) {
      Stream s = stream_of(spec.seed, 2, first + static_cast<size_t>(k));
      const size_t c = static_cast<size_t>(s.next() % spec.clusters);
      for (size_t t = 0; t < r; ++t) z[t] = s.normal() * spec.spread;
      const float* centre = &m.centres[c * d];
      const float* basis = &m.bases[c * r * d];
      for (size_t j = 0; j < d; ++j) x[j] = centre[j] + s.normal() * spec.noise;
      for (size_t t = 0; t < r; ++t) {
        const float* b = basis + t * d;
        for (size_t j = 0; j < d; ++j) x[j] += z[t] * b[j];
      }
      float* row = out.row(static_cast<size_t>(k));
      for (size_t j = 0; j < d; ++j) row[j] = static_cast<float>(x[j]);
    }
  }
  return out;
}

}  // namespace wp::index
