// The --method path of `llmopt quantize`: RTN, GPTQ or AWQ per linear weight, on grids that GGUF's
// Q4_0 / Q4_1 / Q8_0 blocks represent exactly, with calibration inputs captured layer by layer.
#pragma once

#include <string>

#include "model/model.h"

namespace llmopt::cli {

struct MethodArgs {
  std::string method;
  int bits = 4;
  std::string granularity = "group";
  int group_size = 32;
  bool asym = false;
  bool sym = false;
  std::string calib;
  int calib_samples = 32;
  int calib_seq_len = 128;
};

// Returns the process exit code (errors are printed as one "error:" line).
int run_quantize_method(const std::string& input, const std::string& output, const std::string& keep_re,
                        const std::string& tokenizer_path, int threads, const MethodArgs& a);

// Weight bytes * 8 / weight elements.
double bits_per_weight(const Model& m);

}  // namespace llmopt::cli
