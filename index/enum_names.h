#pragma once
/**
 * @file enum_names.h
 * One table of names per enum, read both ways: parse a name (with an error that lists the
 * accepted ones) and name a value. Every enum that appears in files, requests or on the command
 * line goes through it (metrics, index kinds, quantization, the graph's initial graph, pruning
 * and entry).
 */
#include <array>
#include <cstddef>
#include <string>

#include "index/error.h"

namespace wp::index {

template <typename E>
struct EnumName {
  E value;
  const char* name;
};

template <typename E, size_t N>
using EnumNames = std::array<EnumName<E>, N>;

/// The value called `name`; throws UserError("<field> must be one of a, b, c; got 'x'").
template <typename E, size_t N>
E parse_enum(const std::string& name, const EnumNames<E, N>& names, const std::string& field) {
  for (const EnumName<E>& n : names) {
    if (name == n.name) return n.value;
  }
  std::string list;
  for (size_t i = 0; i < N; ++i) list += (i ? ", " : "") + std::string(names[i].name);
  throw UserError(field + " must be one of " + list + "; got '" + name + "'");
}

/// The name of `value` ("?" for a value outside the table).
template <typename E, size_t N>
const char* enum_name(E value, const EnumNames<E, N>& names) {
  for (const EnumName<E>& n : names) {
    if (n.value == value) return n.name;
  }
  return "?";
}

/// True when `name` names a value of the table.
template <typename E, size_t N>
bool is_enum_name(const std::string& name, const EnumNames<E, N>& names) {
  for (const EnumName<E>& n : names) {
    if (name == n.name) return true;
  }
  return false;
}

}  // namespace wp::index
