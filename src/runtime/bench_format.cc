// format_bench(): a bench report as a llama-bench-style markdown table (with the roofline table when
// measured), JSON or CSV.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "runtime/bench.h"

namespace llmopt {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string human_params(double n) {
  if (n >= 1e9) return fmt("%.2f B", n / 1e9);
  if (n >= 1e6) return fmt("%.2f M", n / 1e6);
  if (n >= 1e3) return fmt("%.2f K", n / 1e3);
  return fmt("%.0f", n);
}

// Display width of UTF-8 text (code points; "±" is one column, two bytes).
size_t text_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// A markdown table; column alignment as llama-bench: text left, numbers right.
std::string md_table(const std::vector<std::string>& head, const std::vector<bool>& right,
                     const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(head.size());
  for (size_t c = 0; c < head.size(); ++c) {
    w[c] = std::max<size_t>(text_width(head[c]), 3);
    for (const auto& r : rows) w[c] = std::max(w[c], text_width(r[c]));
  }
  auto cell = [&](const std::string& s, size_t c) {
    const size_t pad = w[c] - text_width(s);
    return right[c] ? std::string(pad, ' ') + s : s + std::string(pad, ' ');
  };
  std::string out = "|";
  for (size_t c = 0; c < head.size(); ++c) {
    out += ' ';
    out += cell(head[c], c);
    out += " |";
  }
  out += "\n|";
  for (size_t c = 0; c < head.size(); ++c) {
    out += ' ';
    out.append(w[c] - 1, '-');
    out += right[c] ? ':' : '-';
    out += " |";
  }
  out += "\n";
  for (const auto& r : rows) {
    out += "|";
    for (size_t c = 0; c < head.size(); ++c) {
      out += ' ';
      out += cell(r[c], c);
      out += " |";
    }
    out += "\n";
  }
  return out;
}

const BandwidthResult* bandwidth_for(const BenchReport& rep, int32_t threads) {
  for (const auto& b : rep.bandwidth) {
    if (b.threads == threads) return &b;
  }
  return nullptr;
}

std::string csv_quote(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string to_markdown(const BenchReport& rep) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : rep.rows) {
    rows.push_back({rep.model, human_bytes(static_cast<double>(rep.size_bytes)),
                    human_params(static_cast<double>(rep.params)), rep.backend, std::to_string(r.threads), r.test,
                    fmt("%.2f", r.mean) + " ± " + fmt("%.2f", r.stddev), fmt("%.2f", r.median)});
  }
  std::string out = md_table({"model", "size", "params", "backend", "threads", "test", "t/s", "median t/s"},
                             {false, true, true, false, true, true, true, true}, rows);
  out += "\nmodel file: " + (rep.file_bytes > 0 ? human_bytes(static_cast<double>(rep.file_bytes)) : "n/a") +
         " | peak RSS: " + human_bytes(static_cast<double>(rep.peak_rss_bytes)) + "\n";
  if (!rep.bandwidth.empty()) {
    out += "\n";
    for (const auto& b : rep.bandwidth) {
      out += "read bandwidth @ " + std::to_string(b.threads) + (b.threads == 1 ? " thread: " : " threads: ") + fmt("%.2f", b.best_gbs) +
             " GB/s best, " + fmt("%.2f", b.median_gbs) + " GB/s median (" + std::to_string(b.passes) +
             " passes over " + human_bytes(static_cast<double>(b.buffer_bytes)) +
             (b.prefetch ? ", read loop with software prefetch" : ", read loop without software prefetch (faster here)") +
             ")\n";
    }
    std::vector<std::vector<std::string>> rr;
    for (const auto& r : rep.rows) {
      if (r.n_gen == 0 || r.limit_tps <= 0) continue;
      const BandwidthResult* b = bandwidth_for(rep, r.threads);
      std::string paired;
      if (!r.paired_pct.empty()) {
        const auto [lo, hi] = std::minmax_element(r.paired_pct.begin(), r.paired_pct.end());
        paired = fmt("%.1f%%", r.paired_pct_median) + " (" + fmt("%.1f", *lo) + "-" + fmt("%.1f", *hi) + ")";
      }
      rr.push_back({std::to_string(r.threads), r.test, b ? fmt("%.2f", b->best_gbs) : "", fmt("%.3f", r.bytes_per_token / 1e6),
                    fmt("%.2f", r.limit_tps), fmt("%.2f", r.median), fmt("%.1f%%", 100.0 * r.median / r.limit_tps),
                    paired});
    }
    out += "\n" + md_table({"threads", "test", "GB/s", "MB/token", "limit t/s", "median t/s", "% of limit",
                            "paired % of limit (range)"},
                           {true, true, true, true, true, true, true, true}, rr);
    out += "\nMB/token: weights read per decoded token + K/V at the mean context (n + 3) / 2; limit = GB/s / "
           "MB/token. % of limit: the median run against the best probe pass. Paired: the test run again, each "
           "run against the mean of a probe pass right before and right after it; the median run (and the "
           "range).\n";
  }
  return out;
}

