#include "learn/itq.h"

#include <torch/torch.h>

#include <algorithm>
#include <random>

#include "index/error.h"
#include "learn/tensor_values.h"

namespace wp::learn {

ItqResult fit_itq(const index::Matrix& x, const ItqConfig& cfg,
                  const std::function<void(int, double)>& on_iteration) {
  WP_THROW_IF_NOT(cfg.bits >= 1 && cfg.bits <= x.d, "ITQ needs 1 <= bits <= the dimension (", x.d,
                  "), got ", cfg.bits);
  WP_THROW_IF_NOT(cfg.iterations >= 1, "ITQ needs at least 1 iteration");
  WP_THROW_IF_NOT(x.n >= 2, "ITQ needs at least 2 vectors");
  torch::NoGradGuard no_grad;
  const int64_t d = static_cast<int64_t>(x.d), b = static_cast<int64_t>(cfg.bits);

  // A seeded sample of rows, in double: the covariance of 784 dimensions loses digits in float.
  std::vector<size_t> rows(x.n);
  for (size_t i = 0; i < x.n; ++i) rows[i] = i;
  std::mt19937_64 rng(cfg.seed);
  const size_t n = std::min(x.n, std::max<size_t>(cfg.max_rows, 2));
  for (size_t i = 0; i < n; ++i) {
    std::uniform_int_distribution<size_t> pick(i, x.n - 1);
    std::swap(rows[i], rows[pick(rng)]);
  }
  torch::Tensor data = torch::empty({static_cast<int64_t>(n), d}, torch::kFloat64);
  double* dst = data.data_ptr<double>();
  for (size_t i = 0; i < n; ++i) {
    const float* src = x.row(rows[i]);
    std::copy(src, src + x.d, dst + i * x.d);
  }
  const torch::Tensor mean = data.mean(0);
  const torch::Tensor centred = data - mean;

  // Principal directions: the eigenvectors of the covariance with the largest eigenvalues.
  const torch::Tensor cov = centred.t().matmul(centred) / static_cast<double>(n);
  auto [eigenvalues, eigenvectors] = torch::linalg::eigh(cov, "L");      // ascending
  const torch::Tensor top = eigenvectors.narrow(1, d - b, b).flip({1});  // d x b
  ItqResult result;
  const double total = eigenvalues.clamp_min(0).sum().item<double>();
  result.explained_variance =
      total > 0 ? eigenvalues.narrow(0, d - b, b).clamp_min(0).sum().item<double>() / total : 0;
  // Scaled to unit mean square (the rotation does not depend on the scale): the loss then reads
  // as a fraction, 0 for projections that are already +-1.
  torch::Tensor v = centred.matmul(top);  // n x b
  v = v / v.pow(2).mean().sqrt().clamp_min(1e-30);

  // A seeded random rotation, then alternate: codes B = sign(V R); R = the orthogonal Procrustes
  // solution of max tr(R^T V^T B), i.e. U W^T for V^T B = U S W^T.
  torch::Tensor gauss = torch::empty({b, b}, torch::kFloat64);
  {
    std::normal_distribution<double> g(0.0, 1.0);
    double* p = gauss.data_ptr<double>();
    for (int64_t i = 0; i < b * b; ++i) p[i] = g(rng);
  }
  torch::Tensor r = std::get<0>(torch::linalg::qr(gauss));
  for (int it = 0; it < cfg.iterations; ++it) {
    const torch::Tensor projected = v.matmul(r);
    const torch::Tensor codes = torch::where(projected >= 0, 1.0, -1.0).to(torch::kFloat64);
    auto [u, s, wt] = torch::linalg::svd(v.t().matmul(codes), false, c10::nullopt);
    r = u.matmul(wt);
    const double loss = (codes - v.matmul(r)).pow(2).sum().item<double>() / static_cast<double>(n);
    result.loss.push_back(loss);
    if (on_iteration) on_iteration(it, loss);
  }

  // Bit p of x: (top R)_p . (x - mean) >= 0, i.e. plane (top R)_p and offset -(top R)_p . mean.
  const torch::Tensor planes = top.matmul(r).t().contiguous();  // b x d
  const torch::Tensor offsets = -planes.matmul(mean);
  index::HashModel& m = result.model;
  m.kind = "learned";
  m.input_dim = x.d;
  m.bits = cfg.bits;
  m.planes = tensor_values<float>(planes);
  m.offsets = tensor_values<float>(offsets);
  m.fit_offsets = false;
  m.validate();
  return result;
}

}  // namespace wp::learn
