#include "engine/formula.h"

#include <cmath>

#include "engine/json_fields.h"
#include "engine/json_path.h"
#include "engine/json_value.h"
#include "engine/packed_payload.h"
#include "index/error.h"

namespace wp::engine {

using nlohmann::json;

struct Formula::Node {
  enum class Op {
    kConstant,   ///< `number`
    kScore,      ///< $score[index]
    kPayload,    ///< the number at `path`
    kCondition,  ///< conditions_[index] holds: 1, else 0
    kGeoDistance,
    kDatetime,     ///< `number` seconds
    kDatetimeKey,  ///< the datetime at `path`, in seconds
    kMult,
    kSum,
    kNeg,
    kAbs,
    kDiv,  ///< args: left, right; by_zero_default: `number` when `has_default`
    kSqrt,
    kPow,  ///< args: base, exponent
    kExp,
    kLog10,
    kLn,
    kLinDecay,  ///< args: x (and target); `number`: lambda
    kExpDecay,
    kGaussDecay,
  };
  Op op = Op::kConstant;
  double number = 0;
  bool has_default = false;
  size_t index = 0;
  JsonPath path;
  std::string key;    ///< the path as given (messages)
  std::string canon;  ///< the path as payload_defaults_ keys it (json_path_text)
  GeoPoint origin;
  std::vector<Node> args;
};

namespace {

using Node = Formula::Node;
using Op = Node::Op;

/// "$score" (0) or "$score[i]": i; nullopt for anything else beginning with '$'.
std::optional<size_t> score_index(const std::string& v) {
  if (v == "$score") return 0;
  const std::string head = "$score[";
  if (v.size() < head.size() + 2 || v.compare(0, head.size(), head) != 0 || v.back() != ']') {
    return std::nullopt;
  }
  const std::string digits = v.substr(head.size(), v.size() - head.size() - 1);
  if (digits.empty() || digits.size() > 9) return std::nullopt;
  size_t i = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    i = i * 10 + static_cast<size_t>(c - '0');
  }
  return i;
}

/// A number of the request as Qdrant reads it: a 32-bit float, widened.
double as_f32(const json& j) {
  return static_cast<double>(static_cast<float>(j.get<double>()));
}

bool is_f32(const json& j) {
  return j.is_number() && std::isfinite(static_cast<float>(j.get<double>()));
}

constexpr const char* kUnary[] = {"neg", "abs", "sqrt", "exp", "log10", "ln"};
constexpr Op kUnaryOps[] = {Op::kNeg, Op::kAbs, Op::kSqrt, Op::kExp, Op::kLog10, Op::kLn};
constexpr const char* kDecays[] = {"lin_decay", "exp_decay", "gauss_decay"};
constexpr Op kDecayOps[] = {Op::kLinDecay, Op::kExpDecay, Op::kGaussDecay};

}  // namespace

/// Reads a formula's expressions into nodes, its conditions into the formula's filters.
class FormulaParser {
 public:
  explicit FormulaParser(Formula& f) : f_(f) {}

  Node parse(const json& e, const std::string& where, size_t depth) {
    WP_THROW_IF_NOT(depth < kMaxFormulaDepth, where, ": a formula nests at most ", kMaxFormulaDepth,
                    " levels deep");
    WP_THROW_IF_NOT(++nodes_ <= kMaxFormulaNodes, where, ": a formula has at most ",
                    kMaxFormulaNodes, " expressions");
    Node n;
    if (e.is_number()) {
      WP_THROW_IF_NOT(is_f32(e), where, ": expected a finite number (32-bit float), got ",
                      show_json(e));
      n.number = as_f32(e);
      return n;
    }
    if (e.is_string()) return variable(e.get<std::string>(), where);
    WP_THROW_IF_NOT(e.is_object(), where,
                    ": expected a number, a variable (\"$score\", \"$score[i]\" or a payload key), "
                    "a condition or an expression object such as {\"sum\": [...]}, got ",
                    show_json(e));
    if (e.size() == 1) {
      const std::string& name = e.begin().key();
      const json& arg = e.begin().value();
      const std::string at = where + "." + name;
      if (name == "mult" || name == "sum") {
        WP_THROW_IF_NOT(arg.is_array(), at, ": expected an array of expressions, got ",
                        show_json(arg));
        n.op = name == "mult" ? Op::kMult : Op::kSum;
        for (size_t i = 0; i < arg.size(); ++i) {
          n.args.push_back(parse(arg[i], at_index(at, i), depth + 1));
        }
        return n;
      }
      for (size_t k = 0; k < std::size(kUnary); ++k) {
        if (name != kUnary[k]) continue;
        n.op = kUnaryOps[k];
        n.args.push_back(parse(arg, at, depth + 1));
        return n;
      }
      if (name == "div") return div(arg, at, depth);
      if (name == "pow") return pow(arg, at, depth);
      for (size_t k = 0; k < std::size(kDecays); ++k) {
        if (name == kDecays[k]) return decay(kDecayOps[k], arg, at, depth);
      }
      if (name == "geo_distance") return geo_distance(arg, at);
      if (name == "datetime") {
        WP_THROW_IF_NOT(arg.is_string(), at, ": expected an RFC 3339 datetime string, got ",
                        show_json(arg));
        const std::optional<int64_t> micros = parse_datetime(arg.get<std::string>());
        WP_THROW_IF_NOT(micros, at, ": expected an RFC 3339 datetime, got ", show_json(arg));
        n.op = Op::kDatetime;
        n.number = static_cast<double>(*micros) / 1e6;
        return n;
      }
      if (name == "datetime_key") {
        n.op = Op::kDatetimeKey;
        key_path(n, arg, at);
        return n;
      }
    }
    // Anything else is a condition (a field condition, has_id, is_empty, ..., a nested filter).
    n.op = Op::kCondition;
    n.index = f_.conditions_.size();
    f_.conditions_.push_back(Filter::parse_condition(e, where));
    return n;
  }

