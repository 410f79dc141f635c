// `llmopt plot`: turn a CSV log (e.g. the training log: step,loss,heldout_loss,lr,tok_s) into a
// PNG line chart, drawn by the project's own report layer so no Python is needed.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli/common.h"
#include "report/line_chart.h"

namespace llmopt::cli {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Plain comma splitting: our logs never quote fields, and a quoted one would be reported as a
// non-numeric cell rather than silently misread.
std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// A CSV with a header row; empty (or absent trailing) cells are NaN, i.e. missing.
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<double>> columns;  // columns[c][row]
};

Result<Table> read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return error(path + ": cannot open file");
  Table t;
  std::string line;
  int line_no = 0;
  while (t.header.empty() && std::getline(in, line)) {
    ++line_no;
    if (!trim(line).empty()) t.header = split_fields(line);
  }
  if (t.header.empty()) return error(path + ": empty file (expected a header row)");
  t.columns.resize(t.header.size());
  while (std::getline(in, line)) {
    ++line_no;
    if (trim(line).empty()) continue;
    std::vector<std::string> f = split_fields(line);
    if (f.size() > t.header.size()) {
      return error(path + ":" + std::to_string(line_no) + ": " + std::to_string(f.size()) + " fields, but the header has " +
                   std::to_string(t.header.size()));
    }
    for (size_t c = 0; c < t.header.size(); ++c) {
      double v = NAN;
      if (c < f.size() && !f[c].empty()) {
        char* end = nullptr;
        v = std::strtod(f[c].c_str(), &end);
        if (end == f[c].c_str() || *end != '\0') {
          return error(path + ":" + std::to_string(line_no) + ": column '" + t.header[c] + "': not a number: '" + f[c] +
                       "'");
        }
      }
      t.columns[c].push_back(v);
    }
  }
  if (t.columns[0].empty()) return error(path + ": no data rows after the header");
  return t;
}

Result<size_t> column_index(const Table& t, const std::string& name) {
  for (size_t i = 0; i < t.header.size(); ++i)
    if (t.header[i] == name) return i;
  std::string known;
  for (const auto& h : t.header) known += (known.empty() ? "" : ", ") + h;
  return error("unknown column '" + name + "' (columns: " + known + ")");
}

}  // namespace

Command register_plot(CLI::App& app) {
  struct Args {
    std::string csv, out, x, title;
    std::vector<std::string> y;
    bool log_y = false;
    int width = 800, height = 500;
  };
  auto args = std::make_shared<Args>();
  CLI::App* sub = app.add_subcommand("plot", "Draw columns of a CSV (header row required) as a PNG line chart");
  sub->add_option("csv", args->csv, "CSV file with a header row, e.g. a training log")->required();
  sub->add_option("-o,--out", args->out, "Output PNG path")->required();
  sub->add_option("--x", args->x, "Column for the x axis (default: the first column)");
  sub->add_option("--y", args->y, "Column(s) to plot, comma separated (default: the second column)")->delimiter(',');
  sub->add_option("--title", args->title, "Chart title (default: the CSV file name)");
  sub->add_flag("--log-y", args->log_y, "Logarithmic y axis (non-positive values are skipped)");
  sub->add_option("--width", args->width, "Image width in pixels")->capture_default_str()->check(CLI::Range(200, 8000));
  sub->add_option("--height", args->height, "Image height in pixels")->capture_default_str()->check(CLI::Range(150, 8000));
  return {sub, [args]() -> int {
            auto table = read_csv(args->csv);
            if (!table.ok()) return fail(table.status());
            const Table& t = *table;
            if (t.header.size() < 2 && args->y.empty()) return fail(args->csv + ": need at least two columns to plot");
            auto xi = args->x.empty() ? Result<size_t>(size_t{0}) : column_index(t, args->x);
            if (!xi.ok()) return fail(xi.status().with_context(args->csv));
            std::vector<std::string> ys = args->y.empty() ? std::vector<std::string>{t.header[1]} : args->y;

            std::vector<report::Series> series;
            size_t points = 0;
            for (const std::string& name : ys) {
              auto yi = column_index(t, trim(name));
              if (!yi.ok()) return fail(yi.status().with_context(args->csv));
              report::Series s{t.header[*yi], {}, {}, report::series_color(series.size())};
              const auto& xs = t.columns[*xi];
              const auto& vs = t.columns[*yi];
              for (size_t r = 0; r < xs.size(); ++r) {
                if (std::isnan(xs[r]) || std::isnan(vs[r])) continue;  // missing cell: no point
                s.x.push_back(xs[r]);
                s.y.push_back(vs[r]);
              }
              points += s.x.size();
              series.push_back(std::move(s));
            }
            if (points == 0) return fail(args->csv + ": the selected columns hold no values");

            report::ChartOptions opt;
            opt.title = args->title.empty() ? std::filesystem::path(args->csv).filename().string() : args->title;
            opt.x_label = t.header[*xi];
            opt.y_label = series.size() == 1 ? series[0].name : "value";
            if (args->log_y) opt.y_label += " (log)";
            opt.width = args->width;
            opt.height = args->height;
            opt.log_y = args->log_y;
            Status st = report::write_line_chart(args->out, series, opt);
            if (!st.ok()) return fail(st);
            std::printf("wrote %s (%zu series, %zu points)\n", args->out.c_str(), series.size(), points);
            return 0;
          }};
}

}  // namespace llmopt::cli
