// Writing a canonical WeightSource as GGUF the way llama.cpp's converters do: 2-D weight matrices in
// the requested type, 1-D tensors (norms, biases) in F32, general.file_type set, metadata copied.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "formats/weight_source.h"

namespace llmopt {

struct ConvertOptions {
  // f32 | f16 | bf16 | q8_0 | q4_0 | q4_1 | q5_0 | q5_1 | q4_K | q5_K | q6_K. Quantized types use
  // llama.cpp's reference quantizers (bit-exact); matrices whose rows do not fit the block size fall
  // back like llama-quantize (see convert.cc) with a warning through the log sink.
  DType outtype = DType::kF16;
  // Optional per-tensor choice for plain-float (F32/F16/BF16) tensors of 2 or more dimensions:
  // (name, outtype) -> the type to write. Unset: every such tensor is written as `outtype`. A type
  // whose block does not divide the rows still falls back as described above; returning the
  // tensor's own plain type writes it unchanged.
  std::function<DType(const std::string& name, DType dflt)> type_for;
  // general.file_type to write instead of the one of `outtype` (llama.cpp's LLAMA_FTYPE, e.g. 15 for
  // MOSTLY_Q4_K_M).
  std::optional<uint32_t> file_type;
  // Called after each tensor: (index, count, name).
  std::function<void(size_t, size_t, const std::string&)> progress;
  // Called after each tensor with the type it was written in: (index, count, name, type).
  std::function<void(size_t, size_t, const std::string&, DType)> on_tensor;
  // When set, the rows of each converted tensor are split over this pool.
  ThreadPool* pool = nullptr;
  // Re-quantize: matrices already in a quantized type are dequantized and written in the requested
  // type like float ones (the result carries the first quantization's error too). Off: copied as is.
  bool requantize = false;
};

// Converts and writes `src` to `path`. Tensors already in a quantized type are copied as they are
// (unless opts.requantize).
Status write_gguf_model(const WeightSource& src, const std::string& path, const ConvertOptions& opts);

}  // namespace llmopt
