#!/usr/bin/env bash
# The quantization quality report of docs/BENCHMARKS.md for one model: every scheme llmopt writes,
# calibrated on the first half of a text and evaluated (perplexity, KL divergence against the input,
# same top-1) on the second half, which calibration never sees.
#   bench/quant_report.sh MODEL TEXT OUT_DIR [EXTRA_EVAL_FLAGS...]
# MODEL: an F32 model (GGUF, Hugging Face directory); TEXT: evaluation text (e.g. the TinyStories
# validation text in ../shared/data/text). Variants that the model's shapes do not allow (a group size
# that does not divide its rows) are reported as skipped. Prints the llmopt eval table (markdown).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 MODEL TEXT OUT_DIR [EXTRA_EVAL_FLAGS...]" >&2
  exit 2
fi
model=$1 text=$2 out=$3
shift 3
bin=${LLMOPT:-build/llmopt}
mkdir -p "$out"
python3 - "$text" "$out" <<'PY'
import sys
data = open(sys.argv[1], 'rb').read()
half = len(data) // 2
open(sys.argv[2] + '/calib.txt', 'wb').write(data[:half])
open(sys.argv[2] + '/eval.txt', 'wb').write(data[half:])
PY
calib="$out/calib.txt"
# GPTQ and AWQ rows: 128 calibration windows of 128 tokens (the default 32 gives GPTQ a noisier Hessian).
c4="--calib $calib --calib-samples 128"
# Tuned rows (--tune-steps): every window of the calibration half (up to 1000), which tuning needs more
# than GPTQ does (with 128 windows it fits them and gains less on the evaluation half).
ct="--calib $calib --calib-samples 1000 --tune-steps 300"
variants=(
  "f16|--type f16"
  "bf16|--type bf16"
  "q8_0|--type q8_0"
  "int8-channel-q8grid|--method rtn --bits 8 --granularity channel"
  "w8a8-channel-dynamic|--method rtn --act dynamic"
  "smoothquant-static|--method smoothquant --calib $calib"
  "smoothquant-dynamic|--method smoothquant --act dynamic --calib $calib"
  "smoothquant-static-rotate|--method smoothquant --rotate --calib $calib"
  "smoothquant-static-rotate-gptq|--method smoothquant --rotate --sq-weights gptq --calib $calib"
  "q4_k_m|--type q4_k_m"
  "rtn-g32|--method rtn --bits 4 --group-size 32"
  "gptq-g32|--method gptq --bits 4 --group-size 32 $c4"
  "gptq-g32-per-layer|--method gptq --bits 4 --group-size 32 --gptq-per-layer $c4"
  "gptq-g32-actorder|--method gptq --bits 4 --group-size 32 --act-order $c4"
  "gptq-g32-search|--method gptq --bits 4 --group-size 32 --scale-search $c4"
  "awq-g32|--method awq --bits 4 --group-size 32 $c4"
  "rtn-g32-tune|--method rtn --bits 4 --group-size 32 $ct"
  "gptq-g32-tune|--method gptq --bits 4 --group-size 32 $ct"
  "gptq-g32-tune-codes|--method gptq --bits 4 --group-size 32 --tune-codes $ct"
  "gptq-g32-search-tune-codes|--method gptq --bits 4 --group-size 32 --scale-search --tune-codes $ct"
  "rtn-g64|--method rtn --bits 4 --group-size 64"
  "gptq-g64|--method gptq --bits 4 --group-size 64 $c4"
  "gptq-g64-search|--method gptq --bits 4 --group-size 64 --scale-search $c4"
  "awq-g64|--method awq --bits 4 --group-size 64 $c4"
  "gptq-g64-tune|--method gptq --bits 4 --group-size 64 $ct"
  "gptq-g64-tune-codes|--method gptq --bits 4 --group-size 64 --tune-codes $ct"
  "gptq-g64-search-tune-codes|--method gptq --bits 4 --group-size 64 --scale-search --tune-codes $ct"
  "rtn-g128|--method rtn --bits 4 --group-size 128"
  "gptq-g128|--method gptq --bits 4 --group-size 128 $c4"
  "gptq-g128-search|--method gptq --bits 4 --group-size 128 --scale-search $c4"
  "awq-g128|--method awq --bits 4 --group-size 128 $c4"
  "gptq-g128-tune|--method gptq --bits 4 --group-size 128 $ct"
  "gptq-g128-tune-codes|--method gptq --bits 4 --group-size 128 --tune-codes $ct"
  "gptq-g128-search-tune-codes|--method gptq --bits 4 --group-size 128 --scale-search --tune-codes $ct"
  "rtn-g32-asym|--method rtn --bits 4 --group-size 32 --asym"
  "gptq-g32-asym|--method gptq --bits 4 --group-size 32 --asym $c4"
  "awq-g32-asym|--method awq --bits 4 --group-size 32 --asym $c4"
  "gptq-g32-asym-tune|--method gptq --bits 4 --group-size 32 --asym $ct"
  "gptq-g32-asym-tune-codes|--method gptq --bits 4 --group-size 32 --asym --tune-codes $ct"
  "gptq-g32-asym-search-tune-codes|--method gptq --bits 4 --group-size 32 --asym --scale-search --tune-codes $ct"
)
models=(-m "$model")
for v in "${variants[@]}"; do
  name=${v%%|*} flags=${v#*|}
  # shellcheck disable=SC2086
  if "$bin" quantize "$model" "$out/$name.gguf" $flags 2>"$out/$name.log"; then
    models+=(-m "$out/$name.gguf")
  else
    echo "skipped $name: $(grep -m1 '^error' "$out/$name.log" || tail -1 "$out/$name.log")" >&2
  fi
done
"$bin" eval "${models[@]}" -f "$out/eval.txt" -c 128 --no-speed "$@"
