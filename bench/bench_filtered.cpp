// Filtered search with and without payload indexes (issue 16), through the engine as the server
// runs it: recall@k against the exact filtered answer, queries per second, and the time per query
// spent listing the matching points (count()), the payloads a search tests one by one (a
// filter no payload index serves tests them) and the exact filtered search's QPS (a scan of the
// matches: the other choice of a filter no index serves), at keyword selectivities 0.1%..50%
// and ranges of the same selectivities (over 1000 integers, and over floats: about one value a
// point, as timestamps have), on synthetic points or a dataset's vectors (the
// payloads are drawn at random either way, independent of the vectors), and a keyword of 10% that
// goes with the vectors ("side": the points highest along their first coordinate, a few whole
// clusters of clustered points), whose matches lie away from most queries; on a dataset with
// classes (base and query labels), a query's own class and another one.
//
//   bench_filtered [--points 100000] [--dim 32] [--queries 200] [--k 10] [--ef 64] [--seed 1]
//                  [--dataset DIR]   (its base rows, --points at most, and its queries)
//                  [--unindexed 0]   (skip the rows without payload indexes: at 1M points each
//                                     of their queries checks a million payloads)
//                  [--clusters N]    (synthetic points around N centers instead of uniform)
//                  [--rounds 1]      (the exact and the chosen search of each row alternated
//                                     so many times, the best QPS of each)
//                  [--only TEXT]     (the rows whose filter's name holds TEXT alone, e.g. to
//                                     profile one: --only "along the vectors")
//
// Prints one Markdown table row per (filter, payload index or not). Single thread, one process:
// the rows compare within one run.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "index/dataset.h"
#include "index/vector_io.h"

using nlohmann::json;
using wp::engine::Collection;
using wp::engine::Filter;
using wp::engine::PayloadSchema;
using wp::engine::PointId;
using wp::engine::PointWrite;
using wp::engine::SearchQuery;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

const double kSelectivities[] = {0.001, 0.01, 0.1, 0.5};

std::string sel_key(double s) {
  // k0_1, k1, k10, k50 (percent; no dot, which a key path would read as a step)
  std::string k = "k" + std::to_string(s * 100);
  k.erase(k.find_last_not_of('0') + 1);
  if (k.back() == '.') k.pop_back();
  for (char& c : k) c = c == '.' ? '_' : c;
  return k;
}

struct Row {
  double recall = 0, qps = 0, filter_us = 0, matches = 0;
  double exact_qps = 0;  ///< of the exact filtered search (a scan of the matches)
  double tested = 0;     ///< payloads the filter tested one by one, a search
};

