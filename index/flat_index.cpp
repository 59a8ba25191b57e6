#include "index/flat_index.h"

#include <faiss/impl/IDSelector.h>

#include <cstring>

#include "index/distance.h"
#include "index/index_file.h"

namespace wp::index {

namespace {
/// Maps FAISS positions to our ids, then asks the user's filter.
struct LabelSelector : faiss::IDSelector {
  const std::vector<label_t>* labels;
  const IdFilter* filter;
  LabelSelector(const std::vector<label_t>* l, const IdFilter* f) : labels(l), filter(f) {}
  bool is_member(idx_t pos) const override {
    return filter->contains((*labels)[static_cast<size_t>(pos)]);
  }
};

std::unique_ptr<faiss::IndexFlat> make_flat(size_t dim, Metric metric) {
  const faiss::MetricType m =
      metric == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
  return std::make_unique<faiss::IndexFlat>(static_cast<faiss::Index::idx_t>(dim), m);
}
}  // namespace

FlatIndex::FlatIndex(size_t dim, Metric metric)
    : Index(dim, metric), flat_(make_flat(dim, metric)) {}

void FlatIndex::add(MatrixView x, const label_t* ids) {
  check_vectors(x, "vectors");
  std::vector<float> normalised;
  const float* data = x.data;
  if (metric_ == Metric::kCosine) {
    normalised.assign(x.data, x.data + x.n * x.d);
    for (size_t i = 0; i < x.n; ++i) normalize(normalised.data() + i * dim_, dim_);
    data = normalised.data();
  }
  for (size_t i = 0; i < x.n; ++i) {
    auto it = pos_.find(ids[i]);
    if (it != pos_.end()) {  // replace in place
      std::memcpy(flat_->codes.data() + it->second * dim_ * sizeof(float), data + i * dim_,
                  dim_ * sizeof(float));
      continue;
    }
    flat_->add(1, data + i * dim_);
    pos_.emplace(ids[i], labels_.size());
    labels_.push_back(ids[i]);
  }
}

bool FlatIndex::get_vector(label_t id, float* out) const {
  auto it = pos_.find(id);
  if (it == pos_.end()) return false;
  std::memcpy(out, flat_->codes.data() + it->second * dim_ * sizeof(float), dim_ * sizeof(float));
  return true;
}

bool FlatIndex::remove(label_t id) {
  auto it = pos_.find(id);
  if (it == pos_.end()) return false;
  const size_t hole = it->second;
  const size_t last = labels_.size() - 1;
  const size_t row_bytes = dim_ * sizeof(float);
  if (hole != last) {
    std::memcpy(flat_->codes.data() + hole * row_bytes, flat_->codes.data() + last * row_bytes,
                row_bytes);
    labels_[hole] = labels_[last];
    pos_[labels_[hole]] = hole;
  }
  labels_.pop_back();
  pos_.erase(it);
  flat_->codes.resize(last * row_bytes);
  flat_->ntotal = static_cast<faiss::Index::idx_t>(last);
  return true;
}

SearchStats FlatIndex::search_one(const float* q, size_t k, const SearchParams& params,
                                  label_t* labels, float* distances) const {
  std::vector<float> qn;
  if (metric_ == Metric::kCosine) {
    qn.assign(q, q + dim_);
    normalize(qn.data(), dim_);
    q = qn.data();
  }
  std::vector<faiss::Index::idx_t> pos(k, -1);
  std::vector<float> dis(k);
  faiss::SearchParameters sp;
  LabelSelector sel(&labels_, params.filter);
  if (params.filter) sp.sel = &sel;
  flat_->search(1, q, static_cast<faiss::Index::idx_t>(k), dis.data(), pos.data(),
                params.filter ? &sp : nullptr);
  for (size_t j = 0; j < k; ++j) {
    if (pos[j] < 0) {
      labels[j] = kNoLabel;
      distances[j] = 0;
      continue;
    }
    labels[j] = labels_[static_cast<size_t>(pos[j])];
    // FAISS returns the similarity for inner product; we return distances (smaller is closer).
    distances[j] = metric_ == Metric::kL2 ? dis[j] : -dis[j];
  }
  SearchStats st;
  st.distance_computations = labels_.size();
  return st;
}

size_t FlatIndex::memory_bytes() const {
  return flat_->codes.capacity() + labels_.capacity() * sizeof(label_t) +
         pos_.size() * (sizeof(label_t) + sizeof(size_t) + 2 * sizeof(void*));
}

void FlatIndex::save(const std::string& path) const {
  BinaryWriter out(path, IndexType::kFlat);
  write_dim_metric(out);
  out.write_vector(labels_);
  out.write_vector(flat_->codes);
  out.finish();
}

std::unique_ptr<Index> FlatIndex::load(BinaryReader& in) {
  const auto [dim, metric] = read_dim_metric(in);
  auto idx = std::make_unique<FlatIndex>(dim, metric);
  idx->labels_ = in.read_vector<label_t>(in.remaining() / sizeof(label_t));
  idx->flat_->codes = in.read_vector<uint8_t>(in.remaining());
  in.check(idx->flat_->codes.size() == idx->labels_.size() * dim * sizeof(float),
           "vector block does not match the id count");
  in.expect_end();
  idx->flat_->ntotal = static_cast<faiss::Index::idx_t>(idx->labels_.size());
  for (size_t i = 0; i < idx->labels_.size(); ++i) {
    in.check(idx->pos_.emplace(idx->labels_[i], i).second, "duplicate id");
  }
  return idx;
}

}  // namespace wp::index
