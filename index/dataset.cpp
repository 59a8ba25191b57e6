#include "index/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "index/distance.h"
#include "index/error.h"
#include "index/flat_index.h"
#include "index/vector_io.h"

namespace wp::index {

namespace fs = std::filesystem;

namespace {
std::string first_existing(const fs::path& dir, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    if (fs::exists(dir / n)) return (dir / n).string();
  }
  return {};
}

void check_groundtruth(const Dataset& ds, const std::string& path) {
  WP_THROW_IF_NOT(ds.base.d == ds.query.d, "'", path, "': base has dimension ", ds.base.d,
                  " but queries have ", ds.query.d);
  WP_THROW_IF_NOT(ds.groundtruth.n >= ds.query.n, "'", path, "': ground truth has ",
                  ds.groundtruth.n, " rows for ", ds.query.n, " queries");
  for (int32_t id : ds.groundtruth.data) {
    WP_THROW_IF_NOT(id >= 0 && static_cast<size_t>(id) < ds.base.n, "'", path,
                    "': ground-truth id ", id, " is not a row of the base (", ds.base.n, ")");
  }
}

void truncate_rows(Matrix& m, size_t n) {
  if (m.n <= n) return;
  m.n = n;
  m.data.resize(n * m.d);
}
void truncate_rows(IntMatrix& m, size_t n) {
  if (m.n <= n) return;
  m.n = n;
  m.data.resize(n * m.d);
}
}  // namespace

Dataset load_dataset(const std::string& path, size_t max_queries) {
  Dataset ds;
  const fs::path p(path);
  if (p.extension() == ".hdf5") {
    AnnHdf5 h = read_ann_hdf5(path);
    ds.name = p.stem().string();
    ds.metric = h.distance == "angular" ? Metric::kCosine
                : h.distance == "dot"   ? Metric::kInnerProduct
                                        : Metric::kL2;
    ds.base = std::move(h.train);
    ds.query = std::move(h.test);
    ds.groundtruth = std::move(h.neighbors);
  } else {
    WP_THROW_IF_NOT(fs::is_directory(p), "dataset '", path,
                    "' is neither a folder nor an .hdf5 file");
    ds.name = p.filename().empty() ? p.parent_path().filename().string() : p.filename().string();
    const std::string base =
        first_existing(p, {"base.fvecs", "base.fbin", "base.u8bin", "base.bvecs"});
    WP_THROW_IF_NOT(!base.empty(), "dataset '", path,
                    "' has no base.fvecs (or .fbin/.u8bin/.bvecs)",
                    (fs::exists(p / "prepare.sh") ? "; run its prepare.sh to build it" : ""));
    ds.base = read_vectors(base);
    const std::string query =
        first_existing(p, {"query.fvecs", "query.fbin", "query.u8bin", "query.bvecs"});
    WP_THROW_IF_NOT(!query.empty(), "dataset '", path, "' has no query.fvecs");
    ds.query = read_vectors(query, max_queries);
    const std::string gt = first_existing(p, {"groundtruth.ivecs", "groundtruth.ibin"});
    WP_THROW_IF_NOT(!gt.empty(), "dataset '", path,
                    "' has no groundtruth.ivecs (make one with `waypoint gt`)");
    ds.groundtruth = gt.size() > 5 && gt.substr(gt.size() - 5) == ".ibin"
                         ? read_ibin(gt, max_queries)
                         : read_ivecs(gt, max_queries);
    const std::string learn = first_existing(p, {"learn.fvecs"});
    if (!learn.empty()) ds.learn = read_fvecs(learn);
    const std::string labels = first_existing(p, {"labels.ivecs", "base_labels.ivecs"});
    if (!labels.empty()) ds.labels = read_ivecs(labels);
    if (fs::exists(p / "metric")) {
      std::ifstream in(p / "metric");
      std::string m;
      in >> m;
      ds.metric = parse_metric(m, (p / "metric").string());
    }
  }
  truncate_rows(ds.query, max_queries);
  truncate_rows(ds.groundtruth, ds.query.n);
  check_groundtruth(ds, path);
  return ds;
}

float reported_distance(Metric metric, const float* a, const float* b, size_t d) {
  switch (metric) {
    case Metric::kL2:
      return std::sqrt(l2sqr(a, b, d));
    case Metric::kInnerProduct:
      return -inner_product(a, b, d);
    case Metric::kCosine: {
      const float na = std::sqrt(inner_product(a, a, d)), nb = std::sqrt(inner_product(b, b, d));
      if (na == 0 || nb == 0) return 1.0f;
      return 1.0f - inner_product(a, b, d) / (na * nb);
    }
  }
  return 0;
}

