#!/usr/bin/env python3
"""deploy/compose-fleet/docker-compose.yml run for real: Debian's docker-compose 1.29 against a
`podman system service` of this test's own, with the images scripts/containers built
(epmdx:latest with epmdx-fleet in it, erlang:25). Three "pods" (pod-X holds the network
namespace, epmdx-X and beam-X join it) and one relay. Proves, from outside: the sidecars and
the relay healthy (`podman healthcheck run`: without systemd nothing else runs them), the
relay's /readyz and page on 127.0.0.1 only, /v1/sources pod-a, pod-b, pod-c LIVE, /v1/nodes
a, b, c each with its source; `kill epmdx-b`: pod-b STALE, node b kept stale, the others
LIVE, an eviction of b refused 503 (fails closed), beam-b still running; `start epmdx-b`:
pod-b LIVE again and b back (the BEAM registered again by itself, in the same namespace;
the relay's b is the new registration, not the old boot's);
evict through the relay: anonymous and the demo token (a token of the sidecars) refused 401,
the relay's generated token evicts, the source names the relay and its caller, b back about
2 s later; `epmdxctl sources` in the relay's container; the relay stops on SIGTERM in under
2 s; `rm` and `down` leave no container, network or pod. Every wait has a deadline.

  compose_fleet_test.py SOURCE_DIR      (as root; CONTAINERS_CONF set by scripts/containers)"""

import json
import os
import shutil
import signal
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
FLEET_DIR = os.path.join(SOURCE, "deploy", "compose-fleet")
COMPOSE_FILE = os.path.join(FLEET_DIR, "docker-compose.yml")
PROJECT = f"epmdxci{os.getpid()}f"
HTTP_PORT = free_port()
PODS = ["pod-a", "pod-b", "pod-c"]
SIDECARS = ["epmdx-a", "epmdx-b", "epmdx-c"]
BEAMS = ["beam-a", "beam-b", "beam-c"]
NODES = {"a": "pod-a", "b": "pod-b", "c": "pod-c"}
tmp = tempfile.mkdtemp(prefix="epmdx-compose-fleet-")
SOCK = os.path.join(tmp, "podman.sock")
ENV = dict(os.environ, DOCKER_HOST=f"unix://{SOCK}", COMPOSE_PROJECT_NAME=PROJECT,
           EPMDX_FLEET_HTTP_PORT=str(HTTP_PORT))
ENV.pop("DOCKER_TLS_VERIFY", None)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def run(argv, timeout=60):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=ENV)
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


def container(service):
    r = run(["podman", "ps", "-a", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
             "--filter", f"label=com.docker.compose.service={service}"])
    ids = r.stdout.split()
    return ids[0] if ids else None


def inspect(cid, fmt):
    return run(["podman", "inspect", "--format", fmt, cid]).stdout.strip()


def http(path, method="GET", token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}{path}", method=method)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with opener.open(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return None, str(e)


def get_json(path):
    code, body = http(path)
    try:
        return json.loads(body) if code == 200 else None
    except ValueError:
        return None


def sources():
    """{name: source} from the relay's /v1/sources, or {} when it does not answer."""
    d = get_json("/v1/sources") or {}
    return {s["name"]: s for s in d.get("sources", [])}


def states():
    return {n: s["state"] for n, s in sources().items()}


def relay_nodes():
    """(nodes by name, coverage) from the relay's /v1/nodes."""
    d = get_json("/v1/nodes") or {}
    return {n["name"]: n for n in d.get("nodes", [])}, d.get("coverage", {})


def sidecar_node(sidecar, name):
    """The node as the sidecar itself has it (its own HTTP API, inside its namespace)."""
    r = compose("exec", "-T", sidecar, "curl", "-fsS", f"http://127.0.0.1:4371/v1/nodes/{name}",
                timeout=30)
    try:
        return json.loads(r.stdout) if r.returncode == 0 else None
    except ValueError:
        return None


def netns(cid):
    pid = inspect(cid, "{{.State.Pid}}")
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def start_service():
    # A session of its own: `timeout` signals its whole process group, and the tear-down
    # after a SIGTERM still needs the service.
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{SOCK}"],
                               stdout=subprocess.DEVNULL,
                               stderr=open(os.path.join(tmp, "svc.log"), "w"),
                               start_new_session=True)

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
    return service


def check_images():
    r = run(["podman", "run", "--rm", "--entrypoint", "/usr/local/bin/epmdx-fleet",
             "epmdx:latest", "--version"], timeout=60)
    check("epmdx:latest holds the relay (epmdx-fleet --version)",
          r.returncode == 0 and r.stdout.startswith("epmdx-fleet "), (r.stdout, r.stderr))
    r = run(["podman", "image", "exists", "erlang:25"])
    check("erlang:25 exists (tests/containers/base-images.sh)", r.returncode == 0)


