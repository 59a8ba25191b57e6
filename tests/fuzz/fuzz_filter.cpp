// libFuzzer target: Qdrant filters (engine/filter.h), parsed from a JSON body as the API reads
// them ({"filter": ...}), then matched against a few payloads and the body's own "payload" (an
// object), each as a JSON tree and as the packed bytes a collection holds, each point holding
// some of the vectors "", "a" and "image" (has_vector): the two answers must be the same (a
// difference aborts, and libFuzzer keeps the input).
#include <cstdio>
#include <cstdlib>

#include "engine/filter.h"
#include "engine/payload_index.h"
#include "fuzz_util.h"
#include "http/request_parsing.h"

namespace {

/// The vectors of point i: bit 0 "", bit 1 "a", bit 2 "image"; key "t" has a text index keeping
/// words of 2 to 5 characters, "p" a prefix index of up to 4, "w" a whitespace index that keeps
/// case, "s" a prefix index with English stopwords and stemmer.
class Held final : public wp::engine::PointFacts {
 public:
  explicit Held(uint64_t bits) : bits_(bits) {}
  bool holds(std::string_view name) const override {
    return (name.empty() && (bits_ & 1)) || (name == "a" && (bits_ & 2)) ||
           (name == "image" && (bits_ & 4));
  }
  const wp::engine::TextParams* text_params(std::string_view key) const override {
    using T = wp::engine::TextParams::Tokenizer;
    static const wp::engine::TextParams bounded{2, 5}, prefix{0, 4, T::kPrefix, true},
        spaced{0, UINT32_MAX, T::kWhitespace, false};
    if (key == "t") return &bounded;
    if (key == "p") return &prefix;
    if (key == "w") return &spaced;
    if (key == "s") return &stemmed();
    return nullptr;
  }

 private:
  /// English stopwords and stemmer, a prefix index.
  static const wp::engine::TextParams& stemmed() {
    static const wp::engine::TextParams p = [] {
      wp::engine::TextParams read;
      wp::engine::parse_payload_schema(
          {{"type", "text"},
           {"tokenizer", "prefix"},
           {"stopwords", "english"},
           {"stemmer", {{"type", "snowball"}, {"language", "english"}}}},
          "field_schema", &read);
      return read;
    }();
    return p;
  }

  uint64_t bits_;
};

void match_both(const wp::engine::Filter& f, const wp::engine::PointId& id,
                const nlohmann::json& payload) {
  const Held vectors(id.num() * 3);
  const bool tree = f.matches(id, payload, &vectors);
  if (f.matches(id, wp::engine::PackedPayload(payload), &vectors) != tree) {
    std::fprintf(stderr, "packed payload answered %d, its tree %d: %s\n", !tree, tree,
                 payload.dump().substr(0, 4000).c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::json payloads[] = {
      nlohmann::json::object(),
      {{"a", 1}, {"t", "x"}, {"f", 2.5}},
      {{"a", {2, 3}}, {"o", {{"b", true}, {"l", {{{"k", "v"}}, {{"k", 5}}}}}}},
      {{"geo", {{"lat", 52.5}, {"lon", 13.4}}}, {"n", nullptr}}};
  wp::fuzz::expect_clean([&] {
    const nlohmann::json body = wp::http::parse_body(wp::fuzz::as_string(data, size));
    const wp::engine::Filter f = wp::http::get_filter(body, "");
    for (uint64_t i = 0; i < 4; ++i) match_both(f, wp::engine::PointId::number(i), payloads[i]);
    const auto own = body.find("payload");
    if (own != body.end() && own->is_object()) match_both(f, wp::engine::PointId::number(4), *own);
  });
  return 0;
}
