// The `waypoint` command line: argument parsing, and the real binary end to end.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "engine/command/args.h"
#include "engine/command/plot.h"
#include "index/dataset.h"
#include "index/error.h"
#include "index/graph_index.h"
#include "index/hnsw_index.h"
#include "index/index_file.h"
#include "index/lsh_index.h"
#include "index/vector_io.h"
#include "test_util.h"

namespace {

struct CliRun {
  int code;
  std::string out;
};

/// Runs the waypoint binary with `args` (and `env`, "NAME=value", set for it); captures stdout
/// and stderr together.
CliRun waypoint(const std::string& args, const std::string& env = "") {
  const std::string cmd = env + " " + std::string(WAYPOINT_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WEXITSTATUS(status), out};
}

wp::cli::Args parse(std::vector<std::string> v) {
  std::vector<char*> argv;
  for (auto& s : v) argv.push_back(s.data());
  return wp::cli::Args(static_cast<int>(argv.size()), argv.data(), 0, {"quiet"});
}

}  // namespace

TEST(Args, ParsesValuesSwitchesAndLists) {
  auto a = parse({"--k", "5", "--quiet", "--ef=10,20", "--name", "x"});
  EXPECT_EQ(a.integer("k", 10, 1, 100), 5);
  EXPECT_TRUE(a.flag("quiet"));
  EXPECT_EQ(a.int_list("ef", "", 1, 100), (std::vector<long long>{10, 20}));
  EXPECT_EQ(a.str("name", ""), "x");
  EXPECT_EQ(a.str("other", "dflt"), "dflt");
  EXPECT_NO_THROW(a.finish());
}

TEST(Args, RejectsTyposRangesAndGarbage) {
  auto a = parse({"--kk", "5"});
  a.integer("k", 10, 1, 100);
  EXPECT_THROW(a.finish(), wp::UserError);
  auto b = parse({"--k", "0"});
  EXPECT_THROW(b.integer("k", 10, 1, 100), wp::UserError);
  auto c = parse({"--k", "12abc"});
  EXPECT_THROW(c.integer("k", 10, 1, 100), wp::UserError);
  EXPECT_THROW(parse({"positional"}), wp::UserError);
  EXPECT_THROW(parse({"--k"}), wp::UserError);
  EXPECT_THROW(parse({"--k", "1", "--k", "2"}), wp::UserError);
  auto d = parse({});
  EXPECT_THROW(d.required("base"), wp::UserError);
}

TEST(Plot, ParetoFrontierKeepsUndominatedPoints) {
  wp::cli::Series s{"x", {0.5, 0.9, 0.8, 0.95, 0.7}, {100, 50, 40, 10, 120}};
  const wp::cli::Series f = wp::cli::pareto_frontier(s);
  EXPECT_EQ(f.x, (std::vector<double>{0.7, 0.9, 0.95}));
  EXPECT_EQ(f.y, (std::vector<double>{120, 50, 10}));
}

TEST(Cli, BuildSearchAndGroundTruthEndToEnd) {
  wp::test::TempDir tmp;
  const std::string digits = wp::test::data_dir() + "/digits";
  CliRun b = waypoint("build --base " + digits + "/base.fvecs --index hnsw --M 12 --out " +
                      tmp.file("d.idx") + " --quiet");
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_NE(b.out.find("built hnsw index of 1697 x 64"), std::string::npos) << b.out;

  CliRun s = waypoint("search --index " + tmp.file("d.idx") + " --query " + digits +
                      "/query.fvecs --k 10 --ef 64 --gt " + digits + "/groundtruth.ivecs --base " +
                      digits + "/base.fvecs --out " + tmp.file("res.ivecs"));
  ASSERT_EQ(s.code, 0) << s.out;
  const size_t at = s.out.find("recall@10 = ");
  ASSERT_NE(at, std::string::npos) << s.out;
  EXPECT_GE(std::stod(s.out.substr(at + 12)), 0.98) << s.out;  // measured 1.000
  EXPECT_EQ(wp::index::read_ivecs(tmp.file("res.ivecs")).n, 100u);

  CliRun g = waypoint("gt --base " + digits + "/base.fvecs --query " + digits +
                      "/query.fvecs --k 10 --out " + tmp.file("gt.ivecs"));
  ASSERT_EQ(g.code, 0) << g.out;
  const wp::index::IntMatrix ours = wp::index::read_ivecs(tmp.file("gt.ivecs"));
  const wp::index::IntMatrix theirs = wp::index::read_ivecs(digits + "/groundtruth.ivecs");
  ASSERT_EQ(ours.n, 100u);
  size_t same_first = 0;
  for (size_t i = 0; i < 100; ++i) same_first += ours.row(i)[0] == theirs.row(i)[0];
  EXPECT_GE(same_first, 97u);  // three queries have a tie at the first neighbour
}

