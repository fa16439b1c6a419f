#!/usr/bin/env bash
# Installs Mesa's software Vulkan driver (lavapipe) from Debian bookworm-backports,
# so WebGPU (Dawn) finds an adapter on a machine without a GPU. Bookworm's own
# Mesa 22.3 is refused by Dawn. Needs root and apt; uses apt's configured mirror.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "install-lavapipe: run as root (apt-get)" >&2
  exit 1
fi
list=/etc/apt/sources.list.d/tessera-backports.sources
if [ ! -f "$list" ]; then
  # The mirror of the existing Debian sources, in either of apt's two formats.
  uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  if [ -z "$uri" ]; then
    uri=$(awk '$1 == "deb" && $3 ~ /^bookworm/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  fi
  if [ -z "$uri" ]; then
    echo "install-lavapipe: no Debian bookworm source found in apt's configuration" >&2
    exit 1
  fi
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" > "$list"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers > /dev/null
echo "install-lavapipe: installed $(dpkg-query -W -f '${Version}' mesa-vulkan-drivers)"
