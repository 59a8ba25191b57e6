#include "index/index.h"

#include <omp.h>

#include <algorithm>
#include <functional>

#include "index/distance.h"
#include "index/error.h"
#include "index/index_file.h"
#include "index/index_spec.h"

namespace wp::index {

void SearchParams::validate() const {
  WP_THROW_IF_NOT(ef <= 100000, "ef must be at most 100000, got ", ef);
}

Index::Index(size_t dim, Metric metric) : dim_(dim), metric_(metric) {
  WP_THROW_IF_NOT(dim >= 1 && dim <= 65536, "dimension must be in 1..65536, got ", dim);
}

int Index::insert_team(size_t threads) const {
  size_t team = threads ? threads : static_cast<size_t>(omp_get_max_threads());
  if (max_insert_threads_) team = std::min(team, max_insert_threads_);
  return static_cast<int>(team);
}

void Index::check_vectors(MatrixView x, const char* what) const {
  WP_THROW_IF_NOT(x.d == dim_, what, " have dimension ", x.d, ", the index expects ", dim_);
  for (size_t i = 0; i < x.n; ++i) {
    check_vector(x.row(i), x.d, metric_, std::string(what) + "[" + std::to_string(i) + "]");
  }
}

void Index::check_k(size_t k) {
  WP_THROW_IF_NOT(k >= 1 && k <= kMaxK, "k must be in 1..", kMaxK, ", got ", k);
}

void Index::write_dim_metric(BinaryWriter& out) const {
  out.write<uint64_t>(dim_);
  out.write<uint32_t>(static_cast<uint32_t>(metric_));
}

std::pair<size_t, Metric> Index::read_dim_metric(BinaryReader& in) {
  const uint64_t dim = in.read<uint64_t>();
  in.check(dim >= 1 && dim <= 65536, "dimension out of range");
  const uint32_t metric = in.read<uint32_t>();
  in.check(metric <= static_cast<uint32_t>(Metric::kCosine), "unknown metric");
  return {dim, static_cast<Metric>(metric)};
}

SearchResult Index::search(MatrixView q, size_t k, const SearchParams& params) const {
  check_k(k);
  params.validate();
  check_vectors(q, "queries");
  SearchResult res(q.n, k);
  uint64_t dcs = 0, hops = 0;
#pragma omp parallel for schedule(dynamic, 16) reduction(+ : dcs, hops) if (q.n > 16)
  for (int64_t i = 0; i < static_cast<int64_t>(q.n); ++i) {
    SearchStats st =
        search_one(q.row(i), k, params, res.labels.data() + i * k, res.distances.data() + i * k);
    dcs += st.distance_computations;
    hops += st.hops;
  }
  res.stats.distance_computations = dcs;
  res.stats.hops = hops;
  return res;
}

size_t Index::remove_batch(const label_t* ids, size_t n) {
  size_t removed = 0;
  for (size_t i = 0; i < n; ++i) removed += remove(ids[i]);
  return removed;
}

void add_all(Index& idx, MatrixView x, const label_t* ids, size_t chunk,
             const std::function<void(size_t)>& progress) {
  idx.reserve(idx.size() + x.n);
  if (idx.builds_from_one_batch() || chunk == 0) chunk = std::max<size_t>(x.n, 1);
  for (size_t b = 0; b < x.n; b += chunk) {
    const size_t n = std::min(chunk, x.n - b);
    idx.add(MatrixView{x.row(b), n, x.d}, ids + b);
    if (progress) progress(b + n);
  }
}

std::unique_ptr<Index> load_index(const std::string& path) {
  BinaryReader in(path);
  for (const IndexKindInfo& row : index_kinds()) {  // the registry of loaders, by file tag
    if (row.file_type == in.type()) return row.load(in);
  }
  throw UserError("'" + path + "': index type " + std::to_string(static_cast<uint32_t>(in.type())) +
                  " cannot be loaded by this build");
}

}  // namespace wp::index
