// filter_walk: what a filtered HNSW search costs as a walk and as a scan, at the index, measured
// side by side over selectivities, so that the choice between them (HnswIndex's
// filter_prefers_exact, docs/hnsw.md "Walk or scan") can be fitted to counts rather than
// guessed. For each selectivity, a random set of ids (independent of the vectors, as payloads
// are) is searched:
//   - as a walk, always (the filter hides its count from the choice): microseconds a query,
//     distances, vertices expanded (hops), ids tested, recall@k against the exact answer;
//   - as the scan of the matches (listed by the filter, one distance each) and as the scan that
//     tests every vertex (the choice of a filter that cannot list its matches);
//   - as the index chooses (which one it took, its time, distances, hops and recall: a walk
//     stopped at its budget or at its probe is followed by the scan).
// Then the same selectivities for the points along a random direction (the highest projections
// on it): a filter that goes with the vectors, whose matches lie away from most queries.
//
//   build/bench/filter_walk [--points 60000] [--dim 128] [--clusters 60] [--queries 200]
//                           [--ef 64] [--k 10] [--M 16] [--seed 1] [--threads 2 (build only)]
//                           [--sq8 1]   (the walk reads 8-bit codes; the scan reads the floats)
//
// Points and queries are the clustered synthetic stream of `waypoint synth` (index/synthetic.h).
// One thread searches; the rows compare within one run.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "index/hnsw_index.h"
#include "index/id_filter.h"
#include "index/synthetic.h"

using namespace wp::index;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

/// The filter as the index sees it, counting its tests; `hide` keeps its count from the choice
/// (the index then walks), `listable` lets a scan list the matches.
class Counted final : public IdFilter {
 public:
  Counted(const BitsetFilter& bits, bool hide, bool listable)
      : bits_(bits), hide_(hide), listable_(listable) {}
  bool contains(uint64_t id) const override {
    ++tests;
    return bits_.contains(id);
  }
  int64_t count() const override { return listable_ ? bits_.count() : -1; }
  int64_t estimate() const override { return hide_ ? -1 : bits_.count(); }
  bool for_each(const std::function<void(uint64_t)>& fn) const override {
    return listable_ && bits_.for_each(fn);
  }
  mutable uint64_t tests = 0;

 private:
  const BitsetFilter& bits_;
  bool hide_, listable_;
};

struct Run {
  double us = 0, distances = 0, hops = 0, tests = 0, recall = 0;
};

}  // namespace

int main(int argc, char** argv) {
  size_t points = 60000, dim = 128, clusters = 60, queries = 200, ef = 64, k = 10, M = 16;
  size_t threads = 2;
  bool sq8 = false;
  uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--points")
      points = v;
    else if (a == "--dim")
      dim = v;
    else if (a == "--clusters")
      clusters = v;
    else if (a == "--queries")
      queries = v;
    else if (a == "--ef")
      ef = v;
    else if (a == "--k")
      k = v;
    else if (a == "--M")
      M = v;
    else if (a == "--seed")
      seed = v;
    else if (a == "--threads")
      threads = v;
    else if (a == "--sq8")
      sq8 = v != 0;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  SyntheticSpec spec;
  spec.d = dim;
  spec.clusters = clusters;
  spec.seed = seed;
  omp_set_num_threads(static_cast<int>(threads));
  const Matrix base = synthetic_rows(spec, 0, points);
  const Matrix qs = synthetic_rows(spec, points, queries);
  HnswParams hp;
  hp.M = M;
  if (sq8) hp.quantization = Quantization::kSq8;
  HnswIndex idx(dim, Metric::kL2, hp);
  std::vector<label_t> labels(points);
  std::iota(labels.begin(), labels.end(), 0);
  auto t0 = Clock::now();
  idx.add(view(base), labels.data());
  std::printf(
      "%zu points of dimension %zu (%zu clusters), M %zu%s, built in %.1f s on %zu "
      "threads; %zu queries, k %zu, ef %zu\n\n",
      points, dim, clusters, M, sq8 ? ", sq8" : "", seconds_since(t0), threads, queries, k, ef);
  std::printf(
      "| selectivity | matches | walk us | walk distances | hops | tests | walk recall | "
      "scan of the matches us | scan of every vertex us | chosen | chosen us | chosen "
      "distances | chosen hops | chosen recall |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | "
      "---: |\n");
  std::mt19937_64 rng(seed + 7);
  std::uniform_real_distribution<double> u(0, 1);
  // The points along a random direction (those whose projection on it is among the highest):
  // a filter that goes with the vectors, whose matches lie away from most queries.
  std::vector<float> direction(dim);
  std::normal_distribution<float> gauss(0, 1);
  for (float& x : direction) x = gauss(rng);
  std::vector<float> along(points);
  for (size_t i = 0; i < points; ++i) {
    along[i] = std::inner_product(base.row(i), base.row(i) + dim, direction.begin(), 0.0f);
  }
  std::vector<float> sorted = along;
  std::sort(sorted.begin(), sorted.end());
  for (const bool correlated : {false, true}) {
    for (const double sel : {0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 0.5}) {
      BitsetFilter bits(points);
      const float above = sorted[static_cast<size_t>((1 - sel) * (points - 1))];
      for (size_t i = 0; i < points; ++i) {
        if (correlated ? along[i] > above : u(rng) < sel) bits.set(i);
      }
      std::vector<label_t> truth(queries * k), got(k);
      std::vector<float> d(k);
      // The exact answer, by the scan of the matches (timed: one of the two choices).
      t0 = Clock::now();
      for (size_t q = 0; q < queries; ++q) {
        Counted f(bits, false, true);
        SearchParams p;
        p.exact = true;
        p.filter = &f;
        idx.search_one(qs.row(q), k, p, &truth[q * k], d.data());
      }
      const double listed_us = seconds_since(t0) * 1e6 / queries;
      Run every, walk, chosen;
      auto run = [&](Run& r, bool hide, bool listable, bool exact, bool* scanned) {
        size_t hits = 0, total = 0;
        const auto t = Clock::now();
        for (size_t q = 0; q < queries; ++q) {
          Counted f(bits, hide, listable);
          SearchParams p;
          p.ef = ef;
          p.exact = exact;
          p.filter = &f;
          const SearchStats st = idx.search_one(qs.row(q), k, p, got.data(), d.data());
          r.distances += st.distance_computations;
          r.hops += st.hops;
          r.tests += f.tests;
          if (scanned) *scanned = st.hops == 0;
          for (size_t j = 0; j < k; ++j) {
            if (truth[q * k + j] == kNoLabel) continue;
            ++total;
            hits += std::count(got.begin(), got.end(), truth[q * k + j]);
          }
        }
        r.us = seconds_since(t) * 1e6 / queries;
        r.recall = total ? static_cast<double>(hits) / total : 1.0;
        r.distances /= queries;
        r.hops /= queries;
        r.tests /= queries;
      };
      run(every, false, false, true, nullptr);
      run(walk, true, true, false, nullptr);
      bool scanned = false;
      run(chosen, false, true, false, &scanned);
      std::printf(
          "| %.1f%%%s | %zu | %.1f | %.0f | %.0f | %.0f | %.4f | %.1f | %.1f | %s | %.1f | %.0f | "
          "%.0f | %.4f |\n",
          sel * 100, correlated ? " along a direction" : "", static_cast<size_t>(bits.count()),
          walk.us, walk.distances, walk.hops, walk.tests, walk.recall, listed_us, every.us,
          scanned ? "scan" : "walk", chosen.us, chosen.distances, chosen.hops, chosen.recall);
      std::fflush(stdout);
    }
  }
  return 0;
}
