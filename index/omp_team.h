#pragma once
/**
 * @file omp_team.h
 * How many threads the OpenMP regions a thread starts use, for a scope: the one place where a
 * caller changes OpenMP's setting (omp_set_num_threads) and puts it back.
 */
#include <omp.h>

#include <cstddef>

namespace wp::index {

/**
 * Sets the number of threads of the OpenMP regions the calling thread starts without a
 * num_threads clause (nested calls included: a library's own regions, FAISS's) for the life of
 * the scope, and puts the previous setting back when it ends, by an exception too. The setting
 * is the calling thread's own (an OpenMP ICV of its task): other threads' regions keep theirs,
 * so a writer bounding its build leaves the searches beside it alone.
 */
class OmpTeamScope {
 public:
  /// `threads` 0 leaves the setting as it is.
  explicit OmpTeamScope(size_t threads) : saved_(omp_get_max_threads()) {
    if (threads) omp_set_num_threads(static_cast<int>(threads));
  }
  ~OmpTeamScope() { omp_set_num_threads(saved_); }
  OmpTeamScope(const OmpTeamScope&) = delete;
  OmpTeamScope& operator=(const OmpTeamScope&) = delete;

 private:
  int saved_;
};

}  // namespace wp::index
