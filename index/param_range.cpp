#include "index/param_range.h"

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
  if (integer) {
    got << static_cast<long long>(v);
  } else {
    got << v;
  }
  throw UserError(std::string(name) + " must be in " + bounds() + " (" + meaning + "), got " +
                  got.str());
}

}  // namespace wp::index
