#include "index/param_range.h"

#include <cmath>
#include <sstream>

#include "index/error.h"

namespace wp::index {

std::string ParamRange::bounds() const {
  std::ostringstream s;
  if (integer) {
    s << static_cast<long long>(lo) << ".." << static_cast<long long>(hi);
  } else {
    s << "[" << lo << ", " << hi << "]";
  }
  return s.str();
}

void ParamRange::check(double v) const {
  if (contains(v)) return;
  std::ostringstream got;
  // An integer parameter is shown as one only when it is one (a huge or fractional value, e.g.
  // from a damaged file, would not convert).
  if (integer && std::isfinite(v) && std::abs(v) < 9e18 && v == std::floor(v)) {
    got << static_cast<long long>(v);
  } else {
    got << v;
  }
  throw UserError(std::string(name) + " must be in " + bounds() + " (" + meaning + "), got " +
                  got.str());
}

}  // namespace wp::index
