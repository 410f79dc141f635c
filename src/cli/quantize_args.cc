// `llmopt quantize --method`'s flags checked and resolved (quantize_run.h), before anything is read.
#include <regex>
#include <string>

#include "cli/quantize_run.h"
#include "kernels/kernels.h"

namespace llmopt::cli {

Result<MethodPlan> plan_method(const MethodArgs& args, const std::string& keep_re) {
  using namespace quant;
  MethodPlan p;
  p.a = args;
  MethodArgs& a = p.a;
  if (a.method != "rtn" && a.method != "gptq" && a.method != "awq" && a.method != "smoothquant") {
    return error("unknown method '" + a.method + "' (use rtn, gptq, awq or smoothquant)");
  }
  if (a.sym && a.asym) return error("--sym and --asym exclude each other");
  // W8A8: int8 weights as i8_ch and int8 activations at run time.
  p.w8a8 = a.method == "smoothquant" || !a.act.empty();
  if (a.method == "smoothquant" && a.act.empty()) a.act = "static";
  if (p.w8a8) {
    if (a.act != "dynamic" && a.act != "static" && a.act != "auto") {
      return error("unknown --act '" + a.act +
                  "' (use dynamic: per-token scales at run time, static: calibrated, or auto: static where it costs "
                  "at most 2x the output error of dynamic)");
    }
    if (a.method == "awq") return error("--act (W8A8) works with --method rtn, gptq or smoothquant, not awq");
    if (a.bits == 0) a.bits = 8;
    if (a.bits != 8) {
      return error("W8A8 (--act, --method smoothquant) quantizes weights and activations to 8 bits; --bits " +
                  std::to_string(a.bits) + " is not supported there (use --bits 8)");
    }
    if (a.asym) return error("W8A8 weights are symmetric (int8 x int8 products); drop --asym");
    if (a.granularity.empty()) a.granularity = "channel";
    if (a.granularity != "channel" && a.granularity != "tensor") {
      return error("W8A8 uses one weight scale per output row (--granularity channel) or per tensor (tensor), not '" +
                  a.granularity + "'");
    }
    if (!(a.sq_alpha <= 1.0f) || (a.sq_alpha < 0.0f && a.sq_alpha != -1.0f)) {
      return error("--sq-alpha " + std::to_string(a.sq_alpha) + " is outside [0, 1]");
    }
  }
  if (a.sq_weights != "rtn" && a.sq_weights != "gptq") {
    return error("unknown --sq-weights '" + a.sq_weights + "' (use rtn or gptq)");
  }
  if (a.sq_weights == "gptq" && a.method != "smoothquant") {
    return error("--sq-weights applies to --method smoothquant only (use --method gptq --act ... otherwise)");
  }
  if (a.act_order && a.method != "gptq" && a.sq_weights != "gptq") {
    return error("--act-order applies to GPTQ only (--method gptq, or --method smoothquant --sq-weights gptq)");
  }
  if (a.scale_search && (a.method != "gptq" || p.w8a8)) {
    return error("--scale-search applies to weight-only --method gptq only");
  }
  if (a.gptq_per_layer && (a.method != "gptq" || p.w8a8)) {
    return error("--gptq-per-layer applies to weight-only --method gptq only");
  }
  if (!a.awq_objective.empty()) {
    if (a.method != "awq") return error("--awq-objective applies to --method awq only");
    if (a.awq_objective != "block" && a.awq_objective != "layer") {
      return error("unknown --awq-objective '" + a.awq_objective + "' (use block or layer)");
    }
  } else if (a.method == "awq") {
    a.awq_objective = "block";
  }
  if (a.tune_steps < 0) return error("--tune-steps must be >= 0");
  if (a.tune_codes && a.tune_steps == 0) return error("--tune-codes needs --tune-steps N");
  if (a.tune_holdout != 0 && a.tune_steps == 0) return error("--tune-holdout needs --tune-steps N");
  if (a.tune_steps > 0) {
    if (p.w8a8) return error("--tune-steps tunes weight-only grids (rtn, gptq, awq without --act)");
    if (a.calib.empty()) return error("--tune-steps needs calibration text: --calib FILE");
    if (!(a.tune_lr > 0.0f) || a.tune_lr > 1.0f) return error("--tune-lr must be in (0, 1]");
    if (a.tune_batch < 1) return error("--tune-batch must be >= 1");
    if (a.tune_holdout < 0) return error("--tune-holdout must be >= 0");
    if (a.tune_holdout > 0 && a.tune_holdout >= a.calib_samples) {
      return error("--tune-holdout " + std::to_string(a.tune_holdout) + " leaves none of the " +
                   std::to_string(a.calib_samples) + " calibration windows (--calib-samples) to train on");
    }
  }
  if (!a.embed_type.empty()) {
    p.embed_type = dtype_from_name(a.embed_type);
    if (!p.embed_type || (!kernels::can_quantize(*p.embed_type) && *p.embed_type != DType::kF32) ||
        *p.embed_type == DType::kQ4_1G128) {
      return error("--embed-type '" + a.embed_type + "' is not a type llmopt writes (use f32, f16, bf16, q8_0, q6_k, ...)");
    }
  }
  if (a.smooth_only && a.method != "smoothquant") return error("--smooth-only applies to --method smoothquant only");
  if (a.rotate && !p.w8a8) return error("--rotate applies to W8A8 (--method smoothquant, or --act with rtn|gptq)");
  if (a.rotate && a.smooth_only) return error("--rotate and --smooth-only exclude each other (a rotation is stored with int8 weights only)");
  if (a.bits == 0) a.bits = 4;
  if (a.granularity.empty()) a.granularity = "group";
  if (a.compact && (p.w8a8 || a.bits != 4 || !a.asym || (a.granularity == "group" && a.group_size != 128))) {
    return error("--compact writes 4-bit asymmetric groups of 128 (or per channel) as q4_1_g128: use it with "
                "--bits 4 --asym and --group-size 128 or --granularity channel");
  }
  Result<GridType> grid = grid_for(p.w8a8 ? 8 : a.bits, !a.asym);
  if (!grid.ok()) return grid.status();
  p.gspec.type = *grid;
  p.w8spec.per_tensor = a.granularity == "tensor";
  p.w8spec.gptq = a.method == "gptq" || a.sq_weights == "gptq";
  p.w8spec.act_order = a.act_order;
  if (p.w8a8) {
    p.gspec.group_size = 0;
  } else if (a.granularity == "channel") {
    p.gspec.group_size = 0;
  } else if (a.granularity == "group") {
    if (a.group_size != 32 && a.group_size != 64 && a.group_size != 128) {
      return error("--group-size " + std::to_string(a.group_size) + " is not supported (use 32, 64 or 128)");
    }
    p.gspec.group_size = a.group_size;
  } else {
    return error("unknown granularity '" + a.granularity +
                "' (use channel or group; per-tensor scales are for W8A8: --act dynamic|static)");
  }
  p.calibrated = a.method != "rtn" || a.act == "static" || a.act == "auto" || a.rotate;
  if (p.calibrated && a.calib.empty()) {
    return error((a.rotate ? std::string("--rotate (chosen per input by the output error)")
                 : a.method == "rtn" ? std::string("--act static") : "--method " + a.method) +
                " needs calibration text: --calib FILE");
  }
  if (a.calib_samples < 1) return error("--calib-samples must be >= 1");
  if (a.calib_seq_len < 2) return error("--calib-seq-len must be >= 2");
  if (!keep_re.empty()) {
    try {
      p.keep.emplace(keep_re, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return error("--keep '" + keep_re + "' is not a valid regular expression: " + e.what());
    }
  }
  return p;
}

}  // namespace llmopt::cli
