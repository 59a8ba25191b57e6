#pragma once
/**
 * @file page_block.h
 * PageBlock: a block of memory that grows in place. It reserves address space well beyond what
 * it holds (inaccessible pages, which cost neither memory nor commit charge) and grows by making
 * more of its reservation writable, so that growing neither copies nor moves what it holds; once
 * the reservation is full, the pages move (mremap, no copy) to a reservation 16 times larger.
 * HNSW's level-0 records grew by 1.5x with a new block and a copy: at 146k points of 128
 * dimensions that took 250 ms (most of it faulting the new block's pages in, on this virtual
 * machine) while the collection's searches waited. Contents survive growth; the address changes
 * only when the pages move. New bytes read as zero.
 */
#include <cstddef>

namespace wp::index {

class PageBlock {
 public:
  PageBlock() = default;
  ~PageBlock();
  PageBlock(PageBlock&& other) noexcept;
  PageBlock& operator=(PageBlock&& other) noexcept;
  PageBlock(const PageBlock&) = delete;
  PageBlock& operator=(const PageBlock&) = delete;

  char* get() const { return data_; }
  /// Bytes usable (whole pages).
  size_t size() const { return size_; }
  /// Address space held for growth in place (size() or more).
  size_t reserved() const { return reserved_; }
  /// Grows to at least `bytes`, keeping the contents (throws std::bad_alloc when the system
  /// refuses). Never shrinks.
  void grow(size_t bytes);

 private:
  void release();

  char* data_ = nullptr;
  size_t size_ = 0;      ///< readable and writable
  size_t reserved_ = 0;  ///< mapped from data_ (the rest inaccessible)
};

}  // namespace wp::index
