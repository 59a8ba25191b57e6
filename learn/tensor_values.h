#pragma once
/**
 * @file tensor_values.h
 * A tensor's values copied out, in row-major order, converted to T: what learn/ hands to the
 * index (hash planes, layers) and to its optimisers (flat parameters and gradients). For learn/'s
 * .cpp files, which include <torch/torch.h> before it (LibTorch is included by those files only).
 */
#include <vector>

namespace wp::learn {

template <class T>
std::vector<T> tensor_values(const torch::Tensor& t) {
  const torch::Tensor c = t.to(c10::CppTypeToScalarType<T>::value).contiguous();
  const T* p = c.data_ptr<T>();
  return std::vector<T>(p, p + c.numel());
}

}  // namespace wp::learn