  size_t nodes() const { return nodes_; }

 private:
  Node variable(const std::string& v, const std::string& where) {
    Node n;
    if (!v.empty() && v[0] == '$') {
      const std::optional<size_t> i = score_index(v);
      WP_THROW_IF_NOT(i, where, ": unknown variable ", show_json(json(v)),
                      "; the reserved ones are \"$score\" and \"$score[i]\"");
      n.op = Op::kScore;
      n.index = *i;
      return n;
    }
    n.op = Op::kPayload;
    key_path(n, json(v), where);
    return n;
  }

  void key_path(Node& n, const json& key, const std::string& where) {
    n.path = parse_json_path(key, where);
    n.key = key.get<std::string>();
    n.canon = json_path_text(n.path);
    f_.reads_payload_ = true;
  }

  Node div(const json& arg, const std::string& at, size_t depth) {
    WP_THROW_IF_NOT(arg.is_object(), at,
                    ": expected {\"left\", \"right\", \"by_zero_default\"}, got ", show_json(arg));
    check_fields(arg, at, {"left", "right", "by_zero_default"});
    Node n;
    n.op = Op::kDiv;
    n.args.push_back(parse(required(arg, "left", at), at + ".left", depth + 1));
    n.args.push_back(parse(required(arg, "right", at), at + ".right", depth + 1));
    if (arg.contains("by_zero_default") && !arg["by_zero_default"].is_null()) {
      const json& d = arg["by_zero_default"];
      WP_THROW_IF_NOT(is_f32(d), at, ".by_zero_default: expected a finite number, got ",
                      show_json(d));
      n.number = as_f32(d);
      n.has_default = true;
    }
    return n;
  }

  Node pow(const json& arg, const std::string& at, size_t depth) {
    WP_THROW_IF_NOT(arg.is_object(), at, ": expected {\"base\", \"exponent\"}, got ",
                    show_json(arg));
    check_fields(arg, at, {"base", "exponent"});
    Node n;
    n.op = Op::kPow;
    n.args.push_back(parse(required(arg, "base", at), at + ".base", depth + 1));
    n.args.push_back(parse(required(arg, "exponent", at), at + ".exponent", depth + 1));
    return n;
  }

  /// Qdrant's decay parameters, turned into one lambda as Qdrant turns them.
  Node decay(Op op, const json& arg, const std::string& at, size_t depth) {
    WP_THROW_IF_NOT(arg.is_object(), at,
                    ": expected {\"x\", \"target\", \"scale\", \"midpoint\"}, got ",
                    show_json(arg));
    check_fields(arg, at, {"x", "target", "scale", "midpoint"});
    Node n;
    n.op = op;
    n.args.push_back(parse(required(arg, "x", at), at + ".x", depth + 1));
    if (arg.contains("target") && !arg["target"].is_null()) {
      n.args.push_back(parse(arg["target"], at + ".target", depth + 1));
    }
    auto param = [&](const char* name, double def) {
      if (!arg.contains(name) || arg[name].is_null()) return def;
      WP_THROW_IF_NOT(is_f32(arg[name]), at, ".", name, ": expected a finite number, got ",
                      show_json(arg[name]));
      return as_f32(arg[name]);
    };
    const double midpoint = param("midpoint", 0.5), scale = param("scale", 1.0);
    if (op == Op::kLinDecay) {
      WP_THROW_IF_NOT(midpoint >= 0 && midpoint <= 1, at,
                      ".midpoint: expected a number in 0..1 for lin_decay, got ", midpoint);
    } else {
      WP_THROW_IF_NOT(midpoint > 0 && midpoint < 1, at,
                      ".midpoint: expected a number strictly between 0 and 1, got ", midpoint);
    }
    WP_THROW_IF_NOT(scale > 0, at, ".scale: expected a number > 0, got ", scale);
    if (op == Op::kLinDecay) {
      n.number = (1 - midpoint) / scale;
    } else if (op == Op::kExpDecay) {
      n.number = std::log(midpoint) / scale;
    } else {
      n.number = std::log(midpoint) / (scale * scale);
    }
    return n;
  }

