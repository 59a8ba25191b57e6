#pragma once
/**
 * @file index_spec.h
 * One typed description of an index and one registry row per kind of index
 * (docs/architecture.md, "The index registry"). Collection configs, the index request parser
 * (engine/index_request.h), the tuner's space, the bench and the command line all build an
 * IndexSpec and go through the row of its kind: its name, the tag of its files, the request keys
 * it takes, its validate() (which calls the parameter structs' own, the only copy of each range)
 * and its make/load.
 */
#include <memory>
#include <string>
#include <vector>

#include "index/graph_params.h"
#include "index/hnsw_params.h"
#include "index/index.h"
#include "index/index_file.h"
#include "index/lsh_index.h"

namespace wp::index {

/// The kinds of index. Names: "flat", "hnsw", "graph", "rl", "lsh".
enum class IndexKind : uint8_t {
  kFlat,   ///< exact search (FlatIndex)
  kHnsw,   ///< HnswIndex
  kGraph,  ///< HNSW's level 0 RobustPruned, entered through HNSW (robust_graph)
  kRl,     ///< a pruned single-layer graph built as GraphParams say; learn/ trains its mask
  kLsh,    ///< LshIndex
};

/// Parses a kind's name; throws UserError("<field> must be one of flat, hnsw, ...; got 'x'").
IndexKind parse_index_kind(const std::string& name, const std::string& field);
const char* index_kind_name(IndexKind kind);
/// True when `name` is a kind's name.
bool is_index_kind_name(const std::string& name);

/// What to build.
struct IndexSpec {
  IndexKind kind = IndexKind::kHnsw;
  Metric metric = Metric::kL2;
  /// The HNSW of kinds hnsw, graph and rl (kept by the others for a later rebuild).
  HnswParams hnsw;
  /// rl: how its single-layer graph is built; graph: only `alpha` is read (robust_graph).
  GraphParams graph;
  LshParams lsh;           ///< lsh
  std::string hash_model;  ///< lsh: a HashModel file (learned planes); empty: random planes

  /// Throws UserError naming the field for parameters its kind uses that are out of range.
  void validate() const;
  /// The GraphParams a graph kind builds with (robust_graph(alpha) for kGraph).
  GraphParams graph_params() const;
};

/// One row of the registry.
struct IndexKindInfo {
  IndexKind kind;
  const char* name;
  IndexType file_type;  ///< the tag of its files (graph and rl share GraphIndex's)
  /// The keys an index request body may set for this kind besides "type" (engine/index_request.h
  /// reads them): the parameters it uses, and the collection's HNSW parameters every kind keeps.
  std::vector<std::string> keys;
  /// Checks the parameters the kind uses.
  void (*validate)(const IndexSpec& spec);
  /// A new empty index of dimension `dim` (spec already validated).
  std::unique_ptr<Index> (*make)(const IndexSpec& spec, size_t dim);
  /// Reads an index of this kind's file type (the container already checked).
  std::unique_ptr<Index> (*load)(BinaryReader& in);
};

/// Every row, in the order of IndexKind.
const std::vector<IndexKindInfo>& index_kinds();
/// The row of `kind`.
const IndexKindInfo& index_kind_info(IndexKind kind);
/// "flat, hnsw, graph, rl, lsh", for messages.
std::string index_kind_names();

/// A new empty index of dimension `dim`; validates the spec first.
std::unique_ptr<Index> make_index(const IndexSpec& spec, size_t dim);

}  // namespace wp::index