TEST(Cli, BenchFollowsTheJsonContract) {
  wp::test::TempDir tmp;
  CliRun r = waypoint("bench --dataset " + wp::test::data_dir() +
                      "/digits --k 10 --ef 16,64 --runs 1 --min-seconds 0 --json --csv " +
                      tmp.file("b.csv") + " --plot " + tmp.file("b.png") + " --plot-dcs " +
                      tmp.file("d.png"));
  ASSERT_EQ(r.code, 0) << r.out;
  std::istringstream lines(r.out);
  std::string line;
  std::set<std::string> seen;
  size_t n = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    const auto j = nlohmann::json::parse(line);
    ++n;
    seen.insert(j.at("index").get<std::string>());
    for (const char* key :
         {"index", "params", "recall", "qps", "p50_us", "p99_us", "build_s", "memory_bytes"}) {
      EXPECT_TRUE(j.contains(key)) << key << " missing in " << line;
    }
    const std::string idx = j["index"];
    EXPECT_EQ(j.contains("dcs"), idx == "hnsw" || idx == "flat") << line;
    EXPECT_GT(j["qps"].get<double>(), 0);
    // ef 16 / 64 on digits: measured 0.99-1.000 for every graph index.
    EXPECT_GE(j["recall"].get<double>(), j["params"].value("ef", 64) == 16 ? 0.95 : 0.98) << line;
    if (idx != "flat") {
      EXPECT_EQ(j["params"]["M"], 16);
      EXPECT_EQ(j["params"]["ef_construction"], 200);
    }
    if (idx == "flat") {
      EXPECT_DOUBLE_EQ(j["recall"].get<double>(), 1.0);
    }
  }
  EXPECT_EQ(n, 7u);  // three graph indexes x two ef values, plus flat
  EXPECT_EQ(seen, (std::set<std::string>{"hnsw", "faiss-hnsw", "hnswlib", "flat"}));
  std::ifstream csv(tmp.file("b.csv"));
  size_t rows = 0;
  while (std::getline(csv, line)) ++rows;
  EXPECT_EQ(rows, 8u);
  for (const char* plot : {"b.png", "d.png"}) {  // recall against QPS, and against DCS
    std::ifstream png(tmp.file(plot), std::ios::binary);
    char magic[4] = {};
    png.read(magic, 4);
    EXPECT_EQ(std::string(magic + 1, 3), "PNG") << plot;
  }
}

TEST(Cli, BadInputExitsWithAClearMessage) {
  CliRun r = waypoint("bench --dataset /nonexistent");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("error:"), std::string::npos) << r.out;
  r = waypoint("build --base x.fvecs --out y --M 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--M must be in 2..1024"), std::string::npos) << r.out;
  r = waypoint("search --index /nonexistent.idx --query q.fvecs --bogus 3");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--bogus"), std::string::npos) << r.out;
  r = waypoint("frobnicate");
  EXPECT_EQ(r.code, 2);
}

// `waypoint <command> --help` answered "option --help needs a value" (issue 15, defect 11).
TEST(Cli, EveryCommandPrintsItsUsageOnHelp) {
  for (const char* cmd : {"serve", "build", "search", "gt", "synth", "bench", "tune",
                          "train-pruner", "train-hash", "version"}) {
    for (const char* flag : {"--help", "-h"}) {
      const CliRun r = waypoint(std::string(cmd) + " --dataset x " + flag);
      EXPECT_EQ(r.code, 0) << cmd << " " << flag << ": " << r.out;
      EXPECT_EQ(r.out.rfind(std::string("usage: waypoint ") + cmd, 0), 0u) << r.out;
    }
  }
}

