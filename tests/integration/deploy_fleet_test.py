#!/usr/bin/env python3
"""The fleet relay's deployment (deploy/kubernetes/epmdx-fleet) and what it needs of the
sidecar's (deploy/kubernetes/epmdx-sidecar), rendered with `kubectl kustomize` and validated
against the Kubernetes schema (unknown fields rejected), then run: two sidecar "pods" run
epmdx with the rendered sidecar's arguments and a tokens Secret holding the relay's line, a
real dnsmasq answers app-headless.default.svc.cluster.local with their addresses (as the
cluster DNS answers for a headless Service), and the rendered relay pod runs under
pod_sim.py (its user, fsGroup, Secret volumes, read-only root, probes against its pod IP).
The relay's /v1/sources and /v1/nodes must show both pods, each node with its pod's name.

Two changes to the rendered manifests, and only these: the relay gets --dns-server=dnsmasq
(the manifest uses the cluster resolver of /etc/resolv.conf), and each sidecar binds its
pod address (127.0.0.1x) and its own epmd port instead of 0.0.0.0 and 4369, because here
the pods share one network namespace where a real cluster gives each its own.

  deploy_fleet_test.py EPMDX EPMDX_FLEET SOURCE_DIR      (as root: namespaces, users)"""

import copy
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pod_sim import Image, PodSim, enter_pod_network, secret_from_manifest  # noqa: E402

RELAY_IP = "10.244.0.30"
enter_pod_network(RELAY_IP, ["/usr/bin/python3", os.path.abspath(__file__), *sys.argv[1:]])

import k8s_schema  # noqa: E402
from epmdx_testlib import check, finish, free_port, wait_port  # noqa: E402

EPMDX, FLEET, SOURCE = sys.argv[1], sys.argv[2], sys.argv[3]
K8S = os.path.join(SOURCE, "deploy", "kubernetes")
HEADLESS = "app-headless.default.svc.cluster.local"
PODS = {"erlang-app-0": "127.0.0.11", "erlang-app-1": "127.0.0.12"}
tmp = tempfile.mkdtemp(prefix="epmdx-fleet-deploy-")


def render(path):
    r = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True,
                       timeout=60)
    check(f"kubectl kustomize {os.path.relpath(path, SOURCE)}", r.returncode == 0, r.stderr)
    return [d for d in yaml.safe_load_all(r.stdout) if d] if r.returncode == 0 else []


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    check(f"one {kind} {name or ''}", len(found) == 1, [d["metadata"]["name"] for d in docs])
    return found[0] if found else {}


def secret(name, **literals):
    """A Secret as `kubectl create secret generic --from-literal` makes it (offline)."""
    r = subprocess.run(["kubectl", "create", "secret", "generic", name, "--dry-run=client",
                        "-o", "yaml", *[f"--from-literal={k}={v}" for k, v in literals.items()]],
                       capture_output=True, text=True, timeout=60)
    check(f"kubectl create secret {name}", r.returncode == 0, r.stderr)
    doc = yaml.safe_load(r.stdout)
    check(f"schema: Secret {name}", k8s_schema.validate(doc) == [], k8s_schema.validate(doc))
    return secret_from_manifest(doc)


def eventually(what, fn, timeout=20.0):
    """Polls fn (returning (ok, detail)) until ok or the deadline; the last detail."""
    end = time.monotonic() + timeout
    while True:
        ok, detail = fn()
        if ok or time.monotonic() > end:
            return ok, detail
        time.sleep(0.1)  # Polling with a deadline, not synchronisation.


# ---- render and validate -------------------------------------------------------------------
relay_docs = render(os.path.join(K8S, "epmdx-fleet"))
side_docs = render(os.path.join(K8S, "epmdx-sidecar"))
for d in relay_docs + side_docs:
    errors = k8s_schema.validate(d)
    check(f"schema: {d['kind']} {d['metadata']['name']}", errors == [], errors)
dep = one(relay_docs, "Deployment", "epmdx-fleet")
relay_svc = one(relay_docs, "Service", "epmdx-fleet")
sts = one(side_docs, "StatefulSet", "erlang-app")
headless = one(side_docs, "Service", "app-headless")
bad = copy.deepcopy(dep)
bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
check("schema rejects a typo in the relay's probe",
      any('"pth"' in e for e in k8s_schema.validate(bad)))