def healthy(cid):
    run(["podman", "healthcheck", "run", cid], timeout=10)
    return inspect(cid, "{{.State.Health.Status}}") == "healthy"


def bring_up():
    """docker-compose up -d; meanwhile runs the sidecars' healthchecks, which gate the BEAMs
    (depends_on: service_healthy) and which nothing else runs without systemd."""
    t0 = time.monotonic()
    up = subprocess.Popen(["docker-compose", "-f", COMPOSE_FILE, "-p", PROJECT, "up", "-d",
                           "--no-build"], env=ENV, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    try:
        ids = poll(lambda: all(container(s) for s in SIDECARS) and
                   [container(s) for s in SIDECARS], 60)
        check("the three sidecars created", ids is not None)
        seen = set()

        def all_healthy():
            if up.poll() is not None:
                return True  # Up finished (or failed): checked below.
            seen.update(c for c in ids or [] if c not in seen and healthy(c))
            return len(seen) == len(SIDECARS)
        check("the sidecars healthy (podman healthcheck run)",
              ids and poll(all_healthy, 90, interval=1))
        out, _ = up.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        out = "timed out"
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    check("docker-compose up -d: the stack up", up.returncode == 0, out)
    running = {s: inspect(container(s) or "-", "{{.State.Running}}") for s in
               PODS + SIDECARS + BEAMS + ["fleet"]}
    check("eleven containers running", set(running.values()) == {"true"}, running)
    print(f"compose up, sidecars healthy, all started in {time.monotonic() - t0:.1f} s")


def check_relay_up():
    fleet = container("fleet")
    check("the relay healthy (podman healthcheck run)",
          fleet and poll(lambda: healthy(fleet), 60, interval=1))
    code, body = http("/readyz")
    check("the relay's /readyz on 127.0.0.1", code == 200, (code, body))
    t0 = time.monotonic()
    live = poll(lambda: states() == dict.fromkeys(PODS, "LIVE"), 60)
    print(f"sources LIVE {time.monotonic() - t0:.1f} s after up: {states()}")
    check("/v1/sources: pod-a, pod-b, pod-c (their --instance-name) LIVE", live, sources())
    addresses = {n: s.get("address") for n, s in sources().items()}
    check("each source at its pod's name", addresses == {p: f"{p}:4370" for p in PODS},
          addresses)

    def all_nodes():
        nodes, coverage = relay_nodes()
        return ({n: (v["source"], v["stale"]) for n, v in nodes.items()} ==
                {n: (s, False) for n, s in NODES.items()} and
                sorted(coverage.get("live", [])) == PODS)
    check("/v1/nodes: a, b and c, each with its source, none stale, coverage live: all",
          poll(all_nodes, 60), relay_nodes())
    code, body = http("/")
    check("the relay's page on 127.0.0.1", code == 200 and "<html" in body.lower(),
          (code, body[:200]))
    r = run(["podman", "inspect", "--format", "{{json .HostConfig.PortBindings}}", fleet])
    bindings = {k: v for k, v in json.loads(r.stdout or "{}").items() if v}
    check("the relay published on the host's loopback only",
          bindings == {"4373/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(HTTP_PORT)}]},
          bindings)
    ns = {s: netns(container(s)) for s in ["pod-b", "epmdx-b", "beam-b"]}
    check("pod-b, epmdx-b and beam-b share one network namespace",
          None not in ns.values() and len(set(ns.values())) == 1, ns)


def relay_token():
    r = compose("exec", "-T", "fleet", "cat", "/var/lib/epmdx/admin.token", timeout=30)
    token = r.stdout.strip()
    check("the relay's generated token at the image's EPMDX_TOKEN_FILE (--token-out)",
          r.returncode == 0 and len(token) >= 32, (r.stdout, r.stderr))
    return token


def kill_sidecar(token):
    """SIGKILL pod-b's sidecar: the source STALE, its node kept, stale; the BEAM lives on."""
    before = relay_nodes()[0].get("b", {})
    t0 = time.monotonic()
    r = compose("kill", "epmdx-b", timeout=60)
    t1 = time.monotonic()
    check("docker-compose kill epmdx-b", r.returncode == 0, r.stderr)
    stale = poll(lambda: states().get("pod-b") == "STALE", 30, interval=0.05)
    print(f"pod-b STALE {time.monotonic() - t1:.2f} s after `kill epmdx-b` returned (it took "
          f"{t1 - t0:.2f} s): {sources().get('pod-b', {}).get('lastError')}")
    check("pod-b STALE after its sidecar was killed", stale, sources().get("pod-b"))
    check("pod-a and pod-c still LIVE",
          {p: states().get(p) for p in ["pod-a", "pod-c"]} == {"pod-a": "LIVE", "pod-c": "LIVE"},
          states())
    nodes, coverage = relay_nodes()
    b = nodes.get("b", {})
    check("node b kept: source pod-b, stale true, its registration as it was",
          b.get("source") == "pod-b" and b.get("stale") is True and
          b.get("creation") == before.get("creation") and b.get("port") == before.get("port"),
          (before, b))
    check("a and c not stale", [nodes.get(n, {}).get("stale") for n in "ac"] == [False, False],
          nodes)
    check("coverage: pod-b unreachable, with a warning",
          coverage.get("unreachable") == ["pod-b"] and len(coverage.get("warnings", [])) == 1,
          coverage)
    code, body = http("/v1/nodes/b", method="DELETE", token=token)
    check("an eviction of a stale source's node is refused 503 (fails closed)",
          code == 503, (code, body))
    beam = container("beam-b")
    check("beam-b still running without its sidecar",
          inspect(beam, "{{.State.Running}}") == "true", inspect(beam, "{{.State.Status}}"))
    return before


def log_time(line):
    """The time of a daemon's log line (2026-12-03T12:49:47.326Z ...) in seconds, or None."""
    try:
        stamp = line.split()[0].rstrip("Z")
        _, clock = stamp.split("T")
        h, m, sec = clock.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    except (IndexError, ValueError):
        return None


def log_lines(service):
    r = compose("logs", "--no-color", "--no-log-prefix", service, timeout=30)
    return r.stdout.splitlines()


def after_serving(sidecar, service, needle):
    """Seconds from the sidecar's last "epmdx serving" log line to the first line of
    service's log after it that holds needle (the containers share the host's clock)."""
    lines = log_lines(sidecar)
    serving = [log_time(x) for x in lines if " epmdx serving " in x]
    if not serving or serving[-1] is None:
        return None
    later = [t for t in (log_time(x) for x in log_lines(service) if needle in x)
             if t is not None and (t - serving[-1]) % 86400 < 3600]  # Midnight UTC: still right.
    return round((later[0] - serving[-1]) % 86400, 2) if later else None


def restart_sidecar(before):
    """start epmdx-b: in pod-b's namespace again, LIVE again, and the BEAM registers again."""
    t0 = time.monotonic()
    r = compose("start", "epmdx-b", timeout=60)
    t_start = time.monotonic() - t0
    check("docker-compose start epmdx-b", r.returncode == 0, r.stderr)
    live = poll(lambda: states().get("pod-b") == "LIVE", 60, interval=0.05)
    t_live = time.monotonic() - t0

    def b_back():
        b = relay_nodes()[0].get("b", {})
        return b.get("source") == "pod-b" and b.get("stale") is False and b
    b = poll(b_back, 60, interval=0.05) or {}
    t_back = time.monotonic() - t0
    print(f"pod-b LIVE {t_live:.2f} s after `start epmdx-b` began (it took {t_start:.2f} s), "
          f"node b not stale after {t_back:.2f} s")
    check("pod-b LIVE again", live, sources().get("pod-b"))
    check("node b back, not stale", b, relay_nodes())
    ns = {s: netns(container(s)) for s in ["pod-b", "epmdx-b", "beam-b"]}
    check("the sidecar back in pod-b's namespace, with beam-b",
          None not in ns.values() and len(set(ns.values())) == 1, ns)
    own = poll(lambda: sidecar_node("epmdx-b", "b"), 30, interval=0.5) or {}
    check("beam-b registered again by itself at the new sidecar (same port, new creation)",
          own.get("port") == before.get("port") and own.get("creation") != before.get("creation"),
          (before, own))
    gap = after_serving("epmdx-b", "epmdx-b", "registered name=b ")
    relayed = after_serving("epmdx-b", "fleet", "source=pod-b from=STALE to=LIVE")
    print(f"after the restarted sidecar served: beam-b registered {gap} s, the relay had "
          f"pod-b LIVE {relayed} s later")
    check("beam-b registered again within about 2 s of its sidecar serving (OTP's retry)",
          gap is not None and gap <= 3.0, gap)
    check("the relay follows the restarted sidecar within 5 s (its 2 s backoff)",
          relayed is not None and relayed <= 5.0, relayed)
    # The relay's b is the new registration, not the old boot's kept under the new run's
    # registration id (Fleet::snapshot compares runs: a restarted source numbers from 1).
    same = poll(lambda: relay_nodes()[0].get("b", {}).get("creation") == own.get("creation"),
                10, interval=0.1)
    check("the relay's b is the sidecar's new registration (its creation)", same,
          (relay_nodes()[0].get("b"), own))


def evict_through_relay(token):
    demo = open(os.path.join(FLEET_DIR, "relay.token")).read().strip()
    code, body = http("/v1/nodes/b", method="DELETE")
    check("an anonymous eviction through the relay refused 401", code == 401, (code, body))
    code, body = http("/v1/nodes/b", method="DELETE", token=demo)
    check("the demo token (the sidecars' token, not the relay's) refused 401 by the relay",
          code == 401 and "unknown bearer token" in body, (code, body))
    before = relay_nodes()[0].get("b", {})
    code, body = http("/v1/nodes/b?reason=ci", method="DELETE", token=token)
    t0 = time.monotonic()
    evicted = (json.loads(body).get("node", {}) if code == 200 else {})
    check("evict b through the relay with its own token: 200, from pod-b",
          code == 200 and evicted.get("source") == "pod-b", (code, body))

    def back():
        b = relay_nodes()[0].get("b", {})
        return (b.get("stale") is False and b.get("creation") != before.get("creation") and
                b.get("registrationId") != before.get("registrationId") and b)
    b = poll(back, 15, interval=0.05) or {}
    took = round(time.monotonic() - t0, 2)
    print(f"evicted b (through the relay) back in the relay after {took} s")
    check("b registered again by itself, about 2 s later, seen through the relay",
          b and 1.0 <= took <= 8.0, (took, b))
    own = sidecar_node("epmdx-b", "b") or {}
    check("the relay's b is the sidecar's b (creation, registration id)",
          (b.get("creation"), b.get("registrationId")) ==
          (own.get("creation"), own.get("registrationId")), (b, own))
    log = compose("logs", "--no-color", "epmdx-b", timeout=30).stdout
    line = next((x for x in log.splitlines() if "evicted" in x and "name=b" in x), "")
    check("the source's log names the relay's token and the caller",
          "by=\"fleet@" in line and " for " in line and "reason=ci" in line, line)
    r = compose("exec", "-T", "fleet", "epmdxctl", "--server=127.0.0.1:4372", "sources",
                timeout=30)
    rows = [x.split()[:2] for x in r.stdout.splitlines()[1:]]
    check("exec -T fleet epmdxctl sources: three LIVE",
          r.returncode == 0 and rows == [[p, "LIVE"] for p in PODS], (r.stdout, r.stderr))


def stop_relay():
    fleet = container("fleet")
    t0 = time.monotonic()
    r = run(["podman", "stop", "--time", "10", fleet], timeout=30)
    took = time.monotonic() - t0
    print(f"the relay stopped on SIGTERM in {took:.2f} s")
    code = inspect(fleet, "{{.State.ExitCode}}")
    check("the relay stops on SIGTERM in under 2 s, exit code 0",
          r.returncode == 0 and took < 2.0 and code == "0", (r.stderr, took, code))


def tear_down(service):
    # The BEAMs and the sidecars first: they live in the pods' namespaces, and podman refuses
    # to remove a pod-X while they exist (compose's parallel removal races it).
    r = compose("rm", "-f", "-s", *BEAMS, *SIDECARS, timeout=120)
    check("docker-compose rm -f -s the BEAMs and the sidecars", r.returncode == 0, r.stderr)
    r = compose("down", "-v", "--remove-orphans", "-t", "5", timeout=120)
    check("docker-compose down", r.returncode == 0, r.stderr)
    left = run(["podman", "ps", "-a", "-q", "--filter",
                f"label=com.docker.compose.project={PROJECT}"]).stdout.split()
    nets = [n for n in run(["podman", "network", "ls", "--format", "{{.Name}}"]).stdout.split()
            if n.startswith(PROJECT)]
    pods = [p for p in run(["podman", "pod", "ps", "--format", "{{.Name}}"]).stdout.split()
            if PROJECT in p]
    check("rm and down leave no container, network or pod", not left and not nets and not pods,
          (left, nets, pods))
    for cid in left:  # Whatever a failure left: removed all the same.
        run(["podman", "rm", "-f", "-t", "0", cid])
    for net in nets:
        run(["podman", "network", "rm", "-f", net])
    service.terminate()
    try:
        service.wait(timeout=15)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait()
    shutil.rmtree(tmp, ignore_errors=True)


def main():
    print("== deploy/compose-fleet/docker-compose.yml (docker-compose against podman) ==",
          flush=True)
    # `timeout` stops this test with SIGTERM: tear down all the same (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("compose_fleet_test: SIGTERM"))
    t0 = time.monotonic()
    check_images()
    service = start_service()
    try:
        bring_up()
        check_relay_up()
        token = relay_token()
        before = kill_sidecar(token)
        restart_sidecar(before)
        evict_through_relay(token)
        stop_relay()
    finally:
        tear_down(service)
    print(f"compose-fleet stage in {time.monotonic() - t0:.1f} s")
    finish()


main()