// `waypoint tune` end to end on digits: a CSV row per trial of every strategy, a plot, the best
// configuration as JSON that `waypoint build --config` builds, verified on the evaluation queries.
TEST(Cli, TuneWritesItsLogPlotAndAConfigurationThatBuilds) {
  wp::test::TempDir tmp;
  const std::string digits = wp::test::data_dir() + "/digits";
  CliRun t = waypoint("tune --dataset " + digits +
                      " --recall 0.9 --trials 5 --repeats 1 --min-seconds 0 --out " +
                      tmp.file("best.json") + " --quiet");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_NE(t.out.find("random"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("coordinate"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("eval-r"), std::string::npos) << t.out;
  std::ifstream csv(tmp.file("best.json.csv"));
  std::string line;
  size_t rows = 0;
  std::set<std::string> strategies;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("strategy,trial,", 0), 0u) << line;
  while (std::getline(csv, line)) {
    ++rows;
    strategies.insert(line.substr(0, line.find(',')));
  }
  EXPECT_EQ(rows, 5 * strategies.size());
  EXPECT_GE(strategies.size(), 2u);
  EXPECT_TRUE(std::ifstream(tmp.file("best.json.png")).good());

  std::ifstream in(tmp.file("best.json"));
  const nlohmann::json best = nlohmann::json::parse(in);
  ASSERT_TRUE(best["type"] == "hnsw" || best["type"] == "lsh") << best.dump();
  CliRun b = waypoint("build --base " + digits + "/base.fvecs --config " + tmp.file("best.json") +
                      " --out " + tmp.file("best.idx") + " --quiet");
  ASSERT_EQ(b.code, 0) << b.out;
  EXPECT_NE(b.out.find("built " + best["type"].get<std::string>() + " index"), std::string::npos)
      << b.out;

  // Bad input names the option or the field.
  CliRun bad = waypoint("tune --dataset " + digits + " --recall 2 --out x.json");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("--recall"), std::string::npos) << bad.out;
  bad = waypoint("tune --dataset " + digits + " --types ivf --out x.json");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("ivf"), std::string::npos) << bad.out;
  std::ofstream(tmp.file("auto.json")) << R"({"type":"auto","recall":0.9})";
  bad = waypoint("build --base " + digits + "/base.fvecs --config " + tmp.file("auto.json") +
                 " --out " + tmp.file("x.idx"));
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.out.find("waypoint tune"), std::string::npos) << bad.out;
}

namespace {
constexpr int kQueryThreads = 2;

/// "recall@10 = X" from `waypoint search` output (-1 when absent).
double printed_recall(const std::string& out) {
  const size_t at = out.find("recall@10 = ");
  return at == std::string::npos ? -1 : std::stod(out.substr(at + 12));
}

/// The JSON lines of `waypoint bench --json`, by subject name.
std::map<std::string, nlohmann::json> bench_lines(const std::string& out) {
  std::map<std::string, nlohmann::json> by_index;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line[0] == '{') {
      const auto j = nlohmann::json::parse(line);
      by_index[j.at("index").get<std::string>()] = j;
    }
  }
  return by_index;
}
}  // namespace