// fs: one filter for every query, or one per query (a filter that depends on the query, such as
// its own class).
Row measure(const Collection& col, const std::vector<Filter>& fs,
            const std::vector<std::vector<float>>& qs, size_t k, size_t ef, size_t rounds) {
  Row r;
  const auto filter_of = [&](size_t i) { return &fs[fs.size() == 1 ? 0 : i]; };
  // The matching set alone (count()), as count, facet and deletes or edits by filter list it.
  auto t0 = Clock::now();
  size_t n = 0;
  for (size_t i = 0; i < qs.size(); ++i) n += col.count(filter_of(i));
  r.filter_us = seconds_since(t0) / qs.size() * 1e6;
  r.matches = static_cast<double>(n) / qs.size();
  // The exact search and the chosen one, alternated `rounds` times, the best of each (this
  // machine's speed moves 10-30% between minutes).
  const auto query = [&](size_t i, bool exact) {
    SearchQuery q;
    q.vector = std::vector<float>(qs[i]);  // (a copy assigned: GCC 12 warns of a null memmove)
    q.limit = k;
    q.exact = exact;
    q.ef = ef;
    q.filter = filter_of(i);
    return q;
  };
  std::vector<std::vector<PointId>> truth(qs.size());
  size_t hits = 0, total = 0;
  for (size_t round = 0; round < rounds; ++round) {
    t0 = Clock::now();
    for (size_t i = 0; i < qs.size(); ++i) {
      truth[i].clear();
      for (const auto& p : col.search(query(i, true))) truth[i].push_back(p.point.id);
    }
    r.exact_qps = std::max(r.exact_qps, qs.size() / seconds_since(t0));
    hits = total = 0;
    const uint64_t tests0 = col.filter_payload_tests();
    t0 = Clock::now();
    for (size_t i = 0; i < qs.size(); ++i) {
      for (const auto& p : col.search(query(i, false))) {
        hits += std::count(truth[i].begin(), truth[i].end(), p.point.id);
      }
      total += truth[i].size();
    }
    r.qps = std::max(r.qps, qs.size() / seconds_since(t0));
    r.tested = static_cast<double>(col.filter_payload_tests() - tests0) / qs.size();
  }
  r.recall = total ? static_cast<double>(hits) / total : 1.0;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  size_t points = 100000, dim = 32, queries = 200, k = 10, ef = 64;
  unsigned seed = 1;
  std::string dataset;
  bool unindexed = true;
  size_t clusters = 0;  // 0: uniform in the unit cube
  size_t rounds = 1;
  std::string only;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const size_t v = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--dataset")
      dataset = argv[i + 1];
    else if (a == "--unindexed")
      unindexed = v != 0;
    else if (a == "--only")
      only = argv[i + 1];
    else if (a == "--rounds")
      rounds = std::max<size_t>(1, v);
    else if (a == "--clusters")
      clusters = v;
    else if (a == "--points")
      points = v;
    else if (a == "--dim")
      dim = v;
    else if (a == "--queries")
      queries = v;
    else if (a == "--k")
      k = v;
    else if (a == "--ef")
      ef = v;
    else if (a == "--seed")
      seed = static_cast<unsigned>(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("wp-bench-filtered-" + std::to_string(getpid())))
          .string();
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0, 1);
  // Synthetic vectors: uniform in the unit cube, or (--clusters N) around N centers drawn so,
  // each coordinate N(center, 0.1): clusters well apart (their centers ~2.3 apart at 32-d, their
  // points ~0.57 from the center), as embeddings of kinds of things are.
  std::normal_distribution<float> noise(0, 0.1f);
  std::vector<std::vector<float>> centers(clusters, std::vector<float>(dim));
  for (auto& c : centers) {
    for (float& x : c) x = u(rng);
  }
  // "side": the tenth of the clusters whose centers are highest along the first coordinate (of
  // uniform points: a first coordinate over 0.9; of a dataset's: over its 90th percentile).
  std::vector<bool> far_cluster(clusters);
  float side_above = 0.9f;
  if (clusters > 0) {
    std::vector<size_t> order(clusters);
    for (size_t c = 0; c < clusters; ++c) order[c] = c;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return centers[a][0] > centers[b][0]; });
    for (size_t j = 0; j < std::max<size_t>(1, clusters / 10); ++j) far_cluster[order[j]] = true;
  }
  // Draws a point into out; true when it is on the far side.
  auto draw = [&](float* out) {
    if (clusters == 0) {
      for (size_t j = 0; j < dim; ++j) out[j] = u(rng);
      return out[0] > side_above;
    }
    const size_t c = rng() % clusters;
    for (size_t j = 0; j < dim; ++j) out[j] = centers[c][j] + noise(rng);
    return static_cast<bool>(far_cluster[c]);
  };
  wp::index::Dataset ds;
  std::vector<int32_t> query_class;  // of each query, where the dataset has classes
  int32_t classes = 0;
  if (!dataset.empty()) {
    ds = wp::index::load_dataset(dataset);
    dim = ds.base.d;
    points = std::min(points, ds.base.n);
    queries = std::min(queries, ds.query.n);
    if (points > 0) {
      std::vector<float> first(points);
      for (size_t i = 0; i < points; ++i) first[i] = ds.base.row(i)[0];
      std::nth_element(first.begin(), first.begin() + points * 9 / 10, first.end());
      side_above = first[points * 9 / 10];
    }
    // A dataset's classes (base_labels.ivecs or labels.ivecs, and query_labels.ivecs): a
    // category that goes with the vectors as a real one does, e.g. Fashion-MNIST's ten.
    const std::string query_labels = dataset + "/query_labels.ivecs";
    if (ds.labels.n >= points && std::filesystem::exists(query_labels)) {
      const auto ql = wp::index::read_ivecs(query_labels, queries);
      for (size_t i = 0; i < ql.n; ++i) query_class.push_back(ql.row(i)[0]);
      for (size_t i = 0; i < points; ++i) classes = std::max(classes, ds.labels.row(i)[0] + 1);
      for (size_t i = 0; i < ql.n; ++i) classes = std::max(classes, query_class[i] + 1);
    }
  }
  {
    wp::engine::Engine eng(dir);
    wp::engine::CollectionConfig cfg;
    cfg.vectors[""].dim = dim;
    cfg.vectors[""].index.metric = wp::index::Metric::kL2;
    cfg.vectors[""].index.hnsw.M = 16;
    cfg.vectors[""].index.hnsw.ef_construction = 100;
    eng.create_collection("f", cfg);
    auto col = eng.collection("f");
    const auto t0 = Clock::now();
    for (size_t from = 0; from < points; from += 10000) {
      std::vector<PointWrite> batch(std::min<size_t>(10000, points - from));
      for (size_t i = 0; i < batch.size(); ++i) {
        PointWrite& p = batch[i];
        p.id = PointId::number(from + i);
        p.vectors[""].resize(dim);
        bool far = false;
        if (dataset.empty()) {
          far = draw(p.vectors[""].data());
        } else {
          std::copy(ds.base.row(from + i), ds.base.row(from + i) + dim, p.vectors[""].begin());
          far = ds.base.row(from + i)[0] > side_above;
        }
        p.payload = json::object();
        for (double s : kSelectivities) p.payload[sel_key(s)] = u(rng) < s ? "yes" : "no";
        p.payload["n"] = static_cast<int>(u(rng) * 1000);
        p.payload["x"] = u(rng);  // a float: about one value a point, as timestamps have
        p.payload["side"] = far ? "far" : "near";
        if (classes > 0) p.payload["class"] = std::to_string(ds.labels.row(from + i)[0]);
      }
      col->upsert(std::move(batch), false);
    }
    std::printf("%zu points of dimension %zu (%s) loaded in %.1f s; %zu queries, k %zu, ef %zu\n\n",
                points, dim,
                !dataset.empty() ? dataset.c_str()
                : clusters > 0   ? ("clustered, " + std::to_string(clusters) + " clusters").c_str()
                                 : "uniform random",
                seconds_since(t0), queries, k, ef);
    std::vector<std::vector<float>> qs(queries, std::vector<float>(dim));
    for (size_t i = 0; i < queries; ++i) {
      if (dataset.empty()) {
        draw(qs[i].data());
      } else {
        std::copy(ds.query.row(i), ds.query.row(i) + dim, qs[i].begin());
      }
    }
    // Each row's filter: one for every query, or one per query.
    std::vector<std::pair<std::string, std::vector<Filter>>> filters;
    const auto add = [&](std::string name, Filter f) {
      filters.emplace_back(std::move(name), std::vector<Filter>());
      filters.back().second.push_back(std::move(f));
    };
    add("none (the unfiltered reference)", Filter());
    for (double s : kSelectivities) {
      add("keyword " + std::to_string(s * 100).substr(0, 4) + "%",
          Filter::parse({{"must", {{{"key", sel_key(s)}, {"match", {{"value", "yes"}}}}}}}));
    }
    // A condition no index serves beside one that narrows (a group of must_not alone lists
    // nothing: it would list every other point): 45%.
    add("keyword 50% and not keyword 10%",
        Filter::parse(
            {{"must",
              {{{"key", sel_key(0.5)}, {"match", {{"value", "yes"}}}},
               {{"must_not", {{{"key", sel_key(0.1)}, {"match", {{"value", "yes"}}}}}}}}}}));
    // The same points, the must_not beside the must: a listing takes its postings out of the
    // must's, a search tests it on each point it reaches (docs/hnsw.md).
    add("keyword 50%, must_not keyword 10%",
        Filter::parse({{"must", {{{"key", sel_key(0.5)}, {"match", {{"value", "yes"}}}}}},
                       {"must_not", {{{"key", sel_key(0.1)}, {"match", {{"value", "yes"}}}}}}}));
    add("keyword ~10% along the vectors",
        Filter::parse({{"must", {{{"key", "side"}, {"match", {{"value", "far"}}}}}}}));
    if (classes > 0 && query_class.size() == queries) {
      // The query's own class (its matches among its nearest) and another one (the query's
      // plus half the classes: its matches away from the query, as "along the vectors").
      const auto class_filter = [](int32_t c) {
        return Filter::parse(
            {{"must", {{{"key", "class"}, {"match", {{"value", std::to_string(c)}}}}}}});
      };
      const std::string share = std::to_string(100 / classes);
      filters.emplace_back("class: the query's own (~" + share + "%)", std::vector<Filter>());
      for (int32_t c : query_class) filters.back().second.push_back(class_filter(c));
      filters.emplace_back("class: another, the query's + " + std::to_string(classes / 2) + " (~" +
                               share + "%, along the vectors)",
                           std::vector<Filter>());
      for (int32_t c : query_class) {
        filters.back().second.push_back(class_filter((c + classes / 2) % classes));
      }
    }
    for (double s : kSelectivities) {
      add("integer range " + std::to_string(s * 100).substr(0, 4) + "%",
          Filter::parse({{"must", {{{"key", "n"}, {"range", {{"lt", s * 1000}}}}}}}));
    }
    for (double s : kSelectivities) {
      add("float range " + std::to_string(s * 100).substr(0, 4) + "% (a value a point)",
          Filter::parse({{"must", {{{"key", "x"}, {"range", {{"lt", s}}}}}}}));
    }
    if (!only.empty()) {
      filters.erase(
          std::remove_if(filters.begin(), filters.end(),
                         [&](const auto& f) { return f.first.find(only) == std::string::npos; }),
          filters.end());
    }
    std::printf(
        "| filter | matches | payload index | recall@%zu | QPS | payloads tested a search | "
        "listing the matches, us | exact search QPS |\n",
        k);
    std::printf("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
    std::vector<Row> without;
    for (const auto& [name, f] : filters) {
      without.push_back(unindexed ? measure(*col, f, qs, k, ef, rounds) : Row{});
    }
    const auto ti = Clock::now();
    for (double s : kSelectivities) col->create_payload_index(sel_key(s), PayloadSchema::kKeyword);
    col->create_payload_index("n", PayloadSchema::kInteger);
    col->create_payload_index("x", PayloadSchema::kFloat);
    col->create_payload_index("side", PayloadSchema::kKeyword);
    if (classes > 0) col->create_payload_index("class", PayloadSchema::kKeyword);
    const double index_s = seconds_since(ti);
    for (size_t i = 0; i < filters.size(); ++i) {
      const Row w = measure(*col, filters[i].second, qs, k, ef, rounds);
      const Row& o = without[i];
      if (unindexed) {
        std::printf("| %s | %.0f | no | %.4f | %.0f | %.0f | %.1f | %.0f |\n",
                    filters[i].first.c_str(), o.matches, o.recall, o.qps, o.tested, o.filter_us,
                    o.exact_qps);
      }
      std::printf("| %s | %.0f | yes | %.4f | %.0f | %.0f | %.1f | %.0f |\n",
                  filters[i].first.c_str(), w.matches, w.recall, w.qps, w.tested, w.filter_us,
                  w.exact_qps);
    }
    const auto info = col->info();
    size_t bytes = 0;
    for (const auto& [key, f] : info.payload_fields) bytes += f.memory_bytes;
    std::printf("\n%zu payload indexes built in %.2f s, %.1f bytes per point (",
                info.payload_fields.size(), index_s, static_cast<double>(bytes) / points);
    const char* sep = "";
    for (const auto& [key, f] : info.payload_fields) {
      std::printf("%s%s %s %.1f", sep, key.c_str(), wp::engine::payload_schema_name(f.schema),
                  static_cast<double>(f.memory_bytes) / points);
      sep = ", ";
    }
    std::printf(")\n");
    // Where the memory goes, per point (the collection's own estimate), and the process's RSS.
    const wp::engine::MemoryUse m = col->memory();
    const double n = static_cast<double>(points);
    long pages = 0, resident = 0;
    if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
      std::fclose(f);
    }
    std::printf(
        "memory per point: index (vectors %zu B + graph) %.0f B, payloads (packed) "
        "%.0f B, payload indexes %.0f B, point tables %.0f B; total %.0f B; process RSS "
        "%.0f B per point\n",
        dim * sizeof(float), m.vectors.at("") / n, m.payloads / n, m.payload_indexes / n,
        m.points / n, m.total() / n, static_cast<double>(resident) * sysconf(_SC_PAGESIZE) / n);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
