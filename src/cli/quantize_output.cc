// The output of `llmopt quantize --method` (quantize_run.h): the quantized weights as GGUF blocks or
// i8_ch, F16 fallbacks and folded norms from the working copy, everything else as in the source.
#include <regex>
#include <string>

#include "cli/quantize_run.h"
#include "model/convert.h"

namespace llmopt::cli {

Status write_method_output(MethodRun& run, const WeightSource& src, const std::string& output,
                           const std::optional<std::regex>& keep, const std::optional<DType>& embed_type,
                           bool w8a8, ThreadPool& pool, std::string* how_out) {
  using namespace quant;
  const MethodArgs& a = run.a;
  const quant::GridSpec& gspec = run.gspec;
  const DType qtype = run.qtype;
  const std::string& gran = run.gran;
  auto view_of = [&](const std::string& name) { return run.view_of(name); };
  auto src_ptr = &src;
  // The output: quantized weights as blocks, F16 fallbacks and folded norms from the working copy,
  // everything else as in the source.
  auto out = std::make_shared<MemoryWeightSource>(output);
  out->mutable_metadata() = src_ptr->metadata();
  std::map<std::string, DType> write_type;
  for (const NamedTensor& t : src_ptr->tensors()) {
    auto q = run.packed.find(t.name);
    if (auto w = run.i8.find(t.name); w != run.i8.end()) {
      // The extension type and its companions (docs/FORMATS.md): codes, then ".scale", ".act_scale".
      TensorView v;
      v.type = DType::kI8Ch;
      v.shape = t.view.shape;
      v.data = reinterpret_cast<const uint8_t*>(w->second.codes.data());
      v.nbytes = w->second.codes.size();
      out->add_tensor(t.name, v);
      write_type[t.name] = DType::kI8Ch;
      TensorView sc;
      sc.type = DType::kF32;
      sc.shape = {t.view.shape[0]};
      sc.data = reinterpret_cast<const uint8_t*>(w->second.row_scale.data());
      sc.nbytes = w->second.row_scale.size() * sizeof(float);
      out->add_tensor(t.name + ".scale", sc);
      if (w->second.act_scale > 0.0f) {
        sc.shape = {1};
        sc.data = reinterpret_cast<const uint8_t*>(&w->second.act_scale);
        sc.nbytes = sizeof(float);
        out->add_tensor(t.name + ".act_scale", sc);
      }
      if (!w->second.rot.empty()) {
        sc.shape = {w->second.rot_m, w->second.rot_m};
        sc.data = reinterpret_cast<const uint8_t*>(w->second.rot.data());
        sc.nbytes = w->second.rot.size() * sizeof(float);
        out->add_tensor(t.name + ".rot", sc);
        write_type[t.name + ".rot"] = DType::kF32;
      }
    } else if (q != run.packed.end()) {
      TensorView v;
      v.type = qtype;
      v.shape = t.view.shape;
      v.data = q->second.data();
      v.nbytes = q->second.size();
      out->add_tensor(t.name, v);
      write_type[t.name] = qtype;
    } else if (run.as_f16.count(t.name) || run.folded.count(t.name)) {
      out->add_tensor(t.name, *view_of(t.name));
      write_type[t.name] = run.as_f16.count(t.name) ? DType::kF16 : DType::kF32;
    } else {
      out->add_tensor(t.name, t.view);
      write_type[t.name] = t.view.type;
      const bool table = t.name == "token_embd.weight" || t.name == "output.weight";
      if (embed_type && table && is_float_type(t.view.type) && !(keep && std::regex_search(t.name, *keep))) {
        write_type[t.name] = *embed_type;  // converted by write_gguf_model (llama.cpp's quantizers)
      }
    }
  }
  const uint32_t file_type = gspec.type == GridType::kQ4_0 ? 2 : gspec.type == GridType::kQ4_1 ? 3 : 7;
  out->mutable_metadata().set("general.file_type", MetaValue::from_u32(file_type));
  std::string how = a.method + " " + (w8a8 ? "i8_ch" : std::string(dtype_name(qtype))) + " " + gran;
  if (w8a8) {
    how = a.method + (a.sq_weights == "gptq" ? " (gptq weights)" : "") + " w8a8 i8_ch " + a.granularity +
          ", activations " + a.act + (a.rotate ? ", inputs rotated where it helps" : "");
  }
  if (a.smooth_only) how = "smoothquant smoothing only, weights f32";
  if (a.method == "smoothquant") {
    how += a.sq_alpha >= 0.0f ? ", alpha " + std::to_string(a.sq_alpha) : std::string(", alpha searched per input");
  }
  out->mutable_metadata().set("llmopt.quantization", MetaValue::from_string(how));
  ConvertOptions opts;
  opts.outtype = grid_dtype(gspec.type);  // file-level default; the tensors carry their own types
  opts.pool = &pool;
  opts.type_for = [&](const std::string& name, DType dflt) -> DType {
    auto it = write_type.find(name);
    return it == write_type.end() ? dflt : it->second;
  };
  *how_out = how;
  return write_gguf_model(*out, output, opts);
}

}  // namespace llmopt::cli