// Every `build --index` type, each with its options: the saved index is of that type and carries
// the options given, and answers digits' queries above a floor (measured values beside them).
TEST(Cli, EveryIndexTypeBuildsWithItsOptions) {
  using namespace wp::index;
  wp::test::TempDir tmp;
  const std::string digits = wp::test::data_dir() + "/digits";
  struct Case {
    std::string args;
    const char* type;
    double floor;
    std::function<void(const Index&)> check;
  };
  const std::vector<Case> cases{
      {"--index flat", "flat", 1.0, nullptr},
      {"--index hnsw --M 8 --ef-construction 50 --ef-search 40 --quantization sq8 --seed 7 "
       "--threads 1",
       "hnsw", 0.97,  // 0.998
       [](const Index& i) {
         const HnswParams& p = dynamic_cast<const HnswIndex&>(i).params();
         EXPECT_EQ(p.M, 8u);
         EXPECT_EQ(p.ef_construction, 50u);
         EXPECT_EQ(p.ef_search, 40u);
         EXPECT_EQ(p.seed, 7u);
         EXPECT_EQ(p.quantization, Quantization::kSq8);
       }},
      {"--index hnsw --metric cosine", "hnsw", 0.93,  // against l2 truth: 0.960
       [](const Index& i) { EXPECT_EQ(i.metric(), Metric::kCosine); }},
      {"--index graph --alpha 1.3", "rl", 0.98,  // 1.000 (graph indexes are saved as "rl")
       [](const Index& i) {
         const GraphInfo& g = dynamic_cast<const GraphIndex&>(i).info();
         EXPECT_FLOAT_EQ(g.params.alpha, 1.3f);
         EXPECT_EQ(g.params.initial, InitialGraph::kHnsw);
         EXPECT_EQ(g.params.pruning, Pruning::kRobust);
         EXPECT_EQ(g.params.entry, GraphEntry::kHnsw);
       }},
      {"--index rl --initial knn --K 12 --pruning robust --alpha 1.1 --R 20 --L 60 --entry medoid",
       "rl", 0.96,  // 0.990
       [](const Index& i) {
         const GraphInfo& g = dynamic_cast<const GraphIndex&>(i).info();
         EXPECT_EQ(g.params.initial, InitialGraph::kKnn);
         EXPECT_EQ(g.params.K, 12u);
         EXPECT_EQ(g.params.pruning, Pruning::kRobust);
         EXPECT_FLOAT_EQ(g.params.alpha, 1.1f);
         EXPECT_EQ(g.params.R, 20u);
         EXPECT_EQ(g.params.entry, GraphEntry::kMedoid);
         EXPECT_LE(g.average_degree, 20.0);
       }},
      {"--index rl --initial hnsw --pruning vamana --R 16 --entry hnsw", "rl", 0.98,  // 1.000
       [](const Index& i) {
         const GraphInfo& g = dynamic_cast<const GraphIndex&>(i).info();
         EXPECT_EQ(g.params.pruning, Pruning::kVamana);
         EXPECT_EQ(g.params.entry, GraphEntry::kHnsw);
         EXPECT_LE(g.average_degree, 16.0);
         EXPECT_GT(g.average_degree, 12.0);  // 15.68
       }},
      {"--index lsh --bits 128 --tables 4 --key-bits 10 --probes 8 --candidates 150 --seed 9",
       "lsh", 0.72,  // 0.760
       [](const Index& i) {
         const LshParams& p = dynamic_cast<const LshIndex&>(i).params();
         EXPECT_EQ(p.bits, 128u);
         EXPECT_EQ(p.tables, 4u);
         EXPECT_EQ(p.key_bits, 10u);
         EXPECT_EQ(p.probes, 8u);
         EXPECT_EQ(p.candidates, 150u);
         EXPECT_EQ(p.seed, 9u);
       }},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    const Case& k = cases[c];
    const std::string file = tmp.file(std::to_string(c) + ".idx");
    const CliRun b =
        waypoint("build --base " + digits + "/base.fvecs " + k.args + " --out " + file);
    ASSERT_EQ(b.code, 0) << k.args << ": " << b.out;
    const auto index = load_index(file);
    EXPECT_STREQ(index->type_name(), k.type) << k.args;
    EXPECT_EQ(index->size(), 1697u);
    if (k.check) k.check(*index);
    const CliRun s =
        waypoint("search --index " + file + " --query " + digits + "/query.fvecs --k 10 --gt " +
                 digits + "/groundtruth.ivecs --base " + digits + "/base.fvecs");
    ASSERT_EQ(s.code, 0) << s.out;
    EXPECT_GE(printed_recall(s.out), k.floor) << k.args << ": " << s.out;
  }
}

