// PUT /waypoint/collections/{name}/vector_index {"type":"rl"}: the pruning agent's job on a
// collection's points in the background, swapped in when done, served, and kept across a restart.
#include <gtest/gtest.h>
#include <omp.h>

#include <filesystem>
#include <set>

#include "http/api.h"
#include "index/distance.h"
#include "index/graph_index.h"
#include "learn/pruning_env.h"
#include "learn/train_pruner.h"
#include "test_util.h"

using nlohmann::json;
using wp::http::Api;
using wp::http::Request;
using wp::http::Response;

namespace {

struct Server {
  std::unique_ptr<wp::engine::Engine> engine;
  std::unique_ptr<Api> api;
  explicit Server(const std::string& dir) {
    engine = std::make_unique<wp::engine::Engine>(dir);
    wp::http::ApiOptions o;
    o.max_body_bytes = 8 << 20;
    api = std::make_unique<Api>(*engine, o);
  }
  json ok(const std::string& method, const std::string& target, const json& body = nullptr) {
    const Response r =
        api->handle(Request{method, target, body.is_null() ? "" : body.dump(), "", ""});
    EXPECT_EQ(r.status, 200u) << method << " " << target << ": " << r.body;
    return json::parse(r.body)["result"];
  }
};

/// recall@10 of the collection's search against brute force over the first n base vectors.
double recall10(Server& s, const wp::index::Dataset& ds, size_t n) {
  size_t hits = 0;
  for (size_t q = 0; q < ds.query.n; ++q) {
    const json res =
        s.ok("POST", "/collections/d/points/search",
             {{"vector", std::vector<float>(ds.query.row(q), ds.query.row(q) + ds.query.d)},
              {"limit", 10}});
    std::vector<std::pair<float, size_t>> all;
    for (size_t i = 0; i < n; ++i) {
      all.push_back({wp::index::l2sqr(ds.query.row(q), ds.base.row(i), ds.base.d), i});
    }
    std::partial_sort(all.begin(), all.begin() + 10, all.end());
    for (const json& h : res) {
      for (size_t j = 0; j < 10; ++j) hits += h["id"].get<size_t>() == all[j].second;
    }
  }
  return static_cast<double>(hits) / (10.0 * ds.query.n);
}

/// A graph's recall@10 / mean distance computations over the ef sweep, on `queries` with their
/// exact neighbours among the index's own vectors (ids as the index labels them).
std::vector<wp::learn::CurvePoint> curve(const wp::index::Index& g,
                                         const wp::index::Matrix& queries,
                                         const std::vector<std::set<wp::index::label_t>>& truth) {
  std::vector<wp::learn::CurvePoint> out;
  for (const size_t ef : wp::learn::default_ef_sweep(10)) {
    wp::index::SearchParams sp;
    sp.ef = ef;
    const wp::index::SearchResult r = g.search(wp::index::view(queries), 10, sp);
    size_t hits = 0;
    for (size_t q = 0; q < r.n; ++q) {
      for (size_t j = 0; j < 10; ++j) hits += truth[q].count(r.labels[q * 10 + j]);
    }
    out.push_back({ef, static_cast<double>(hits) / (10.0 * r.n),
                   static_cast<double>(r.stats.distance_computations) / r.n});
  }
  return out;
}

/// A learnt graph and the HNSW level 0 its job started from.
struct LearntVsInitial {
  double learnt_degree = 0, initial_degree = 0;
  size_t learnt_edges = 0, initial_edges = 0, edges_not_in_initial = 0;
  std::vector<wp::learn::CurvePoint> learnt_curve, initial_curve;
};

/// The learnt graph saved at `index_file` against the graph its job started from: the job's own
/// HNSW rebuilt (the collection's m and ef_construct, the job's seed, one build thread, slot i =
/// the learnt graph's slot i) and its level 0 served as the learnt graph is, through the upper
/// levels: the collection's default index, searched the same way. The job's candidate pool holds
/// other edges too (Vamana's, the nearest, navigation edges): edges_not_in_initial counts them.
LearntVsInitial compare_with_initial(const std::string& index_file,
                                     const wp::index::Matrix& queries, size_t M,
                                     size_t ef_construction) {
  using namespace wp::index;
  const std::unique_ptr<Index> loaded = load_index(index_file);
  const auto* learnt = dynamic_cast<const GraphIndex*>(loaded.get());
  EXPECT_NE(learnt, nullptr) << loaded->type_name();
  if (!learnt) return {};
  EXPECT_EQ(learnt->info().params.pruning, Pruning::kLearned);
  const Level0Graph lg = learnt->graph().export_level0();
  const size_t n = lg.num_vertices();
  Matrix x(n, learnt->dim());
  for (size_t s = 0; s < n; ++s) {
    EXPECT_TRUE(learnt->get_vector(lg.labels[s], x.data.data() + s * x.d));
  }
  HnswParams hnsw;
  hnsw.M = M;
  hnsw.ef_construction = ef_construction;
  hnsw.seed = 100;  // learn_pruned_graph's: trainer seed 0 + 100
  GraphIndex initial(x.d, Metric::kL2, hnsw, unpruned_level0());
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  initial.add(view(x), lg.labels.data());
  omp_set_num_threads(threads);
  // Entered as the learnt graph is: the job trains and serves through HNSW's upper levels.
  EXPECT_EQ(learnt->info().params.entry, GraphEntry::kHnsw);
  initial.set_entry(learnt->info().params.entry);
  const Level0Graph ig = initial.graph().export_level0();
  LearntVsInitial c;
  c.learnt_degree = learnt->info().average_degree;
  c.initial_degree = initial.info().average_degree;
  c.learnt_edges = lg.num_edges();
  c.initial_edges = ig.num_edges();
  // Slot for slot the same vertices: this rebuilt graph is the job's.
  EXPECT_EQ(ig.labels, lg.labels);
  for (size_t s = 0; s < n && ig.labels == lg.labels; ++s) {
    const std::set<uint32_t> from(ig.neighbors.begin() + ig.offsets[s],
                                  ig.neighbors.begin() + ig.offsets[s + 1]);
    for (uint64_t e = lg.offsets[s]; e < lg.offsets[s + 1]; ++e) {
      c.edges_not_in_initial += from.count(lg.neighbors[e]) == 0;
    }
  }
  const IntMatrix gt = exact_knn(x, queries, 10, Metric::kL2);
  std::vector<std::set<label_t>> truth(queries.n);
  for (size_t q = 0; q < queries.n; ++q) {
    for (size_t j = 0; j < 10; ++j) truth[q].insert(lg.labels[gt.row(q)[j]]);
  }
  c.learnt_curve = curve(*learnt, queries, truth);
  c.initial_curve = curve(initial, queries, truth);
  for (size_t i = 0; i < c.learnt_curve.size() && c.learnt_curve[i].ef <= 64; ++i) {
    const auto &l = c.learnt_curve[i], &in = c.initial_curve[i];
    std::printf("ef %3zu: learnt recall %.3f DCS %6.1f | initial recall %.3f DCS %6.1f\n", l.ef,
                l.recall, l.dcs, in.recall, in.dcs);
  }
  return c;
}

/// Collection "d": the first n digits (ids 0..n-1), Euclid, HNSW m and ef_construct 64.
void digits_collection(Server& s, const wp::index::Dataset& ds, size_t n, size_t m) {
  s.ok("PUT", "/collections/d",
       {{"vectors", {{"size", 64}, {"distance", "Euclid"}}},
        {"hnsw_config", {{"m", m}, {"ef_construct", 64}}}});
  json pts = json::array();
  for (size_t i = 0; i < n; ++i) {
    pts.push_back({{"id", i}, {"vector", std::vector<float>(ds.base.row(i), ds.base.row(i) + 64)}});
  }
  s.ok("PUT", "/collections/d/points?wait=true", {{"points", pts}});
}

std::string find_index_file(const std::string& data_dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(data_dir)) {
    if (e.path().filename() == "index.wpi") return e.path().string();
  }
  ADD_FAILURE() << "no index.wpi under " << data_dir;
  return "";
}

}  // namespace

