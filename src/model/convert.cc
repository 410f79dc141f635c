// write_gguf_model: a canonical WeightSource written as GGUF the way llama.cpp's converters lay it
// out: matrices (token_embd included) in the output type (or llama.cpp's fallback type when the
// row length does not fit its blocks), vectors in F32, quantized tensors copied,
// general.file_type and general.name set, all other metadata carried over in order.
#include "model/convert.h"

#include <memory>
#include <vector>

#include "core/log.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"
#include "kernels/repack.h"

namespace llmopt {
namespace {

// llama.cpp's llama_ftype values for the whole-file types written here. A pure K-quant file is the
// "_S" variant (every matrix in that type; no mixing of types per tensor role).
std::optional<uint32_t> file_type_of(DType t) {
  switch (t) {
    case DType::kF32:
      return 0;  // ALL_F32
    case DType::kF16:
      return 1;  // MOSTLY_F16
    case DType::kQ4_0:
      return 2;  // MOSTLY_Q4_0
    case DType::kQ4_1:
      return 3;  // MOSTLY_Q4_1
    case DType::kQ8_0:
      return 7;  // MOSTLY_Q8_0
    case DType::kQ5_0:
      return 8;  // MOSTLY_Q5_0
    case DType::kQ5_1:
      return 9;  // MOSTLY_Q5_1
    case DType::kQ4_K:
      return 14;  // MOSTLY_Q4_K_S
    case DType::kQ5_K:
      return 16;  // MOSTLY_Q5_K_S
    case DType::kQ6_K:
      return 18;  // MOSTLY_Q6_K
    case DType::kBF16:
      return 32;  // MOSTLY_BF16
    default:
      return std::nullopt;
  }
}

// The type a matrix with rows of `cols` elements is written in when the file type is `want`:
// llama.cpp's tensor_type_fallback. A K-quant whose 256-block does not divide the row drops to a
// block-32 type of similar size (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0); when that (or a
// block-32 target) does not divide the row either, F16.
DType matrix_type_for(DType want, int64_t cols) {
  if (cols % dtype_info(want).block_size == 0) return want;
  DType t = want;
  switch (want) {
    case DType::kQ4_K:
      t = DType::kQ5_0;
      break;
    case DType::kQ5_K:
      t = DType::kQ5_1;
      break;
    case DType::kQ6_K:
      t = DType::kQ8_0;
      break;
    default:
      break;
  }
  return cols % dtype_info(t).block_size == 0 ? t : DType::kF16;
}

bool is_plain(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

std::string stem(const std::string& p) {
  const size_t slash = p.rfind('/');
  std::string b = slash == std::string::npos ? p : p.substr(slash + 1);
  const size_t dot = b.rfind('.');
  return dot == std::string::npos || dot == 0 ? b : b.substr(0, dot);
}

// Converts a plain-float tensor row by row into `to`; the result lives in `keep`.
Result<TensorView> convert_tensor(const std::string& name, const TensorView& v, DType to,
                                  std::vector<std::unique_ptr<Storage>>& keep, ThreadPool* pool) {
  const int64_t cols = v.cols(), rows = v.rows();
  auto in_row = dtype_row_bytes(v.type, cols);
  auto out_row = dtype_row_bytes(to, cols);
  if (!in_row || !out_row || *in_row * static_cast<size_t>(rows) != v.nbytes) {
    return error("tensor '" + name + "': byte size " + std::to_string(v.nbytes) + " does not match shape " +
                 shape_to_string(v.shape) + " of type " + dtype_name(v.type));
  }
  auto storage = std::make_unique<Storage>(*out_row * static_cast<size_t>(rows));
  uint8_t* dst = storage->data();
  const size_t in_bytes = *in_row, out_bytes = *out_row;
  auto run_rows = [&](int64_t r0, int64_t r1) {
    std::vector<float> tmp(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* src = v.data + static_cast<size_t>(r) * in_bytes;
      const float* f32 = reinterpret_cast<const float*>(src);
      if (v.type != DType::kF32) {
        kernels::dequantize_row(v.type, src, tmp.data(), cols);
        f32 = tmp.data();
      }
      kernels::quantize_row(to, f32, dst + static_cast<size_t>(r) * out_bytes, cols);
    }
  };
  if (pool != nullptr && rows > 1) {
    pool->parallel_for(rows, [&](int64_t r0, int64_t r1, int) { run_rows(r0, r1); });
  } else {
    run_rows(0, rows);
  }
  TensorView out;
  out.type = to;
  out.shape = v.shape;
  out.data = storage->data();
  out.nbytes = storage->size();
  keep.push_back(std::move(storage));
  return out;
}

}  // namespace

Status write_gguf_model(const WeightSource& src, const std::string& path, const ConvertOptions& opts) {
  const auto file_type = file_type_of(opts.outtype);
  if (!file_type || !kernels::can_quantize(opts.outtype)) {
    return error(
        std::string("unsupported output type '") + dtype_name(opts.outtype) +
        "' for conversion (supported: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k)");
  }
  GgufWriter w;
  Metadata& md = w.metadata();
  // general.architecture leads, as in llama.cpp's files; everything else keeps its order.
  if (const MetaValue* arch = src.metadata().find("general.architecture"))
    md.set("general.architecture", *arch);
  for (const auto& [key, value] : src.metadata().entries()) md.set(key, value);
  if (!md.get_string("general.name")) md.set("general.name", MetaValue::from_string(stem(path)));

  std::vector<std::unique_ptr<Storage>> keep;
  bool any_quantized = false;
  const auto& tensors = src.tensors();
  for (size_t i = 0; i < tensors.size(); ++i) {
    NamedTensor t = tensors[i];
    if (!t.view.present()) return error(src.origin() + ": tensor '" + t.name + "' has no data");
    if (kernels::is_r16(t.view.type)) {  // regrouped in memory at load (kernels/repack.h): the file type again
      auto plain = std::make_unique<Storage>(t.view.nbytes);
      kernels::unpack_r16(t.view.type, t.view.data, t.view.rows(), t.view.cols(), plain->data());
      t.view.type = kernels::plain_type_of(t.view.type);
      t.view.data = plain->data();
      keep.push_back(std::move(plain));
    }
    DType written = t.view.type;
    const bool quantized = dtype_info(t.view.type).quantized;
    if (quantized && opts.requantize && !kernels::can_dequantize(t.view.type)) {
      return error(src.origin() + ": tensor '" + t.name + "' has type " + dtype_name(t.view.type) +
                   ", which cannot be re-quantized (convert from the F32/F16 model instead)");
    }
    if (quantized && !opts.requantize) {
      any_quantized = true;
      w.add_tensor(t.name, t.view);
    } else if (is_plain(t.view.type) || quantized) {
      DType to = DType::kF32;
      if (t.view.shape.size() >= 2) {
        const DType want = opts.type_for ? opts.type_for(t.name, opts.outtype) : opts.outtype;
        if (!is_plain(want) && !kernels::can_quantize(want)) {
          return error(std::string("tensor '") + t.name + "': cannot write type " + dtype_name(want));
        }
        to = matrix_type_for(want, t.view.cols());
        if (to != want) {
          log_warn("convert: tensor '" + t.name + "' has rows of " + std::to_string(t.view.cols()) +
                   " elements, not a multiple of the " + dtype_name(want) + " block size " +
                   std::to_string(dtype_info(want).block_size) + "; writing it as " + dtype_name(to));
        }
      }
      if (to == t.view.type) {
        w.add_tensor(t.name, t.view);
      } else {
        Result<TensorView> conv = convert_tensor(t.name, t.view, to, keep, opts.pool);
        if (!conv.ok()) return conv.status().with_context(src.origin());
        w.add_tensor(t.name, *conv);
      }
      written = to;
    } else {
      w.add_tensor(t.name, t.view);  // integer tensors pass through
    }
    if (opts.progress) opts.progress(i, tensors.size(), t.name);
    if (opts.on_tensor) opts.on_tensor(i, tensors.size(), t.name, written);
  }
  // A source with quantized tensors keeps its own "mostly X" file type.
  if (!any_quantized || !md.contains("general.file_type")) {
    md.set("general.file_type", MetaValue::from_u32(opts.file_type ? *opts.file_type : *file_type));
  }
  return w.write(path);
}

}  // namespace llmopt
