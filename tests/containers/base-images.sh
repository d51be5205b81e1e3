#!/usr/bin/env bash
# Makes the base images the Dockerfile and docker-compose.yml name, without an image
# registry (none is reachable from CI): debian:12 and debian:12-slim from debootstrap with
# the machine's own Debian mirror, and an erlang:25 stand-in (that image plus Debian's
# erlang-base, OTP 25). Images that exist already are kept (podman's cache between runs).
set -euo pipefail

have() { podman image exists "$1"; }

# The machine's Debian mirror, read from its apt sources (deb822 or one-line format).
mirror() {
  local m
  m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources \
        2>/dev/null | grep -v security | head -n1 || true)
  if [ -z "$m" ]; then
    m=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' \
          /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
        grep -v security | head -n1 || true)
  fi
  [ -n "$m" ] || { echo "base-images: no Debian mirror in the apt sources" >&2; exit 1; }
  echo "$m"
}

if ! have debian:12 || ! have debian:12-slim; then
  root=$(mktemp -d /tmp/epmdx-debootstrap.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  echo "== base image: debootstrap bookworm from $(mirror) =="
  timeout 900 debootstrap --variant=minbase bookworm "$root" "$(mirror)" >/dev/null
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  tar -C "$root" -c . | podman import - debian:12 >/dev/null
  podman tag debian:12 debian:12-slim
  rm -rf "$root"
  trap - EXIT
fi
if ! have erlang:25; then
  echo "== base image: erlang:25 (debian:12 + Debian's erlang-base) =="
  ctx=$(mktemp -d /tmp/epmdx-erlang-image.XXXXXX)
  printf '%s\n' 'FROM debian:12' \
    'RUN apt-get update && apt-get install -y --no-install-recommends erlang-base \' \
    ' && rm -rf /var/lib/apt/lists/*' 'CMD ["erl"]' >"$ctx/Dockerfile"
  timeout 600 podman build --format docker -t erlang:25 "$ctx" >/dev/null
  rm -rf "$ctx"
fi
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'debian:12|erlang:25'
