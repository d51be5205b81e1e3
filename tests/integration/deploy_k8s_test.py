#!/usr/bin/env python3
"""The Kubernetes deployment, as a user applies it: the README's commands run (its
`kubectl create secret` lines rendered with --dry-run=client, its `kubectl apply -k DIR`
as `kubectl kustomize DIR`), offline; every object is validated against the Kubernetes
schema with unknown fields rejected, the sidecar patch is applied to a Deployment too, and
the rendered pod is run (pod_sim.py): epmdx as the native sidecar under the manifest's user,
groups and file modes, a real `erl` as the app with the manifest's flags and the cookie from
its Secret, every declared probe against the pod IP. Negative cases: an old manifest
(tokens Secret 0400 root-owned, sidecar as UID 4369, no fsGroup) and the
rendered one without its fsGroup must both fail here; typos in fields must fail validation.

  deploy_k8s_test.py EPMDX EPMDXCTL SOURCE_DIR      (as root: namespaces, users, mounts)
KUBECTL=/path/to/kubectl selects the kubectl (default: kubectl on PATH)."""

import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from pod_sim import Image, PodSim, enter_pod_network, secret_from_manifest  # noqa: E402

POD_IP = "10.244.0.10"
enter_pod_network(POD_IP, ["/usr/bin/python3", os.path.abspath(__file__), *sys.argv[1:]])

import k8s_schema  # noqa: E402
import readme_steps  # noqa: E402
from epmdx_testlib import check, finish  # noqa: E402

EPMDX, EPMDXCTL, SOURCE = sys.argv[1], sys.argv[2], sys.argv[3]
KUBECTL = os.environ.get("KUBECTL", "kubectl")
K8S = os.path.join(SOURCE, "deploy", "kubernetes")
# The fields of a kustomization.yaml that kubectl 1.20's kustomize (v2.0.3) understands.
KUSTOMIZE_V2_FIELDS = {"apiVersion", "kind", "resources", "bases", "patchesStrategicMerge",
                       "patchesJson6902", "namespace", "namePrefix", "nameSuffix",
                       "commonLabels", "commonAnnotations", "images", "configMapGenerator",
                       "secretGenerator", "generatorOptions", "vars"}


def render(path):
    r = subprocess.run([KUBECTL, "kustomize", path], capture_output=True, text=True,
                       timeout=60)
    check(f"kubectl kustomize {os.path.relpath(path, SOURCE)}", r.returncode == 0, r.stderr)
    return [d for d in yaml.safe_load_all(r.stdout) if d] if r.returncode == 0 else []


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def pod_of(workload):
    """The pod a workload controller would create: a StatefulSet's first pod gets the name
    NAME-0, hostname NAME-0 and subdomain serviceName; a Deployment's pod a generated name."""
    meta = dict(workload["spec"]["template"].get("metadata", {}))
    spec = copy.deepcopy(workload["spec"]["template"]["spec"])
    if workload["kind"] == "StatefulSet":
        meta["name"] = workload["metadata"]["name"] + "-0"
        spec["hostname"] = meta["name"]
        spec["subdomain"] = workload["spec"]["serviceName"]
    else:
        meta["name"] = workload["metadata"]["name"] + "-6d4cf56db6-x7k2p"
    return meta, spec


def print_events(sim, title):
    print(f"--- {title}")
    for t, text in sim.events:
        print(f"  {t:6.2f}s {text}")


# ---- the README's commands: secrets (rendered offline) and the kustomization ---------------
readme = readme_steps.shell_block(SOURCE, "Kubernetes")
secret_docs, docs, applied = [], [], []
for cmd in readme:
    if cmd.startswith("kubectl create secret "):
        # As written (openssl makes the values), rendered instead of sent to a cluster.
        r = subprocess.run(["bash", "-c", f"{cmd} --dry-run=client -o yaml"],
                           capture_output=True, text=True, timeout=60, cwd=SOURCE,
                           env=dict(os.environ, PATH=os.path.dirname(shutil.which(KUBECTL)) +
                                    ":" + os.environ["PATH"]))
        check(f"README: {cmd[:40]}...", r.returncode == 0, r.stderr)
        if r.returncode == 0:
            secret_docs.append(yaml.safe_load(r.stdout))
    elif cmd.startswith("kubectl apply -k "):
        applied.append(cmd.split()[-1])
        docs = render(os.path.join(SOURCE, cmd.split()[-1]))
    else:
        check(f"README command the test knows: {cmd}", False)
check("README applies the sidecar kustomization",
      applied == ["deploy/kubernetes/epmdx-sidecar"], applied)
check("README creates both Secrets", sorted(d["metadata"]["name"] for d in secret_docs) ==
      ["epmdx-tokens", "erlang-cookie"], readme)

