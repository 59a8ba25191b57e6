// HNSW search on SIFT10K: ours against hnswlib, one query per iteration, with recall@10 and
// distance computations as counters. Run: build/bench/bench_hnsw
#include <benchmark/benchmark.h>

#include <map>
#include <memory>

#include "bench/runner/bench_subject.h"
#include "index/dataset.h"

namespace {

const wp::index::Dataset& sift() {
  static const wp::index::Dataset ds =
      wp::index::load_dataset(std::string(WAYPOINT_DATA_DIR) + "/siftsmall");
  return ds;
}

/// Built once per subject name and kept for every ef.
wp::bench::BenchSubject& subject(const std::string& name) {
  static std::map<std::string, std::unique_ptr<wp::bench::BenchSubject>> built;
  auto& s = built[name];
  if (!s) {
    wp::bench::GraphBuildParams p;
    s = name == "hnswlib" ? wp::bench::make_hnswlib_subject(p)
                          : wp::bench::make_waypoint_subject(name, p);
    s->build(sift().base, 2);
  }
  return *s;
}

void search(benchmark::State& state, const std::string& name) {
  const auto& ds = sift();
  auto& s = subject(name);
  s.set_ef(state.range(0));
  const size_t k = 10;
  std::vector<wp::index::label_t> ids(ds.query.n * k);
  uint64_t dcs = 0;
  size_t i = 0, done = 0;
  for (auto _ : state) {
    dcs += s.search(ds.query.row(i), k, ids.data() + i * k).distance_computations;
    i = (i + 1) % ds.query.n;
    ++done;
  }
  // Recall of one full pass at this ef.
  for (size_t q = 0; q < ds.query.n; ++q) s.search(ds.query.row(q), k, ids.data() + q * k);
  state.counters["recall@10"] =
      wp::index::recall_at_k(ds.base, ds.query, ds.groundtruth, ids, k, ds.metric);
  if (s.counts_work()) state.counters["dcs"] = static_cast<double>(dcs) / done;
  state.counters["qps"] =
      benchmark::Counter(static_cast<double>(done), benchmark::Counter::kIsRate);
}

void BM_Search_Waypoint(benchmark::State& s) {
  search(s, "hnsw");
}
void BM_Search_Hnswlib(benchmark::State& s) {
  search(s, "hnswlib");
}

BENCHMARK(BM_Search_Waypoint)->Arg(10)->Arg(16)->Arg(32)->Arg(64)->Arg(128);
BENCHMARK(BM_Search_Hnswlib)->Arg(10)->Arg(16)->Arg(32)->Arg(64)->Arg(128);

}  // namespace

BENCHMARK_MAIN();
