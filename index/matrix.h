#pragma once
/**
 * @file matrix.h
 * Row-major vector sets: `Matrix` owns n * d values, `MatrixView` borrows them.
 */
#include <cstddef>
#include <cstdint>
#include <vector>

namespace wp::index {

/// A borrowed row-major block of n vectors of dimension d (n * d floats).
struct MatrixView {
  const float* data = nullptr;
  size_t n = 0;
  size_t d = 0;
  const float* row(size_t i) const { return data + i * d; }
};

/// An owned row-major matrix of T, n rows of dimension d.
template <typename T>
struct BasicMatrix {
  size_t n = 0;
  size_t d = 0;
  std::vector<T> data;

  BasicMatrix() = default;
  BasicMatrix(size_t rows, size_t dim) : n(rows), d(dim), data(rows * dim) {}
  T* row(size_t i) { return data.data() + i * d; }
  const T* row(size_t i) const { return data.data() + i * d; }
};

using Matrix = BasicMatrix<float>;
using IntMatrix = BasicMatrix<int32_t>;

/// A view of all rows of m.
inline MatrixView view(const Matrix& m) {
  return MatrixView{m.data.data(), m.n, m.d};
}

/// A view of rows [begin, begin + count) of m.
inline MatrixView view_rows(const Matrix& m, size_t begin, size_t count) {
  return MatrixView{m.row(begin), count, m.d};
}

}  // namespace wp::index