# ---- render and validate -------------------------------------------------------------------
kinds = sorted(d["kind"] for d in docs)
check("rendered objects", kinds == ["Service", "StatefulSet"], kinds)
for root, _, files in os.walk(K8S):
    if "kustomization.yaml" in files:
        with open(os.path.join(root, "kustomization.yaml")) as f:
            k = yaml.safe_load(f)
        rel = os.path.relpath(root, SOURCE)
        check(f"{rel}: kustomize v2.0.3 fields only", set(k) <= KUSTOMIZE_V2_FIELDS, set(k))
        check(f"{rel}: resources are files (v2.0.3 takes directories as bases)",
              all(os.path.isfile(os.path.join(root, r)) for r in k.get("resources", [])))
for d in docs:
    errors = k8s_schema.validate(d)
    check(f"schema: {d['kind']} {d['metadata']['name']}", errors == [], errors)

# Validation catches what a typo would break.
sts = by_kind(docs, "StatefulSet")[0] if by_kind(docs, "StatefulSet") else {}
bad = copy.deepcopy(sts)
bad["spec"]["template"]["spec"]["initContainers"][0]["restartPolicyy"] = "Always"
errors = k8s_schema.validate(bad)
check("schema rejects restartPolicyy", len(errors) == 1 and "restartPolicyy" in errors[0], errors)
bad = copy.deepcopy(sts)
bad["spec"]["template"]["spec"]["initContainers"][0]["startupProbe"]["grpc"]["prot"] = 4370
check("schema rejects a typo inside a newer field",
      any('"prot"' in e for e in k8s_schema.validate(bad)))
bad = copy.deepcopy(sts)
bad["spec"]["template"]["spec"]["containers"][0]["restartPolicy"] = "Always"
check("schema: restartPolicy only on init containers",
      any("init containers only" in e for e in k8s_schema.validate(bad)))
bad = copy.deepcopy(sts)
bad["spec"]["template"]["spec"]["securityContext"]["fsGroup"] = "4369"
check("schema rejects a string for an integer",
      any("fsGroup" in e for e in k8s_schema.validate(bad)))

# ---- what the manifest says ---------------------------------------------------------------
pod_spec = sts["spec"]["template"]["spec"]
side = {c["name"]: c for c in pod_spec.get("initContainers", [])}.get("epmdx", {})
app = {c["name"]: c for c in pod_spec["containers"]}.get("app", {})
check("native sidecar", side.get("restartPolicy") == "Always", side)
check("sidecar: anonymous HTTP only for probes and metrics",
      "--http-anonymous-read=false" in side.get("args", []), side.get("args"))
check("no shareProcessNamespace (an unprivileged sidecar cannot name a holder; the cookie "
      "stays out of other containers' sight)", "shareProcessNamespace" not in pod_spec,
      pod_spec.get("shareProcessNamespace"))
for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
    check(f"app has a {probe}", probe in app, sorted(app))
env = {e["name"]: e for e in app.get("env", [])}
args = app.get("args", [])
cookie_arg = args[args.index("-setcookie") + 1] if "-setcookie" in args else None
check("cookie comes from a Secret", cookie_arg == "$(ERLANG_COOKIE)" and
      "secretKeyRef" in env.get("ERLANG_COOKIE", {}).get("valueFrom", {}), cookie_arg)
svc = by_kind(docs, "Service")[0] if by_kind(docs, "Service") else {}
name_arg = args[args.index("-name") + 1] if "-name" in args else ""
check("node names use the headless Service's pod DNS names",
      name_arg == f"app@$(POD_NAME).{svc['metadata']['name']}.$(POD_NAMESPACE).svc.cluster.local"
      and sts["spec"].get("serviceName") == svc["metadata"]["name"]
      and svc["spec"].get("clusterIP") == "None", name_arg)
check("Service selects the pods", svc.get("spec", {}).get("selector", {}).items() <=
      sts["spec"]["template"]["metadata"]["labels"].items())
epmdx_image = Image.from_dockerfile(os.path.join(SOURCE, "Dockerfile"), os.path.dirname(EPMDX))
check("sidecar runs as the image's epmdx user and group",
      epmdx_image.users.get("epmdx") == (side.get("securityContext", {}).get("runAsUser"),
                                         side.get("securityContext", {}).get("runAsGroup")),
      epmdx_image.users)

# ---- the patch adds the sidecar to any workload: a Deployment here -------------------------
tmp = tempfile.mkdtemp(prefix="epmdx-kustomize-")
os.makedirs(os.path.join(tmp, "web"))
os.makedirs(os.path.join(tmp, "overlay"))
with open(os.path.join(tmp, "web", "kustomization.yaml"), "w") as f:
    f.write("resources: [deployment.yaml]\n")
