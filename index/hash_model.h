#pragma once
/**
 * @file hash_model.h
 * HashModel: vector -> P sign bits. An optional learned embedding (dense layers written by learn/'s
 * hashing trainer), then P hyperplanes: bit p = [w_p . e(x) + b_p >= 0] (Charikar's SimHash, with
 * per-bit offsets for data that is not centred). Random models draw w_p from N(0, I),
 * orthogonalised in blocks; learned ones come from learn/ (matching network, ITQ). LshIndex
 * (lsh_index.h) hashes with it; a model is also a file of its own (`--hash-model FILE`).
 */
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wp::index {

class BinaryReader;
class BinaryWriter;

/**
 * Vector -> bits. Layers (optional) map the input to an embedding; planes (bits x embed_dim,
 * row-major) and offsets give the projections whose signs are the bits.
 */
struct HashModel {
  /// out = act(W in + b), W out x in row-major; relu or identity.
  struct Layer {
    uint32_t in = 0, out = 0;
    bool relu = false;
    std::vector<float> w, b;
  };
  std::string kind = "random";  ///< "random" or "learned" (informational)
  std::vector<Layer> layers;
  size_t input_dim = 0;
  size_t bits = 0;
  std::vector<float> planes;   ///< bits x embed_dim()
  std::vector<float> offsets;  ///< bits
  /// Offsets are refitted to the data's median projections (random models; learned ones may ask).
  bool fit_offsets = true;

  /// Gaussian planes over `dim` inputs, zero offsets, fit_offsets on.
  static HashModel random(size_t dim, size_t bits, uint64_t seed);

  size_t embed_dim() const { return layers.empty() ? input_dim : layers.back().out; }
  size_t words() const { return (bits + 63) / 64; }
  /// Throws UserError on inconsistent shapes or non-finite weights.
  void validate() const;

  /// Buffers reused across calls (one per thread): nothing is allocated once they have grown.
  struct Scratch {
    std::vector<float> embedding, layers;
  };
  /// The widest vector the layers produce or take.
  size_t max_width() const;
  /// The embedding of x (input_dim floats) into `e` (embed_dim floats).
  void embed(const float* x, float* e, Scratch& scratch) const;
  /// projections[p] = w_p . e(x) + b_p for every bit.
  void project(const float* x, float* projections, Scratch& scratch) const;
  /// Packs sign bits of projections into words() words.
  static void pack(const float* projections, size_t bits, uint64_t* code);

  /// Files: the index file container (magic, version, checksum) with its own type tag.
  void save(const std::string& path) const;
  static HashModel load(const std::string& path);
  void write(BinaryWriter& out) const;
  static HashModel read(BinaryReader& in);
};

}  // namespace wp::index