TEST(LearnedCollection, PutIndexRlTrainsInTheBackgroundServesAndSurvivesARestart) {
  wp::learn::register_learned_indexes();
  const auto ds = wp::test::load_test_data("digits");
  wp::test::TempDir tmp;
  const size_t n = 1200;
  {
    Server s(tmp.file("data"));
    digits_collection(s, ds, n, 8);
    const json started =
        s.ok("PUT", "/waypoint/collections/d/vector_index", {{"type", "rl"}, {"steps", 20}});
    EXPECT_TRUE(started["state"] == "building" || started["state"] == "ready") << started;
    s.engine->collection("d")->wait_for_build();
    const json done = s.ok("GET", "/waypoint/collections/d/vector_index");
    EXPECT_EQ(done["state"], "ready") << done;
    EXPECT_EQ(done["type"], "rl");
    // The learnt graph is served: default ef 64 on 1200 digits, measured 0.99+.
    const double r = recall10(s, ds, n);
    std::printf("recall@10 of the rl collection: %.3f\n", r);
    EXPECT_GE(r, 0.9);
    // What is served beats the collection's HNSW: fewer edges, and fewer distance
    // computations at equal recall (queries: the 100 digits queries and the 497 base rows the
    // collection does not hold).
    s.engine->collection("d")->save_index();
    wp::index::Matrix queries(ds.query.n + ds.base.n - n, 64);
    std::copy(ds.query.data.begin(), ds.query.data.end(), queries.data.begin());
    std::copy(ds.base.data.begin() + n * 64, ds.base.data.end(),
              queries.data.begin() + ds.query.data.size());
    const LearntVsInitial c =
        compare_with_initial(find_index_file(tmp.file("data")), queries, 8, 64);
    std::printf("degree %.2f learnt vs %.2f initial (%zu vs %zu edges)\n", c.learnt_degree,
                c.initial_degree, c.learnt_edges, c.initial_edges);
    // The job's pool (Vamana at degree m, a wider Vamana, the nearest, navigation edges)
    // reaches beyond HNSW's level 0, under a budget of m edges per vertex.
    EXPECT_GT(c.edges_not_in_initial, c.learnt_edges / 10);
    EXPECT_LT(c.learnt_degree, c.initial_degree);  // measured 8.19 / 9.05 (8.56 at max KL 0.01)
    // At the job's target recall 0.95 (the initial graph is above it already at ef = k = 10, so
    // its DCS there are the least it can spend), and at 0.98, inside both sweeps.
    const double at95 = wp::learn::dcs_at_recall(c.learnt_curve, 0.95) /
                        wp::learn::dcs_at_recall(c.initial_curve, 0.95);
    const double at98 = wp::learn::dcs_at_recall(c.learnt_curve, 0.98) /
                        wp::learn::dcs_at_recall(c.initial_curve, 0.98);
    std::printf("DCS learnt / initial: %.3f at recall 0.95, %.3f at 0.98\n", at95, at98);
    // Measured, both entered through HNSW's upper levels: 0.874 at 0.95 and 0.917 at 0.98 (0.895
    // and 0.894 with steps of max KL 0.01 before the pool recipe's 0.002). (The
    // job pruning HNSW level 0 itself, before the pool: 0.828 and 1.006 at degree 6.18; entered at
    // the medoid: 0.853 and 0.941 at degree 7.58.)
    EXPECT_LT(at95, 0.95);
    EXPECT_LT(at98, 0.95);
    // Writes after the swap are linked in and found.
    s.ok("PUT", "/collections/d/points?wait=true",
         {{"points",
           {{{"id", 5000},
             {"vector", std::vector<float>(ds.query.row(0), ds.query.row(0) + 64)}}}}});
    const json hit =
        s.ok("POST", "/collections/d/points/search",
             {{"vector", std::vector<float>(ds.query.row(0), ds.query.row(0) + 64)}, {"limit", 1}});
    EXPECT_EQ(hit[0]["id"], 5000);
  }
  // Restart: the index type is stored, the learnt index file loads without training again.
  Server s(tmp.file("data"));
  EXPECT_EQ(s.ok("GET", "/waypoint/collections/d/vector_index")["type"], "rl");
  EXPECT_TRUE(s.engine->collection("d")->index_loaded_from_file());
  EXPECT_GE(recall10(s, ds, n), 0.9);
}

