#pragma once
/**
 * @file error.h
 * One exception hierarchy for the whole project (docs/architecture.md, "Conventions").
 *
 * wp::UserError        -- the caller's mistake (bad parameter, bad file, bad vector): HTTP 400,
 *                         with subclasses NotFoundError (404), ConflictError (409) and
 *                         TooLargeError (413).
 * wp::UnavailableError -- briefly busy, retry: HTTP 503.
 * wp::InternalError    -- a fault of ours or of the system (I/O failure, broken invariant):
 *                         HTTP 5xx.
 *
 * Throw through WP_THROW_IF_NOT / WP_THROW_INTERNAL_IF_NOT so that messages carry file and line
 * for internal faults, and name the field, the value and what was expected for user errors.
 */
#include <sstream>
#include <stdexcept>
#include <string>

/// Exception types keep default visibility, so that one thrown inside a module built with hidden
/// symbols (the hnswlib baseline, bench/baselines) is caught by its type in the binary that loaded
/// it.
#define WP_EXCEPTION __attribute__((visibility("default")))

namespace wp {

/// Base of every exception waypoint throws on purpose.
class WP_EXCEPTION Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Invalid input from a user: parameters, vectors, files they gave us. Maps to HTTP 4xx.
class WP_EXCEPTION UserError : public Error {
 public:
  using Error::Error;
};

/// A user error about something that does not exist (collection, point). Maps to HTTP 404.
class WP_EXCEPTION NotFoundError : public UserError {
 public:
  using UserError::UserError;
};

/// A user error about something that already exists (collection). Maps to HTTP 409.
class WP_EXCEPTION ConflictError : public UserError {
 public:
  using UserError::UserError;
};

/// A request body larger than allowed. Maps to HTTP 413.
class WP_EXCEPTION TooLargeError : public UserError {
 public:
  using UserError::UserError;
};

/// Something briefly busy (a collection being recovered from a snapshot): retry. HTTP 503.
class WP_EXCEPTION UnavailableError : public Error {
 public:
  using Error::Error;
};

/// A fault inside waypoint or the system (I/O, broken invariant). Maps to HTTP 5xx.
class WP_EXCEPTION InternalError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace wp

/// Throws wp::UserError with the streamed message when `cond` is false.
/// Usage: WP_THROW_IF_NOT(M >= 2, "M must be at least 2, got ", M);
#define WP_THROW_IF_NOT(cond, ...)                                         \
  do {                                                                     \
    if (!(cond)) throw ::wp::UserError(::wp::detail::concat(__VA_ARGS__)); \
  } while (0)

/// Throws wp::InternalError (with file and line) when `cond` is false.
#define WP_THROW_INTERNAL_IF_NOT(cond, ...)                                                        \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      throw ::wp::InternalError(::wp::detail::concat(__FILE__, ":", __LINE__, ": ", __VA_ARGS__)); \
  } while (0)
