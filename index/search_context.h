#pragma once
/**
 * @file search_context.h
 * Per-thread search state reused across queries (as usearch's contexts and hnswlib's visited list
 * pool): the visited set, the sorted beam of a query's walk, the two heaps of the other walks and
 * scratch buffers. A query allocates nothing once the context has grown to the index's size.
 */
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "index/neighbor_selection.h"
#include "index/sorted_beam.h"
#include "index/visited_set.h"

namespace wp::index {

/// Where a filtered walk (hnsw::search_layer) is stopped for the exact scan: after `hop_budget`
/// expansions, or at a probe (once it has tested `probe_tests` vertices, then twice as many each
/// time) when fewer than `probe_rate` of those it tested passed, or when the tests it still needs
/// for ef matches, at the rate (matched + prior_matches) / (tested + prior_tests), are more than
/// `scan_tests` (FilteredSearchCost says why). By default, never.
struct WalkLimits {
  size_t hop_budget = SIZE_MAX;
  size_t probe_tests = SIZE_MAX;
  double probe_rate = 0;
  double prior_matches = 0, prior_tests = 0, scan_tests = 0;
};

struct SearchContext {
  VisitedSet visited;
  SortedBeam beam;                  ///< a query's admissible vertices, nearest first
  std::vector<Candidate> frontier;  ///< min-heap (FartherFirst): vertices still to expand (a
                                    ///< query's: those that only route)
  std::vector<Candidate> top;       ///< max-heap (operator<): the best ef a walk found
  std::vector<Candidate> scratch;   ///< neighbour selection and result assembly
  std::vector<Candidate> selected;  ///< neighbour selection output
  std::vector<Candidate> chosen;    ///< the new vertex's neighbours, level by level (build)
  std::vector<uint32_t> links;      ///< a copy of a locked neighbour list (build time)
  std::vector<uint32_t> removed;    ///< removed vertices queued by graph repair
  std::vector<uint32_t> batch;      ///< unvisited neighbours of the vertex being expanded
  std::vector<float> query;         ///< normalised query (cosine)
  std::vector<float> prepared;      ///< query prepared for code distances (sq8)
  /// Where a filtered walk stops, with `cut` set (its caller scans instead). start() lifts the
  /// limits.
  WalkLimits limits;
  bool cut = false;

  /// Starts a new search over vertices [0, n) of at most `max_degree` links: nothing visited,
  /// empty heaps.
  void start(size_t n, size_t max_degree) {
    if (batch.size() < max_degree) batch.resize(max_degree);
    visited.start(n);
    frontier.clear();
    top.clear();
    limits = WalkLimits();
    cut = false;
  }

  size_t memory_bytes() const {
    return visited.memory_bytes() +
           (frontier.capacity() + top.capacity() + scratch.capacity() + selected.capacity() +
            chosen.capacity()) *
               sizeof(Candidate) +
           beam.memory_bytes() +
           (links.capacity() + removed.capacity() + batch.capacity()) * sizeof(uint32_t) +
           (query.capacity() + prepared.capacity()) * sizeof(float);
  }
};

/// A pool of contexts shared by the threads searching one index.
class SearchContextPool {
 public:
  /// A context on loan; returns to the pool when destroyed.
  class Lease {
   public:
    Lease(SearchContextPool* pool, std::unique_ptr<SearchContext> ctx)
        : pool_(pool), ctx_(std::move(ctx)) {}
    ~Lease() { pool_->release(std::move(ctx_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    SearchContext& operator*() const { return *ctx_; }
    SearchContext* operator->() const { return ctx_.get(); }

   private:
    SearchContextPool* pool_;
    std::unique_ptr<SearchContext> ctx_;
  };

  Lease acquire() {
    std::unique_ptr<SearchContext> ctx;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (!free_.empty()) {
        ctx = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!ctx) ctx = std::make_unique<SearchContext>();
    return Lease(this, std::move(ctx));
  }

  /// Bytes held by pooled contexts.
  size_t memory_bytes() const {
    std::lock_guard<std::mutex> g(mu_);
    size_t b = 0;
    for (const auto& c : free_) b += c->memory_bytes();
    return b;
  }

 private:
  void release(std::unique_ptr<SearchContext> ctx) {
    std::lock_guard<std::mutex> g(mu_);
    free_.push_back(std::move(ctx));
  }
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<SearchContext>> free_;
};

}  // namespace wp::index
