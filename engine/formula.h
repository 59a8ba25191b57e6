#pragma once
/**
 * @file formula.h
 * Qdrant's formula query (score boosting, Qdrant 1.14): the points of a query's prefetches scored
 * again by an expression of their prefetch scores, payload values and conditions.
 *
 *   {"prefetch": [...], "query": {"formula": EXPR, "defaults": {VARIABLE: value}}}
 *
 * EXPR is one of
 *  - a number (a constant), "$score" or "$score[i]" (the point's score in prefetch i; 0 when the
 *    point is not among that prefetch's points, unless `defaults` gives one), any other string (a
 *    payload key path: the number there);
 *  - a condition of a filter (1 when it holds for the point, else 0);
 *  - {"mult": [EXPR...]}, {"sum": [EXPR...]}, {"neg": EXPR}, {"abs": EXPR},
 *    {"div": {"left", "right", "by_zero_default"}}, {"sqrt": EXPR},
 *    {"pow": {"base", "exponent"}}, {"exp": EXPR}, {"log10": EXPR}, {"ln": EXPR};
 *  - {"geo_distance": {"origin": {"lon", "lat"}, "to": key}} (meters to the geo point at key);
 *  - {"datetime": "2025-01-01T00:00:00Z"} and {"datetime_key": key} (seconds since 1970);
 *  - {"lin_decay" | "exp_decay" | "gauss_decay": {"x", "target", "scale", "midpoint"}}: 1 at
 *    x = target, `midpoint` at |x - target| = scale (Qdrant's decay functions).
 *
 * As Qdrant evaluates it: in double precision; a payload key's values are those a filter reads
 * there, an array reached opened (unless the path ends in "[]"); no value takes the default, and
 * a missing or non-numeric value without one is an error; a product stops at a factor 0 and a
 * quotient with a numerator 0 is 0 (neither evaluates the rest); a quotient, root, power,
 * exponential or logarithm that is not finite is an error (a quotient by 0 with by_zero_default
 * is that); the result must be a finite float.
 */
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/filter.h"

namespace wp::engine {

/// Nodes in one formula, at most: each point's score walks them all once.
inline constexpr size_t kMaxFormulaNodes = 256;
/// How deep a formula nests, at most (its evaluation recurses once a level).
inline constexpr size_t kMaxFormulaDepth = 32;

class Formula {
 public:
  /// One point as the formula reads it.
  struct Point {
    /// Its score in prefetch i; nullopt when it is not among that prefetch's points.
    std::function<std::optional<float>(size_t)> prefetch_score;
    /// Its payload, read in place (only when reads_payload(); null: an empty one).
    const PackedPayload* payload = nullptr;
    /// Whether a condition's filter holds for it.
    std::function<bool(const Filter&)> holds;
    /// Its id (messages name it).
    const PointId* id = nullptr;
  };

  /**
   * Parses `formula` and `defaults` (an object of variables, "$score[i]" or key paths, and their
   * values; null: none) of a query at `where` ("query": its fields are named "query.formula...",
   * "query.defaults..."). Throws UserError naming the field.
   */
  static Formula parse(const nlohmann::json& formula, const nlohmann::json& defaults,
                       const std::string& where);

  Formula(Formula&&) noexcept;
  Formula& operator=(Formula&&) noexcept;
  ~Formula();

  /// Whether a point's payload is read (a key's value, a datetime or geo point at a key).
  bool reads_payload() const { return reads_payload_; }
  /// Whether a condition is tested.
  bool tests_conditions() const { return !conditions_.empty(); }

  /// The point's score. Throws UserError (naming the formula and the point) where Qdrant answers
  /// an error: a value missing or not of the kind needed, a result that is not finite.
  float score(const Point& p) const;

  struct Node;  ///< implementation detail (an expression tree)

 private:
  friend class FormulaParser;
  Formula();
  std::unique_ptr<Node> root_;
  std::vector<Filter> conditions_;
  std::map<size_t, nlohmann::json> score_defaults_;         ///< "$score[i]" -> value
  std::map<std::string, nlohmann::json> payload_defaults_;  ///< a key path's steps -> value
  bool reads_payload_ = false;
  std::string where_;  ///< "query.formula"
};

}  // namespace wp::engine
