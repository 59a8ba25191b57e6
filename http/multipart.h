#pragma once
/**
 * @file multipart.h
 * The one field of a multipart/form-data body (RFC 7578) that a route reads: Qdrant's snapshot
 * upload sends the file as the part named `snapshot`.
 */
#include <string>
#include <string_view>

namespace wp::http {

/**
 * The content of the part named `field` in `body`, a view into it (nothing copied).
 * `content_type` is the request's Content-Type header, which must be multipart/form-data with a
 * boundary. UserError, naming what is wrong, for any other type, a missing boundary, a body
 * that is not made of parts with that boundary, or no part of that name.
 */
std::string_view multipart_field(std::string_view body, std::string_view content_type,
                                 std::string_view field);

}  // namespace wp::http