  Node geo_distance(const json& arg, const std::string& at) {
    WP_THROW_IF_NOT(arg.is_object(), at,
                    ": expected {\"origin\": {\"lon\", \"lat\"}, \"to\": key}, got ",
                    show_json(arg));
    check_fields(arg, at, {"origin", "to"});
    Node n;
    n.op = Op::kGeoDistance;
    n.origin = parse_geo_point(required(arg, "origin", at), at + ".origin");
    key_path(n, required(arg, "to", at), at + ".to");
    return n;
  }

  static const json& required(const json& obj, const char* name, const std::string& at) {
    WP_THROW_IF_NOT(obj.contains(name) && !obj[name].is_null(), at, ".", name, ": missing");
    return obj[name];
  }

  Formula& f_;
  size_t nodes_ = 0;
};

Formula::Formula() = default;
Formula::Formula(Formula&&) noexcept = default;
Formula& Formula::operator=(Formula&&) noexcept = default;
Formula::~Formula() = default;

Formula Formula::parse(const json& formula, const json& defaults, const std::string& where) {
  Formula f;
  f.where_ = join(where, "formula");
  FormulaParser parser(f);
  f.root_ = std::make_unique<Node>(parser.parse(formula, f.where_, 0));
  const std::string at = join(where, "defaults");
  if (defaults.is_null()) return f;
  WP_THROW_IF_NOT(defaults.is_object(), at,
                  ": expected an object of variables and their values, got ", show_json(defaults));
  for (const auto& [name, value] : defaults.items()) {
    const std::string field = at + "." + name;
    if (!name.empty() && name[0] == '$') {
      const std::optional<size_t> i = score_index(name);
      WP_THROW_IF_NOT(i, field, ": unknown variable; the reserved ones are \"$score\" and ",
                      "\"$score[i]\"");
      f.score_defaults_[*i] = value;
    } else {
      f.payload_defaults_[json_path_text(parse_json_path(json(name), field))] = value;
    }
  }
  return f;
}