std::vector<double> recall_per_query(const Matrix& base, const Matrix& queries,
                                     const IntMatrix& groundtruth,
                                     const std::vector<label_t>& results, size_t k, Metric metric,
                                     float epsilon) {
  WP_THROW_IF_NOT(k >= 1 && k <= groundtruth.d, "recall@", k,
                  " needs ground truth of depth >= k (have ", groundtruth.d, ")");
  WP_THROW_IF_NOT(results.size() >= queries.n * k, "results hold ", results.size(), " ids, need ",
                  queries.n * k);
  const size_t d = base.d;
  std::vector<double> out(queries.n);
  for (size_t i = 0; i < queries.n; ++i) {
    const float* q = queries.row(i);
    const float threshold =
        reported_distance(metric, q, base.row(groundtruth.row(i)[k - 1]), d) + epsilon;
    size_t hits = 0;
    for (size_t j = 0; j < k; ++j) {
      const label_t id = results[i * k + j];
      if (id == kNoLabel || id >= base.n) continue;
      if (reported_distance(metric, q, base.row(id), d) <= threshold) ++hits;
    }
    out[i] = static_cast<double>(hits) / k;
  }
  return out;
}

double recall_at_k(const Matrix& base, const Matrix& queries, const IntMatrix& groundtruth,
                   const std::vector<label_t>& results, size_t k, Metric metric, float epsilon) {
  const std::vector<double> r =
      recall_per_query(base, queries, groundtruth, results, k, metric, epsilon);
  double total = 0;
  for (const double x : r) total += x;
  return queries.n ? total / queries.n : 0.0;
}

RowSplit split_rows(const Matrix& x, size_t count, uint64_t seed) {
  WP_THROW_IF_NOT(count < x.n, "cannot hold out ", count, " of ", x.n, " vectors");
  std::vector<size_t> rows(x.n);
  std::iota(rows.begin(), rows.end(), size_t{0});
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < count; ++i) {
    std::swap(rows[i], rows[std::uniform_int_distribution<size_t>(i, x.n - 1)(rng)]);
  }
  std::sort(rows.begin() + static_cast<long>(count), rows.end());
  RowSplit out{Matrix(x.n - count, x.d), Matrix(count, x.d), {}};
  for (size_t i = 0; i < x.n; ++i) {
    float* to = i < count ? out.drawn.row(i) : out.rest.row(i - count);
    std::copy_n(x.row(rows[i]), x.d, to);
  }
  out.rest_rows.assign(rows.begin() + static_cast<long>(count), rows.end());
  return out;
}

Dataset hold_out(const Dataset& ds, size_t n, uint64_t seed) {
  WP_THROW_IF_NOT(n >= 1 && n < ds.base.n, "holdout: ", n, " queries from ", ds.base.n,
                  " base rows (at least one must stay in the base)");
  RowSplit split = split_rows(ds.base, n, seed);
  Dataset out;
  out.name = ds.name + "-holdout" + std::to_string(n);
  out.metric = ds.metric;
  out.learn = ds.learn;
  out.base = std::move(split.rest);
  out.query = std::move(split.drawn);
  if (ds.labels.n >= ds.base.n && ds.labels.n > 0) {  // label i is base row i's
    out.labels = IntMatrix(out.base.n, ds.labels.d);
    for (size_t i = 0; i < out.base.n; ++i) {
      std::copy_n(ds.labels.row(split.rest_rows[i]), ds.labels.d, out.labels.row(i));
    }
  }
  out.groundtruth = exact_knn(out.base, out.query, std::min<size_t>(100, out.base.n), ds.metric);
  return out;
}

IntMatrix exact_knn(const Matrix& base, const Matrix& queries, size_t k, Metric metric) {
  FlatIndex flat(base.d, metric);
  std::vector<label_t> ids(base.n);
  std::iota(ids.begin(), ids.end(), 0);
  flat.add(view(base), ids.data());
  const SearchResult r = flat.search(view(queries), k);
  IntMatrix gt(queries.n, k);
  for (size_t i = 0; i < queries.n * k; ++i) {
    gt.data[i] = r.labels[i] == kNoLabel ? -1 : static_cast<int32_t>(r.labels[i]);
  }
  return gt;
}

}  // namespace wp::index
