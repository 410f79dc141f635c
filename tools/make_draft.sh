#!/usr/bin/env bash
# Rebuilds the built-in draft model of SmolLM2-135M-Instruct (`make models`), reproducibly:
#   1. the target writes its own distillation data: it continues the prompts of
#      data/distill/prompts.txt (seeded sampling) and every generated token is stored with the target's
#      top-16 next-token distribution (llmopt distill-data);
#   2. a small LLaMA with the target's tokenizer and tied embeddings learns those distributions
#      (llmopt train --distill-from); two same-size baselines get the same run without distillation:
#      on the same tokens without the target's distributions (--distill-alpha 0), and on human-written
#      text the target never saw (the Debian `fortunes` package, BSD-licensed);
#   3. llmopt eval compares the four models on the held-out generations (perplexity, KL divergence
#      and top-1 agreement against the target);
#   4. the draft is stored as F16 under models/, its loss curve drawn by llmopt plot, and the numbers
#      the model card quotes are written to models/smollm2-draft/results.txt.
# Everything is seeded; the training results do not depend on the thread count.
# Usage: tools/make_draft.sh [BUILD_DIR]   (default: build)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-$ROOT/build}"
LLMOPT="$BUILD/llmopt"
TARGET="$ROOT/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
WORK="$ROOT/.cache/distill"
OUT="$ROOT/models/smollm2-draft"
NAME="smollm2-draft"

# The draft's shape and training run (see the model card).
ARCH=(--arch llama --dim 128 --layers 6 --heads 4 --kv-heads 2 --ffn 384 --ctx 256)
RUN=(--steps 500 --batch 8 --lr 3e-3 --warmup 30 --seed 1 --heldout 0.05 --eval-every 50 --eval-windows 64)

mkdir -p "$WORK" "$OUT"
[ -x "$LLMOPT" ] || { echo "make_draft: build llmopt first ($LLMOPT missing)" >&2; exit 1; }
[ -f "$TARGET" ] || "$ROOT/tools/fetch_model.sh"
FORTUNES=/usr/share/games/fortunes
[ -f "$FORTUNES/fortunes" ] || { echo "make_draft: the Debian package 'fortunes' is needed (make models installs it)" >&2; exit 1; }

if [ ! -f "$WORK/smollm2.dist" ]; then
  "$LLMOPT" distill-data -m "$TARGET" --prompts "$ROOT/data/distill/prompts.txt" -o "$WORK/smollm2.dist.part" \
    --text "$WORK/smollm2.txt" -n 256 --temp 0.7 --top-p 0.95 --max-seqs 32 -s 1
  mv "$WORK/smollm2.dist.part" "$WORK/smollm2.dist"
fi

"$LLMOPT" train "${ARCH[@]}" "${RUN[@]}" --distill-from "$TARGET" --distill-data "$WORK/smollm2.dist" \
  --log-csv "$OUT/train_log.csv" -o "$WORK/$NAME-f32.gguf" | tee "$WORK/distilled.txt"
"$LLMOPT" train "${ARCH[@]}" "${RUN[@]}" --distill-from "$TARGET" --distill-data "$WORK/smollm2.dist" \
  --distill-alpha 0 --log-csv "$WORK/plain_log.csv" -o "$WORK/$NAME-plain-f32.gguf" | tee "$WORK/plain.txt"
if [ ! -f "$WORK/$NAME-fortunes-f32.gguf" ]; then
  for f in computers cookie education food fortunes goedel humorists kids law literature love magic medicine \
           miscellaneous news people pets platitudes politics riddles science songs-poems sports wisdom work; do
    sed '/^%$/d' "$FORTUNES/$f"
  done > "$WORK/fortunes.txt"
  "$LLMOPT" train "${ARCH[@]}" "${RUN[@]}" --tokenizer-from "$TARGET" -f "$WORK/fortunes.txt" \
    -o "$WORK/$NAME-fortunes-f32.gguf"
fi

# The held-out generations as text (the tail of the data; the trainer held out its last 5%).
python3 - "$WORK/smollm2.txt" "$WORK/heldout.txt" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()  # bytes: a decoded token may split a UTF-8 character
tail = data[len(data) - len(data) * 45 // 1000:]
open(sys.argv[2], "wb").write(tail[tail.index(b"\n") + 1:])
PY
"$LLMOPT" eval -m "$TARGET" -m "$WORK/$NAME-f32.gguf" -m "$WORK/$NAME-plain-f32.gguf" \
  -m "$WORK/$NAME-fortunes-f32.gguf" -f "$WORK/heldout.txt" -c 256 --no-speed | tee "$OUT/eval.md"

"$LLMOPT" convert "$WORK/$NAME-f32.gguf" -o "$OUT/$NAME.f16.gguf" --outtype f16
"$LLMOPT" plot "$OUT/train_log.csv" --y loss,heldout_loss -o "$OUT/loss.png" \
  --title "SmolLM2 draft: distillation loss and held-out loss"

# Held-out curves of both runs side by side.
python3 - "$OUT/train_log.csv" "$WORK/plain_log.csv" "$OUT/heldout_compare.csv" <<'PY'
import csv, sys
def rows(path):
    with open(path) as f:
        return {int(r["step"]): r for r in csv.DictReader(f) if r["heldout_loss"]}
d, p = rows(sys.argv[1]), rows(sys.argv[2])
with open(sys.argv[3], "w") as f:
    f.write("step,distilled_heldout_loss,plain_heldout_loss,distilled_top1_pct,plain_top1_pct\n")
    for s in sorted(set(d) & set(p)):
        f.write("%d,%s,%s,%.2f,%.2f\n" % (s, d[s]["heldout_loss"], p[s]["heldout_loss"],
                                          100 * float(d[s]["heldout_top1"]), 100 * float(p[s]["heldout_top1"])))
PY
"$LLMOPT" plot "$OUT/heldout_compare.csv" --y distilled_top1_pct,plain_top1_pct -o "$OUT/agreement.png" \
  --title "Held-out top-1 agreement with SmolLM2 (%): distilled vs plain training"

{
  echo "distilled: $(cat "$WORK/distilled.txt")"
  echo "plain:     $(cat "$WORK/plain.txt")"
  echo "data:      $(stat -c %s "$WORK/smollm2.dist") bytes of distillation data"
} > "$OUT/results.txt"
cat "$OUT/results.txt"
