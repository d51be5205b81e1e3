#!/usr/bin/env bash
# Installs, from Debian only, what the container stage (scripts/containers) and
# scripts/package need on a clean Debian 12 machine; what is there already is kept.
set -euo pipefail
need=()
for pair in podman:podman runc:runc docker-compose:docker-compose debootstrap:debootstrap \
            lintian:lintian script:bsdutils curl:curl python3:python3; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (Debian) =="
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${need[@]}" uidmap slirp4netns fuse-overlayfs containernetworking-plugins iptables \
    >/dev/null
fi