with open(os.path.join(tmp, "web", "deployment.yaml"), "w") as f:
    yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                    "spec": {"selector": {"matchLabels": {"app": "web"}},
                             "template": {"metadata": {"labels": {"app": "web"}},
                                          "spec": {"securityContext": {"runAsNonRoot": True},
                                                   "containers": [{"name": "beam",
                                                                   "image": "my/release:1"}]}}}},
                   f)
with open(os.path.join(K8S, "epmdx-sidecar", "sidecar.yaml")) as f:
    patch = f.read().replace("kind: StatefulSet", "kind: Deployment").replace(
        "name: erlang-app", "name: web")
with open(os.path.join(tmp, "overlay", "sidecar.yaml"), "w") as f:
    f.write(patch)
with open(os.path.join(K8S, "epmdx-sidecar", "kustomization.yaml")) as f:
    k = yaml.safe_load(f)
k["bases"] = ["../web"]
with open(os.path.join(tmp, "overlay", "kustomization.yaml"), "w") as f:
    yaml.safe_dump(k, f)
dep_docs = render(os.path.join(tmp, "overlay"))
dep = by_kind(dep_docs, "Deployment")[0]["spec"]["template"]["spec"] if dep_docs else {}
check("patched Deployment: its own container untouched",
      dep.get("containers") == [{"name": "beam", "image": "my/release:1"}], dep.get("containers"))
check("patched Deployment: the epmdx sidecar",
      [c["name"] for c in dep.get("initContainers", [])] == ["epmdx"])
check("patched Deployment: its securityContext kept, fsGroup added",
      dep.get("securityContext") == {"runAsNonRoot": True, "fsGroup": 4369},
      dep.get("securityContext"))
check("patched Deployment: schema", all(k8s_schema.validate(d) == [] for d in dep_docs))

# ---- the pod, run -----------------------------------------------------------------------
for d in secret_docs:
    check(f"schema: Secret {d['metadata']['name']}", k8s_schema.validate(d) == [],
          k8s_schema.validate(d))
pod_secrets = {d["metadata"]["name"]: secret_from_manifest(d) for d in secret_docs}
admin_token = pod_secrets.get("epmdx-tokens", {}).get("tokens", b"-").decode().split()[0]
cookie = pod_secrets.get("erlang-cookie", {}).get("cookie", b"").decode()
check("the README's secrets: a 64-digit token with both scopes, a 64-digit cookie",
      re.fullmatch(r"[0-9a-f]{64} read evict name=admin\n?",
                   pod_secrets.get("epmdx-tokens", {}).get("tokens", b"").decode()) is not None
      and re.fullmatch(r"[0-9a-f]{64}", cookie) is not None, pod_secrets)
images = {"epmdx:latest": epmdx_image, "erlang:25": Image(cmd=["erl"])}


def run_pod(workload, title, secrets_=None):
    meta, spec = pod_of(workload)
    sim = PodSim(meta, spec, secrets_ or pod_secrets, images, POD_IP)
    try:
        ok = sim.run()
    except BaseException:
        sim.stop()  # Nothing of the pod outlives the test.
        raise
    return sim, ok


