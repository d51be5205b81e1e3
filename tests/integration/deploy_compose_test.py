#!/usr/bin/env python3
"""docker-compose.yml, as `docker compose up` would run it, without a Docker engine:
`docker-compose config` must accept the file without a warning, then the services it
normalises are run as one pod (pod_sim.py) -- the Erlang services share epmdx's network
namespace (network_mode: service:epmdx), which is what a pod is. epmdx runs from the
Dockerfile's image description (its USER, ENV, home directory), its healthcheck gates the
Erlang services (depends_on: service_healthy), alpha and beta are real `erl` nodes with the
file's commands, and the commands of the file's header comments are run: `epmdxctl list`
and `evict` inside the epmdx container (as the image's user, with the token epmdx wrote),
and the page's HTTP API from outside. An evicted OTP node registers again by itself; the
time it takes is printed.

  deploy_compose_test.py EPMDX SOURCE_DIR      (as root: namespaces, users, mounts)"""

import os
import shlex
import subprocess
import sys
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pod_sim import Image, PodSim, enter_pod_network  # noqa: E402

POD_IP = "10.244.0.20"
enter_pod_network(POD_IP, ["/usr/bin/python3", os.path.abspath(__file__), *sys.argv[1:]])

import readme_steps  # noqa: E402
from epmdx_testlib import check, finish  # noqa: E402

EPMDX, SOURCE = sys.argv[1], sys.argv[2]

r = subprocess.run(["docker-compose", "-f", os.path.join(SOURCE, "docker-compose.yml"),
                    "config"], capture_output=True, text=True, timeout=60, cwd=SOURCE)
check("docker-compose config accepts the file", r.returncode == 0, r.stderr)
check("docker-compose config: no warning", r.stderr == "", r.stderr)
config = yaml.safe_load(r.stdout) if r.returncode == 0 else {"services": {}}
services = config["services"]
check("services", sorted(services) == ["alpha", "beta", "epmdx"], sorted(services))
ex = services.get("epmdx", {})
check("epmdx is built from this repository",
      os.path.realpath(str(ex.get("build", {}).get("context", ""))) == os.path.realpath(SOURCE),
      ex.get("build"))
def loopback_4371(p):
    """The page published on the host's loopback only (the read API is anonymous there)."""
    if isinstance(p, str):
        return p in ("127.0.0.1:4371:4371", "127.0.0.1:4371:4371/tcp")
    return (str(p.get("published")), p.get("target"), p.get("host_ip")) == \
        ("4371", 4371, "127.0.0.1")


check("the page is published on 127.0.0.1 only", ex.get("ports") and
      all(loopback_4371(p) for p in ex["ports"]), ex.get("ports"))
check("compose comments read the token with exec -T (a TTY would end it in \\r)",
      all("exec -T" in line for line in open(os.path.join(SOURCE, "docker-compose.yml"))
          if "compose exec" in line and "admin.token" in line))
for name in ("alpha", "beta"):
    check(f"{name} shares epmdx's network namespace",
          services.get(name, {}).get("network_mode") == "service:epmdx")
    check(f"{name} waits for epmdx to be healthy",
          services.get(name, {}).get("depends_on", {}).get("epmdx", {}).get("condition") ==
          "service_healthy")


def container(name, svc):
    """A compose service as a container of the pod: compose's command replaces the image's
    CMD (the erlang and epmdx images have no ENTRYPOINT for it to prefix)."""
    c = {"name": name, "image": svc.get("image", "epmdx:latest"),
         "env": [{"name": k, "value": str(v)} for k, v in svc.get("environment", {}).items()]}
    if "command" in svc:
        c["command"] = shlex.split(svc["command"]) if isinstance(svc["command"], str) \
            else svc["command"]
    hc = svc.get("healthcheck")
    if hc:
        test = hc["test"]
        cmd = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
        c["startupProbe"] = {"exec": {"command": cmd},
                             "periodSeconds": int(str(hc.get("interval", "30s")).rstrip("s")),
                             "timeoutSeconds": int(str(hc.get("timeout", "30s")).rstrip("s")),
                             "failureThreshold": hc.get("retries", 3)}
    return c


images = {"epmdx:latest": Image.from_dockerfile(os.path.join(SOURCE, "Dockerfile"),
                                                os.path.dirname(EPMDX)),
          "erlang:25": Image(cmd=["erl"])}
epmdx_c = container("epmdx", ex)
epmdx_c["restartPolicy"] = "Always"  # Runs alongside, gates the others through its health.
# Compose starts services in dependency order: epmdx, then alpha, then beta.
order = sorted(["alpha", "beta"], key=lambda n: n in services.get("alpha", {}).get(
    "depends_on", {}))
spec = {"hostname": ex.get("hostname", "epmdx"), "initContainers": [epmdx_c],
        "containers": [container(n, services[n]) for n in order if n in services]}
sim = PodSim({"name": "compose"}, spec, {}, images, POD_IP)
try:
    ok = sim.run()
    check("compose project up: epmdx healthy, alpha and beta started", ok, sim.failures)

    def names():
        r = sim.exec("epmdx", ["epmdxctl", "list", "-o", "names"])
        return r.returncode, sorted(r.stdout.split()), r.stderr

    end = time.monotonic() + 30
    while time.monotonic() < end and "beta -> alpha" not in sim.log("beta"):
        time.sleep(0.1)  # Polling with a deadline: beta pings alpha when both are up.
    check("beta pings alpha through epmdx: a two-node cluster",
          "beta -> alpha: pong, cluster: [alpha@localhost]" in sim.log("beta"), sim.log("beta"))
    rc, listed, err = names()
    check("`docker compose exec epmdx epmdxctl list`: the image's user reads the generated "
          "token", rc == 0 and listed == ["alpha", "beta"], (rc, listed, err))
    r = sim.exec("epmdx", ["cat", "/var/lib/epmdx/admin.token"])
    token = r.stdout.strip()
    check("`docker compose exec epmdx cat /var/lib/epmdx/admin.token`", r.returncode == 0 and
          len(token) >= 32, r)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{POD_IP}:4371/v1/nodes", timeout=5) as resp:
        body = resp.read().decode()
    check("the published page's API lists both nodes", '"alpha"' in body and '"beta"' in body,
          body[:200])

    # The README's eviction, `docker compose exec SERVICE ARGV...`, in the simulated service.
    evict = [c for c in readme_steps.inline_commands(SOURCE, "docker compose",
                                                     "docker compose exec ") if " evict " in c]
    check("README shows an eviction", len(evict) == 1, evict)
    argv = [a for a in shlex.split(evict[0])[3:] if a != "-T"] if evict else ["false"]
    r = sim.exec(argv[0], argv[1:])
    t0 = time.monotonic()
    check(f"README: {evict[0] if evict else 'evict'}", r.returncode == 0 and
          "evicted beta" in r.stdout, r)
    back = None
    while time.monotonic() - t0 < 15:
        if "beta" in names()[1]:
            back = time.monotonic() - t0
            break
        time.sleep(0.05)  # Polling with a deadline.
    print(f"evicted beta registered again after {back if back is None else round(back, 2)} s")
    check("an evicted OTP 25 node registers again by itself, about 2 s later",
          back is not None and 1.0 <= back <= 8.0, back)
    check("beta kept running", sim.procs["beta"].poll() is None)
finally:
    codes = sim.stop()
    for t, text in sim.events:
        print(f"  {t:6.2f}s {text}")
    sim.remove()
check("epmdx stops cleanly", codes.get("epmdx") == 0, codes)

finish()
