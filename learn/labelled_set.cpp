#include "learn/labelled_set.h"

#include <algorithm>
#include <filesystem>

#include "index/error.h"
#include "index/vector_io.h"

namespace wp::learn {

LabelledSet LabelledSet::select(const std::function<bool(size_t, int)>& keep) const {
  LabelledSet out;
  out.x = index::Matrix(0, x.d);
  for (size_t i = 0; i < y.size(); ++i) {
    if (!keep(i, y[i])) continue;
    out.x.data.insert(out.x.data.end(), x.row(i), x.row(i) + x.d);
    out.y.push_back(y[i]);
  }
  out.x.n = out.y.size();
  return out;
}

LabelledSet LabelledSet::subset(const std::vector<int>& classes) const {
  return select(
      [&](size_t, int c) { return std::find(classes.begin(), classes.end(), c) != classes.end(); });
}

LabelledSet LabelledSet::half(int parity) const {
  return select([&](size_t i, int) { return (i & 1) == static_cast<size_t>(parity & 1); });
}

std::vector<int> LabelledSet::classes() const {
  std::vector<int> c(y.begin(), y.end());
  std::sort(c.begin(), c.end());
  c.erase(std::unique(c.begin(), c.end()), c.end());
  return c;
}

namespace {
LabelledSet read_labelled(const std::string& vectors, const std::string& labels, size_t limit) {
  LabelledSet s;
  s.x = index::read_vectors(vectors, limit);
  const index::IntMatrix l = index::read_ivecs(labels, s.x.n);
  WP_THROW_IF_NOT(l.n == s.x.n && l.d >= 1, "'", labels, "' has ", l.n, " labels for ", s.x.n,
                  " vectors");
  for (size_t i = 0; i < l.n; ++i) s.y.push_back(static_cast<int>(l.data[i * l.d]));
  return s;
}
}  // namespace

LabelledSet load_labelled(const std::string& dir, size_t limit) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (fs::exists(d / "base_labels.ivecs")) {
    return read_labelled((d / "base.fvecs").string(), (d / "base_labels.ivecs").string(), limit);
  }
  if (fs::exists(d / "labels.ivecs")) {
    // digits: labels.ivecs covers digits.fvecs (base.fvecs is its first rows).
    const std::string vectors = fs::exists(d / "digits.fvecs") ? (d / "digits.fvecs").string()
                                                               : (d / "base.fvecs").string();
    return read_labelled(vectors, (d / "labels.ivecs").string(), limit);
  }
  throw UserError("'" + dir + "' has no labels (base_labels.ivecs or labels.ivecs)");
}

LabelledSet load_labelled_queries(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path d(dir);
  if (!fs::exists(d / "query_labels.ivecs") || !fs::exists(d / "query.fvecs")) return {};
  return read_labelled((d / "query.fvecs").string(), (d / "query_labels.ivecs").string(),
                       static_cast<size_t>(-1));
}

}  // namespace wp::learn
