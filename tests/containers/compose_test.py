#!/usr/bin/env python3
"""docker-compose.yml run for real: Debian's docker-compose 1.29 against a `podman system
service` of this test's own (a unix socket in a temporary directory), with the images
scripts/containers built (epmdx:latest, erlang:25). Proves: the image's HEALTHCHECK survived
the build (--format docker), epmdx healthy (this test runs `podman healthcheck run`: without
systemd nothing else does), alpha and beta pong each other, the page and /readyz answer on
127.0.0.1 only, `exec -T epmdx epmdxctl list` / `evict`, the README's token + DELETE, the
evicted node back about 2 s later, epmdx stops on SIGTERM in under 2 s, `down` leaves no
container, network or pod. Every wait has a deadline; everything is removed at the end.

  compose_test.py SOURCE_DIR      (as root; CONTAINERS_CONF set by scripts/containers)"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from epmdx_testlib import check, finish, free_port  # noqa: E402

SOURCE = os.path.abspath(sys.argv[1])
COMPOSE_FILE = os.path.join(SOURCE, "docker-compose.yml")
PROJECT = f"epmdxci{os.getpid()}"
HTTP_PORT = free_port()
tmp = tempfile.mkdtemp(prefix="epmdx-compose-")
SOCK = os.path.join(tmp, "podman.sock")
ENV = dict(os.environ, DOCKER_HOST=f"unix://{SOCK}", COMPOSE_PROJECT_NAME=PROJECT,
           EPMDX_HTTP_PORT=str(HTTP_PORT))
ENV.pop("DOCKER_TLS_VERIFY", None)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def run(argv, timeout=60, **kw):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ENV,
                              **kw)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(argv, -1, e.stdout or "", f"timed out: {e}")


def compose(*args, timeout=60):
    return run(["docker-compose", "-f", COMPOSE_FILE, "-p", PROJECT, *args], timeout=timeout)


def poll(what, timeout, interval=0.2):
    """what() until it returns something true, or None after timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > end:
            return got or None
        time.sleep(interval)  # Polling with a deadline.


def project_ids(kind="ps"):
    r = run(["podman", kind, "-a", "-q", "--filter",
             f"label=com.docker.compose.project={PROJECT}"])
    return r.stdout.split()


def container(service):
    r = run(["podman", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
             "--filter", f"label=com.docker.compose.service={service}"])
    ids = r.stdout.split()
    return ids[0] if ids else None


def http(path, host="127.0.0.1", method="GET", token=None):
    req = urllib.request.Request(f"http://{host}:{HTTP_PORT}{path}", method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with opener.open(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def names():
    r = compose("exec", "-T", "epmdx", "epmdxctl", "list", "-o", "names", timeout=30)
    return sorted(r.stdout.split()) if r.returncode == 0 else None


def back_after(t0, timeout=15):
    """Seconds from t0 until beta is listed again."""
    got = poll(lambda: "beta" in (names() or []), timeout, interval=0.05)
    return round(time.monotonic() - t0, 2) if got else None


r = run(["podman", "image", "inspect", "--format", "{{json .Config.Healthcheck}}",
         "epmdx:latest"])
check("the image keeps its HEALTHCHECK (built with --format docker)",
      r.returncode == 0 and "readyz" in r.stdout, (r.stdout, r.stderr))

service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{SOCK}"],
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "svc.log"),
                                                                  "w"))
