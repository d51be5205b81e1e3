#!/bin/bash
# Runs inside a debian:12 container (tests/containers/deb_test.sh): installs the package with
# apt-get as a Debian user would, then uses it. Exits non-zero on the first failed check.
set -euo pipefail
fail() { echo "FAIL $*" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends /dist/epmdx_*_amd64.deb man-db >/dev/null
echo "ok apt-get install ./epmdx_*.deb"
epmdx --version | grep -q 0.1 || fail "epmdx --version: $(epmdx --version)"
echo "ok epmdx --version: $(epmdx --version)"
[ "$(man -w epmdx)" = /usr/share/man/man8/epmdx.8.gz ] || fail "man -w epmdx: $(man -w epmdx)"
[ "$(man -w epmdxctl)" = /usr/share/man/man1/epmdxctl.1.gz ] || fail "man -w epmdxctl"
echo "ok man -w epmdx epmdxctl"
id epmdx >/dev/null || fail "no system user epmdx"
[ "$(stat -c '%U:%G %a' /etc/epmdx/tokens)" = "root:epmdx 640" ] ||
  fail "tokens file: $(stat -c '%U:%G %a' /etc/epmdx/tokens)"
[ "$(stat -c '%U %a' /etc/epmdx/admin.token)" = "root 600" ] || fail "admin.token mode"
[ -L /etc/systemd/system/sockets.target.wants/epmdx.socket ] || fail "epmdx.socket not enabled"
echo "ok user epmdx, /etc/epmdx/tokens root:epmdx 0640, epmdx.socket enabled"

# The service's command line (no systemd in a container: its user, its tokens file).
grep -q '^ExecStart=/usr/bin/epmdx -systemd --tokens-file=/etc/epmdx/tokens$' \
  /lib/systemd/system/epmdx.service || fail "ExecStart"
# setpriv execs epmdx itself (runuser would stay its parent and take the SIGTERM).
setpriv --reuid=epmdx --regid=epmdx --init-groups epmdx --tokens-file=/etc/epmdx/tokens \
  2>/tmp/epmdx.log &
daemon=$!
for _ in $(seq 100); do  # Poll with a deadline (10 s).
  (exec 3<>/dev/tcp/127.0.0.1/4370) 2>/dev/null && break
  sleep 0.1
done
# A registration, over the wire: ALIVE2_REQ for "ci" on port 9999, the connection kept open.
exec 3<>/dev/tcp/127.0.0.1/4369
printf '\x00\x0f\x78\x27\x0f\x4d\x00\x00\x06\x00\x05\x00\x02ci\x00\x00' >&3
reply=$(head -c 2 <&3 | od -An -tx1 | tr -d ' ')
case $reply in 7900|7600) ;; *) fail "ALIVE2 reply: $reply; log: $(cat /tmp/epmdx.log)" ;; esac
echo "ok a registration (ALIVE2 reply $reply)"
listed=$(epmdxctl --token-file=/etc/epmdx/admin.token list -o names)
[ "$listed" = ci ] || fail "epmdxctl list: '$listed'"
echo "ok epmdxctl --token-file=/etc/epmdx/admin.token list: $listed"
exec 3>&-
kill -TERM "$daemon"
wait "$daemon" || fail "epmdx exit status $?"
echo "ok SIGTERM: exit 0"

apt-get purge -y -qq epmdx >/dev/null
[ ! -e /etc/epmdx ] && [ ! -e /usr/bin/epmdx ] || fail "purge left files"
echo "ok apt-get purge epmdx: /etc/epmdx gone"
