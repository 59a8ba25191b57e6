#include "index/index_spec.h"

#include "index/enum_names.h"
#include "index/error.h"
#include "index/flat_index.h"
#include "index/graph_index.h"
#include "index/hnsw_index.h"
#include "index/vamana.h"

namespace wp::index {

namespace {

constexpr EnumNames<IndexKind, 5> kKindNames{{{IndexKind::kFlat, "flat"},
                                              {IndexKind::kHnsw, "hnsw"},
                                              {IndexKind::kGraph, "graph"},
                                              {IndexKind::kRl, "rl"},
                                              {IndexKind::kLsh, "lsh"}}};

// The request keys of the collection's HNSW parameters, which every kind keeps so that a later
// rebuild to hnsw starts from them.
const char* const kHnswKeys[] = {"m", "ef_construct", "ef", "quantization"};

std::vector<std::string> keys(std::initializer_list<const char*> own) {
  std::vector<std::string> k(std::begin(kHnswKeys), std::end(kHnswKeys));
  k.insert(k.end(), own.begin(), own.end());
  return k;
}

std::unique_ptr<Index> make_flat(const IndexSpec& s, size_t dim) {
  return std::make_unique<FlatIndex>(dim, s.metric);
}
std::unique_ptr<Index> make_hnsw(const IndexSpec& s, size_t dim) {
  return std::make_unique<HnswIndex>(dim, s.metric, s.hnsw);
}
std::unique_ptr<Index> make_graph(const IndexSpec& s, size_t dim) {
  return std::make_unique<GraphIndex>(dim, s.metric, s.hnsw, s.graph_params());
}
std::unique_ptr<Index> make_lsh(const IndexSpec& s, size_t dim) {
  if (s.hash_model.empty()) return std::make_unique<LshIndex>(dim, s.metric, s.lsh);
  return std::make_unique<LshIndex>(dim, s.metric, s.lsh, HashModel::load(s.hash_model));
}

void validate_hnsw(const IndexSpec& s) {
  s.hnsw.validate();
}
void validate_graph(const IndexSpec& s) {
  s.hnsw.validate();
  s.graph_params().validate(s.hnsw);
  if (s.graph_params().pruning == Pruning::kRobust ||
      s.graph_params().pruning == Pruning::kVamana) {
    check_prune_alpha(s.metric, s.graph_params().alpha);
  }
}
void validate_lsh(const IndexSpec& s) {
  s.hnsw.validate();
  s.lsh.validate();
}

}  // namespace

IndexKind parse_index_kind(const std::string& name, const std::string& field) {
  return parse_enum(name, kKindNames, field);
}

const char* index_kind_name(IndexKind kind) {
  return enum_name(kind, kKindNames);
}

bool is_index_kind_name(const std::string& name) {
  return is_enum_name(name, kKindNames);
}

const std::vector<IndexKindInfo>& index_kinds() {
  static const std::vector<IndexKindInfo> rows{
      {IndexKind::kFlat, "flat", IndexType::kFlat, keys({}), &validate_hnsw, &make_flat,
       &FlatIndex::load},
      {IndexKind::kHnsw, "hnsw", IndexType::kHnsw, keys({}), &validate_hnsw, &make_hnsw,
       &HnswIndex::load},
      {IndexKind::kGraph, "graph", IndexType::kGraph, keys({"alpha"}), &validate_graph, &make_graph,
       &GraphIndex::load},
      // steps, max_minutes, target_recall: the learning job's (engine/learned_index.h).
      {IndexKind::kRl, "rl", IndexType::kGraph, keys({"steps", "max_minutes", "target_recall"}),
       &validate_graph, &make_graph, &GraphIndex::load},
      {IndexKind::kLsh, "lsh", IndexType::kLsh,
       keys({"bits", "tables", "key_bits", "probes", "candidates"}), &validate_lsh, &make_lsh,
       &LshIndex::load},
  };
  return rows;
}

const IndexKindInfo& index_kind_info(IndexKind kind) {
  for (const IndexKindInfo& row : index_kinds()) {
    if (row.kind == kind) return row;
  }
  throw InternalError("index kind without a registry row");
}

std::string index_kind_names() {
  std::string s;
  for (const IndexKindInfo& row : index_kinds())
    s += (s.empty() ? "" : ", ") + std::string(row.name);
  return s;
}

GraphParams IndexSpec::graph_params() const {
  return kind == IndexKind::kGraph ? robust_graph(graph.alpha) : graph;
}

void IndexSpec::validate() const {
  index_kind_info(kind).validate(*this);
}

std::unique_ptr<Index> make_index(const IndexSpec& spec, size_t dim) {
  spec.validate();
  return index_kind_info(spec.kind).make(spec, dim);
}

}  // namespace wp::index