std::string to_json(const BenchReport& rep) {
  nlohmann::json j;
  j["model"] = rep.model;
  j["size_bytes"] = rep.size_bytes;
  j["params"] = rep.params;
  j["backend"] = rep.backend;
  j["file_bytes"] = rep.file_bytes;
  j["peak_rss_bytes"] = rep.peak_rss_bytes;
  j["results"] = nlohmann::json::array();
  for (const auto& r : rep.rows) {
    nlohmann::json o;
    o["model"] = rep.model;
    o["size_bytes"] = rep.size_bytes;
    o["params"] = rep.params;
    o["backend"] = rep.backend;
    o["threads"] = r.threads;
    o["test"] = r.test;
    o["n_prompt"] = r.n_prompt;
    o["n_gen"] = r.n_gen;
    o["tps_mean"] = r.mean;
    o["tps_stddev"] = r.stddev;
    o["tps_median"] = r.median;
    o["tps_samples"] = r.tps;
    if (r.n_gen > 0) o["bytes_per_token"] = r.bytes_per_token;
    if (r.limit_tps > 0) {
      o["limit_tps"] = r.limit_tps;
      o["pct_of_limit"] = 100.0 * r.median / r.limit_tps;
    }
    if (!r.paired_pct.empty()) {
      o["pct_of_limit_paired"] = r.paired_pct_median;
      o["paired_pct_samples"] = r.paired_pct;
    }
    j["results"].push_back(o);
  }
  if (!rep.bandwidth.empty()) {
    j["bandwidth"] = nlohmann::json::array();
    for (const auto& b : rep.bandwidth) {
      j["bandwidth"].push_back({{"threads", b.threads},
                                {"buffer_bytes", b.buffer_bytes},
                                {"passes", b.passes},
                                {"best_gbs", b.best_gbs},
                                {"median_gbs", b.median_gbs},
                                {"sw_prefetch", b.prefetch}});
    }
  }
  return j.dump(2) + "\n";
}

std::string to_csv(const BenchReport& rep) {
  std::ostringstream o;
  o << "model,size_bytes,params,backend,file_bytes,peak_rss_bytes,threads,test,n_prompt,n_gen,tps_mean,tps_stddev,"
       "tps_median,tps_samples,bytes_per_token,bandwidth_gbs,limit_tps,pct_of_limit,pct_of_limit_paired\n";
  for (const auto& r : rep.rows) {
    std::string samples;
    for (size_t i = 0; i < r.tps.size(); ++i) {
      if (i > 0) samples += ';';
      samples += fmt("%.4f", r.tps[i]);
    }
    const BandwidthResult* b = bandwidth_for(rep, r.threads);
    o << csv_quote(rep.model) << ',' << rep.size_bytes << ',' << rep.params << ',' << csv_quote(rep.backend) << ','
      << rep.file_bytes << ',' << rep.peak_rss_bytes << ',' << r.threads << ',' << r.test << ',' << r.n_prompt << ','
      << r.n_gen << ',' << fmt("%.4f", r.mean) << ',' << fmt("%.4f", r.stddev) << ',' << fmt("%.4f", r.median) << ','
      << samples << ',' << (r.n_gen > 0 ? fmt("%.0f", r.bytes_per_token) : "") << ','
      << (b ? fmt("%.4f", b->best_gbs) : "") << ',' << (r.limit_tps > 0 ? fmt("%.4f", r.limit_tps) : "") << ','
      << (r.limit_tps > 0 ? fmt("%.2f", 100.0 * r.median / r.limit_tps) : "") << ','
      << (r.paired_pct.empty() ? "" : fmt("%.2f", r.paired_pct_median)) << '\n';
  }
  return o.str();
}

}  // namespace

std::string format_bench(const BenchReport& report, BenchFormat f) {
  switch (f) {
    case BenchFormat::kJson:
      return to_json(report);
    case BenchFormat::kCsv:
      return to_csv(report);
    case BenchFormat::kMarkdown:
    default:
      return to_markdown(report);
  }
}

}  // namespace llmopt
