#include "index/vector_io.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "index/error.h"

namespace wp::index {

namespace {

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw UserError("cannot open '" + path + "': " + std::strerror(errno));
  const std::streamsize size = in.tellg();
  std::vector<char> buf(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(buf.data(), size)) throw UserError("cannot read '" + path + "'");
  return buf;
}

// TEXMEX: per record int32 d, then d values of T; converted to Out.
template <typename T, typename Out>
BasicMatrix<Out> read_vecs(const std::string& path, size_t max_rows) {
  const std::vector<char> buf = read_file(path);
  BasicMatrix<Out> m;
  if (buf.empty()) return m;
  WP_THROW_IF_NOT(buf.size() >= 4, "'", path, "': file shorter than one record header");
  int32_t d = 0;
  std::memcpy(&d, buf.data(), 4);
  WP_THROW_IF_NOT(d >= 1 && d <= 65536, "'", path, "': record dimension ", d,
                  " out of range 1..65536");
  const size_t rec = 4 + static_cast<size_t>(d) * sizeof(T);
  WP_THROW_IF_NOT(buf.size() % rec == 0, "'", path, "': size ", buf.size(),
                  " is not a whole number of records of dimension ", d, " (", rec, " bytes)");
  const size_t n = std::min(buf.size() / rec, max_rows);
  m = BasicMatrix<Out>(n, d);
  for (size_t i = 0; i < n; ++i) {
    const char* r = buf.data() + i * rec;
    int32_t di = 0;
    std::memcpy(&di, r, 4);
    WP_THROW_IF_NOT(di == d, "'", path, "': record ", i, " has dimension ", di, ", expected ", d);
    const T* src = reinterpret_cast<const T*>(r + 4);
    Out* dst = m.row(i);
    if constexpr (std::is_same_v<T, Out>) {
      std::memcpy(dst, src, d * sizeof(T));
    } else {
      for (int32_t j = 0; j < d; ++j) dst[j] = static_cast<Out>(src[j]);
    }
  }
  return m;
}

// big-ann-benchmarks: uint32 n, uint32 d, then n * d values of T.
template <typename T, typename Out>
BasicMatrix<Out> read_bin(const std::string& path, size_t max_rows) {
  const std::vector<char> buf = read_file(path);
  WP_THROW_IF_NOT(buf.size() >= 8, "'", path, "': file shorter than its 8-byte header");
  uint32_t n = 0, d = 0;
  std::memcpy(&n, buf.data(), 4);
  std::memcpy(&d, buf.data() + 4, 4);
  WP_THROW_IF_NOT(d >= 1 && d <= 65536, "'", path, "': dimension ", d, " out of range 1..65536");
  WP_THROW_IF_NOT(buf.size() == 8 + static_cast<uint64_t>(n) * d * sizeof(T), "'", path, "': size ",
                  buf.size(), " does not match the header (", n, " x ", d, ")");
  const size_t rows = std::min<size_t>(n, max_rows);
  BasicMatrix<Out> m(rows, d);
  const T* src = reinterpret_cast<const T*>(buf.data() + 8);
  if constexpr (std::is_same_v<T, Out>) {
    if (rows > 0) std::memcpy(m.data.data(), src, rows * d * sizeof(T));
  } else {
    for (size_t i = 0; i < rows * d; ++i) m.data[i] = static_cast<Out>(src[i]);
  }
  return m;
}

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

template <typename T>
void write_vecs(const std::string& path, const BasicMatrix<T>& m) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw UserError("cannot write '" + tmp + "': " + std::strerror(errno));
    const int32_t d = static_cast<int32_t>(m.d);
    for (size_t i = 0; i < m.n; ++i) {
      out.write(reinterpret_cast<const char*>(&d), 4);
      out.write(reinterpret_cast<const char*>(m.row(i)), m.d * sizeof(T));
    }
    if (!out.flush()) throw InternalError("write failed on '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw InternalError("cannot rename '" + tmp + "' to '" + path + "'");
  }
}

}  // namespace

Matrix read_fvecs(const std::string& path, size_t max_rows) {
  return read_vecs<float, float>(path, max_rows);
}
IntMatrix read_ivecs(const std::string& path, size_t max_rows) {
  return read_vecs<int32_t, int32_t>(path, max_rows);
}
Matrix read_bvecs(const std::string& path, size_t max_rows) {
  return read_vecs<uint8_t, float>(path, max_rows);
}
Matrix read_fbin(const std::string& path, size_t max_rows) {
  return read_bin<float, float>(path, max_rows);
}
Matrix read_u8bin(const std::string& path, size_t max_rows) {
  return read_bin<uint8_t, float>(path, max_rows);
}
IntMatrix read_ibin(const std::string& path, size_t max_rows) {
  return read_bin<int32_t, int32_t>(path, max_rows);
}

Matrix read_vectors(const std::string& path, size_t max_rows) {
  if (ends_with(path, ".fvecs")) return read_fvecs(path, max_rows);
  if (ends_with(path, ".bvecs")) return read_bvecs(path, max_rows);
  if (ends_with(path, ".fbin")) return read_fbin(path, max_rows);
  if (ends_with(path, ".u8bin")) return read_u8bin(path, max_rows);
  throw UserError("'" + path +
                  "': unknown vector file type (expected .fvecs, .bvecs, .fbin or .u8bin)");
}

void write_fvecs(const std::string& path, const Matrix& m) {
  write_vecs(path, m);
}
void write_ivecs(const std::string& path, const IntMatrix& m) {
  write_vecs(path, m);
}

}  // namespace wp::index
