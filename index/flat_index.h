#pragma once
/**
 * @file flat_index.h
 * FlatIndex: exact search through FAISS's IndexFlat (L2 or inner product). Serves as the ground
 * truth, as the index of small collections and for `exact: true` queries.
 */
#include <faiss/IndexFlat.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/index.h"

namespace wp::index {

class BinaryReader;

/// Exact k-NN over all stored vectors. Removal swaps the last vector into the hole (O(d)).
class FlatIndex : public Index {
 public:
  FlatIndex(size_t dim, Metric metric);

  const char* type_name() const override { return "flat"; }
  size_t size() const override { return labels_.size(); }
  bool contains(label_t id) const override { return pos_.count(id) != 0; }
  bool get_vector(label_t id, float* out) const override;
  void add(MatrixView x, const label_t* ids) override;
  bool remove(label_t id) override;
  SearchStats search_one(const float* q, size_t k, const SearchParams& params, label_t* labels,
                         float* distances) const override;
  void save(const std::string& path) const override;
  size_t memory_bytes() const override;

  /// Loads the payload written by save() (called through load_index).
  static std::unique_ptr<Index> load(BinaryReader& in);

 private:
  std::unique_ptr<faiss::IndexFlat> flat_;
  std::vector<label_t> labels_;              ///< position -> id
  std::unordered_map<label_t, size_t> pos_;  ///< id -> position
};

}  // namespace wp::index
