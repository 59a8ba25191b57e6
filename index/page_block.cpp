#include "index/page_block.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <new>
#include <utility>

#include "index/leak_check.h"

namespace wp::index {

namespace {
/// Tells the leak checker that [data, data + size) replaces [old_data, old_data + old_size) as a
/// region to scan (a size of 0: none).
void move_root_region(const char* old_data, size_t old_size, const char* data, size_t size) {
#ifdef WP_LEAK_CHECKED
  if (old_data == data && old_size == size) return;
  if (old_size) __lsan_unregister_root_region(old_data, old_size);
  if (size) __lsan_register_root_region(data, size);
#else
  (void)old_data, (void)old_size, (void)data, (void)size;
#endif
}

size_t page_rounded(size_t bytes) {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}
/// A fresh reservation holds this many times what is asked, and at least the minimum (8 GiB of
/// address space by default: 12M HNSW records of 128 dimensions, 2.6M of 768, before the pages
/// move; at 1.6M points the move of a 1 GiB reservation held searches up 270 ms on this virtual
/// machine, whose page tables are rebuilt as each moved page is touched again).
constexpr size_t kReserveFactor = 16;
}  // namespace

PageBlock::~PageBlock() {
  release();
}

void PageBlock::release() {
  move_root_region(data_, size_, nullptr, 0);
  if (data_) ::munmap(data_, reserved_);
  data_ = nullptr;
  size_ = reserved_ = 0;
}

PageBlock::PageBlock(PageBlock&& other) noexcept
    : min_reservation_(other.min_reservation_),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      reserved_(std::exchange(other.reserved_, 0)) {}

PageBlock& PageBlock::operator=(PageBlock&& other) noexcept {
  if (this != &other) {
    release();
    min_reservation_ = other.min_reservation_;
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    reserved_ = std::exchange(other.reserved_, 0);
  }
  return *this;
}

void PageBlock::grow(size_t bytes) {
  if (bytes <= size_) return;
  // However this ends (grown, moved, or refused part way), the leak checker scans what is held.
  struct Roots {
    PageBlock& b;
    const char* data = b.data_;
    size_t size = b.size_;
    ~Roots() { move_root_region(data, size, b.data_, b.size_); }
  } roots{*this};
  const size_t want = page_rounded(bytes);
  if (want > reserved_) {
    // A larger reservation; what is held moves into its start (page tables move, no copy).
    size_t reserve = page_rounded(std::max(
        min_reservation_, want > SIZE_MAX / kReserveFactor ? want : want * kReserveFactor));
    // Address space is plentiful (128 TiB) but not endless: when the system refuses the
    // reservation, one of just what is asked.
    void* r = MAP_FAILED;
    for (const size_t n : {reserve, want}) {
      r = ::mmap(nullptr, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (r != MAP_FAILED) {
        reserve = n;
        break;
      }
    }
    if (r == MAP_FAILED) throw std::bad_alloc();
    if (size_ && ::mremap(data_, size_, size_, MREMAP_MAYMOVE | MREMAP_FIXED, r) == MAP_FAILED) {
      ::munmap(r, reserve);
      throw std::bad_alloc();
    }
    // The old range's held part moved away; the rest of its reservation is released.
    if (data_ && reserved_ > size_) ::munmap(data_ + size_, reserved_ - size_);
    data_ = static_cast<char*>(r);
    reserved_ = reserve;
  }
  if (::mprotect(data_ + size_, want - size_, PROT_READ | PROT_WRITE) != 0) throw std::bad_alloc();
  size_ = want;
}

bool PageBlock::populate(size_t bytes) {
  const size_t n = std::min(page_rounded(bytes), size_);
#ifdef MADV_POPULATE_WRITE
  return n == 0 || ::madvise(data_, n, MADV_POPULATE_WRITE) == 0;
#else
  return n == 0;
#endif
}

}  // namespace wp::index
