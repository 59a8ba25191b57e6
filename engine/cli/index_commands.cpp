// `waypoint build`, `search`, `gt` and `version`: engine's commands over index files.
#include "engine/command/command.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <numeric>

#include "engine/command/progress.h"
#include "engine/index_request.h"
#include "index/dataset.h"
#include "index/error.h"
#include "index/index_factory.h"
#include "index/vector_io.h"

namespace wp::cli {

using Clock = std::chrono::steady_clock;
using index::label_t;

namespace {
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void set_threads(Args& args) {
  const long long t = args.integer("threads", 0, 0, 1024);
  if (t > 0) omp_set_num_threads(static_cast<int>(t));
}

index::HnswParams hnsw_params(Args& args) {
  index::HnswParams p;
  p.M = args.integer("M", 16, 2, 1024);
  p.ef_construction = args.integer("ef-construction", 200, 1, 100000);
  p.ef_search = args.integer("ef-search", 64, 1, 100000);
  p.seed = args.integer("seed", 100, 0, (1LL << 62));
  p.quantization = index::parse_quantization(args.str("quantization", "none"), "--quantization");
  return p;
}
int cmd_build(Args& args) {
  index::IndexSpec spec;
  const std::string base_path = args.required("base");
  const std::string out = args.required("out");
  spec.type = args.str("index", "hnsw");
  spec.metric = index::parse_metric(args.str("metric", "l2"), "--metric");
  spec.hnsw = hnsw_params(args);
  spec.graph.initial = args.str("initial", "hnsw");
  spec.graph.K = args.integer("K", 0, 0, 1024);
  spec.graph.pruning = args.str("pruning", "robust");
  spec.graph.alpha = static_cast<float>(args.real("alpha", 1.2, 1.0, 10.0));
  spec.graph.R = args.integer("R", 0, 0, 2048);
  spec.graph.L = args.integer("L", 0, 0, 4096);
  spec.lsh.bits = args.integer("bits", 256, 1, 4096);
  spec.lsh.tables = args.integer("tables", 0, 0, 64);
  spec.lsh.key_bits = args.integer("key-bits", 0, 0, 32);
  spec.lsh.probes = args.integer("probes", 16, 1, 4096);
  spec.lsh.candidates = args.integer("candidates", 100, 1, 100000);
  spec.lsh.seed = spec.hnsw.seed;
  spec.hash_model = args.str("hash-model", "");
  spec.graph.entry = args.str("entry", "medoid");
  const std::string config_path = args.str("config", "");
  const bool quiet = args.flag("quiet");
  set_threads(args);
  args.finish();
  if (!config_path.empty()) {
    // A PUT /collections/{name}/index body, e.g. the configuration `waypoint tune` chose.
    std::ifstream in(config_path);
    WP_THROW_IF_NOT(in.good(), "--config: cannot read '", config_path, "'");
    nlohmann::json body;
    try {
      body = nlohmann::json::parse(in);
    } catch (const nlohmann::json::parse_error& e) {
      throw UserError("--config: '" + config_path + "' is not JSON: " + e.what());
    }
    const engine::IndexRequest r =
        engine::IndexRequest::parse(body, spec.hnsw, spec.lsh, spec.graph.alpha);
    WP_THROW_IF_NOT(r.type != "auto",
                    "--config: type \"auto\" is for a collection; run `waypoint tune` instead");
    spec.type = r.type;
    spec.hnsw = r.hnsw;
    spec.lsh = r.lsh;
    spec.graph.alpha = static_cast<float>(r.alpha);
  }
  spec.validate();

  const index::Matrix base = index::read_vectors(base_path);
  WP_THROW_IF_NOT(base.n > 0, "'", base_path, "' holds no vectors");
  auto idx = index::make_index(spec, base.d);
  if (auto* h = dynamic_cast<index::HnswIndex*>(idx.get())) h->reserve(base.n);
  const auto t0 = Clock::now();
  Progress progress("build " + spec.type, base.n, quiet);
  // A pruned graph is built from all points at once (its first batch); others in chunks.
  const size_t chunk = dynamic_cast<index::GraphIndex*>(idx.get()) ? base.n : 10000;
  std::vector<label_t> ids(chunk);
  for (size_t b = 0; b < base.n; b += chunk) {
    const size_t n = std::min(chunk, base.n - b);
    std::iota(ids.begin(), ids.begin() + n, b);
    idx->add(index::view_rows(base, b, n), ids.data());
    progress.update(b + n);
  }
  progress.finish();
  const double build_s = seconds_since(t0);
  idx->save(out);
  std::printf("built %s index of %zu x %zu (%s) in %.2f s, %.1f MiB in memory, saved to %s\n",
              spec.type.c_str(), base.n, base.d, index::metric_name(spec.metric), build_s,
              idx->memory_bytes() / 1048576.0, out.c_str());
  if (const auto* g = dynamic_cast<const index::GraphIndex*>(idx.get())) {
    std::printf("graph: initial %s, pruning %s (alpha %.2f), average degree %.2f, entry %s\n",
                g->info().spec.initial.c_str(), g->info().spec.pruning.c_str(),
                g->info().spec.alpha, g->info().average_degree, g->info().spec.entry.c_str());
  }
  return 0;
}

int cmd_search(Args& args) {
  const std::string index_path = args.required("index");
  const std::string query_path = args.required("query");
  const size_t k = args.integer("k", 10, 1, index::kMaxK);
  index::SearchParams params;
  params.ef = args.integer("ef", 0, 0, 100000);
  const std::string gt_path = args.str("gt", "");
  const std::string base_path = args.str("base", "");
  const std::string out_path = args.str("out", "");
  set_threads(args);
  args.finish();

  auto idx = index::load_index(index_path);
  const index::Matrix q = index::read_vectors(query_path);
  const auto t0 = Clock::now();
  const index::SearchResult r = idx->search(index::view(q), k, params);
  const double secs = seconds_since(t0);
  std::printf(
      "%zu queries, k=%zu, ef=%zu: %.1f QPS (%d threads), %.1f distance computations and "
      "%.1f hops per query\n",
      q.n, k, params.ef, q.n / secs, omp_get_max_threads(),
      static_cast<double>(r.stats.distance_computations) / q.n,
      static_cast<double>(r.stats.hops) / q.n);
  if (!gt_path.empty()) {
    const index::IntMatrix gt = index::read_ivecs(gt_path, q.n);
    WP_THROW_IF_NOT(gt.n == q.n, "--gt has ", gt.n, " rows for ", q.n, " queries");
    WP_THROW_IF_NOT(k <= gt.d, "--gt has depth ", gt.d, " < k = ", k);
    if (!base_path.empty()) {  // tie-aware (ann-benchmarks) recall needs the base vectors
      const index::Matrix base = index::read_vectors(base_path);
      std::printf("recall@%zu = %.4f (tie-aware)\n", k,
                  index::recall_at_k(base, q, gt, r.labels, k, idx->metric()));
    } else {
      size_t hits = 0;
      for (size_t i = 0; i < q.n; ++i) {
        const int32_t* g = gt.row(i);
        for (size_t j = 0; j < k; ++j) {
          const label_t id = r.labels[i * k + j];
          hits += std::find(g, g + k, static_cast<int32_t>(id)) != g + k ? 1 : 0;
        }
      }
      std::printf("recall@%zu = %.4f (by id; pass --base for tie-aware recall)\n", k,
                  static_cast<double>(hits) / (q.n * k));
    }
  }
  if (!out_path.empty()) {
    index::IntMatrix ids(q.n, k);
    for (size_t i = 0; i < q.n * k; ++i) {
      ids.data[i] = r.labels[i] == index::kNoLabel ? -1 : static_cast<int32_t>(r.labels[i]);
    }
    index::write_ivecs(out_path, ids);
  }
  return 0;
}

int cmd_gt(Args& args) {
  const std::string base_path = args.required("base");
  const std::string query_path = args.required("query");
  const std::string out = args.required("out");
  const size_t k = args.integer("k", 100, 1, index::kMaxK);
  const index::Metric metric = index::parse_metric(args.str("metric", "l2"), "--metric");
  set_threads(args);
  args.finish();
  const index::Matrix base = index::read_vectors(base_path);
  const index::Matrix q = index::read_vectors(query_path);
  WP_THROW_IF_NOT(base.d == q.d, "base has dimension ", base.d, " but queries have ", q.d);
  WP_THROW_IF_NOT(k <= base.n, "k = ", k, " exceeds the ", base.n, " base vectors");
  const auto t0 = Clock::now();
  index::write_ivecs(out, index::exact_knn(base, q, k, metric));
  std::printf("exact top-%zu of %zu queries over %zu vectors (%s) in %.2f s, written to %s\n", k,
              q.n, base.n, index::metric_name(metric), seconds_since(t0), out.c_str());
  return 0;
}

int cmd_version(Args& args) {
  args.finish();
  std::printf("waypoint 0.1.0 (distance kernels: %s)\n", index::kernels().name);
  return 0;
}

const CommandRegistration kBuild(
    {"build",
     "--base FILE --out FILE [--index hnsw|flat|graph|rl|lsh] "
     "[--metric l2|ip|cosine] [--M 16]\n"
     "          [--ef-construction 200] [--ef-search 64] "
     "[--quantization none|sq8] [--seed 100]\n"
     "          [--threads N] [--quiet] [--config FILE.json (an index "
     "request body, e.g. tune's)]\n"
     "          rl (pruned graph): [--initial hnsw|knn|random] [--K M]\n"
     "          [--pruning none|hnsw|robust|vamana] [--alpha 1.2] "
     "[--R 2M] [--L 100]\n"
     "          [--entry medoid|hnsw]\n"
     "          graph (HNSW level 0 RobustPruned, entered through "
     "HNSW): [--alpha 1.2]\n"
     "          lsh: [--bits 256] [--tables 0 (scan)] [--key-bits auto] "
     "[--probes 16]\n"
     "          [--candidates 100] [--hash-model FILE (learned planes)]",
     20,
     {"quiet"},
     &cmd_build});
const CommandRegistration kSearch({"search",
                                   "--index FILE --query FILE [--k 10] [--ef N] [--gt FILE [--base "
                                   "FILE]] [--out FILE]\n"
                                   "          [--threads N]",
                                   30,
                                   {},
                                   &cmd_search});
const CommandRegistration kGt({"gt",
                               "--base FILE --query FILE --out FILE [--k 100] [--metric "
                               "l2|ip|cosine] [--threads N]",
                               40,
                               {},
                               &cmd_gt});
const CommandRegistration kVersion({"version", "", 90, {}, &cmd_version});

}  // namespace

}  // namespace wp::cli
