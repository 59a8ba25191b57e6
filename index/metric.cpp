#include "index/metric.h"

#include "index/error.h"

namespace wp::index {

Metric parse_metric(const std::string& name, const std::string& field) {
  if (name == "l2") return Metric::kL2;
  if (name == "ip") return Metric::kInnerProduct;
  if (name == "cosine") return Metric::kCosine;
  throw UserError(field + " must be one of l2, ip, cosine; got '" + name + "'");
}

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::kL2:
      return "l2";
    case Metric::kInnerProduct:
      return "ip";
    case Metric::kCosine:
      return "cosine";
  }
  return "?";
}

}  // namespace wp::index
