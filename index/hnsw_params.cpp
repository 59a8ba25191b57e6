#include "index/hnsw_params.h"

#include "index/enum_names.h"
#include "index/error.h"

namespace wp::index {

namespace {
constexpr EnumNames<Quantization, 2> kQuantizations{
    {{Quantization::kNone, "none"}, {Quantization::kSq8, "sq8"}}};
}  // namespace

Quantization parse_quantization(const std::string& name, const std::string& field) {
  return parse_enum(name, kQuantizations, field);
}

const char* quantization_name(Quantization q) {
  return enum_name(q, kQuantizations);
}

void HnswParams::validate() const {
  kM.check(static_cast<double>(M));
  kEfConstruction.check(static_cast<double>(ef_construction));
  kEfSearch.check(static_cast<double>(ef_search));
  WP_THROW_IF_NOT(consolidate_fraction > 0 && consolidate_fraction <= 1,
                  "consolidate_fraction must be in (0, 1], got ", consolidate_fraction);
  WP_THROW_IF_NOT(quantization == Quantization::kNone || quantization == Quantization::kSq8,
                  "quantization must be none or sq8");
}

}  // namespace wp::index