// Every bench subject that needs no trained file, with --threads, --build-threads and --R: each
// reports, on digits, the threads it ran with and a recall above its floor; R reaches the graphs
// that take it.
TEST(Cli, BenchRunsEverySubjectWithItsOptions) {
  const std::string subjects =
      "hnsw,hnsw-sq8,flat,faiss-hnsw,hnswlib,knn,knn-hnsw,hnsw-l0,robust-1.2,vamana-1.2,lsh,lsh-mp,"
      "faiss-lsh";
  const std::string threads = std::to_string(kQueryThreads);
  const CliRun r = waypoint("bench --dataset " + wp::test::data_dir() + "/digits --indexes " +
                            subjects + " --ef 64 --threads " + threads +
                            " --build-threads 1 --R 24 --runs 1 --min-seconds 0 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto by_index = bench_lines(r.out);
  std::istringstream names(subjects);
  std::string name;
  size_t n = 0;
  while (std::getline(names, name, ',')) {
    ++n;
    ASSERT_TRUE(by_index.count(name)) << name << " missing: " << r.out;
    const auto& j = by_index.at(name);
    EXPECT_EQ(j["threads"], kQueryThreads) << name;
    // Measured: 0.99-1.000 for every graph and flat, 0.992-0.999 for the LSH subjects.
    EXPECT_GE(j["recall"].get<double>(), 0.97) << name;
    if (name == "knn-hnsw" || name == "robust-1.2" || name == "vamana-1.2") {
      EXPECT_EQ(j["params"]["R"], 24) << name;
      EXPECT_LE(j["params"]["avg_degree"].get<double>(), 24.0) << name;
    }
  }
  EXPECT_EQ(by_index.size(), n);
  const CliRun header =
      waypoint("bench --dataset " + wp::test::data_dir() + "/digits --indexes flat --threads " +
               threads + " --build-threads 1 --runs 1 --min-seconds 0");
  ASSERT_EQ(header.code, 0) << header.out;
  EXPECT_NE(header.out.find("query threads " + threads + ", build threads 1"), std::string::npos)
      << header.out;
}

// The headline claim of docs/lsh.md: our sign-bit LSH scan is as accurate as FAISS's IndexLSH at
// the same number of bits (measured on siftsmall, ef 100: 64 bits 0.670 vs 0.677, 128 bits 0.899
// vs 0.876, 256 bits 0.970 vs 0.958).
TEST(Cli, LshRecallMatchesFaissIndexLshAtEqualBits) {
  for (int bits : {64, 128, 256}) {
    const CliRun r =
        waypoint("bench --dataset " + wp::test::data_dir() +
                 "/siftsmall --indexes lsh,faiss-lsh --ef 100 --bits " + std::to_string(bits) +
                 " --build-threads 1 --runs 1 --min-seconds 0 --json");
    ASSERT_EQ(r.code, 0) << r.out;
    const auto by_index = bench_lines(r.out);
    ASSERT_TRUE(by_index.count("lsh") && by_index.count("faiss-lsh")) << r.out;
    EXPECT_EQ(by_index.at("lsh")["params"]["bits"], bits);
    EXPECT_GE(by_index.at("lsh")["recall"].get<double>(),
              by_index.at("faiss-lsh")["recall"].get<double>() - 0.02)
        << bits << " bits";
  }
}

// WAYPOINT_ISA picks the distance kernels (an unsupported or unknown name keeps the best one and
// says so on stderr), and every kernel gives the same exact answers.
TEST(Cli, WaypointIsaChoosesTheKernelsAndAnswersStayTheSame) {
  wp::test::TempDir tmp;
  const std::string digits = wp::test::data_dir() + "/digits";
  const CliRun plain = waypoint("version");
  ASSERT_EQ(plain.code, 0);
  EXPECT_EQ(plain.out.rfind("waypoint ", 0), 0u) << plain.out;
  EXPECT_NE(plain.out.find("distance kernels: "), std::string::npos) << plain.out;
  const CliRun scalar = waypoint("version", "WAYPOINT_ISA=scalar");
  EXPECT_NE(scalar.out.find("distance kernels: scalar"), std::string::npos) << scalar.out;
  EXPECT_EQ(scalar.out.find("WAYPOINT_ISA"), std::string::npos) << scalar.out;
  const CliRun bogus = waypoint("version", "WAYPOINT_ISA=bogus");
  EXPECT_EQ(bogus.code, 0);
  EXPECT_NE(bogus.out.find("WAYPOINT_ISA=bogus is not a kernel set this CPU runs"),
            std::string::npos)
      << bogus.out;
  EXPECT_NE(bogus.out.find("distance kernels: " + plain.out.substr(plain.out.find(": ") + 2)),
            std::string::npos)
      << bogus.out;
  std::string answers[2];
  for (int i = 0; i < 2; ++i) {
    const std::string out = tmp.file(std::to_string(i) + ".ivecs");
    const CliRun g = waypoint("gt --base " + digits + "/base.fvecs --query " + digits +
                                  "/query.fvecs --k 10 --out " + out,
                              i ? "WAYPOINT_ISA=scalar" : "");
    ASSERT_EQ(g.code, 0) << g.out;
    answers[i] = wp::test::read_file(out);
  }
  EXPECT_FALSE(answers[0].empty());
  EXPECT_EQ(answers[0], answers[1]);
}

// A dataset folder's `metric` file sets the metric (no --metric needed): with cosine ground truth,
// flat search is exact only if bench searched by cosine.
TEST(Cli, ADatasetsMetricFileIsUsed) {
  wp::test::TempDir tmp;
  const std::string digits = wp::test::data_dir() + "/digits", dir = tmp.file("cos");
  std::filesystem::create_directories(dir);
  for (const char* f : {"/base.fvecs", "/query.fvecs"})
    std::filesystem::copy_file(digits + f, dir + f);
  const CliRun g =
      waypoint("gt --base " + dir + "/base.fvecs --query " + dir +
               "/query.fvecs --k 10 --metric cosine --out " + dir + "/groundtruth.ivecs");
  ASSERT_EQ(g.code, 0) << g.out;
  std::ofstream(dir + "/metric") << "cosine\n";
  CliRun r = waypoint("bench --dataset " + dir + " --indexes flat --runs 1 --min-seconds 0 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_DOUBLE_EQ(bench_lines(r.out).at("flat")["recall"].get<double>(), 1.0) << r.out;
  // Its ground truth is by cosine: a bench by another metric is refused rather than misreported.
  r = waypoint("bench --dataset " + dir + " --indexes flat --metric l2 --runs 1 --min-seconds 0");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("dataset metric is cosine"), std::string::npos) << r.out;
  std::ofstream(dir + "/metric") << "hamming\n";
  r = waypoint("bench --dataset " + dir + " --indexes flat --runs 1 --min-seconds 0");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("metric"), std::string::npos) << r.out;
}

