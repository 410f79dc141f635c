// Shared by the `llmopt quantize --method` tests: TinyStories-656K, the TinyStories text split into a
// calibration half (a file) and an evaluation half, and perplexity / KL against the first model on 20
// chunks of 128 tokens of the evaluation half.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/loader.h"
#include "runtime/eval.h"
#include "test_util.h"

namespace llmopt::test {

inline const char* kTinyStoriesModel = "models/tinystories-656k/config.json";
inline const char* kTinyStoriesText = "text/tinystories-valid-first1000.txt";

inline std::string tinystories_dir() {
  const std::string p = data_path(kTinyStoriesModel);
  return p.substr(0, p.rfind('/'));
}

struct CalibTexts {
  std::string calib_path, eval_text;
};
// Calibration (first half, as a file) and evaluation (second half) texts, made once per process.
inline const CalibTexts& calib_texts() {
  static CalibTexts t = [] {
    CalibTexts r;
    const std::string all = read_file(data_path(kTinyStoriesText));
    const size_t half = all.size() / 2;
    r.calib_path = temp_dir() + "/calib.txt";
    write_file(r.calib_path, all.substr(0, half));
    r.eval_text = all.substr(half);
    return r;
  }();
  return t;
}

struct Measured {
  double ppl, kld;
  uint64_t bytes;
};

// PPL and mean KL vs the first model on n_chunks chunks of 128 tokens of the held-out half (-1: all of
// it; printed).
inline std::vector<Measured> evaluate_on_heldout(const std::vector<std::string>& paths, int32_t n_chunks = 20) {
  std::vector<std::unique_ptr<Model>> models;
  std::vector<EvalModel> ems;
  for (const std::string& p : paths) {
    auto m = load_model(p);
    EXPECT_TRUE(m.ok()) << p << ": " << m.status().message();
    if (!m.ok()) return {};
    models.push_back(std::move(m).value());
    ems.push_back({models.back().get(), p});
  }
  EvalOptions opts;
  opts.n_ctx = 128;
  opts.n_chunks = n_chunks;
  opts.threads = 2;
  opts.speed = false;
  auto rows = run_eval(ems, calib_texts().eval_text, opts);
  EXPECT_TRUE(rows.ok()) << rows.status().message();
  std::vector<Measured> out;
  if (!rows.ok()) return out;
  for (const EvalRow& r : *rows) {
    out.push_back({r.ppl.ppl, r.kld, r.file_bytes});
    std::printf("  %-40s ppl %.4f  kld %.6f  size %llu  bpw %.3f\n",
                std::filesystem::path(r.name).filename().string().c_str(), r.ppl.ppl, r.kld,
                static_cast<unsigned long long>(r.file_bytes), r.bpw);
  }
  return out;
}

}  // namespace llmopt::test
