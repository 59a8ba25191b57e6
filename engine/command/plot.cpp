#include "engine/command/plot.h"

#include <algorithm>
#include <cstdio>
#include <limits>
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
void run_gnuplot(const std::string& path, const std::string& script) {
  FILE* p = ::popen("gnuplot 2>&1", "w");
  WP_THROW_IF_NOT(p, "cannot start gnuplot (install gnuplot-nox) to write '", path, "'");
  std::fwrite(script.data(), 1, script.size(), p);
  const int rc = ::pclose(p);
  WP_THROW_IF_NOT(rc == 0, "gnuplot failed (exit status ", rc, ") writing '", path,
                  "'; is gnuplot-nox installed?");
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
  run_gnuplot(path, gp.str());
}

void write_png_graph(const std::string& path, const GraphPlot& g) {
  WP_THROW_IF_NOT(
      g.y.size() == g.x.size() && g.label.size() == g.x.size() && g.weight.size() == g.x.size(),
      "graph plot: one position, label and weight per node");
  const double wmax = g.weight.empty() ? 1.0 : *std::max_element(g.weight.begin(), g.weight.end());
  std::ostringstream gp;
  gp << "set terminal pngcairo size 1000,900 enhanced font 'sans,11'\n"
     << "set output " << quote(path) << "\n"
     << "set title " << quote(g.title) << " noenhanced\n"
     << "unset xtics\nunset ytics\nset border 0\nset key outside right top\n"
     << "$edges << EOD\n";
  for (const auto& [u, v] : g.edges) {
    WP_THROW_IF_NOT(u < g.x.size() && v < g.x.size(), "graph plot: edge to a missing node");
    gp << g.x[u] << " " << g.y[u] << " " << g.x[v] - g.x[u] << " " << g.y[v] - g.y[u] << "\n";
  }
  gp << "EOD\n$nodes << EOD\n";
  for (size_t i = 0; i < g.x.size(); ++i) {
    gp << g.x[i] << " " << g.y[i] << " " << 0.5 + 3.5 * g.weight[i] / std::max(wmax, 1e-12) << " "
       << g.label[i] << "\n";
  }
  gp << "EOD\n";
  // One plot element per label, so that the key names the classes.
  std::vector<int> labels = g.label;
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  gp << "plot $edges using 1:2:3:4 with vectors nohead lc rgb '#b0b0b0' lw 0.6 notitle";
  for (size_t i = 0; i < labels.size(); ++i) {
    // Ten distinct colours (matplotlib's tab10); gnuplot's own line types repeat after eight.
    static const char* const kColours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                           "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
    gp << ", $nodes using 1:($4 == " << labels[i] << " ? $2 : 1/0):3 with points pt 7 ps variable"
       << " lc rgb '" << kColours[i % 10] << "' title '" << labels[i] << "'";
  }
  gp << "\n";
  run_gnuplot(path, gp.str());
}

Series pareto_frontier(const Series& s) {
  std::vector<size_t> order(s.x.size());
  std::iota(order.begin(), order.end(), 0);
  // Highest x first; among equal x, highest y first.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return s.x[a] != s.x[b] ? s.x[a] > s.x[b] : s.y[a] > s.y[b];
  });
  Series out{s.name, {}, {}};
  double best_y = -std::numeric_limits<double>::infinity();
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
