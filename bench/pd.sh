#!/usr/bin/env bash
# The disaggregated prefill/decode benchmark of issue 18: a synthetic
# TinyLlama 1.1B in Q8_0; one colocated replica with 2 threads (chunked
# prefill) against a 1-thread prefill replica + a 1-thread decode replica
# behind `tessera router --pd`, 16 streams decoding while 1,024-token prompts
# arrive. Writes bench/results/pd-<date>.json (machine and load average
# included). Extra flags go to `tessera bench pd` (e.g. --long-prompts 8).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${TMPDIR:-/tmp}/tessera-bench-tinyllama-q8_0.gguf"
[ -f "$model" ] || node bin/tessera.js synth --preset tinyllama-1.1b --dtype q8_0 --out "$model"
uptime
node bin/tessera.js bench pd --model "$model" --backend native --threads 2 "$@" > /dev/null
uptime
