#pragma once
/**
 * @file param_range.h
 * ParamRange: a numeric parameter's accepted range, written once beside the parameter and used by
 * every reader of it: the parameter struct's validate(), the index request parser
 * (engine/index_request.cpp) and the command line (engine/command/args.h). Each reader names the
 * field the way its user wrote it: validate() by the paper's name ("M must be in 2..1024 (links
 * per vertex), got 1"), a request body by its key ("m: expected an integer in 2..1024, got 1"), the
 * command line by its flag ("--M must be in 2..1024, got 1").
 */
#include <string>

namespace wp::index {

struct ParamRange {
  const char* name;     ///< the paper's / the struct's name: "M", "ef_construction"
  const char* key;      ///< in request bodies and stored configurations: "m", "ef_construct"
  const char* flag;     ///< on the command line, without "--": "M", "ef-construction"
  double lo, hi;        ///< inclusive bounds
  bool integer;         ///< an integer parameter (printed lo..hi; else [lo, hi])
  const char* meaning;  ///< what the parameter does, for messages ("links per vertex")

  bool contains(double v) const { return v >= lo && v <= hi; }
  /// "2..1024" or "[1, 4]".
  std::string bounds() const;
  /// Throws UserError("<name> must be in <bounds> (<meaning>), got <v>") unless contains(v).
  void check(double v) const;
};

}  // namespace wp::index
