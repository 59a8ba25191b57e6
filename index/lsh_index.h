#pragma once
/**
 * @file lsh_index.h
 * LshIndex (index type "lsh"): sign bits of hyperplanes, compared by XNOR/popcount, then exact
 * re-ranking (Charikar's SimHash, with per-bit thresholds for data that is not centred).
 *
 *  - A HashModel (hash_model.h) turns a vector into P bits. Random models set their offsets to
 *    minus the median projection of the data (every bit splits the data in half; FAISS IndexLSH's
 *    train_thresholds does the same), refitted here as the index grows.
 *  - Codes are packed in 64-bit words; similarity = P - Hamming = popcount(XNOR).
 *  - Candidates come from a Hamming scan over all codes (tables = 0), or from L hash tables keyed
 *    by b of the bits each, probed with multi-probe: the query's bucket, then buckets that flip the
 *    bits whose projections are nearest their threshold, least confident first (Lv et al., VLDB
 *    2007, query-directed probing). The `ef` best by Hamming are re-ranked by exact distance.
 *  - Online insert and delete (the last slot moves into the hole, so scans stay dense); filters
 *    are applied to candidates; a file holds the model, the codes and the vectors.
 */
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/distance.h"
#include "index/hash_model.h"
#include "index/index.h"
#include "index/param_range.h"

namespace wp::index {

/// Build parameters of an LshIndex.
struct LshParams {
  size_t bits = 256;        ///< planes of a random model (a learned model brings its own)
  size_t tables = 0;        ///< hash tables L; 0: Hamming scan over all codes
  size_t key_bits = 0;      ///< bits per table key b (1..32; 0: ~16 points per bucket, 4..24)
  size_t probes = 16;       ///< buckets probed per table, the query's own included (multi-probe)
  size_t candidates = 100;  ///< candidates re-ranked when a search leaves ef at 0
  uint64_t seed = 100;      ///< planes and table keys

  static constexpr ParamRange kBits{"bits", "bits", "bits", 1, 4096, true, "sign bits per vector"};
  static constexpr ParamRange kTables{
      "tables", "tables", "tables", 0, 64, true, "hash tables; 0: Hamming scan"};
  static constexpr ParamRange kKeyBits{
      "key_bits", "key_bits", "key-bits", 0, 32, true, "bits per table key; 0: auto"};
  static constexpr ParamRange kProbes{
      "probes", "probes", "probes", 1, 4096, true, "buckets probed per table"};
  static constexpr ParamRange kCandidates{
      "candidates", "candidates", "candidates", 1, 100000, true, "re-ranked by exact distance"};

  /// Throws UserError naming the field.
  void validate() const;
};

class LshIndex : public Index {
 public:
  /// A random-plane index.
  LshIndex(size_t dim, Metric metric, const LshParams& params);
  /// An index over a given model (learned planes); model.input_dim must equal dim.
  LshIndex(size_t dim, Metric metric, const LshParams& params, HashModel model);

  const char* type_name() const override { return "lsh"; }
  size_t size() const override { return labels_.size(); }
  bool contains(label_t id) const override { return slot_of_.count(id) != 0; }
  bool get_vector(label_t id, float* out) const override;
  void add(MatrixView x, const label_t* ids) override;
  bool remove(label_t id) override;
  /// params.ef = candidates re-ranked by exact distance (0: LshParams::candidates), at least k;
  /// distance_computations counts those exact distances (Hamming comparisons are not counted).
  SearchStats search_one(const float* q, size_t k, const SearchParams& params, label_t* labels,
                         float* distances) const override;
  void save(const std::string& path) const override;
  size_t memory_bytes() const override;

  static std::unique_ptr<Index> load(BinaryReader& in);

  const LshParams& params() const { return params_; }
  const HashModel& model() const { return model_; }
  /// The code of a stored id (words() words); false when absent.
  bool get_code(label_t id, uint64_t* out) const;
  /// Bits per table key (params().key_bits, or the automatic choice made at the last rebuild).
  size_t key_bits() const;

 private:
  using Table = std::unordered_map<uint32_t, std::vector<uint32_t>>;

  const uint64_t* code(size_t s) const { return codes_.data() + s * words_; }
  const float* vec(size_t s) const { return vectors_.data() + s * dim_; }
  uint32_t table_key(size_t t, const uint64_t* code) const;
  void table_insert(uint32_t s);
  void table_erase(uint32_t s);
  /// Refits the offsets on all stored vectors, recomputes every code and the tables.
  void refit();
  void build_tables();
  /// Candidates (slots) for a query code from the hash tables' probed buckets.
  void collect(const uint64_t* qcode, const float* margins, const IdFilter* filter,
               std::vector<uint32_t>& out) const;

  LshParams params_;
  HashModel model_;
  size_t words_ = 0;
  DistanceFn dist_;
  std::vector<uint64_t> codes_;  ///< slot-major codes
  std::vector<float> vectors_;   ///< slot-major vectors (normalised for cosine)
  std::vector<label_t> labels_;  ///< slot -> id
  std::unordered_map<label_t, uint32_t> slot_of_;
  std::vector<std::vector<uint16_t>> key_positions_;  ///< per table, the bit positions of its key
  std::vector<Table> tables_;
  size_t fitted_at_ = 0;  ///< size at the last refit / table rebuild
};

}  // namespace wp::index