up = None
try:
    def pinged():
        s = socket.socket(socket.AF_UNIX)
        try:
            s.settimeout(1)
            s.connect(SOCK)
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.")
        except OSError:
            return False
        finally:
            s.close()
    check("podman system service answers", poll(pinged, 30), "no answer in 30 s")

    t_up = time.monotonic()
    up = subprocess.Popen(["docker-compose", "-f", COMPOSE_FILE, "-p", PROJECT, "up", "-d",
                           "--no-build"], env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    # compose waits for service_healthy; without systemd nothing runs the healthcheck, so
    # this test does, as the Dockerfile's comment tells podman users to.
    epmdx = poll(lambda: container("epmdx"), 60)

    def healthy():
        if up.poll() is not None:
            return True  # Up finished (or failed): stop waiting here, checked below.
        run(["podman", "healthcheck", "run", epmdx], timeout=10)
        r = run(["podman", "inspect", "--format", "{{.State.Health.Status}}", epmdx])
        return r.stdout.strip() == "healthy"
    check("epmdx container created", epmdx is not None)
    check("epmdx healthy (podman healthcheck run)", epmdx and poll(healthy, 90, interval=1))
    try:
        out, _ = up.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        up.kill()
        out, _ = up.communicate()
    check("docker-compose up -d: the stack up", up.returncode == 0, out)
    print(f"compose up, healthy and started in {time.monotonic() - t_up:.1f} s")

    def beta_log():
        r = compose("logs", "--no-color", "beta", timeout=30)
        return r.stdout if "beta -> alpha" in r.stdout else None
    log = poll(beta_log, 60, interval=0.5) or ""
    check("beta pings alpha through epmdx: pong, a two-node cluster",
          "beta -> alpha: pong, cluster: [alpha@localhost]" in log, log)
    r = compose("exec", "-T", "alpha", "erl", "-sname", "probe@localhost", "-setcookie",
                "epmdx-demo", "-start_epmd", "false", "-noshell", "-eval",
                "io:format(\"~p~n\", [rpc:call('alpha@localhost', net_adm, ping, "
                "['beta@localhost'])]), halt().", timeout=60)
    check("alpha pings beta: pong", r.stdout.strip().endswith("pong"), (r.stdout, r.stderr))

    code, body = http("/")
    check("the page on 127.0.0.1", code == 200 and "<html" in body.lower(), (code, body[:200]))
    code, body = http("/readyz")
    check("/readyz on 127.0.0.1", code == 200, (code, body))
    r = run(["podman", "inspect", "--format", "{{json .HostConfig.PortBindings}}", epmdx])
    bindings = {k: v for k, v in json.loads(r.stdout or "{}").items() if v}  # Only EXPOSEd: None.
    check("published on the host's loopback only",
          bindings == {"4371/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(HTTP_PORT)}]},
          bindings)
    others = [a for a in run(["hostname", "-I"]).stdout.split() if ":" not in a]
    for addr in others[:1]:
        code, body = http("/readyz", host=addr)
        check(f"not published on {addr}", code is None, (code, body))

    check("exec -T epmdx epmdxctl list", names() == ["alpha", "beta"], names())
    r = compose("exec", "-T", "epmdx", "epmdxctl", "evict", "beta", "--reason", "ci",
                timeout=30)
    t0 = time.monotonic()
    check("exec -T epmdx epmdxctl evict beta", r.returncode == 0 and "evicted beta" in r.stdout,
          (r.returncode, r.stdout, r.stderr))
    back = back_after(t0)
    print(f"evicted beta (epmdxctl) registered again after {back} s")
    check("the evicted OTP 25 node registers again by itself, about 2 s later",
          back is not None and 1.0 <= back <= 8.0, back)

    # The README's token + DELETE. Through a TTY (`exec` without -T in a terminal) the
    # token arrives as TOKEN\r\n: a shell's $(...) keeps the \r, and the header it ends up in
    # is refused. -T gives the file's bytes.
    r = compose("exec", "-T", "epmdx", "cat", "/var/lib/epmdx/admin.token", timeout=30)
    token = r.stdout.rstrip("\n")
    check("exec -T: the token without \\r", r.returncode == 0 and len(token) >= 32 and
          "\r" not in token, repr(r.stdout))
    with socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=5) as s:
        s.sendall(f"DELETE /v1/nodes/beta HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Authorization: Bearer {token}\r\r\nContent-Length: 0\r\n\r\n".encode())
        reply = s.recv(4096).decode(errors="replace")
    check("a token read through a TTY (ends in \\r): the DELETE is refused 400",
          reply.startswith("HTTP/1.1 400") and "bad line ending" in reply, reply[:300])
    check("beta not evicted by the refused DELETE", names() == ["alpha", "beta"], names())
    code, body = http("/v1/nodes/beta", method="DELETE", token=token)
    t0 = time.monotonic()
    check("README: curl -X DELETE with the exec -T token", code in (200, 204), (code, body))
    back = back_after(t0)
    print(f"evicted beta (REST) registered again after {back} s")
    check("beta back after the REST eviction", back is not None and back <= 8.0, back)

    r = compose("stop", "-t", "10", "alpha", "beta", timeout=60)
    check("alpha and beta stop", r.returncode == 0, r.stderr)
    t0 = time.monotonic()
    r = run(["podman", "stop", "--time", "10", epmdx], timeout=30)
    took = time.monotonic() - t0
    print(f"epmdx stopped on SIGTERM in {took:.2f} s")
    code = run(["podman", "inspect", "--format", "{{.State.ExitCode}}", epmdx]).stdout.strip()
    check("epmdx stops on SIGTERM in under 2 s, exit code 0",
          r.returncode == 0 and took < 2.0 and code == "0", (r.stderr, took, code))
finally:
    if up and up.poll() is None:
        up.kill()
        up.wait()
    # alpha and beta first: they live in epmdx's network namespace, and podman refuses to
    # remove epmdx while they exist (compose's parallel removal races it).
    r = compose("rm", "-f", "-s", "alpha", "beta", timeout=120)
    check("docker-compose rm -f -s alpha beta", r.returncode == 0, r.stderr)
    r = compose("down", "-v", "--remove-orphans", "-t", "5", timeout=120)
    check("docker-compose down", r.returncode == 0, r.stderr)
    left = project_ids("ps")
    nets = [n for n in run(["podman", "network", "ls", "--format", "{{.Name}}"]).stdout.split()
            if n.startswith(PROJECT)]
    pods = [p for p in run(["podman", "pod", "ps", "--format", "{{.Name}}"]).stdout.split()
            if PROJECT in p]
    check("down leaves no container, network or pod", not left and not nets and not pods,
          (left, nets, pods))
    for cid in left:  # Whatever a failure left: removed all the same.
        run(["podman", "rm", "-f", cid])
    for net in nets:
        run(["podman", "network", "rm", "-f", net])
    service.terminate()
    try:
        service.wait(timeout=15)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait()
    shutil.rmtree(tmp, ignore_errors=True)
finish()