sim, ok = run_pod(sts, "rendered")
try:
    check("pod: every container started, every probe passed", ok, sim.failures)
    fqdn = sim.fqdn()
    tokens_path = os.path.join(sim.volumes.get("epmdx-tokens", "/nonexistent"), "tokens")
    st = os.stat(tokens_path)
    check("tokens file: mode 0440, owner root, group fsGroup",
          (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid) == (oct(0o440), 0, 4369),
          (oct(st.st_mode & 0o7777), st.st_uid, st.st_gid))
    if ok:
        names = subprocess.run([EPMDX, "-names"], capture_output=True, text=True, timeout=10,
                               env=dict(os.environ, ERL_EPMD_PORT="4369"))
        check("epmd NAMES lists the BEAM", "name app at port 9100" in names.stdout,
              names.stdout + names.stderr)

        import urllib.error
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def get(path, token=None):
            req = urllib.request.Request(f"http://{POD_IP}:4371{path}")
            if token:
                req.add_header("Authorization", "Bearer " + token)
            try:
                with opener.open(req, timeout=5) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()

        check("anonymous /v1/nodes refused", get("/v1/nodes")[0] == 401)
        check("anonymous /v1/watch refused", get("/v1/watch")[0] == 401)
        code, body = get("/metrics")
        check("anonymous /metrics for Prometheus", code == 200 and
              "epmdx_registered_nodes 1" in body, (code, body[:200]))
        check("anonymous /readyz and /livez", get("/readyz")[0] == 200 and
              get("/livez")[0] == 200)
        code, body = get("/v1/nodes", admin_token)
        check("/v1/nodes with the Secret's token", code == 200 and '"name":"app"' in
              body.replace(" ", ""), (code, body[:200]))
        token_file = os.path.join(sim.dir, "admin.token")
        with open(token_file, "w") as f:
            f.write(admin_token + "\n")
        os.chmod(token_file, 0o600)
        r = subprocess.run([EPMDXCTL, f"--server={POD_IP}:4370", f"--token-file={token_file}",
                            "list", "-o", "names"], capture_output=True, text=True, timeout=10)
        check("epmdxctl lists the BEAM over gRPC", r.returncode == 0 and
              r.stdout.split() == ["app"], (r.returncode, r.stdout, r.stderr))

        # Own PID namespaces: the sidecar sees neither the BEAM nor its command line (the
        # cookie), and epmdx does not pretend to know the holder.
        r = sim.exec("epmdx", ["sh", "-c", "cat /proc/[0-9]*/comm; cat /proc/[0-9]*/cmdline"])
        check("the sidecar does not see the BEAM process or the cookie",
              r.returncode == 0 and "epmdx" in r.stdout.split() and
              "beam.smp" not in r.stdout.split() and cookie not in r.stdout,
              (r.returncode, r.stdout, r.stderr))
        code, body = get("/v1/nodes/app", admin_token)
        check("the node's holder: HOLDER_UNKNOWN (no claim the sidecar cannot back)",
              code == 200 and "HOLDER_UNKNOWN" in body, (code, body[:300]))
        r = sim.exec("epmdx", ["id", "-u"])
        check("kubectl exec runs as the sidecar's user", r.stdout.strip() == "4369", r)
        r = sim.exec("epmdx", ["sh", "-c", "echo x > /x"])
        check("sidecar root file system is read-only", r.returncode != 0 and
              "Read-only" in r.stderr, r)

        # Another node reaches the BEAM by its name (the pod's DNS name), through epmdx,
        # with the cookie from the Secret: what the cluster's other pods do.
        r = sim.exec("app", ["erl", "-name", f"peer@{fqdn}", "-setcookie", cookie,
                             "-start_epmd", "false", "-noshell", "-eval",
                             f"io:format(\"~p~n\", [net_adm:ping('app@{fqdn}')]), halt()."],
                     timeout=60)
        check("a peer node pings app@POD.app-headless... through epmdx",
              r.stdout.strip() == "pong", (r.returncode, r.stdout, r.stderr))
finally:
    codes = sim.stop()
    print_events(sim, "rendered pod")
    sim.remove()
check("pod stop: the sidecar drains and exits 0", codes.get("epmdx") == 0, codes)

# ---- what shareProcessNamespace would have given: the cookie to every container -------------
shared = copy.deepcopy(sts)
shared["spec"]["template"]["spec"]["shareProcessNamespace"] = True
sim, ok = run_pod(shared, "shared PID namespace")
try:
    r = sim.exec("epmdx", ["sh", "-c", "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = "
                           "beam.smp ] && tr '\\0' ' ' <$p/cmdline && ls $p/fd >/dev/null; "
                           "done"]) if ok else None
    check("with shareProcessNamespace: the sidecar reads the cookie from erl's argv",
          ok and cookie in r.stdout, (sim.failures, r))
    check("with shareProcessNamespace: the holder's fds stay closed to it (PERMISSION_DENIED)",
          ok and "Permission denied" in r.stderr, (sim.failures, r))
finally:
    sim.stop()
    sim.remove()

# ---- negative: an old manifest with the wrong token permissions ------------------------
with open(os.path.join(HERE, "deploy", "old-epmdx-sidecar.yaml")) as f:
    old = [d for d in yaml.safe_load_all(f) if d]
old_dep = by_kind(old, "Deployment")[0]
sim, ok = run_pod(old_dep, "old")
sim.stop()
sim.remove()
print_events(sim, "old manifest (expected to fail)")
check("old manifest: the pod fails", not ok)
check("old manifest: the sidecar exits 1 on its tokens file", any(
    "container epmdx exited with 1" in f and "tokens" in f for f in sim.failures), sim.failures)
check("old manifest: the BEAM never starts", "app" not in sim.procs)

# ---- negative: the rendered manifest without fsGroup -------------------------------------
no_group = copy.deepcopy(sts)
del no_group["spec"]["template"]["spec"]["securityContext"]["fsGroup"]
sim, ok = run_pod(no_group, "no fsGroup")
sim.stop()
sim.remove()
print_events(sim, "without fsGroup (expected to fail)")
check("without fsGroup: the sidecar cannot read its tokens", not ok and any(
    "container epmdx exited with 1" in f for f in sim.failures), sim.failures)

shutil.rmtree(tmp, ignore_errors=True)
finish()