namespace {

/// What evaluating one point needs beside the formula.
struct Eval {
  const Formula::Point& p;
  const std::map<size_t, json>& score_defaults;
  const std::map<std::string, json>& payload_defaults;
  const std::vector<Filter>& conditions;
  const std::string& where;
};

std::string shown(const Eval& ev);

[[noreturn]] void not_finite(const Eval& ev, const std::string& what) {
  throw UserError(ev.where + ": " + what + " is not a finite number (point " + shown(ev) + ")");
}

double finite(const Eval& ev, double x, const std::string& what) {
  if (!std::isfinite(x)) not_finite(ev, what);
  return x;
}

std::string show_number(double x) {
  json j = x;
  return j.dump();
}

std::string shown(const Eval& ev) {
  return ev.p.id ? show_json(ev.p.id->to_json()) : "?";
}

[[noreturn]] void wrong_kind(const Eval& ev, const Node& n, const json& v, const char* kind) {
  throw UserError(ev.where + ": expected a " + kind + " at " + show_json(json(n.key)) +
                  " for point " + shown(ev) + ", got " + show_json(v));
}

/// read(v) of the one value at node n's key, v a view (MsgValue, JsonRef) of: the payload's
/// values there, read in place (an array reached opened, unless the path ends in "[]"), when
/// there is one; none: the default, if any. read returns nullopt where the value is not of the
/// kind needed; several values are an array, of no kind.
template <typename Read>
double read_value(const Eval& ev, const Node& n, const char* kind, const Read& read) {
  const bool open = n.path.back().kind != JsonPathStep::Kind::kEach;
  size_t count = 0;
  std::optional<MsgValue> first;
  json all;  // every value, when there are several (the error shows them)
  auto walk = [&](bool keep) {
    any_value_at(n.path, MsgValue(*ev.p.payload), [&](const MsgValue& v) {
      auto one = [&](const MsgValue& e) {
        if (count++ == 0) first = e;
        if (keep) all.push_back(json::from_msgpack(e.bytes()));
        return false;
      };
      if (open && v.is_array()) return v.any_element(one);
      return one(v);
    });
  };
  if (ev.p.payload) walk(false);
  if (count == 1) {
    if (const std::optional<double> x = read(*first)) return *x;
    wrong_kind(ev, n, json::from_msgpack(first->bytes()), kind);
  }
  if (count > 1) {
    count = 0;
    walk(true);
    wrong_kind(ev, n, all, kind);
  }
  const auto it = ev.payload_defaults.find(n.canon);
  if (it == ev.payload_defaults.end()) {
    throw UserError(ev.where + ": no " + kind + " at " + show_json(json(n.key)) + " for point " +
                    shown(ev) + ", in its payload or in defaults");
  }
  if (const std::optional<double> x = read(JsonRef(it->second))) return *x;
  wrong_kind(ev, n, it->second, kind);
}

double eval(const Eval& ev, const Node& n) {
  switch (n.op) {
    case Op::kConstant:
      return n.number;
    case Op::kScore: {
      if (const std::optional<float> s = ev.p.prefetch_score(n.index)) return *s;
      const auto it = ev.score_defaults.find(n.index);
      return it != ev.score_defaults.end() && it->second.is_number() ? it->second.get<double>() : 0;
    }
    case Op::kPayload:
      return read_value(ev, n, "number", [](const auto& v) -> std::optional<double> {
        if (!v.is_number()) return std::nullopt;
        return v.number();
      });
    case Op::kCondition:
      return ev.p.holds(ev.conditions[n.index]) ? 1 : 0;
    case Op::kGeoDistance:
      return read_value(ev, n, "geo point", [&](const auto& v) -> std::optional<double> {
        const std::optional<GeoPoint> to = geo_point_in(v);
        if (!to || std::abs(to->lon) > 180 || std::abs(to->lat) > 90) return std::nullopt;
        return geo_distance_m(n.origin, *to);
      });
    case Op::kDatetime:
      return n.number;
    case Op::kDatetimeKey:
      return read_value(ev, n, "datetime", [](const auto& v) -> std::optional<double> {
        if (!v.is_string()) return std::nullopt;
        const std::optional<int64_t> micros = parse_datetime(v.string());
        if (!micros) return std::nullopt;
        return static_cast<double>(*micros) / 1e6;
      });
    case Op::kMult: {
      double product = 1;
      for (const Node& a : n.args) {
        const double x = eval(ev, a);
        if (x == 0) return 0;  // the rest is not evaluated, as in Qdrant
        product *= x;
      }
      return product;
    }
    case Op::kSum: {
      double sum = 0;
      for (const Node& a : n.args) sum += eval(ev, a);
      return sum;
    }
    case Op::kNeg:
      return -eval(ev, n.args[0]);
    case Op::kAbs:
      return std::abs(eval(ev, n.args[0]));
    case Op::kDiv: {
      const double left = eval(ev, n.args[0]);
      if (left == 0) return 0;  // the right side is not evaluated, as in Qdrant
      const double right = eval(ev, n.args[1]);
      if (right == 0 && n.has_default) return n.number;
      return finite(ev, left / right, show_number(left) + " / " + show_number(right));
    }
    case Op::kSqrt: {
      const double x = eval(ev, n.args[0]);
      return finite(ev, std::sqrt(x), "sqrt(" + show_number(x) + ")");
    }
    case Op::kPow: {
      const double base = eval(ev, n.args[0]), exponent = eval(ev, n.args[1]);
      return finite(ev, std::pow(base, exponent),
                    "pow(" + show_number(base) + ", " + show_number(exponent) + ")");
    }
    case Op::kExp: {
      const double x = eval(ev, n.args[0]);
      return finite(ev, std::exp(x), "exp(" + show_number(x) + ")");
    }
    case Op::kLog10: {
      const double x = eval(ev, n.args[0]);
      return finite(ev, std::log10(x), "log10(" + show_number(x) + ")");
    }
    case Op::kLn: {
      const double x = eval(ev, n.args[0]);
      return finite(ev, std::log(x), "ln(" + show_number(x) + ")");
    }
    case Op::kLinDecay:
    case Op::kExpDecay:
    case Op::kGaussDecay: {
      const double x = eval(ev, n.args[0]);
      const double target = n.args.size() > 1 ? eval(ev, n.args[1]) : 0;
      const double d = x - target, lambda = n.number;
      if (n.op == Op::kLinDecay) return std::max(0.0, 1 - lambda * std::abs(d));
      if (n.op == Op::kExpDecay) return std::exp(lambda * std::abs(d));
      return std::exp(lambda * d * d);
    }
  }
  return 0;
}

}  // namespace

float Formula::score(const Point& p) const {
  const Eval ev{p, score_defaults_, payload_defaults_, conditions_, where_};
  const double x = eval(ev, *root_);
  const float f = static_cast<float>(x);
  if (!std::isfinite(f)) not_finite(ev, "the score " + show_number(x) + " as a 32-bit float");
  return f;
}

}  // namespace wp::engine
