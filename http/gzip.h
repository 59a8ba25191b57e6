#pragma once
/**
 * @file gzip.h
 * Answers compressed for clients that accept it (Accept-Encoding: gzip), as Qdrant compresses
 * its answers: zlib's deflate in the gzip format (RFC 1952).
 */
#include <string>
#include <string_view>

namespace wp::http {

/// `in` as one gzip member, at zlib's `level` (1 fastest .. 9 smallest).
std::string gzip_compress(std::string_view in, int level = 1);

}  // namespace wp::http
