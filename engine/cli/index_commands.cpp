// `waypoint build`, `search`, `gt` and `version`: engine's commands over index files.
#include "engine/command/command.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <numeric>

#include "engine/command/progress.h"
#include "engine/index_request.h"
#include "engine/json_value.h"
#include "index/dataset.h"
#include "index/error.h"
#include "index/graph_index.h"
#include "index/index_spec.h"
#include "index/synthetic.h"
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
  using index::HnswParams;
  HnswParams p;
  p.M = args.integer(HnswParams::kM, 16);
  p.ef_construction = args.integer(HnswParams::kEfConstruction, 200);
  p.ef_search = args.integer(HnswParams::kEfSearch, 64);
  p.seed = args.integer("seed", 100, 0, (1LL << 62));
  p.quantization = index::parse_quantization(args.str("quantization", "none"), "--quantization");
  return p;
}

/// The index `build` makes: its options, or the index request body of --config FILE.json (e.g.
/// the configuration `waypoint tune` chose) over them.
index::IndexSpec build_spec(Args& args) {
  using index::GraphParams;
  using index::LshParams;
  index::IndexSpec spec;
  spec.kind = index::parse_index_kind(args.str("index", "hnsw"), "--index");
  spec.metric = index::parse_metric(args.str("metric", "l2"), "--metric");
  spec.hnsw = hnsw_params(args);
  spec.graph.initial = index::parse_initial_graph(args.str("initial", "hnsw"), "--initial");
  spec.graph.K = args.integer(GraphParams::kK, 0);
  spec.graph.pruning = index::parse_pruning(args.str("pruning", "robust"), "--pruning");
  spec.graph.alpha = static_cast<float>(args.real(GraphParams::kAlpha, 1.2));
  spec.graph.R = args.integer(GraphParams::kR, 0);
  spec.graph.L = args.integer(GraphParams::kL, 0);
  spec.graph.entry = index::parse_graph_entry(args.str("entry", "medoid"), "--entry");
  spec.lsh.bits = args.integer(LshParams::kBits, 256);
  spec.lsh.tables = args.integer(LshParams::kTables, 0);
  spec.lsh.key_bits = args.integer(LshParams::kKeyBits, 0);
  spec.lsh.probes = args.integer(LshParams::kProbes, 16);
  spec.lsh.candidates = args.integer(LshParams::kCandidates, 100);
  spec.lsh.seed = spec.hnsw.seed;
  spec.hash_model = args.str("hash-model", "");
  const std::string config_path = args.str("config", "");
  if (config_path.empty()) return spec;
  std::ifstream in(config_path);
  WP_THROW_IF_NOT(in.good(), "--config: cannot read '", config_path, "'");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  engine::check_json_depth(text, "--config");
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw UserError("--config: '" + config_path + "' is not JSON: " + e.what());
  }
  const engine::IndexRequest r = engine::IndexRequest::parse(body, spec);
  WP_THROW_IF_NOT(!r.tune,
                  "--config: type \"auto\" is for a collection; run `waypoint tune` instead");
  return r.spec;
}

