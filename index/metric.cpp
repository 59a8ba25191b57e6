#include "index/metric.h"

#include "index/enum_names.h"

namespace wp::index {

namespace {
constexpr EnumNames<Metric, 3> kMetrics{
    {{Metric::kL2, "l2"}, {Metric::kInnerProduct, "ip"}, {Metric::kCosine, "cosine"}}};
}  // namespace

Metric parse_metric(const std::string& name, const std::string& field) {
  return parse_enum(name, kMetrics, field);
}

const char* metric_name(Metric m) {
  return enum_name(m, kMetrics);
}

}  // namespace wp::index
