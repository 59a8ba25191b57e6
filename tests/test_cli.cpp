// The `waypoint` command line: argument parsing, and the real binary end to end.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/command/args.h"
#include "engine/command/plot.h"
#include "index/error.h"
#include "index/vector_io.h"
#include "test_util.h"

namespace {

struct CliRun {
  int code;
  std::string out;
};

/// Runs the waypoint binary with `args`; captures stdout and stderr together.
CliRun waypoint(const std::string& args) {
  const std::string cmd = std::string(WAYPOINT_BIN) + " " + args + " 2>&1";
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
  EXPECT_GE(std::stod(s.out.substr(at + 12)), 0.95) << s.out;
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
                      tmp.file("b.csv") + " --plot " + tmp.file("b.png"));
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
    EXPECT_GE(j["recall"].get<double>(), 0.5);
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
  std::ifstream png(tmp.file("b.png"), std::ios::binary);
  char magic[4] = {};
  png.read(magic, 4);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
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
  for (const char* cmd : {"serve", "build", "search", "gt", "bench", "tune", "train-pruner",
                          "train-hash", "version"}) {
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
