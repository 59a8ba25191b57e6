#pragma once
/**
 * @file faiss_search.h
 * One query on a FAISS index, as the bench subjects need it: k ids, -1 mapped to kNoLabel.
 */
#include <faiss/Index.h>

#include <vector>

#include "index/index.h"

namespace wp::bench {

inline void faiss_search_one(const faiss::Index& idx, const float* q, size_t k,
                             index::label_t* out) {
  thread_local std::vector<float> dist;
  thread_local std::vector<faiss::Index::idx_t> ids;
  dist.resize(k);
  ids.resize(k);
  idx.search(1, q, static_cast<faiss::Index::idx_t>(k), dist.data(), ids.data());
  for (size_t j = 0; j < k; ++j) out[j] = ids[j] < 0 ? index::kNoLabel : ids[j];
}

}  // namespace wp::bench
