#!/usr/bin/env bash
# Issue 13's 16-core comparison, on the GPU machine's CPUs (16 cores): decode
# of TinyLlama-1.1B-shape Q8_0 by 1 process x 16 threads against tp 2 x 8
# threads (shm, native collectives) through `tessera run`, and with 8
# sequences in flight 1 process x 16 threads against pp 2 x 8 threads through
# `tessera bench serve` (bench/parallel-decode.mjs; floor 0.95x for tp 2).
# Needs the bundle of pack.sh there (as run.sh does); it unpacks Node.js and
# Tessera itself, so it runs before or after run.sh. The model is the one
# run.sh synthesizes ($MODELS/tinyllama-1.1b-q8_0.gguf, made here when
# missing). The whole run stays within BUDGET_S (default 200 s) plus the
# unpacking; one JSON and a log land in $OUT.
#
# Usage (repository root): OUT=/some/dir bash bench/gpu-machine/parallel-decode.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/tessera-gpu-out}
MODELS=${MODELS:-/tmp/tessera-models}
BUDGET_S=${BUDGET_S:-200}
bundle=bench/gpu-machine/bundle
mkdir -p "$OUT" "$MODELS"
if [ ! -x /tmp/tessera-node/node ]; then
  mkdir -p /tmp/tessera-node
  gunzip -c "$bundle/node.gz" > /tmp/tessera-node/node && chmod +x /tmp/tessera-node/node
fi
# dist/, the addon and node_modules of this bundle (a few seconds; the Vulkan libraries are not needed on the CPU).
tar -xzf "$bundle/tessera.tar.gz" -C .
export PATH=/tmp/tessera-node:$PATH
echo "node $(node --version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/parallel-decode.log"
timeout --kill-after=10 $((BUDGET_S + 20)) node bench/parallel-decode.mjs --threads 16 \
  --model "$MODELS/tinyllama-1.1b-q8_0.gguf" --out "$OUT" --budget-s "$BUDGET_S" --label h200-cpu 2>&1 | tee -a "$OUT/parallel-decode.log"
exit "${PIPESTATUS[0]}"