// Every subject on inner product and cosine, the metric read from the dataset's `metric` file:
// the baselines with no cosine space (hnswlib, FAISS) run inner product on unit vectors, and
// RobustPrune's alpha > 1 is defined on cosine (as on l2) but refused on inner product. Recall is
// against ground truth by that metric (`waypoint gt`), so a subject that searched by another
// metric misses. For inner product the digits' rows are scaled by factors in [0.5, 1.5] (their
// own norms vary little): on such a scaling the exact l2 neighbours are 0.002 of the
// inner-product ones and the cosine neighbours 0.12; on the cosine set the l2 neighbours are 0.918
// of the cosine ones (flat in a copy whose `metric` file says l2).
TEST(Cli, BenchRunsEverySubjectOnEveryMetric) {
  wp::test::TempDir tmp;
  const std::string digits = wp::test::data_dir() + "/digits";
  const std::string threads = std::to_string(kQueryThreads);
  const std::map<std::string, std::string> subjects{
      {"ip", "hnsw,hnsw-sq8,flat,faiss-hnsw,hnswlib,knn,hnsw-l0,lsh,lsh-mp,faiss-lsh"},
      {"cosine",
       "hnsw,hnsw-sq8,flat,faiss-hnsw,hnswlib,knn,knn-hnsw,hnsw-l0,robust-1.2,vamana-1.2,lsh,"
       "lsh-mp,faiss-lsh"}};
  for (const auto& [metric, names] : subjects) {
    const std::string dir = tmp.file(metric);
    std::filesystem::create_directories(dir);
    wp::index::Matrix base = wp::index::read_fvecs(digits + "/base.fvecs");
    if (metric == "ip") {
      std::mt19937 rng(5);
      std::uniform_real_distribution<float> scale(0.5f, 1.5f);
      for (size_t i = 0; i < base.n; ++i) {
        const float f = scale(rng);
        for (size_t j = 0; j < base.d; ++j) base.row(i)[j] *= f;
      }
    }
    wp::index::write_fvecs(dir + "/base.fvecs", base);
    std::filesystem::copy_file(digits + "/query.fvecs", dir + "/query.fvecs");
    const CliRun g =
        waypoint("gt --base " + dir + "/base.fvecs --query " + dir +
                 "/query.fvecs --k 10 --metric " + metric + " --out " + dir + "/groundtruth.ivecs");
    ASSERT_EQ(g.code, 0) << g.out;
    std::ofstream(dir + "/metric") << metric << "\n";
    const CliRun r =
        waypoint("bench --dataset " + dir + " --indexes " + names + " --ef 64 --threads " +
                 threads + " --build-threads 1 --runs 1 --min-seconds 0 --json");
    ASSERT_EQ(r.code, 0) << r.out;
    const auto by_index = bench_lines(r.out);
    std::istringstream list(names);
    std::string name;
    while (std::getline(list, name, ',')) {
      ASSERT_TRUE(by_index.count(name)) << metric << ": " << name << " missing: " << r.out;
      const double recall = by_index.at(name)["recall"].get<double>();
      if (metric == "ip" && name.find("lsh") != std::string::npos) {
        // Sign bits rank candidates by angle, blind to the norms inner product weighs: ours and
        // FAISS's IndexLSH alike (measured at ef 64: lsh 0.506, lsh-mp 0.506, faiss-lsh 0.511).
        EXPECT_GE(recall, by_index.at("faiss-lsh")["recall"].get<double>() - 0.03) << name;
        continue;
      }
      // Measured: ip 1.000 for every graph and flat, cosine 0.989-1.000.
      EXPECT_GE(recall, 0.95) << metric << ": " << name;
    }
    if (metric == "ip") {
      const CliRun refused =
          waypoint("bench --dataset " + dir + " --indexes vamana-1.2 --runs 1 --min-seconds 0");
      EXPECT_EQ(refused.code, 2) << refused.out;
      EXPECT_NE(refused.out.find("not inner product"), std::string::npos) << refused.out;
    }
  }
}

