#pragma once
/**
 * @file vector_io.h
 * Readers and writers of the vector file formats of the ANN world:
 *  - TEXMEX `.fvecs` / `.ivecs` / `.bvecs`: per record an int32 dimension then d float32 / int32 /
 *    uint8 values (every record must have the same d);
 *  - big-ann-benchmarks `.fbin` / `.u8bin` / `.ibin`: uint32 n, uint32 d, then n * d values;
 *  - ann-benchmarks `.hdf5`: datasets `train`, `test`, `neighbors` (and `distances`), attribute
 *    `distance` (when built with HDF5).
 * Every length is checked against the file size; a malformed file is a UserError naming the file.
 */
#include <string>

#include "index/matrix.h"

namespace wp::index {

/// No limit on the number of rows read.
constexpr size_t kAllRows = static_cast<size_t>(-1);

Matrix read_fvecs(const std::string& path, size_t max_rows = kAllRows);
IntMatrix read_ivecs(const std::string& path, size_t max_rows = kAllRows);
/// uint8 vectors, widened to float.
Matrix read_bvecs(const std::string& path, size_t max_rows = kAllRows);
Matrix read_fbin(const std::string& path, size_t max_rows = kAllRows);
/// uint8 vectors, widened to float.
Matrix read_u8bin(const std::string& path, size_t max_rows = kAllRows);
IntMatrix read_ibin(const std::string& path, size_t max_rows = kAllRows);

/// Reads float vectors by extension: .fvecs .bvecs .fbin .u8bin.
Matrix read_vectors(const std::string& path, size_t max_rows = kAllRows);

void write_fvecs(const std::string& path, const Matrix& m);
void write_ivecs(const std::string& path, const IntMatrix& m);

/// An ann-benchmarks HDF5 file.
struct AnnHdf5 {
  Matrix train;          ///< base vectors
  Matrix test;           ///< queries
  IntMatrix neighbors;   ///< exact neighbour ids per query
  Matrix distances;      ///< their distances (empty when absent)
  std::string distance;  ///< the file's `distance` attribute ("euclidean", "angular", ...)
};

/// True when this build can read HDF5 files.
bool hdf5_supported();

/// Reads an ann-benchmarks HDF5 file; throws UserError when unsupported or malformed.
AnnHdf5 read_ann_hdf5(const std::string& path);

}  // namespace wp::index
