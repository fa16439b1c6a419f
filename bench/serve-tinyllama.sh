#!/usr/bin/env bash
# The serve benchmark of issue 5: a synthetic TinyLlama 1.1B in Q8_0 on the
# native backend with 2 threads, concurrency 1, 4, 16 and 64. Writes
# bench/results/serve-<date>.json (with the machine and its load average).
# Machines here are shared and noisy: compare the ratios within one run.
# RESPONSE_FORMAT=json_schema (or json_object, or a response_format JSON) also
# runs every level constrained, right after the unconstrained one, and records
# constrained / unconstrained output tok/s per level.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${TMPDIR:-/tmp}/tessera-bench-tinyllama-q8_0.gguf"
[ -f "$model" ] || node bin/tessera.js synth --preset tinyllama-1.1b --dtype q8_0 --out "$model"
uptime
node bin/tessera.js bench serve --model "$model" --backend native --threads 2 \
  --concurrency "${CONCURRENCY:-1,4,16,64}" --prompt-len "${PROMPT_LEN:-16}" --output-len "${OUTPUT_LEN:-32}" --rounds "${ROUNDS:-1}" \
  ${RESPONSE_FORMAT:+--response-format "$RESPONSE_FORMAT"} > /dev/null
uptime