int cmd_build(Args& args) {
  const std::string base_path = args.required("base");
  const std::string out = args.required("out");
  const index::IndexSpec spec = build_spec(args);
  const bool quiet = args.flag("quiet");
  set_threads(args);
  args.finish();
  spec.validate();

  const index::Matrix base = index::read_vectors(base_path);
  WP_THROW_IF_NOT(base.n > 0, "'", base_path, "' holds no vectors");
  auto idx = index::make_index(spec, base.d);
  const char* kind = index::index_kind_name(spec.kind);
  const auto t0 = Clock::now();
  Progress progress(std::string("build ") + kind, base.n, quiet);
  std::vector<label_t> ids(base.n);
  std::iota(ids.begin(), ids.end(), label_t{0});
  index::add_all(*idx, index::view(base), ids.data(), 10000,
                 [&](size_t done) { progress.update(done); });
  progress.finish();
  const double build_s = seconds_since(t0);
  idx->save(out);
  std::printf("built %s index of %zu x %zu (%s) in %.2f s, %.1f MiB in memory, saved to %s\n", kind,
              base.n, base.d, index::metric_name(spec.metric), build_s,
              idx->memory_bytes() / 1048576.0, out.c_str());
  if (const auto* g = dynamic_cast<const index::GraphIndex*>(idx.get())) {
    const index::GraphParams& p = g->info().params;
    std::printf("graph: initial %s, pruning %s (alpha %.2f), average degree %.2f, entry %s\n",
                index::initial_graph_name(p.initial), index::pruning_name(p.pruning), p.alpha,
                g->info().average_degree, index::graph_entry_name(p.entry));
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

int cmd_synth(Args& args) {
  const std::string out = args.required("out");
  const size_t n = args.integer("n", 1000000, 1, 1LL << 31);
  const size_t nq = args.integer("queries", 1000, 1, 1000000);
  const size_t k = args.integer("k", 100, 1, index::kMaxK);
  const index::Metric metric = index::parse_metric(args.str("metric", "l2"), "--metric");
  index::SyntheticSpec spec;
  spec.d = args.integer("d", 128, 1, 65536);
  spec.clusters = args.integer("clusters", 1000, 1, 1000000);
  spec.local_dim = args.integer("local-dim", 16, 1, 65536);
  spec.spread = static_cast<float>(args.real("spread", 1.0, 0, 100));
  spec.noise = static_cast<float>(args.real("noise", 0.05, 0, 100));
  spec.seed = args.integer("seed", 1, 0, 1LL << 62);
  set_threads(args);
  args.finish();
  WP_THROW_IF_NOT(k <= n, "k = ", k, " exceeds the ", n, " base vectors");
  spec.validate();
  std::filesystem::create_directories(out);
  const auto t0 = Clock::now();
  const index::Matrix base = index::synthetic_rows(spec, 0, n);
  const index::Matrix queries = index::synthetic_rows(spec, n, nq);
  index::write_fvecs(out + "/base.fvecs", base);
  index::write_fvecs(out + "/query.fvecs", queries);
  std::printf("%zu base and %zu query vectors of dimension %zu (%zu clusters) in %.1f s\n", n, nq,
              spec.d, spec.clusters, seconds_since(t0));
  // The same exact search as `waypoint gt`.
  const auto t1 = Clock::now();
  index::write_ivecs(out + "/groundtruth.ivecs", index::exact_knn(base, queries, k, metric));
  std::ofstream(out + "/metric") << index::metric_name(metric) << "\n";
  std::ofstream(out + "/synthetic.txt")
      << "waypoint synth --n " << n << " --queries " << nq << " --k " << k << " --metric "
      << index::metric_name(metric) << " --d " << spec.d << " --clusters " << spec.clusters
      << " --local-dim " << spec.local_dim << " --spread " << spec.spread << " --noise "
      << spec.noise << " --seed " << spec.seed << "\n";
  std::printf("exact top-%zu (%s) in %.1f s; written to %s\n", k, index::metric_name(metric),
              seconds_since(t1), out.c_str());
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
const CommandRegistration kSynth({"synth",
                                  "--out DIR [--n 1000000] [--d 128] [--queries 1000] [--k 100] "
                                  "[--metric l2|ip|cosine]\n"
                                  "          [--clusters 1000] [--local-dim 16] [--spread 1] "
                                  "[--noise 0.05] [--seed 1] [--threads N]\n"
                                  "          (a clustered synthetic dataset with its exact ground "
                                  "truth; the same data for the same options)",
                                  45,
                                  {},
                                  &cmd_synth});
const CommandRegistration kVersion({"version", "", 90, {}, &cmd_version});

}  // namespace

}  // namespace wp::cli