// `waypoint synth`: the files a dataset folder needs, the ground truth exact (checked here by
// brute force, tie-aware), the same bytes at any thread count, and bad options named.
TEST(Cli, SynthWritesAClusteredDatasetWithExactGroundTruth) {
  wp::test::TempDir tmp;
  const std::string opts = " --n 3000 --d 24 --queries 40 --k 10 --clusters 20 --local-dim 6";
  for (const char* metric : {"l2", "cosine"}) {
    const std::string one = tmp.file(std::string(metric) + "1"),
                      two = tmp.file(std::string(metric) + "2");
    CliRun r = waypoint("synth --out " + one + opts + " --metric " + metric + " --threads 1");
    ASSERT_EQ(r.code, 0) << r.out;
    r = waypoint("synth --out " + two + opts + " --metric " + metric + " --threads 2");
    ASSERT_EQ(r.code, 0) << r.out;
    for (const char* f : {"/base.fvecs", "/query.fvecs", "/groundtruth.ivecs", "/metric"}) {
      EXPECT_EQ(wp::test::read_file(one + f), wp::test::read_file(two + f)) << f;
    }
    const wp::index::Dataset ds = wp::index::load_dataset(one);
    ASSERT_EQ(ds.base.n, 3000u);
    ASSERT_EQ(ds.query.n, 40u);
    ASSERT_EQ(ds.groundtruth.d, 10u);
    EXPECT_EQ(ds.metric, wp::index::parse_metric(metric));
    const bool cosine = std::string(metric) == "cosine";
    auto distance = [&](const float* q, size_t row) {
      double dot = 0, qq = 0, bb = 0, l2 = 0;
      for (size_t j = 0; j < ds.base.d; ++j) {
        const double a = q[j], b = ds.base.row(row)[j];
        dot += a * b;
        qq += a * a;
        bb += b * b;
        l2 += (a - b) * (a - b);
      }
      return cosine ? 1 - dot / std::sqrt(qq * bb) : l2;
    };
    for (size_t i = 0; i < ds.query.n; ++i) {
      std::vector<double> all(ds.base.n);
      for (size_t row = 0; row < ds.base.n; ++row) all[row] = distance(ds.query.row(i), row);
      std::vector<double> sorted = all;
      std::nth_element(sorted.begin(), sorted.begin() + 9, sorted.end());
      const double tenth = sorted[9];
      std::set<int32_t> ids;
      for (size_t j = 0; j < 10; ++j) {
        const int32_t id = ds.groundtruth.row(i)[j];
        ASSERT_TRUE(id >= 0 && id < 3000) << id;
        ids.insert(id);
        EXPECT_LE(all[id], tenth * (1 + 1e-5) + 1e-6) << "query " << i << " rank " << j;
        if (j > 0) {
          EXPECT_LE(all[ds.groundtruth.row(i)[j - 1]], all[id] * (1 + 1e-5) + 1e-6);
        }
      }
      EXPECT_EQ(ids.size(), 10u);
    }
  }
  const CliRun dim = waypoint("synth --out " + tmp.file("x") + " --n 10 --k 5 --d 8 --local-dim 9");
  EXPECT_EQ(dim.code, 2);
  EXPECT_NE(dim.out.find("local-dim must be in 1..d (8), got 9"), std::string::npos) << dim.out;
  const CliRun k = waypoint("synth --out " + tmp.file("y") + " --n 5 --d 8 --local-dim 2");
  EXPECT_EQ(k.code, 2);
  EXPECT_NE(k.out.find("k = 100 exceeds the 5 base vectors"), std::string::npos) << k.out;
}

// The RL comparison's protocol in `bench` (docs/rl.md): held-out base rows as queries, graphs
// entered through HNSW's upper levels, and each index's figures at recall targets with a bootstrap
// interval.
TEST(Cli, BenchHoldsOutQueriesAndReadsFiguresAtRecallTargets) {
  const std::string digits = wp::test::data_dir() + "/digits";
  const CliRun r =
      waypoint("bench --dataset " + digits +
               " --indexes hnsw,robust-1.2 --holdout 300 --entry hnsw --ef 10,16,32,64 "
               "--targets 0.9,0.99,1 --runs 1 --min-seconds 0 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  std::map<std::string, std::vector<nlohmann::json>> at;
  std::istringstream lines(r.out);
  std::string line;
  size_t points = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '{') continue;
    const auto j = nlohmann::json::parse(line);
    if (j.value("kind", "") == "at_recall") {
      at[j.at("index").get<std::string>()].push_back(j);
    } else {
      ++points;
      EXPECT_EQ(j.at("dataset"), "digits-holdout300") << line;
    }
  }
  EXPECT_EQ(points, 8u);
  ASSERT_EQ(at.size(), 2u) << r.out;
  for (const auto& [index, figures] : at) {
    ASSERT_EQ(figures.size(), 3u) << index;
    EXPECT_EQ(figures[0].at("queries"), 300) << index;
    EXPECT_EQ(figures[0].at("params").value("entry", nlohmann::json()),
              index == "hnsw" ? nlohmann::json() : nlohmann::json("hnsw"))
        << figures[0].dump();
    EXPECT_GT(figures[0].at("params").at("avg_degree").get<double>(), 2) << figures[0].dump();
    EXPECT_NE(figures[0].at("reading"), "not_reached") << figures[0].dump();
    const double dcs = figures[1].at("dcs");  // recall 0.99
    EXPECT_LE(figures[1].at("dcs_lo").get<double>(), dcs) << figures[1].dump();
    EXPECT_GE(figures[1].at("dcs_hi").get<double>(), dcs) << figures[1].dump();
  }
  // Bad options are named.
  for (const auto& [args, name] :
       std::vector<std::pair<std::string, std::string>>{{"--targets 0.9,1.5", "--targets"},
                                                        {"--holdout 5000", "holdout"},
                                                        {"--entry middle", "--entry"}}) {
    const CliRun bad =
        waypoint("bench --dataset " + digits + " --indexes flat --runs 1 --min-seconds 0 " + args);
    EXPECT_EQ(bad.code, 2) << args << ": " << bad.out;
    EXPECT_NE(bad.out.find(name), std::string::npos) << bad.out;
  }
}

