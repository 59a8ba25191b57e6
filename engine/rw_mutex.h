#pragma once
/**
 * @file rw_mutex.h
 * A reader-writer lock that lets a waiting writer in ahead of readers that come after it, for the
 * collection's data (searches read, writes and index swaps write). std::shared_mutex on glibc
 * prefers readers: under a steady stream of searches a writer could wait for as long as they
 * keep coming (Engine.StressSearchesWritesDeletesAndRebuildsAtOnce: writes that take 0.25 s alone
 * took 131 s beside three searching threads). Meets SharedMutex, so std::shared_lock and
 * std::unique_lock take it. A thread must not take the shared side twice: a writer waiting in
 * between would block the second acquisition for good.
 */
#include <pthread.h>

namespace wp::engine {

class RwMutex {
 public:
  RwMutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&rw_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~RwMutex() { pthread_rwlock_destroy(&rw_); }
  RwMutex(const RwMutex&) = delete;
  RwMutex& operator=(const RwMutex&) = delete;

  void lock() { pthread_rwlock_wrlock(&rw_); }
  bool try_lock() { return pthread_rwlock_trywrlock(&rw_) == 0; }
  void unlock() { pthread_rwlock_unlock(&rw_); }
  void lock_shared() { pthread_rwlock_rdlock(&rw_); }
  bool try_lock_shared() { return pthread_rwlock_tryrdlock(&rw_) == 0; }
  void unlock_shared() { pthread_rwlock_unlock(&rw_); }

 private:
  pthread_rwlock_t rw_;
};

}  // namespace wp::engine
