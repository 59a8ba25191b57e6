// waypoint: the command-line entry point. Subcommands are in commands.cpp.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "engine/cli/commands.h"
#include "index/distance.h"
#include "index/error.h"
#ifdef WAYPOINT_WITH_TORCH
#include "learn/train_pruner.h"
#include "learn/tune_controller.h"
#endif

namespace {

const char* kUsage = R"(waypoint: a vector search engine whose indexes are learned

usage: waypoint <command> [options]

commands:
  serve   [--data ./waypoint-data] [--host 127.0.0.1] [--port 6333] [--api-key K] [--threads 2]
          [--max-body-mb 32] [--idle-timeout 60] [--config FILE.json] [--demo DATASET_DIR]
  build   --base FILE --out FILE [--index hnsw|flat|graph|rl|lsh] [--metric l2|ip|cosine] [--M 16]
          [--ef-construction 200] [--ef-search 64] [--quantization none|sq8] [--seed 100]
          [--threads N] [--quiet] [--config FILE.json (an index request body, e.g. tune's)]
          rl (pruned graph): [--initial hnsw|knn|random] [--K M]
          [--pruning none|hnsw|robust|vamana] [--alpha 1.2] [--R 2M] [--L 100]
          [--entry medoid|hnsw]
          graph (HNSW level 0 RobustPruned, entered through HNSW): [--alpha 1.2]
          lsh: [--bits 256] [--tables 0 (scan)] [--key-bits auto] [--probes 16]
          [--candidates 100] [--hash-model FILE (learned planes)]
  search  --index FILE --query FILE [--k 10] [--ef N] [--gt FILE [--base FILE]] [--out FILE]
          [--threads N]
  gt      --base FILE --query FILE --out FILE [--k 100] [--metric l2|ip|cosine] [--threads N]
  bench   --dataset DIR|FILE.hdf5 [--k 10] [--indexes hnsw,hnsw-sq8,faiss-hnsw,hnswlib,flat,
          knn,knn-hnsw,robust-1.2,vamana-1.2,...,lsh,lsh-mp,lsh-learned,faiss-lsh]
          [--rl-graph FILE] [--R 2M] [--bits 256] [--tables 8] [--key-bits auto] [--probes 16]
          [--hash-model FILE]
          [--ef 10,16,...] [--M 16] [--ef-construction 200] [--threads 1] [--build-threads N]
          [--runs 5] [--min-seconds 0.2] [--max-queries N] [--json] [--csv FILE] [--plot FILE]
          [--metric l2] [--quiet]
  train-pruner --dataset DIR --out FILE [--initial hnsw|vamana|complete] [--M 16]
          [--ef-construction 200] [--ef auto] [--k 10] [--target-recall 0.95]
          [--min-degree 4] [--budget 0.09]
          [--steps 50] [--max-minutes N] [--episodes 256] [--train-queries 4000]
          [--val-queries 500] [--validate-every 5] [--hidden 32] [--encoder mlp|sage]
          [--max-kl 0.01] [--seed 0]
          [--max-dcs N] [--limit-base N] [--log FILE.csv] [--plot FILE.png]
          [--checkpoint FILE] [--resume] [--graph-png FILE] [--quiet]
  train-hash --dataset DIR (labelled) --out FILE [--task classes|neighbours|itq] [--anchors 4000]
          [--neighbours 10] [--train-classes lower half] [--encoder mlp|conv]
          [--hidden 256|none] [--embed 64] [--way 5] [--shot 1] [--queries 5] [--episodes 16]
          [--lr 1e-3] [--weight-decay 0] [--dropout 0] [--scale 10] [--score cosine|bits]
          [--planes learned|fixed|ovr] [--relax tanh|sigmoid|ste] [--bits 256] [--beta 1]
          [--standardise feature|global (neighbours: global)]
          [--steps 500] [--max-minutes N] [--validate-every 25] [--val-episodes 300]
          [--validate-on unseen|seen] [--patience 0] [--export-bits 256]
          [--controller none|dqn] [--dqn-runs 3]
          [--dqn-interval 10] [--meta-momentum 1e-3] [--baseline-lrs 3e-4,1e-3,...]
          [--itq-iterations 50] [--itq-rows 20000]
          [--study] [--study-bits 100,200,500,1000,2000] [--seed 0] [--log FILE.csv]
          [--plot FILE.png] [--checkpoint FILE] [--resume] [--quiet]
  tune    --dataset DIR --out FILE.json [--recall 0.95] [--k 10] [--trials 60] [--max-minutes N]
          [--strategies controller,random,coordinate] [--types hnsw,lsh,graph] [--rl-graph FILE]
          [--tune-queries 500] [--latency-budget-us 0] [--penalty 30] [--repeats 3]
          [--min-seconds 0.25] [--cached-builds 8] [--seed 0] [--log FILE.csv] [--plot FILE.png]
          [--quiet]
  version

Vector files: .fvecs .bvecs .fbin .u8bin (ground truth: .ivecs). A dataset folder holds
base.fvecs, query.fvecs and groundtruth.ivecs.
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "version") {
      std::printf("waypoint 0.1.0 (distance kernels: %s)\n", wp::index::kernels().name);
      return 0;
    }
    wp::cli::Args args(argc, argv, 2, {"quiet", "json", "resume", "study"});
    if (cmd == "build") return wp::cli::cmd_build(args);
    if (cmd == "search") return wp::cli::cmd_search(args);
    if (cmd == "gt") return wp::cli::cmd_gt(args);
    if (cmd == "bench") return wp::cli::cmd_bench(args);
#ifdef WAYPOINT_WITH_TORCH
    if (cmd == "serve" || cmd == "tune") wp::learn::register_tune_controller();
#endif
    if (cmd == "tune") return wp::cli::cmd_tune(args);
    if (cmd == "serve") {
#ifdef WAYPOINT_WITH_TORCH
      wp::learn::register_learned_indexes();
#endif
      return wp::cli::cmd_serve(args);
    }
    if (cmd == "train-pruner" || cmd == "train-hash") {
#ifdef WAYPOINT_WITH_TORCH
      return cmd == "train-pruner" ? wp::cli::cmd_train_pruner(args)
                                   : wp::cli::cmd_train_hash(args);
#else
      throw wp::UserError("this build has no LibTorch: reconfigure with -DWAYPOINT_WITH_TORCH=ON");
#endif
    }
    std::fprintf(stderr, "waypoint: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
    return 2;
  } catch (const wp::UserError& e) {
    std::fprintf(stderr, "waypoint %s: error: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "waypoint %s: internal error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
