// The learn module (engine/learn_module.h): the `waypoint` binary links no LibTorch. A server
// that never trains maps none of it; the first collection that asks for an "rl" index loads the
// module, trains and serves; a binary without its module says so and still runs everything else.
// The collection is cosine: the job's pool (Vamana with alpha > 1) holds on cosine as on l2.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "server_process.h"
#include "test_util.h"

namespace {

namespace bhttp = boost::beast::http;
using nlohmann::json;

/// Whether process `pid` maps a file whose name contains `part`.
bool maps(pid_t pid, const std::string& part) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(part) != std::string::npos) return true;
  }
  return false;
}

/// Resident memory of `pid` in MiB (VmRSS).
double resident_mib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024;
  }
  return -1;
}

}  // namespace

TEST(LearnModule, TheServerLoadsLibTorchOnlyWhenACollectionTrainsAnIndex) {
  const auto ds = wp::test::load_test_data("digits");
  wp::test::TempDir tmp;
  wp::test::ServerProcess s(tmp.file("data"));
  ASSERT_NE(s.port(), 0);
  EXPECT_FALSE(maps(s.pid(), "libtorch")) << "an empty server maps no LibTorch";
  EXPECT_FALSE(maps(s.pid(), "libwaypoint_learn"));
  std::printf("empty server: %.1f MiB resident\n", resident_mib(s.pid()));

  wp::test::Client c(s.port());
  ASSERT_EQ(c.call(bhttp::verb::put, "/collections/d",
                   {{"vectors", {{"size", 64}, {"distance", "Cosine"}}},
                    {"hnsw_config", {{"m", 8}, {"ef_construct", 64}}}})
                .first,
            200u);
  const size_t n = 400;
  json pts = json::array();
  for (size_t i = 0; i < n; ++i) {
    pts.push_back({{"id", i}, {"vector", std::vector<float>(ds.base.row(i), ds.base.row(i) + 64)}});
  }
  ASSERT_EQ(c.call(bhttp::verb::put, "/collections/d/points?wait=true", {{"points", pts}}).first,
            200u);
  auto search = [&](size_t row) {
    return c.call(
        bhttp::verb::post, "/collections/d/points/search",
        {{"vector", std::vector<float>(ds.base.row(row), ds.base.row(row) + 64)}, {"limit", 1}});
  };
  EXPECT_EQ(search(7).second["result"][0]["id"], 7);
  EXPECT_FALSE(maps(s.pid(), "libtorch")) << "writes and searches need no LibTorch";

  auto [put, started] = c.call(bhttp::verb::put, "/waypoint/collections/d/vector_index",
                               {{"type", "rl"}, {"steps", 2}});
  ASSERT_EQ(put, 200u) << started.dump();
  EXPECT_TRUE(maps(s.pid(), "libwaypoint_learn.so"));
  EXPECT_TRUE(maps(s.pid(), "libtorch_cpu"));
  json state;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    state = c.call(bhttp::verb::get, "/waypoint/collections/d/vector_index").second["result"];
  } while (state["state"] == "building" && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(state["state"], "ready") << state.dump();
  EXPECT_EQ(state["type"], "rl") << state.dump();
  for (size_t row : {0, 150, 399}) EXPECT_EQ(search(row).second["result"][0]["id"], row);
  std::printf("after training an rl index: %.1f MiB resident\n", resident_mib(s.pid()));
}

TEST(LearnModule, ABinaryWithoutItsModuleSaysSoAndRunsTheRest) {
  wp::test::TempDir tmp;
  const std::string alone = tmp.file("waypoint");
  std::filesystem::copy_file(WAYPOINT_BIN, alone);
  std::filesystem::permissions(alone, std::filesystem::perms::owner_all);
  const std::string out = tmp.file("out.txt");
  auto run = [&](const std::string& args) {
    const int status = std::system((alone + " " + args + " >" + out + " 2>&1").c_str());
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str());
  };
  auto [code, text] = run("train-pruner --dataset x --out y");
  EXPECT_EQ(code, 2) << text;
  EXPECT_NE(text.find("cannot load the learn module " + tmp.file("libwaypoint_learn.so")),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("unknown command 'train-pruner'"), std::string::npos) << text;
  std::tie(code, text) = run("help");
  EXPECT_EQ(code, 0) << text;
  EXPECT_NE(text.find("  serve "), std::string::npos) << text;
  EXPECT_EQ(text.find("  train-pruner "), std::string::npos) << text;
  std::tie(code, text) = run("version");
  EXPECT_EQ(code, 0) << text;
  // Tuning runs without the controller (its default strategies are the ones it has).
  std::tie(code, text) = run("tune --dataset " + wp::test::data_dir() + "/digits --out " +
                             tmp.file("t.json") + " --types hnsw --trials 2 --tune-queries 50");
  EXPECT_EQ(code, 0) << text;
  EXPECT_EQ(text.find("controller"), std::string::npos) << text;
}
