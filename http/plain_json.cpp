// simdjson's DOM parser validates the whole document (UTF-8, structure, numbers) and picks its SIMD
// kernels at run time; its On-Demand API is compiled for the build's target (x86-64 without AVX:
// its scalar fallback).
#include "http/plain_json.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "engine/json_value.h"

namespace wp::http::plain {

/// A parser and the padded copy of the text it reads.
struct LargeTape {
  sj::dom::parser parser;
  std::string text;
};

namespace {

/// The large tapes kept between requests.
struct LargeTapes {
  std::mutex mu;
  std::vector<std::unique_ptr<LargeTape>> free;
};

LargeTapes& large_tapes() {
  static LargeTapes* tapes = new LargeTapes;  // never destroyed: pool threads may outlive main
  return *tapes;
}

}  // namespace

void release_large_tapes() {
  std::vector<std::unique_ptr<LargeTape>> freed;
  LargeTapes& tapes = large_tapes();
  std::lock_guard<std::mutex> g(tapes.mu);
  freed.swap(tapes.free);
}

PlainJson::PlainJson() = default;

PlainJson::~PlainJson() {
  if (!large_) return;
  LargeTapes& tapes = large_tapes();
  std::lock_guard<std::mutex> g(tapes.mu);
  if (tapes.free.size() < kKeptLargeTapes) tapes.free.push_back(std::move(large_));
}

bool PlainJson::parse(std::string_view body, size_t max_bytes) {
  if (body.size() > max_bytes) return false;
  sj::dom::parser* parser = nullptr;
  std::string* text = nullptr;
  if (body.size() <= kKeptTape) {
    // One tape a thread, allocated once for kKeptTape bytes at most kMaxJsonDepth deep (a parser
    // allocated by its first parse would take simdjson's default depth, 1024).
    thread_local sj::dom::parser kept;
    thread_local std::string kept_text;
    thread_local bool allocated = false;
    if (!allocated) {
      if (kept.allocate(kKeptTape, engine::kMaxJsonDepth) != sj::SUCCESS) return false;
      allocated = true;
    }
    parser = &kept;
    text = &kept_text;
  } else {
    if (!large_) {
      LargeTapes& tapes = large_tapes();
      std::lock_guard<std::mutex> g(tapes.mu);
      if (!tapes.free.empty()) {
        large_ = std::move(tapes.free.back());
        tapes.free.pop_back();
      }
    }
    if (!large_) large_ = std::make_unique<LargeTape>();
    parser = &large_->parser;
    // A kept tape grows to the body, never shrinks (a smaller allocation would fault again).
    if (parser->capacity() < body.size() &&
        parser->allocate(body.size(), engine::kMaxJsonDepth) != sj::SUCCESS) {
      return false;
    }
    text = &large_->text;
  }
  text->reserve(body.size() + sj::SIMDJSON_PADDING);  // one allocation, one copy
  text->assign(body.data(), body.size());
  text->append(sj::SIMDJSON_PADDING, '\0');
  return parser->parse(text->data(), body.size(), false).get(root_) == sj::SUCCESS;
}

bool read_count(sj::dom::element v, size_t lo, size_t hi, size_t& out) {
  uint64_t x = 0;
  if (v.get_uint64().get(x) != sj::SUCCESS || x < lo || x > hi) return false;
  out = static_cast<size_t>(x);
  return true;
}

bool read_bool(sj::dom::element v, bool& out) {
  return v.get_bool().get(out) == sj::SUCCESS;
}

bool read_float(sj::dom::element v, float& out) {
  double x = 0;
  if (v.get_double().get(x) != sj::SUCCESS) return false;
  out = static_cast<float>(x);
  return std::isfinite(out);
}

bool append_vector(sj::dom::element v, std::vector<float>& out, size_t* size) {
  sj::dom::array a;
  if (v.get_array().get(a) != sj::SUCCESS) return false;
  const size_t before = out.size();
  // a.size() saturates at 2^24 - 1: a hint only. Grown geometrically: a multivector's rows are
  // appended one after another (reserving each row's exact end copied every earlier row again).
  const size_t want = before + a.size();
  if (want > out.capacity()) out.reserve(std::max(want, 2 * out.capacity()));
  for (sj::dom::element x : a) {
    float f = 0;
    if (!read_float(x, f)) return false;
    out.push_back(f);
  }
  if (size) *size = out.size() - before;
  return out.size() > before;
}

}  // namespace wp::http::plain
