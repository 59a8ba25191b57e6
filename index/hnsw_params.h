#pragma once
/**
 * @file hnsw_params.h
 * HnswParams: construction and search parameters of an HNSW graph (HnswIndex, and the graph under
 * every GraphIndex), with the one copy of each accepted range.
 */
#include <cstdint>
#include <string>

#include "index/param_range.h"

namespace wp::index {

/// How HNSW stores the vectors its searches walk through.
enum class Quantization : uint32_t {
  kNone = 0,  ///< float vectors in the level-0 records
  kSq8 = 1,   ///< also 8-bit codes (sq8.h) for the traversal; the final ef candidates are re-ranked
              ///< with the float vectors, so returned distances are exact
};

/// Parses "none" or "sq8"; throws UserError naming `field` otherwise.
Quantization parse_quantization(const std::string& name, const std::string& field);
const char* quantization_name(Quantization q);

/// Construction and search parameters of HnswIndex.
struct HnswParams {
  /// Links per vertex on levels >= 1; level 0 keeps up to 2*M. Memory grows with M, recall too.
  size_t M = 16;
  /// Beam width while inserting; larger builds slower and better graphs.
  size_t ef_construction = 200;
  /// Default beam width of searches that do not set SearchParams::ef.
  size_t ef_search = 64;
  /// Seed of the level generator.
  uint64_t seed = 100;
  /// remove() repairs the graph once tombstones exceed this fraction of the live points.
  double consolidate_fraction = 0.1;
  /// Vector representation walked by searches. kSq8 costs d bytes per vector more memory and
  /// reads a quarter of the bytes per distance. The code range is learnt once 1000 vectors exist
  /// and re-learnt each time the index doubles; smaller indexes walk the float vectors.
  Quantization quantization = Quantization::kNone;

  static constexpr ParamRange kM{"M", "m", "M", 2, 1024, true, "links per vertex"};
  static constexpr ParamRange kEfConstruction{
      "ef_construction",           "ef_construct", "ef-construction", 4, 100000, true,
      "beam width while inserting"};
  static constexpr ParamRange kEfSearch{
      "ef_search", "ef", "ef-search", 1, 100000, true, "default beam width of searches"};

  /// Throws UserError with a message that names the field and the accepted range.
  void validate() const;
};

}  // namespace wp::index