// `tune` takes its tuning queries from the dataset's learn.fvecs when there is one (and holds
// base rows out otherwise), and says which it used.
TEST(Cli, TuneUsesLearnFvecsWhenTheDatasetHasOne) {
  wp::test::TempDir tmp;
  const std::string digits = wp::test::data_dir() + "/digits", dir = tmp.file("d");
  std::filesystem::create_directories(dir);
  for (const char* f : {"/base.fvecs", "/query.fvecs", "/groundtruth.ivecs"}) {
    std::filesystem::copy_file(digits + f, dir + f);
  }
  const std::string args = "tune --dataset " + dir + " --out " + tmp.file("t.json") +
                           " --trials 2 --repeats 1 --min-seconds 0 --types hnsw";
  CliRun r = waypoint(args);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.find("learn.fvecs"), std::string::npos) << r.out;
  std::filesystem::copy_file(digits + "/query.fvecs", dir + "/learn.fvecs");
  r = waypoint(args);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("learn.fvecs"), std::string::npos) << r.out;
}

// Exit statuses (README): 0 done, 2 a usage error (with the usage on stderr), 1 an internal error.
TEST(Cli, ExitStatusesFollowTheReadme) {
  EXPECT_EQ(waypoint("").code, 2);
  EXPECT_NE(waypoint("").out.find("usage: waypoint <command>"), std::string::npos);
  EXPECT_EQ(waypoint("help").code, 0);
  EXPECT_EQ(waypoint("--help").code, 0);
  EXPECT_EQ(waypoint("version").code, 0);
  EXPECT_EQ(waypoint("version --bogus 1").code, 2);
  EXPECT_EQ(waypoint("no-such-command").code, 2);
}

// `tune` options: --k, --recall and --tune-queries show in its summary; --strategies, --types and
// --trials shape the log written to --log; --plot is written there; --seed makes the proposals
// repeatable; the others (--penalty, --latency-budget-us, --cached-builds, --threads,
// --max-minutes) are accepted.
TEST(Cli, TuneTakesItsOptions) {
  wp::test::TempDir tmp;
  auto run = [&](int seed, const std::string& tag) {
    const CliRun r = waypoint(
        "tune --dataset " + wp::test::data_dir() + "/digits --out " + tmp.file(tag + ".json") +
        " --k 5 --recall 0.8 --strategies random --types lsh --seed " + std::to_string(seed) +
        " --trials 3 --repeats 1 --min-seconds 0 --tune-queries 50 --cached-builds 2 --penalty 10 "
        "--latency-budget-us 100000 --threads 1 --max-minutes 1 --log " +
        tmp.file(tag + ".csv") + " --plot " + tmp.file(tag + ".png"));
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find("recall@5 >= 0.800, 50 tuning queries"), std::string::npos) << r.out;
    std::ifstream csv(tmp.file(tag + ".csv"));
    std::string line, configs;
    std::getline(csv, line);
    size_t rows = 0;
    while (std::getline(csv, line)) {
      ++rows;
      EXPECT_EQ(line.rfind("random,", 0), 0u) << line;
      EXPECT_NE(line.find(",lsh,"), std::string::npos) << line;
      configs += line.substr(0, line.find(",lsh,")) + "\n";
    }
    EXPECT_EQ(rows, 3u);
    EXPECT_TRUE(std::ifstream(tmp.file(tag + ".png")).good());
    std::ifstream in(tmp.file(tag + ".json"));
    EXPECT_EQ(nlohmann::json::parse(in)["type"], "lsh");
    return configs;
  };
  const std::string a = run(3, "a"), b = run(3, "b"), c = run(4, "c");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}
