#include "index/graph_params.h"

#include "index/enum_names.h"
#include "index/error.h"

namespace wp::index {

namespace {
constexpr EnumNames<InitialGraph, 4> kInitialGraphs{{{InitialGraph::kKnn, "knn"},
                                                     {InitialGraph::kHnsw, "hnsw"},
                                                     {InitialGraph::kComplete, "complete"},
                                                     {InitialGraph::kRandom, "random"}}};
constexpr EnumNames<Pruning, 5> kPrunings{{{Pruning::kNone, "none"},
                                           {Pruning::kHnsw, "hnsw"},
                                           {Pruning::kRobust, "robust"},
                                           {Pruning::kVamana, "vamana"},
                                           {Pruning::kLearned, "learned"}}};
constexpr EnumNames<GraphEntry, 2> kEntries{
    {{GraphEntry::kMedoid, "medoid"}, {GraphEntry::kHnsw, "hnsw"}}};
}  // namespace

InitialGraph parse_initial_graph(const std::string& name, const std::string& field) {
  return parse_enum(name, kInitialGraphs, field);
}
const char* initial_graph_name(InitialGraph v) {
  return enum_name(v, kInitialGraphs);
}
Pruning parse_pruning(const std::string& name, const std::string& field) {
  return parse_enum(name, kPrunings, field);
}
const char* pruning_name(Pruning v) {
  return enum_name(v, kPrunings);
}
GraphEntry parse_graph_entry(const std::string& name, const std::string& field) {
  return parse_enum(name, kEntries, field);
}
const char* graph_entry_name(GraphEntry v) {
  return enum_name(v, kEntries);
}

void GraphParams::validate(const HnswParams& hnsw) const {
  kK.check(static_cast<double>(K));
  kAlpha.check(alpha);
  kR.check(static_cast<double>(R));
  kL.check(static_cast<double>(L));
  WP_THROW_IF_NOT(R <= 2 * hnsw.M, "R must be at most 2M = ", 2 * hnsw.M, ", got ", R);
}

GraphParams robust_graph(float alpha) {
  GraphParams g;
  g.initial = InitialGraph::kHnsw;
  g.pruning = Pruning::kRobust;
  g.alpha = alpha;
  g.entry = GraphEntry::kHnsw;
  return g;
}

GraphParams unpruned_level0() {
  GraphParams g;
  g.initial = InitialGraph::kHnsw;
  g.pruning = Pruning::kNone;
  g.entry = GraphEntry::kMedoid;
  return g;
}

}  // namespace wp::index