# ---- what the manifests say ----------------------------------------------------------------
relay_spec = dep["spec"]["template"]["spec"]
relay = relay_spec["containers"][0]
args = relay["args"]
check("relay follows the headless Service's gRPC port",
      f"--sources-dns={HEADLESS}:4370" in args and
      {"name": "grpc", "port": 4370, "targetPort": 4370} in headless["spec"]["ports"], args)
check("headless Service publishes not-ready pods (a draining pod stays followed)",
      headless["spec"].get("publishNotReadyAddresses") is True)
check("relay: its API on the pod IP, its own tokens, reads need one",
      {"--grpc-listen=0.0.0.0:4372", "--http-listen=0.0.0.0:4373",
       "--http-anonymous-read=false"} <= set(args) and
      any(a.startswith("--tokens-file=") for a in args) and
      any(a.startswith("--source-token-file=") for a in args) and
      any(a.startswith("--dns-interval=") for a in args) and
      any(a.startswith("--gone-grace=") for a in args), args)
check("relay probes: /livez and /readyz on its HTTP port",
      relay["livenessProbe"]["httpGet"]["path"] == "/livez" and
      relay["readinessProbe"]["httpGet"]["path"] == "/readyz" and
      relay["readinessProbe"]["httpGet"]["port"] == "http", relay)
sc = relay.get("securityContext", {})
check("relay: non-root, read-only root, no capabilities, resources",
      sc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True and
      sc.get("capabilities") == {"drop": ["ALL"]} and "limits" in relay.get("resources", {}), sc)
check("relay Service selects the relay pods", relay_svc["spec"]["selector"].items() <=
      dep["spec"]["template"]["metadata"]["labels"].items() and
      sorted(p["port"] for p in relay_svc["spec"]["ports"]) == [4372, 4373])
side = {c["name"]: c for c in sts["spec"]["template"]["spec"]["initContainers"]}["epmdx"]
side_env = {e["name"]: e for e in side.get("env", [])}
check("sidecar: named by its pod (the relay's source names)",
      "--instance-name=$(POD_NAME)" in side["args"] and
      side_env.get("POD_NAME", {}).get("valueFrom") == {"fieldRef":
                                                         {"fieldPath": "metadata.name"}},
      side["args"])
check("sidecar: gRPC on the pod IP, tokens required",
      "--grpc-listen=0.0.0.0:4370" in side["args"] and
      any(a.startswith("--tokens-file=") for a in side["args"]), side["args"])

# ---- the secrets, as the kustomization's header makes them ---------------------------------
admin, relay_at_sources, relay_admin = (os.urandom(32).hex() for _ in range(3))
side_tokens = secret("epmdx-tokens", tokens=f"{admin} read evict name=admin\n"
                     f"{relay_at_sources} read evict name=fleet\n")["tokens"]
secrets = {"epmdx-fleet-source": secret("epmdx-fleet-source", token=relay_at_sources),
           "epmdx-fleet-tokens": secret("epmdx-fleet-tokens",
                                        tokens=f"{relay_admin} read evict name=admin")}

# ---- DNS: the headless Service's A records -------------------------------------------------
dns_port = free_port()
with open(os.path.join(tmp, "hosts"), "w") as f:
    f.writelines(f"{ip} {HEADLESS}\n" for ip in PODS.values())
