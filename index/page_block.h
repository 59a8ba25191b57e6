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
#include <type_traits>

namespace wp::index {

class PageBlock {
 public:
  /// Address space a fresh reservation holds at least (see page_block.cpp).
  static constexpr size_t kMinReservation = size_t{8} << 30;

  PageBlock() = default;
  /// A block whose reservations hold at least `min_reservation` bytes (tests make it small).
  explicit PageBlock(size_t min_reservation) : min_reservation_(min_reservation) {}
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
  /// Faults the first `bytes` (at most size()) in at once, writable: for a block about to be
  /// written whole (an index file's records copied in). Written page by page, each page's first
  /// write is a fault of its own, and on this virtual machine each costs microseconds: 160,000
  /// of them for the level-0 records of 1M points of 128 dimensions (docs/server.md, "Restart,
  /// twenty-second session"). False where the system cannot (MADV_POPULATE_WRITE is Linux
  /// 5.14's): the pages then fault as they are written.
  bool populate(size_t bytes);

 private:
  void release();

  size_t min_reservation_ = kMinReservation;
  char* data_ = nullptr;
  size_t size_ = 0;      ///< readable and writable
  size_t reserved_ = 0;  ///< mapped from data_ (the rest inaccessible)
};

/// An array of trivially copyable T in a PageBlock: grows without copying, and elements past the
/// old capacity read as zero bytes (0, false, nullptr).
template <typename T>
class PageArray {
  static_assert(std::is_trivially_copyable<T>::value, "a PageArray's elements move as bytes");

 public:
  /// An array whose reservations hold at least `min_elements` elements.
  explicit PageArray(size_t min_elements) : block_(min_elements * sizeof(T)) {}
  T* data() const { return reinterpret_cast<T*>(block_.get()); }
  T& operator[](size_t i) const { return data()[i]; }
  /// Room for at least n elements.
  void grow(size_t n) { block_.grow(n * sizeof(T)); }

 private:
  PageBlock block_;
};

}  // namespace wp::index
