#include "index/filter_cost.h"

#include <algorithm>

namespace wp::index {

namespace {

// A walk expands about ef / selectivity vertices before it holds ef matches, whatever the number
// of points (`filter_walk`, ef 64: 631-643 at 10% of 60k and of 200k, 2,117-2,170 at 3%,
// 5,858-6,617 at 1%, 137-140 at 50%), and each expansion costs ~300 ns whatever the dimension:
// keeping the frontier heap (every vertex it computes joins it while fewer than ef matches are
// held), the visited set, reading a list of links and its ~2 new neighbours' vectors at random
// (measured 320-410 ns a hop at 32 and 128 dimensions, 500-600 at 512, ~350 walking 8-bit codes
// of 128 dimensions). A distance itself is the smaller part: the model's old count of ef x 2M /
// selectivity distances for a walk was 18 times the 1,160 measured at 10%.
constexpr double kHopNs = 300;
constexpr double kHopNsPerByte = 0.15;
// A scan's match: one label lookup and one distance, in increasing order of ids (16-25 ns at 32
// dimensions, 44-56 at 128, 170-195 at 512 when the matches do not stay cached between queries).
constexpr double kMatchNs = 5;
constexpr double kMatchNsPerByte = 0.09;
// A scan that cannot list the matches tests every vertex: a bit (6 ns a vertex measured at 60k,
// with the loop) or a posting's number.
constexpr double kVertexTestNs = 8;
// A test that reads a payload (`IdFilter::costly`): 25-75 ns in order of the points (a scan, as
// listing measures it: bench_filtered's keyword and range rows), ~300 ns along a walk, which
// reaches each point's entry and packed payload at random (at 1% of 60k, 128 dimensions, the walk
// took 5.7-6 ms where its ~6,400 hops alone take ~2.5). A walk tests ~1.3 vertices a hop (the
// vertices it takes in: 1.2-1.5 below 10%, more at higher selectivities where hops are few).
constexpr double kPayloadTestNs = 50;
constexpr double kPayloadTestWalkNs = 300;
constexpr double kTestsPerHop = 1.3;
// Beyond the cache, both ways wait on memory, the scan most: at 1M points of 32 dimensions
// (272 MB of vertices) a hop took 560-700 ns, a listed match 46-136 (a miss in the id table and
// one in the vectors), a vertex tested by a bit 24 ns against 6 at 60k; at 60k points of 128
// dimensions (39 MB) 44 ns a match. The share of the index that a last-level cache (or its
// share of one: 32 MiB, an EPYC's CCX) cannot hold adds that much of a miss to each.
constexpr double kCacheBytes = 32.0 * 1024 * 1024;
constexpr double kHopMissNs = 300;
constexpr double kMatchMissNs = 100;
constexpr double kVertexTestMissNs = 16;
// A walk whose query lies away from the matches (a filter that goes with the vectors) expands
// every vertex nearer than them first: 4.1-5.2 times the expected vertices in `filter_walk`'s
// rows "along a direction" (2,645 for 640 at 10%, 11,086 for 2,133 at 3%, 4x at 30% and 50%), ~30
// times through the engine where the matches are whole clusters away (`bench_filtered`, "along
// the vectors": 31,153 payloads tested a search against 1,019 at random). The vertices it tests
// tell: at random a selectivity of them pass, and of such a walk's far fewer. So the walk is
// probed once it has tested enough vertices for 32 matches (32 / selectivity: ~30 expansions at
// 10%, as a walk tests every new neighbour while it holds fewer than ef) and at twice as many
// each time after, while it holds fewer than ef matches. Two tests at each probe:
// - where the scan costs less than 8 times the expected walk (a wrong stop then costs at most
//   twice a walk of 4 times the expected; the right one saves the rest of a walk that can take
//   30), stopped for the scan if under a quarter of the matches expected passed (at random:
//   P[Poisson(32) < 8] = 1e-7 at the first probe; with 16 the selectivity's estimate, off by a
//   quarter, stopped one walk in 200 of a random payload filter). Where the scan costs more (30%
//   and 50% along a direction: 10-25 times), this test stopped 12% of the 30% walks, each then
//   paying a scan of 8 times its cost;
// - whatever the scan costs, stopped where the tests it still needs for ef matches, at the rate
//   seen (with 16 matches' worth of tests at the selectivity added as a prior), cost more than
//   the scan. A walk that has met none is so stopped at the first probe where the scan costs
//   under 2.3 times the expected walk, at the second under 3.8, the third 6.9, the fourth 13,
//   the fifth 25: a walk whose scan costs more is given more of it, and an estimate of the
//   selectivity that moves the scan's price across the first test's 8 costs a probe or two
//   rather than the whole budget. Fashion-MNIST's queries for another class than their own
//   (payloads tested, the selectivity estimated from 16 matches): under the first test alone
//   one in twenty walked to its budget, 1,168 expansions a query on average before the scan,
//   0.68x the exact search's QPS; with both 0.87x. A prior of 1 match (the rate of a walk that
//   has met none read as nearly none) took them to 0.96x, but stopped the walks at 30% and 50%
//   along a direction of `filter_walk` that find their matches a few hundred hops on (463 us a
//   query against a walk of 205, 351 against 128); of 4, 405 and 187; of 8 (with the first test)
//   0.92x and 10% more at 30%; of 16 none of those rows moved.
constexpr double kFarWalkHops = 8;
constexpr double kProbeExpectedMatches = 32;
constexpr double kProbeFloor = 0.25;
constexpr double kProbePriorMatches = 16;

}  // namespace

FilteredSearchCost filtered_search_cost(const FilteredSearchShape& s) {
  FilteredSearchCost c;
  const double n = std::max(s.live, 1.0);
  const double matching = std::clamp(s.matching, 0.0, n);
  const double footprint = n * static_cast<double>(s.vertex_bytes);
  const double uncached = footprint > kCacheBytes ? 1 - kCacheBytes / footprint : 0;
  // ef / selectivity = ef n / matching; a walk that finds too few expands every vertex.
  c.hops = matching > 0 ? std::min(n, static_cast<double>(s.ef) * n / matching) : n;
  c.walk_ns =
      c.hops * (kHopNs + kHopNsPerByte * static_cast<double>(s.walk_bytes) + kHopMissNs * uncached);
  if (s.costly) c.walk_ns += std::min(n, kTestsPerHop * c.hops) * kPayloadTestWalkNs;
  c.scan_ns = matching * (kMatchNs + kMatchNsPerByte * static_cast<double>(s.scan_bytes) +
                          kMatchMissNs * uncached);
  // A costly filter tests every point either way (listing its matches too: it reads each
  // payload to know).
  if (s.costly) {
    c.scan_ns += n * kPayloadTestNs;
  } else if (!s.listed) {
    c.scan_ns += n * (kVertexTestNs + kVertexTestMissNs * uncached);
  }
  c.hop_budget = c.hops * std::max(2.0, c.scan_ns / std::max(c.walk_ns, 1.0)) + 4.0 * s.ef;
  if (matching > 0) {
    const double selectivity = matching / n;  // the share of the vertices tested that pass
    c.probe_tests = kProbeExpectedMatches / selectivity;
    c.prior_matches = kProbePriorMatches;
    c.prior_tests = kProbePriorMatches / selectivity;
    c.scan_tests = c.scan_ns / std::max(c.walk_ns, 1.0) * kTestsPerHop * c.hops;
    if (c.scan_ns < kFarWalkHops * c.walk_ns) c.probe_rate = kProbeFloor * selectivity;
  }
  return c;
}

}  // namespace wp::index
