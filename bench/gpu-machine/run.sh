#!/usr/bin/env bash
# Runs on the GPU machine (one NVIDIA H200, no Node.js, no registry), from the
# repository root, after bench/gpu-machine/pack.sh built bench/gpu-machine/bundle
# here and it was carried there. Unpacks Node.js, Tessera and the Vulkan/GL
# libraries, synthesizes the benchmark models, runs `tessera bench engine
# --backend webgpu` and the PyTorch peer (torch_peer.py), and writes every JSON
# and log into $OUT/results.tgz (the device tool brings back at most 8 files, so
# results are written to a scratch folder and packed into one archive at exit,
# whatever ended the run), beside $OUT/run.log. Every step has a timeout, and the whole run a budget
# (BUDGET_S, default 420 s), so a hang cannot eat the machine's time; steps are
# ordered by importance (the 8B Q8_0 floor first).
#
# Usage: OUT=/some/dir bash bench/gpu-machine/run.sh
# SMOKE=1 tries the flow on any machine with an adapter (lavapipe): small models,
# no unpacking into /, no PyTorch.
set -uo pipefail
cd "$(dirname "$0")/../.."
FINAL=${OUT:-/tmp/tessera-gpu-out}
OUT=${RESULTS:-/tmp/tessera-gpu-results}
BUDGET_S=${BUDGET_S:-420}
MODELS=${MODELS:-/tmp/tessera-models}
bundle=bench/gpu-machine/bundle
mkdir -p "$FINAL" "$OUT" "$MODELS"
exec > >(tee -a "$FINAL/run.log") 2>&1
start=$(date +%s)
# One archive of every result, also when a step or the budget ends the run.
trap 'tar -czf "$FINAL/results.tgz" -C "$OUT" . && echo "packed $(ls "$OUT" | wc -l) files into $FINAL/results.tgz"' EXIT

elapsed() { echo $(( $(date +%s) - start )); }

# step NAME LIMIT_S COMMAND...: runs COMMAND with a timeout cut to what is left of the budget.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$(( BUDGET_S - $(elapsed) ))
  if [ "$left" -lt 15 ]; then
    echo "== skip $name: budget spent"
    return 1
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (timeout ${limit}s, at $(elapsed)s)"
  # The functions below are exported, so a timed bash runs them.
  timeout --kill-after=5 "$limit" bash -c '"$@"' step "$@"
  local rc=$?
  echo "== $name: exit $rc at $(elapsed)s"
  return $rc
}

unpack() {
  mkdir -p /tmp/tessera-node
  gunzip -c "$bundle/node.gz" > /tmp/tessera-node/node && chmod +x /tmp/tessera-node/node
  tar -xzf "$bundle/tessera.tar.gz" -C .
  for deb in libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2; do dpkg -x "$bundle"/debs/"${deb}"_*.deb /; done
  # The X client libraries go beside, on LD_LIBRARY_PATH, not over the image's own.
  mkdir -p /tmp/tessera-x11
  for deb in libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0; do dpkg -x "$bundle"/debs/"${deb}"_*.deb /tmp/tessera-x11; done
  ldconfig
}

export OUT MODELS bundle
export -f unpack
if [ "${SMOKE:-0}" = 1 ]; then
  mkdir -p /tmp/tessera-node && ln -sf "$(command -v node)" /tmp/tessera-node/node
else
  step unpack 60 unpack || exit 1
fi
export PATH=/tmp/tessera-node:$PATH
export LD_LIBRARY_PATH=/tmp/tessera-x11/usr/lib/x86_64-linux-gnu:/tmp/tessera-x11/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] || icd=$(find / -xdev -name 'nvidia_icd*.json' 2>/dev/null | head -1)
# Only where found: an empty VK_DRIVER_FILES hides every driver from the loader.
[ -n "$icd" ] && export VK_DRIVER_FILES=$icd
echo "node $(node --version), VK_DRIVER_FILES=${VK_DRIVER_FILES:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.csv" 2>&1

tessera() { node bin/tessera.js "$@"; }
devices() {
  tessera inspect --devices --json > "$OUT/devices.json" || return $?
  head -c 600 "$OUT/devices.json"
  echo
}

# synth PRESET DTYPE: the model file (every layer with layer 0's weights: the speed is the same, the writing 30x faster).
synth() {
  local file=$MODELS/$1-$2.gguf
  [ -f "$file" ] || tessera synth --preset "$1" --dtype "$2" --repeat-layers --out "$file"
}

# bench PRESET DTYPE [LABEL]: tessera bench engine on the GPU, decode at batch 1 and 16.
bench() {
  local text=$OUT/bench-$1-$2${3:+-$3}.txt
  tessera bench engine --model "$MODELS/$1-$2.gguf" --backend webgpu --peer none --rounds 2 \
    --prompt-lens 128,512 --decode-tokens 64 --decode-batches 1,16 --out "$OUT" > "$text" || return $?
  cat "$text"
}

# peer PRESET: transformers generate, bf16, batch 1 and 16.
peer() {
  python3 bench/gpu-machine/torch_peer.py --shape "$1" --batches 1,16 --prompt 128 --new 64 > "$OUT/torch-$1.json" || return $?
  cat "$OUT/torch-$1.json"
}

export -f tessera devices synth bench peer
step devices 60 devices || exit 1

big=llama-3.1-8b
small=tinyllama-1.1b
if [ "${SMOKE:-0}" = 1 ]; then
  big=small
  small=tiny
  peer() { echo "(SMOKE: no PyTorch peer)"; }
  export -f peer
fi

step "synth $big q8_0" 120 synth $big q8_0 && step "bench $big q8_0" 150 bench $big q8_0
step "torch $big" 120 peer $big
step "synth $small q8_0" 40 synth $small q8_0 && step "bench $small q8_0" 60 bench $small q8_0
step "torch $small" 60 peer $small
step "synth $small f16" 40 synth $small f16 && step "bench $small f16" 60 bench $small f16
step "synth $big f16" 120 synth $big f16 && step "bench $big f16" 150 bench $big f16
# The same 8B Q8_0 run with the step's command buffer submitted in pieces while it is recorded.
TESSERA_WEBGPU_SUBMIT_EVERY=1 step "bench $big q8_0, submit every partial" 120 bench $big q8_0 submit-every-1
echo "done in $(elapsed)s; results in $OUT:"
ls -la "$OUT"