TEST(LearnedCollection, AutoTuningTrainsRlConfigurationsAndBuildsTheOneItChose) {
  wp::learn::register_learned_indexes();
  const auto ds = wp::test::load_test_data("digits");
  wp::test::TempDir tmp;
  const size_t n = 1200;
  Server s(tmp.file("data"));
  digits_collection(s, ds, n, 16);
  // Each rl configuration is a learning job of a tenth of max_minutes (0.05 min: 3 s).
  s.ok(
      "PUT", "/waypoint/collections/d/vector_index",
      {{"type", "auto"}, {"types", {"rl"}}, {"recall", 0.95}, {"trials", 3}, {"max_minutes", 0.5}});
  s.engine->collection("d")->wait_for_build();
  const json done = s.ok("GET", "/waypoint/collections/d/vector_index");
  ASSERT_EQ(done["state"], "ready") << done.dump();
  EXPECT_EQ(done["type"], "rl");
  const json& tune = done["tune"];
  ASSERT_TRUE(tune.is_object()) << done.dump();
  EXPECT_GE(tune["trials"].get<size_t>(), 1u);
  EXPECT_TRUE(tune["feasible"].get<bool>()) << tune.dump();  // measured 0.99+ at ef 10
  // The chosen body names the degree and the learning job as it ran in tuning.
  const json& cfg = tune["config"];
  EXPECT_EQ(cfg["type"], "rl");
  const size_t m = cfg["m"].get<size_t>();
  EXPECT_TRUE(m == 8 || m == 12 || m == 16 || m == 24 || m == 32) << cfg.dump();
  EXPECT_DOUBLE_EQ(cfg["max_minutes"].get<double>(), 0.05);
  EXPECT_DOUBLE_EQ(cfg["target_recall"].get<double>(), 0.95);
  EXPECT_EQ(done["params"]["m"], m);  // the served index was trained at the chosen degree
  EXPECT_EQ(done["params"]["ef"], cfg["ef"]);
  // Served: a learnt graph pruned to about m edges a vertex, with the recall tuning measured.
  s.engine->collection("d")->save_index();
  const std::unique_ptr<wp::index::Index> served =
      wp::index::load_index(find_index_file(tmp.file("data")));
  const auto* graph = dynamic_cast<const wp::index::GraphIndex*>(served.get());
  ASSERT_NE(graph, nullptr) << served->type_name();
  EXPECT_EQ(graph->info().params.pruning, wp::index::Pruning::kLearned);
  EXPECT_LE(graph->info().average_degree, 1.15 * static_cast<double>(m));
  // ...and searched at the chosen ef when a request names none.
  size_t dcs_default = 0, dcs_chosen = 0;
  for (size_t q = 0; q < ds.query.n; ++q) {
    wp::index::label_t labels[10];
    float dist[10];
    wp::index::SearchParams chosen;
    chosen.ef = cfg["ef"].get<size_t>();
    dcs_default += served->search_one(ds.query.row(q), 10, {}, labels, dist).distance_computations;
    dcs_chosen +=
        served->search_one(ds.query.row(q), 10, chosen, labels, dist).distance_computations;
  }
  EXPECT_EQ(dcs_default, dcs_chosen);
  const double r = recall10(s, ds, n);
  std::printf("auto rl: %s, degree %.2f, served recall@10 %.3f\n", cfg.dump().c_str(),
              graph->info().average_degree, r);
  EXPECT_GE(r, 0.9);
}
