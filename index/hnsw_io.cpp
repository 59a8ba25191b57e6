// HnswIndex's file payload (the container is index_file.h): dimension and metric, parameters, the
// 8-bit quantizer when there is one (codes are derived: re-encoded on load), the graph
// (HnswGraph::write), and the fixed entry vertex.
#include "index/error.h"
#include "index/hnsw_index.h"
#include "index/index_file.h"

namespace wp::index {

void HnswIndex::save(const std::string& path) const {
  BinaryWriter out(path, IndexType::kHnsw);
  write_payload(out);
  out.finish();
}

void HnswIndex::write_payload(BinaryWriter& out) const {
  write_dim_metric(out);
  out.write<uint64_t>(params_.M);
  out.write<uint64_t>(params_.ef_construction);
  out.write<uint64_t>(params_.ef_search);
  out.write<uint64_t>(params_.seed);
  out.write<double>(params_.consolidate_fraction);
  out.write<uint32_t>(static_cast<uint32_t>(params_.quantization));
  if (code_stride_) {
    quantizer_.save(out);
    out.write<uint64_t>(quantizer_trained_at_);
  }
  graph_->write(out);
  out.write<uint32_t>(fixed_entry_);
}

std::unique_ptr<Index> HnswIndex::load(BinaryReader& in) {
  auto idx = read_payload(in);
  in.expect_end();
  return idx;
}

std::unique_ptr<HnswIndex> HnswIndex::read_payload(BinaryReader& in) {
  const auto [dim, metric] = read_dim_metric(in);
  HnswParams p;
  p.M = in.read<uint64_t>();
  p.ef_construction = in.read<uint64_t>();
  p.ef_search = in.read<uint64_t>();
  p.seed = in.read<uint64_t>();
  p.consolidate_fraction = in.read<double>();
  const uint32_t quantization = in.read<uint32_t>();
  in.check(quantization <= static_cast<uint32_t>(Quantization::kSq8), "unknown quantization");
  p.quantization = static_cast<Quantization>(quantization);
  try {
    p.validate();
  } catch (const UserError& e) {
    in.check(false, e.what());
  }
  auto idx = std::make_unique<HnswIndex>(dim, metric, p);
  if (idx->code_stride_) {
    idx->quantizer_.load(in, dim);
    idx->quantizer_trained_at_ = in.read<uint64_t>();
  }
  HnswGraph& g = *idx->graph_;
  g.read(in);
  idx->grow_codes();
  if (idx->quantizer_.trained()) {
    for (slot_t s = 0; s < g.slot_count(); ++s) {
      if (g.flags(s) != HnswGraph::kFree) idx->encode_slot(s);
    }
  }
  const uint32_t fixed = in.read<uint32_t>();
  in.check(fixed == HnswGraph::kNoSlot || (fixed < g.slot_count() && g.flags(fixed) == 0),
           "fixed entry vertex out of range");
  idx->fixed_entry_ = fixed;
  return idx;
}

}  // namespace wp::index
