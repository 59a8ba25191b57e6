#pragma once
/**
 * @file plot.h
 * Line plots written as PNG through gnuplot (Debian's gnuplot-nox, pngcairo terminal): bench's
 * recall/QPS Pareto curves and the training curves of learn/. gnuplot draws axes, log scales,
 * legends and text far better than a raster writer of our own would; the data goes to it inline.
 */
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace wp::cli {

struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
};

struct PlotSpec {
  std::string title;
  std::string xlabel;
  std::string ylabel;
  bool log_y = false;
  std::vector<Series> series;
};

/// Renders `spec` to a PNG at `path`; throws UserError when gnuplot is missing or fails.
void write_png_plot(const std::string& path, const PlotSpec& spec);

/// A graph drawn in the plane: nodes at (x, y) coloured by a class label and sized by a weight,
/// directed edges as thin lines.
struct GraphPlot {
  std::string title;
  std::vector<double> x, y;    ///< node positions
  std::vector<int> label;      ///< class per node (colour)
  std::vector<double> weight;  ///< node size, relative to the largest
  std::vector<std::pair<uint32_t, uint32_t>> edges;
};

/// Renders a GraphPlot to a PNG at `path` (gnuplot, as write_png_plot).
void write_png_graph(const std::string& path, const GraphPlot& g);

/// The points of (x, y) not dominated by another (higher x and higher y), sorted by x: the
/// ann-benchmarks Pareto frontier of recall (x) against QPS (y).
Series pareto_frontier(const Series& s);

}  // namespace wp::cli
