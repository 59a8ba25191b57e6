#include "index/index_factory.h"

#include "index/error.h"
#include "index/flat_index.h"

namespace wp::index {

void IndexSpec::validate() const {
  WP_THROW_IF_NOT(type == "hnsw" || type == "flat", "index type must be hnsw or flat, got '", type,
                  "'");
  if (type == "hnsw") hnsw.validate();
}

std::unique_ptr<Index> make_index(const IndexSpec& spec, size_t dim) {
  spec.validate();
  if (spec.type == "flat") return std::make_unique<FlatIndex>(dim, spec.metric);
  return std::make_unique<HnswIndex>(dim, spec.metric, spec.hnsw);
}

}  // namespace wp::index
