#!/usr/bin/env bash
# Builds, on this machine, the bundle that bench/gpu-machine/run.sh unpacks on a
# bare GPU machine (no Node.js, no registry; see ../shared/gpu/GPU-MACHINE.md):
#   bench/gpu-machine/bundle/  (git-ignored, at most 60 MiB)
#     node.gz            stripped Node.js
#     tessera.tar.gz     dist/, the native addon, production node_modules with
#                        dawn.node for linux-x64 only
#     debs/              the Vulkan loader and GL dispatch (unpacked into /) and
#                        the X client libraries (unpacked beside, on LD_LIBRARY_PATH)
# Usage (from the repository root): bash bench/gpu-machine/pack.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bundle=$root/bench/gpu-machine/bundle
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
rm -rf "$bundle"
mkdir -p "$bundle/debs"

echo "pack: building dist/ and the native addon"
npm run build > /dev/null
[ -f native/build/Release/tessera_native.node ] || node native/install.mjs --required

echo "pack: Node.js $(node --version), stripped"
cp "$(command -v node)" "$scratch/node"
strip "$scratch/node"
gzip -9 -c "$scratch/node" > "$bundle/node.gz"

echo "pack: production node_modules"
mkdir -p "$scratch/app"
cp package.json package-lock.json "$scratch/app/"
(cd "$scratch/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund > /dev/null)
# Dawn for linux-x64 only: the other platforms' binaries are most of the package.
find "$scratch/app/node_modules/webgpu/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
rm -rf "$scratch/app/node_modules/webgpu/build"
# The profiler's HTML charts are optional (it says so without them) and not run there.
rm -rf "$scratch/app/node_modules/echarts" "$scratch/app/node_modules/zrender"
mkdir -p "$scratch/app/native/build/Release"
cp native/build/Release/tessera_native.node "$scratch/app/native/build/Release/"
cp -r dist "$scratch/app/dist"
tar -C "$scratch/app" -czf "$bundle/tessera.tar.gz" dist node_modules native

echo "pack: Vulkan loader, GL dispatch and X libraries (apt-get download)"
(cd "$bundle/debs" && apt-get download -q \
  libvulkan1 libglvnd0 libglx0 libgl1 libegl1 libopengl0 libgles2 \
  libx11-6 libxext6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 > /dev/null)

du -sh "$bundle"
total=$(du -sm "$bundle" | cut -f1)
if [ "$total" -gt 60 ]; then
  echo "pack: the bundle is ${total} MiB, over 60 MiB" >&2
  exit 1
fi
echo "pack: done; carry bench/gpu-machine/bundle to the GPU machine and run bash bench/gpu-machine/run.sh there"
