// Answers in the gzip format, by zlib (gzip.h). zlib is Debian's zlib1g: the deflate every
// client's decoder was tested against, where one written here would not be.
#include "http/gzip.h"

#include <zlib.h>

#include "index/error.h"

namespace wp::http {

std::string gzip_compress(std::string_view in, int level) {
  z_stream zs{};
  // 15 bits of window, +16: the gzip header and trailer rather than zlib's.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw InternalError("gzip: deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);  // deflateBound holds all of it: one call
  const size_t written = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw InternalError("gzip: deflate did not finish");
  out.resize(written);
  return out;
}

}  // namespace wp::http