dnsmasq = subprocess.Popen(["/usr/sbin/dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts",
                            "--conf-file=/dev/null", "--log-facility=-", "--bind-interfaces",
                            "--listen-address=127.0.0.1", f"--port={dns_port}",
                            f"--addn-hosts={tmp}/hosts", "--local=/cluster.local/"],
                           stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/dnsmasq.log", "w"))

# ---- the sidecars, as the rendered manifest runs them --------------------------------------
tokens_file = os.path.join(tmp, "tokens")
with open(tokens_file, "wb") as f:
    f.write(side_tokens)
os.chmod(tokens_file, 0o440)
daemons, epmd_ports, holds = {}, {}, []
for pod, ip in PODS.items():
    argv = [EPMDX]
    for a in side["args"]:
        a = a.replace("$(POD_NAME)", pod).replace("0.0.0.0:", f"{ip}:")
        argv.append(f"--tokens-file={tokens_file}" if a.startswith("--tokens-file=") else a)
    epmd_ports[pod] = free_port()
    daemons[pod] = subprocess.Popen(argv, env=dict(os.environ, ERL_EPMD_PORT=str(epmd_ports[pod])),
                                    stdout=subprocess.DEVNULL,
                                    stderr=open(f"{tmp}/{pod}.log", "w"))
    check(f"{pod}: epmd port open", wait_port(epmd_ports[pod], timeout=10))


def register(port, name, node_port):
    """ALIVE2_REQ on the daemon's epmd port; the registration lives with the socket."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    body = struct.pack(">BHBBHHH", 120, node_port, 77, 0, 6, 5, len(name)) + name.encode() + \
        struct.pack(">H", 0)
    s.sendall(struct.pack(">H", len(body)) + body)
    resp = s.recv(16)
    return s, len(resp) >= 2 and resp[1] == 0


for i, pod in enumerate(PODS):
    s, ok = register(epmd_ports[pod], f"app{i}", 9100 + i)
    holds.append(s)
    check(f"{pod}: node app{i} registered", ok)

# ---- the relay pod, rendered; --dns-server is the only change ------------------------------
images = {"epmdx:latest": Image.from_dockerfile(os.path.join(SOURCE, "Dockerfile"),
                                                os.path.dirname(FLEET))}
check("the image holds the relay", images["epmdx:latest"].files.get(
    "/usr/local/bin/epmdx-fleet") == os.path.join(os.path.dirname(FLEET), "epmdx-fleet"),
    images["epmdx:latest"].files)
spec = copy.deepcopy(relay_spec)
spec["containers"][0]["args"].append(f"--dns-server=127.0.0.1:{dns_port}")
meta = dict(dep["spec"]["template"]["metadata"], name="epmdx-fleet-7c9f8d6b5-q2w3e")
sim = PodSim(meta, spec, secrets, images, RELAY_IP)

import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(path, token=None):
    req = urllib.request.Request(f"http://{RELAY_IP}:4373{path}")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with opener.open(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


try:
    ok = sim.run()
    check("relay pod: started, every probe passed", ok, sim.failures)
    check("relay: anonymous /readyz and /livez", get("/readyz")[0] == 200 and
          get("/livez")[0] == 200)
    check("relay: anonymous /v1/nodes refused", get("/v1/nodes")[0] == 401)

    def sources_live():
        code, body = get("/v1/sources", relay_admin)
        try:
            got = {s.get("name"): s.get("state") for s in json.loads(body)["sources"]}
        except (ValueError, KeyError):
            return False, (code, body[:300])
        return got == {pod: "LIVE" for pod in PODS}, (code, got)

    ok, detail = eventually("sources", sources_live)
    check("relay /v1/sources: both pods, by their pod names, LIVE", ok, detail)

    def nodes_merged():
        code, body = get("/v1/nodes", relay_admin)
        try:
            got = sorted((n.get("name"), n.get("source")) for n in json.loads(body)["nodes"])
        except (ValueError, KeyError):
            return False, (code, body[:300])
        return got == [("app0", "erlang-app-0"), ("app1", "erlang-app-1")], (code, got)

    ok, detail = eventually("nodes", nodes_merged)
    check("relay /v1/nodes: both pods' nodes, each with its source", ok, detail)
    code, body = get("/v1/nodes?source=erlang-app-1", relay_admin)
    check("relay /v1/nodes?source=erlang-app-1", code == 200 and '"app1"' in body and
          '"app0"' not in body, (code, body[:300]))
    r = sim.exec("epmdx-fleet", ["sh", "-c", "echo x > /x"])
    check("relay root file system is read-only", r.returncode != 0 and "Read-only" in r.stderr, r)
    r = sim.exec("epmdx-fleet", ["id", "-u"])
    check("relay runs as the image's epmdx user", r.stdout.strip() == "4369", r)
finally:
    codes = sim.stop()
    for s in holds:
        s.close()
    for p in daemons.values():
        p.terminate()
    for p in daemons.values():
        p.wait(timeout=30)
    dnsmasq.terminate()
    dnsmasq.wait(timeout=10)
    print("--- relay pod")
    for t, text in sim.events:
        print(f"  {t:6.2f}s {text}")
    sim.remove()
check("relay pod stop: exits 0", codes.get("epmdx-fleet") == 0, codes)
finish()
