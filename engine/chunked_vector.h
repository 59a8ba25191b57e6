#pragma once
/**
 * @file chunked_vector.h
 * ChunkedVector<T>: an array indexed like a vector whose elements never move. It is chunks of a
 * fixed number of elements and a table of them, so growing adds chunks (and, now and then,
 * copies the table of pointers) where std::vector moved every element to a new block. The
 * collection's entries grew by doubling under the lock that searches wait on: at 131k points the
 * move and the new block's page faults held them up 35 ms (a 1M-point ingest: far more).
 */
#include <cstddef>
#include <memory>
#include <vector>

namespace wp::engine {

template <typename T, size_t kShift = 10>
class ChunkedVector {
 public:
  static constexpr size_t kChunk = size_t{1} << kShift;

  size_t size() const { return size_; }
  /// Elements the chunks hold (size() or more).
  size_t capacity() const { return chunks_.size() << kShift; }
  T& operator[](size_t i) { return chunks_[i >> kShift][i & (kChunk - 1)]; }
  const T& operator[](size_t i) const { return chunks_[i >> kShift][i & (kChunk - 1)]; }

  /// Grows with value-initialised elements, or shrinks (the elements past `n` are reset to T()
  /// and whole chunks past it freed).
  void resize(size_t n) {
    while (capacity() < n) chunks_.push_back(std::make_unique<T[]>(kChunk));
    for (size_t i = n; i < size_ && i < capacity(); ++i) (*this)[i] = T();
    chunks_.resize((n + kChunk - 1) >> kShift);
    size_ = n;
  }
  /// Heap bytes of the chunks and their table.
  size_t memory_bytes() const {
    return capacity() * sizeof(T) + chunks_.capacity() * sizeof(std::unique_ptr<T[]>);
  }

 private:
  std::vector<std::unique_ptr<T[]>> chunks_;
  size_t size_ = 0;
};

}  // namespace wp::engine
