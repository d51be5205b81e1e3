#!/usr/bin/env python3
"""Deployment files and process behaviour that no Docker engine or cluster is needed for:
the Dockerfile and the systemd units are parsed and checked (each deployment is also run
by its own test: deploy_k8s_test.py, deploy_compose_test.py, deploy_systemd_test.py);
systemd socket activation, readiness notification, SIGHUP token reload, SIGINT/SIGTERM
exit and JSON logs are tested on a real epmdx process."""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

EPMDX, SOURCE = sys.argv[1], sys.argv[2]
from epmdx_testlib import check, finish, free_port, wait_port  # noqa: E402


def alive2(port, name):
    s = socket.create_connection(("127.0.0.1", port))
    n = name.encode()
    body = b"x" + struct.pack(">HBBHHH", 5000, 77, 0, 6, 5, len(n)) + n + b"\x00\x00"
    s.sendall(struct.pack(">H", len(body)) + body)
    return s, s.recv(6)


def names(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x00\x01n")
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    return out[4:].decode()


def http_get(port, path, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def read(path):
    with open(os.path.join(SOURCE, path)) as f:
        return f.read()


# ---- Dockerfile --------------------------------------------------------------------------
df = read("Dockerfile")
froms = [l for l in df.splitlines() if l.startswith("FROM ")]
check("multi-stage Debian 12", len(froms) == 2 and all("debian:12" in f for f in froms), froms)
check("non-root user", "\nUSER epmdx" in df)
check("healthcheck on /readyz", "HEALTHCHECK" in df and "/readyz" in df)
check("exposes the three ports", "EXPOSE 4369/tcp 4370/tcp 4371/tcp" in df)
runtime = df.split("FROM debian:12-slim", 1)[-1]
check("no compiler in the final image", "g++" not in runtime and "-dev" not in runtime)

# ---- systemd -----------------------------------------------------------------------------
unit = read("deploy/systemd/epmdx.service")
sock = read("deploy/systemd/epmdx.socket")
check("service is Type=notify", "Type=notify" in unit)
check("service uses -systemd", "-systemd" in unit and "Requires=epmdx.socket" in unit)
check("service reloads on HUP", "ExecReload=/bin/kill -HUP $MAINPID" in unit)
check("socket listens on 4369", "ListenStream=127.0.0.1:4369" in sock)

tmp = tempfile.mkdtemp(prefix="epmdx-deploy-")

# Socket activation and sd_notify, for real.
notify_path = os.path.join(tmp, "notify")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
notify.settimeout(5)
port = free_port()
act = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}",
                        "-E", f"NOTIFY_SOCKET={notify_path}", EPMDX, "-systemd",
                        "--grpc-listen=off", "--http-listen=off"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    check("socket activation listens", wait_port(port))
    conn, reply = alive2(port, "activated")  # The first connection starts epmdx.
    check("registered through systemd's socket", reply[:2] == b"v\x00", reply)
    msg = notify.recv(4096).decode()
    check("READY=1 sent", "READY=1" in msg, msg)
    check("NAMES over the activated socket", "name activated at port 5000" in names(port))
    conn.close()
finally:
    act.send_signal(signal.SIGTERM)
    act.wait(timeout=5)

# Several clusters under socket activation: a socket whose FileDescriptorName= is a
# cluster's name serves that cluster, the others the default cluster.
port, blue_port = free_port(), free_port()
act = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}",
                        "-l", f"127.0.0.1:{blue_port}", "--fdname=epmdx.socket:blue",
                        EPMDX, "-systemd", f"--cluster=blue={blue_port}",
                        "--grpc-listen=off", "--http-listen=off"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    check("socket activation listens on both", wait_port(port) and wait_port(blue_port))
    conn, reply = alive2(blue_port, "inblue")  # The first connection starts epmdx.
    check("registered in the named socket's cluster", reply[:2] == b"v\x00", reply)
    conn2, reply2 = alive2(port, "indefault")
    check("registered in the default cluster", reply2[:2] == b"v\x00", reply2)
    check("NAMES on blue's socket lists blue only",
          "inblue" in names(blue_port) and "indefault" not in names(blue_port))
    check("NAMES on the default socket lists it only",
          "indefault" in names(port) and "inblue" not in names(port))
    conn.close()
    conn2.close()
finally:
    act.send_signal(signal.SIGTERM)
    act.wait(timeout=5)

# Without sockets from systemd, -systemd fails clearly.
r = subprocess.run([EPMDX, "-systemd", "--grpc-listen=off", "--http-listen=off"],
                   capture_output=True, text=True, timeout=10)
check("-systemd without sockets exits 1", r.returncode == 1 and "systemd" in r.stderr, r)

# ---- Signals and logs --------------------------------------------------------------------
tokens = os.path.join(tmp, "tokens")
with open(tokens, "w") as f:
    f.write("first-token read evict\n")
epmd_port, http_port = free_port(), free_port()
log_path = os.path.join(tmp, "log")
with open(log_path, "w") as log:
    d = subprocess.Popen([EPMDX, "-port", str(epmd_port), "--grpc-listen=off",
                          f"--http-listen=127.0.0.1:{http_port}", f"--tokens-file={tokens}",
                          "--http-anonymous-read=false", "--log-format=json"], stderr=log)
try:
    check("daemon up", wait_port(epmd_port) and wait_port(http_port))
    check("first token works", http_get(http_port, "/v1/nodes", "first-token")[0] == 200)
    with open(tokens, "w") as f:
        f.write("second-token read\n")
    d.send_signal(signal.SIGHUP)
    end = time.time() + 5
    while time.time() < end and http_get(http_port, "/v1/nodes", "second-token")[0] != 200:
        time.sleep(0.05)
    check("SIGHUP: new token works", http_get(http_port, "/v1/nodes", "second-token")[0] == 200)
    check("SIGHUP: old token refused", http_get(http_port, "/v1/nodes", "first-token")[0] == 401)
    check("still serving epmd", d.poll() is None)
    conn, reply = alive2(epmd_port, "logged")
    conn.close()
    end = time.time() + 5
    while time.time() < end and "unregistered" not in open(log_path).read():
        time.sleep(0.05)
    t0 = time.time()
    d.send_signal(signal.SIGINT)
    rc = d.wait(timeout=5)
    check("SIGINT: exit 0", rc == 0, rc)
    check("SIGINT: within a second", time.time() - t0 < 1.0, time.time() - t0)
finally:
    if d.poll() is None:
        d.kill()
lines = [l for l in open(log_path).read().splitlines() if l.strip()]
parsed = []
for l in lines:
    try:
        parsed.append(json.loads(l))
    except ValueError:
        check("every log line is JSON", False, l)
msgs = [p.get("msg") for p in parsed]
check("registration logged", any(p.get("msg") == "registered" and p.get("name") == "logged"
                                 for p in parsed), msgs)
check("unregistration logged with reason",
      any(p.get("msg") == "unregistered" and p.get("reason") == "connection_closed"
          for p in parsed), msgs)
check("reload logged", "tokens reloaded" in msgs, msgs)
check("log lines have ts and level", all("ts" in p and "level" in p for p in parsed))

finish()
