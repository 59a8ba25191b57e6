#pragma once
/**
 * @file filter_cost.h
 * What the two ways of a filtered graph search are expected to cost, for choosing between them:
 * the walk (expanding vertices until it holds ef that pass the filter) and the exact scan (of the
 * matches when the filter lists them, else of every vertex, testing each). The figures are
 * nanoseconds as measured on the development machine (a 2-core AMD EPYC VM) with
 * `bench/filter_walk` (the index alone, random ids) and `bench/bench_filtered` (through the
 * engine, payload tests): only their ratios matter, and those are what the tests pin.
 */
#include <cstddef>

namespace wp::index {

/// The shape of one filtered search, as the index knows it before it starts.
struct FilteredSearchShape {
  double live = 0;          ///< live vertices
  double matching = 0;      ///< ids estimated to pass the filter
  size_t ef = 0;            ///< the walk's beam
  size_t walk_bytes = 0;    ///< bytes of a vertex's vector a walk reads (4 d; d for 8-bit codes)
  size_t scan_bytes = 0;    ///< bytes of a match's vector the scan reads (4 d)
  size_t vertex_bytes = 0;  ///< bytes the index holds a vertex in (vectors, codes, links, id)
  /// The scan visits the listed matches alone, else every vertex (a costly filter tests every
  /// point to list them).
  bool listed = false;
  bool costly = false;  ///< a test reads what the id stands for (a payload), not a bitset
};

struct FilteredSearchCost {
  double walk_ns = 0, scan_ns = 0;
  /// The vertices the walk is expected to expand: ef / selectivity, at most every vertex.
  double hops = 0;
  /// The expansions after which a walk chosen instead is stopped for the scan: when it has cost
  /// what the scan would (so that no search costs more than about twice the cheaper way), and
  /// not before twice the expected (plus 4 ef: the spread of walks at random filters).
  double hop_budget = 0;
  /// A walk is probed once it has tested `probe_tests` vertices and at twice as many each time
  /// after, while it holds fewer than ef matches, and stopped where fewer than `probe_rate` of
  /// those it tested passed (0: never so), or where the tests it still needs for ef at the rate
  /// (matched + prior_matches) / (tested + prior_tests) are more than `scan_tests`, the tests a
  /// walk makes in the time of the scan; probe_tests 0: never probed.
  double probe_tests = 0, probe_rate = 0;
  double prior_matches = 0, prior_tests = 0, scan_tests = 0;
  bool prefers_scan() const { return scan_ns <= walk_ns; }
};

FilteredSearchCost filtered_search_cost(const FilteredSearchShape& s);

}  // namespace wp::index
