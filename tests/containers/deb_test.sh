#!/usr/bin/env bash
# The Debian package, installed and used in a container of the base image (debian:12):
# lintian first (on the host), then tests/containers/deb_in_container.sh inside. The
# container reaches Debian's mirror through a podman network of this test's own; both are
# removed whatever happens.
#   tests/containers/deb_test.sh dist/epmdx_VERSION_amd64.deb
set -euo pipefail
deb=$(readlink -f "$1")
here=$(cd "$(dirname "$0")" && pwd)
echo "== lintian $(basename "$deb") =="
# Lintian refuses to run as root happily; nobody reads a copy.
tmp=$(mktemp -d /tmp/epmdx-deb.XXXXXX)
net=epmdx-deb-$$
cleanup() {
  podman rm -f "epmdx-deb-$$" >/dev/null 2>&1 || true
  podman network rm -f "$net" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
cp "$deb" "$here/deb_in_container.sh" "$tmp/"
chmod 0755 "$tmp"
chmod 0644 "$tmp"/*
tags=$(cd "$tmp" && timeout 300 runuser -u nobody -- lintian --tag-display-limit 0 \
         "$(basename "$deb")" 2>&1) || true
if [ -n "$tags" ]; then
  echo "$tags"
  echo "FAIL lintian: errors or warnings (the informational tags are explained in docs/packaging.md)"
  exit 1
fi
echo "ok lintian: no error, no warning"
timeout 300 runuser -u nobody -- lintian -I --tag-display-limit 0 "$tmp/$(basename "$deb")" || true
podman network create "$net" >/dev/null
timeout 600 podman run --rm --name "epmdx-deb-$$" --network "$net" \
  -v "$tmp:/dist:ro" debian:12 bash /dist/deb_in_container.sh
