#include "engine/cli/plot.h"

#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sstream>

#include "index/error.h"

namespace wp::cli {

namespace {
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}
}  // namespace

void write_png_plot(const std::string& path, const PlotSpec& spec) {
  std::ostringstream gp;
  gp << "set terminal pngcairo size 1000,650 enhanced font 'sans,11'\n"
     << "set output " << quote(path) << "\n"
     << "set title " << quote(spec.title) << " noenhanced\n"
     << "set xlabel " << quote(spec.xlabel) << " noenhanced\n"
     << "set ylabel " << quote(spec.ylabel) << " noenhanced\n"
     << "set grid\nset key outside right top noenhanced\n";
  if (spec.log_y) gp << "set logscale y\n";
  for (size_t i = 0; i < spec.series.size(); ++i) {
    gp << "$d" << i << " << EOD\n";
    const Series& s = spec.series[i];
    for (size_t j = 0; j < s.x.size(); ++j) gp << s.x[j] << " " << s.y[j] << "\n";
    gp << "EOD\n";
  }
  gp << "plot ";
  for (size_t i = 0; i < spec.series.size(); ++i) {
    gp << (i ? ", " : "") << "$d" << i << " using 1:2 with linespoints lw 2 pt 7 ps 0.8 title "
       << quote(spec.series[i].name);
  }
  gp << "\n";
  FILE* p = ::popen("gnuplot 2>&1", "w");
  WP_THROW_IF_NOT(p, "cannot start gnuplot (install gnuplot-nox) to write '", path, "'");
  const std::string script = gp.str();
  std::fwrite(script.data(), 1, script.size(), p);
  const int rc = ::pclose(p);
  WP_THROW_IF_NOT(rc == 0, "gnuplot failed (exit status ", rc, ") writing '", path,
                  "'; is gnuplot-nox installed?");
}

Series pareto_frontier(const Series& s) {
  std::vector<size_t> order(s.x.size());
  std::iota(order.begin(), order.end(), 0);
  // Highest x first; among equal x, highest y first.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return s.x[a] != s.x[b] ? s.x[a] > s.x[b] : s.y[a] > s.y[b];
  });
  Series out{s.name, {}, {}};
  double best_y = -1;
  for (size_t i : order) {
    if (s.y[i] > best_y) {
      out.x.push_back(s.x[i]);
      out.y.push_back(s.y[i]);
      best_y = s.y[i];
    }
  }
  std::reverse(out.x.begin(), out.x.end());
  std::reverse(out.y.begin(), out.y.end());
  return out;
}

}  // namespace wp::cli
