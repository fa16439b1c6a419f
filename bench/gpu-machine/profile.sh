#!/usr/bin/env bash
# Device time per kernel on the GPU machine (TESSERA_WEBGPU_PROFILE=1): the
# Llama-3.1-8B shape with LAYERS layers (default 8: every layer is the same
# work, and the file is written in seconds), Q8_0, decode at batch 1 and 16
# and a 128-token prefill. Needs the bundle of pack.sh (unpacked as run.sh
# does). Usage (repository root, there): OUT=/some/dir bash bench/gpu-machine/profile.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/tessera-gpu-out}
MODELS=${MODELS:-/tmp/tessera-models}
LAYERS=${LAYERS:-8}
DTYPES=${DTYPES:-q8_0}
bundle=bench/gpu-machine/bundle
mkdir -p "$OUT" "$MODELS"
if [ ! -x /tmp/tessera-node/node ]; then
  mkdir -p /tmp/tessera-node /tmp/tessera-x11
  gunzip -c "$bundle/node.gz" > /tmp/tessera-node/node && chmod +x /tmp/tessera-node/node
  tar -xzf "$bundle/tessera.tar.gz" -C .
  for deb in libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2; do dpkg -x "$bundle"/debs/"${deb}"_*.deb /; done
  for deb in libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0; do dpkg -x "$bundle"/debs/"${deb}"_*.deb /tmp/tessera-x11; done
  ldconfig
fi
export PATH=/tmp/tessera-node:$PATH
export LD_LIBRARY_PATH=/tmp/tessera-x11/usr/lib/x86_64-linux-gnu:/tmp/tessera-x11/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f "$icd" ] && export VK_DRIVER_FILES=$icd
for dtype in ${DTYPES//,/ }; do
  model=$MODELS/llama-3.1-8b-${LAYERS}layers-$dtype.gguf
  [ -f "$model" ] || timeout 120 node bin/tessera.js synth --preset llama-3.1-8b --layers "$LAYERS" --dtype "$dtype" --repeat-layers --out "$model"
  for batch in 1 16; do
    TESSERA_WEBGPU_PROFILE=1 timeout 120 node bin/tessera.js bench engine --model "$model" --backend webgpu --peer none --rounds 1 \
      --prompt-lens 128 --decode-tokens 16 --decode-batches "$batch" --out "$OUT" 2>&1 | grep -v Warning | tee "$OUT/profile-$dtype-batch$batch.txt"
  done
done
