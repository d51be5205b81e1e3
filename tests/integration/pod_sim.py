"""A Kubernetes pod, simulated on this machine as far as it allows: what the kubelet and the
container runtime would do with a rendered pod template, with real processes.

- Network and hostname: the caller runs in a private network and UTS namespace (see
  enter_pod_network), where the pod IP sits on the loopback interface and the hostname is
  the pod's. Probes are sent to the pod IP, as the kubelet sends them.
- Processes: with shareProcessNamespace, one PID namespace for the pod whose PID 1 is a
  holder (the "pause" container); otherwise one PID namespace per container.
- Files: every volume is created as the kubelet creates it (Secret volumes in the atomic
  writer's layout, at defaultMode, owned by root; with fsGroup, group fsGroup and
  mode | 0440 for files, as the kubelet's SetVolumeOwnership does; emptyDir 0777), and
  mounted in the container's own mount namespace (pod_container.py), read-only when asked.
- Users: runAsUser / runAsGroup / fsGroup / supplementalGroups, falling back to the image's
  USER; allowPrivilegeEscalation: false is no_new_privs.
- Environment: the image's ENV, then env with fieldRef and secretKeyRef, $(VAR) expansion in
  values, command and args; command/args replace the image's ENTRYPOINT/CMD as Kubernetes
  does.
- Start order: init containers in order; one with restartPolicy: Always (a native sidecar)
  keeps running and the next container starts only once its startupProbe passes; then the
  app containers, each waited for through its startupProbe. Readiness and liveness probes
  are then each run once.

Not simulated: cgroups (resources), seccomp, capabilities beyond "not root", the image's own
file system (containers see this machine's files plus their image files and volumes)."""

import base64
import grpc
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_health = None


def enter_pod_network(pod_ip, argv):
    """Re-runs this script in a private network and UTS namespace (once), then puts the pod
    IP on its loopback interface. Needs root, as a kubelet does."""
    if os.environ.get("EPMDX_POD_NETNS") != "1":
        if os.geteuid() != 0:
            raise SystemExit("the pod simulation needs root (namespaces, users, mounts)")
        env = dict(os.environ, EPMDX_POD_NETNS="1")
        os.execvpe("unshare", ["unshare", "--net", "--uts", "--", *argv], env)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{pod_ip}/32", "dev", "lo"], check=True)


class Image:
    """What the simulation needs of a container image: ENTRYPOINT, CMD, ENV, USER and the
    files it adds (image path -> file on this machine)."""

    def __init__(self, entrypoint=None, cmd=None, env=None, user=None, users=None, files=None,
                 dirs=None, working_dir="/"):
        self.entrypoint = entrypoint or []
        self.cmd = cmd or []
        self.env = env or {}
        self.user = user
        self.users = users or {}  # name -> (uid, gid)
        self.files = files or {}
        self.dirs = dirs or {}  # image path -> (uid, gid, mode): directories the image owns
        self.working_dir = working_dir

    @staticmethod
    def from_dockerfile(path, build_dir):
        """The final stage of a Dockerfile: ENTRYPOINT, CMD, ENV, USER, WORKDIR, the users
        its RUN lines create (groupadd/useradd with explicit ids) and the files COPY --from
        puts in (mapped to the same basenames in build_dir)."""
        with open(path) as f:
            text = f.read().replace("\\\n", " ")
        stage = text.split("\nFROM ")[-1]
        img = Image()
        groups = {}
        for line in stage.splitlines():
            word, _, rest = line.strip().partition(" ")
            if word == "ENTRYPOINT":
                img.entrypoint = json.loads(rest)
            elif word == "CMD":
                img.cmd = json.loads(rest)
            elif word == "ENV":
                for kv in shlex.split(rest):
                    k, _, v = kv.partition("=")
                    img.env[k] = v
            elif word == "USER":
                img.user = rest.strip()
            elif word == "WORKDIR":
                img.working_dir = rest.strip()
            elif word == "COPY" and "--from=" in rest:
                parts = shlex.split(rest)[1:]
                dest = parts[-1]
                for src in parts[:-1]:
                    img.files[os.path.join(dest, os.path.basename(src))] = os.path.join(
                        build_dir, os.path.basename(src))
            elif word == "RUN":
                for m in re.finditer(r"groupadd [^&;]*--gid (\d+) (\w+)", rest):
                    groups[m.group(2)] = int(m.group(1))
                for m in re.finditer(r"useradd [^&;]*--uid (\d+)[^&;]* (\w+)\s*($|&|;)", rest):
                    name = m.group(2)
                    gid = re.search(r"--gid (\d+)", m.group(0))
                    img.users[name] = (int(m.group(1)),
                                       int(gid.group(1)) if gid else groups.get(name, 0))
                    home = re.search(r"--home-dir (\S+)", m.group(0))
                    if home and "--create-home" in m.group(0):
                        # Debian's useradd: HOME_MODE unset, UMASK 022 in login.defs.
                        img.dirs[home.group(1)] = (*img.users[name], 0o755)
        return img


def _health_module():
    global _health
    if _health is None:
        source = os.path.join(HERE, "..", "..", "proto")
        gen = tempfile.mkdtemp(prefix="epmdx-podsim-pb-")
        subprocess.check_call(["protoc", "-I", source, f"--python_out={gen}",
                               "grpc/health/v1/health.proto"])
        spec = importlib.util.spec_from_file_location(
            "health_pb2", os.path.join(gen, "grpc", "health", "v1", "health_pb2.py"))
        _health = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(_health)
    return _health


def expand(text, env):
    """Kubernetes' $(VAR) expansion: defined variables are replaced, $$ is a literal $,
    anything else stays as written."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
                  text)


class PodSim:
    def __init__(self, pod_meta, pod_spec, secrets, images, pod_ip, namespace="default"):
        self.meta = pod_meta
        self.spec = pod_spec
        self.secrets = secrets  # name -> {key: bytes}
        self.images = images  # image reference -> Image
        self.pod_ip = pod_ip
        self.namespace = namespace
        self.dir = tempfile.mkdtemp(prefix="epmdx-pod-")
        os.chmod(self.dir, 0o755)
        self.failures = []
        self.events = []  # (seconds since start, text): what a `kubectl describe` would show
        self.procs = {}  # container name -> Popen
        self.specs = {}  # container name -> spec file
        self.holder = None
        self.t0 = time.monotonic()

    # ---- results ------------------------------------------------------------------------
    def event(self, text):
        self.events.append((round(time.monotonic() - self.t0, 2), text))

    def fail(self, text):
        self.failures.append(text)
        self.event("FAILED " + text)

    def log(self, name):
        try:
            with open(os.path.join(self.dir, f"{name}.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ---- volumes ------------------------------------------------------------------------
    def _fs_group(self):
        return (self.spec.get("securityContext") or {}).get("fsGroup")

    def _own(self, path, is_dir, read_only):
        """The kubelet's SetVolumeOwnership for an fsGroup."""
        fs_group = self._fs_group()
        if fs_group is None:
            return
        os.lchown(path, -1, fs_group)
        if os.path.islink(path):
            return
        mask = 0o440 if read_only else 0o660
        if is_dir:
            mask |= 0o2110
        os.chmod(path, os.stat(path).st_mode & 0o7777 | mask)

    def _make_volumes(self):
        self.volumes = {}
        for vol in self.spec.get("volumes", []):
            path = os.path.join(self.dir, "volumes", vol["name"])
            os.makedirs(path)
            if "secret" in vol:
                self._secret_volume(vol["secret"], path)
            elif "emptyDir" in vol:
                os.chmod(path, 0o777)
                self._own(path, True, False)
            else:
                self.fail(f"volume {vol['name']}: kind not simulated: {sorted(vol)}")
                continue
            self.volumes[vol["name"]] = path

    def _secret_volume(self, src, path):
        data = self.secrets.get(src["secretName"])
        if data is None:
            if not src.get("optional"):
                self.fail(f"secret {src['secretName']} not found: the pod stays in "
                          "ContainerCreating")
            return
        default_mode = src.get("defaultMode", 0o644)
        items = src.get("items") or [{"key": k, "path": k} for k in data]
        # The atomic writer: the files in a timestamped directory, ..data points to it, and
        # each top-level name is a symlink through ..data.
        os.chmod(path, 0o1777)
        stamp = os.path.join(path, "..2026_01_01_00_00_00.000000001")
        os.mkdir(stamp, 0o755)
        os.chmod(stamp, 0o755)
        os.symlink(os.path.basename(stamp), os.path.join(path, "..data"))
        for item in items:
            target = os.path.join(stamp, item["path"])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as f:
                f.write(data[item["key"]])
            os.chmod(target, item.get("mode", default_mode))
            top = item["path"].split("/")[0]
            if not os.path.lexists(os.path.join(path, top)):
                os.symlink(os.path.join("..data", top), os.path.join(path, top))
        for root, dirs, files in os.walk(path):
            for d in dirs:
                self._own(os.path.join(root, d), True, True)
            for f in files:
                self._own(os.path.join(root, f), False, True)
        self._own(path, True, True)

    # ---- containers ---------------------------------------------------------------------
    def hostname(self):
        return self.spec.get("hostname") or self.meta["name"]

    def fqdn(self):
        sub = self.spec.get("subdomain")
        if not sub:
            return None
        return f"{self.hostname()}.{sub}.{self.namespace}.svc.cluster.local"

    def _hosts_file(self):
        names = self.hostname()
        if self.fqdn():
            names = f"{self.fqdn()}\t{self.hostname()}"
        path = os.path.join(self.dir, "hosts")
        with open(path, "w") as f:
            f.write("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\n"
                    f"{self.pod_ip}\t{names}\n")
        os.chmod(path, 0o644)
        return path

    def _env(self, c, image):
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": self.hostname()}
        env.update(image.env)
        fields = {"metadata.name": self.meta["name"], "metadata.namespace": self.namespace,
                  "status.podIP": self.pod_ip, "spec.nodeName": "simulated-node"}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = expand(str(e["value"]), env)
            elif "fieldRef" in e.get("valueFrom", {}):
                env[e["name"]] = fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
            elif "secretKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["secretKeyRef"]
                value = self.secrets.get(ref["name"], {}).get(ref["key"])
                if value is None:
                    self.fail(f"container {c['name']}: secret {ref['name']} key {ref['key']} "
                              "not found: CreateContainerConfigError")
                    return None
                env[e["name"]] = value.decode()
            else:
                self.fail(f"container {c['name']}: env {e['name']}: source not simulated")
                return None
        return env

    def _identity(self, c, image):
        pod_sc = self.spec.get("securityContext") or {}
        sc = c.get("securityContext") or {}
        uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
        gid = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
        if uid is None and image.user:
            name = image.user
            if name.isdigit():
                uid = int(name)
            elif name in image.users:
                uid, image_gid = image.users[name]
                gid = image_gid if gid is None else gid
            else:
                self.fail(f"container {c['name']}: image user {name} unknown")
        uid = 0 if uid is None else uid
        if gid is None:
            gid = next((g for u, g in image.users.values() if u == uid), 0)
        if sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) and uid == 0:
            self.fail(f"container {c['name']}: runAsNonRoot with user 0: "
                      "CreateContainerConfigError")
        groups = [gid, *pod_sc.get("supplementalGroups", [])]
        if self._fs_group() is not None:
            groups.append(self._fs_group())
        return uid, gid, sorted(set(groups)), sc

    def _start(self, c):
        image = self.images.get(c["image"])
        if image is None:
            self.fail(f"container {c['name']}: image {c['image']} not simulated")
            return False
        env = self._env(c, image)
        if env is None:
            return False
        uid, gid, groups, sc = self._identity(c, image)
        if "command" in c:
            argv = list(c["command"]) + list(c.get("args", []))
        elif "args" in c:
            argv = image.entrypoint + list(c["args"])
        else:
            argv = image.entrypoint + image.cmd
        argv = [expand(str(a), env) for a in argv]
        mounts = []
        for m in c.get("volumeMounts", []):
            if m["name"] not in self.volumes:
                self.fail(f"container {c['name']}: volume {m['name']} missing")
                return False
            mounts.append({"source": self.volumes[m["name"]], "target": m["mountPath"],
                           "read_only": bool(m.get("readOnly"))})
        scratch = os.path.join(self.dir, "scratch", c["name"])
        os.makedirs(scratch)
        image_files = [{"source": s, "target": t, "read_only": True}
                       for t, s in image.files.items()]
        for target, (d_uid, d_gid, d_mode) in image.dirs.items():
            # The image's own directory: a fresh copy per container, as a new container's
            # writable layer holds it.
            source = os.path.join(scratch, "image" + target)
            os.makedirs(source)
            os.chown(source, d_uid, d_gid)
            os.chmod(source, d_mode)
            image_files.append({"source": source, "target": target,
                                "read_only": bool(sc.get("readOnlyRootFilesystem"))})
        spec = {"argv": argv, "env": env, "uid": uid, "gid": gid, "groups": groups,
                "no_new_privs": sc.get("allowPrivilegeEscalation") is False,
                "read_only_root": bool(sc.get("readOnlyRootFilesystem")),
                "working_dir": c.get("workingDir", image.working_dir),
                "mounts": mounts, "hosts_file": self.hosts,
                "image_files": image_files,
                "scratch": scratch}
        spec_path = os.path.join(self.dir, f"{c['name']}.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        if self.holder:
            ns = ["nsenter", "-t", str(self.holder), "-p", "--", "unshare", "--mount",
                  "--propagation", "private", "--"]
        else:
            ns = ["unshare", "--pid", "--fork", "--mount", "--propagation", "private", "--"]
        log = open(os.path.join(self.dir, f"{c['name']}.log"), "w")
        self.procs[c["name"]] = subprocess.Popen(
            ns + ["/usr/bin/python3", os.path.join(HERE, "pod_container.py"), spec_path],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.specs[c["name"]] = spec_path
        self.event(f"started container {c['name']} as {uid}:{gid} groups {groups}: "
                   f"{shlex.join(argv)}")
        return True

    def main_pid(self, name, timeout=5.0):
        """The container's process (the child of nsenter/unshare), as seen from here."""
        proc = self.procs[name]
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                    kids = f.read().split()
                if kids:
                    return int(kids[0])
            except OSError:
                return None
            time.sleep(0.01)  # Polling with a deadline.
        return None

    def exec(self, name, argv, timeout=30):
        """`kubectl exec`: argv in the container's namespaces, as its user, with its env."""
        pid = self.main_pid(name)
        if pid is None:
            return subprocess.CompletedProcess(argv, 255, "", f"container {name} not running")
        return subprocess.run(
            ["nsenter", "-t", str(pid), "-m", "-p", "--", "/usr/bin/python3",
             os.path.join(HERE, "pod_container.py"), "--exec", self.specs[name], *argv],
            capture_output=True, text=True, timeout=timeout)

    # ---- probes -------------------------------------------------------------------------
    def _port(self, c, port):
        if isinstance(port, int):
            return port
        for p in c.get("ports", []):
            if p.get("name") == port:
                return p["containerPort"]
        raise ValueError(f"container {c['name']}: no port named {port}")

    def probe_once(self, c, probe):
        """One probe as the kubelet runs it; (ok, detail)."""
        timeout = probe.get("timeoutSeconds", 1)
        try:
            if "grpc" in probe:
                hpb = _health_module()
                port = self._port(c, probe["grpc"]["port"])
                with grpc.insecure_channel(f"{self.pod_ip}:{port}",
                                           options=[("grpc.enable_http_proxy", 0)]) as ch:
                    check = ch.unary_unary("/grpc.health.v1.Health/Check",
                                           request_serializer=hpb.HealthCheckRequest.SerializeToString,
                                           response_deserializer=hpb.HealthCheckResponse.FromString)
                    r = check(hpb.HealthCheckRequest(service=probe["grpc"].get("service", "")),
                              timeout=timeout)
                return r.status == hpb.HealthCheckResponse.SERVING, f"grpc status {r.status}"
            if "httpGet" in probe:
                h = probe["httpGet"]
                port = self._port(c, h["port"])
                url = f"{h.get('scheme', 'HTTP').lower()}://{h.get('host', self.pod_ip)}:{port}" \
                      f"{h.get('path', '/')}"
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                try:
                    with opener.open(url, timeout=timeout) as r:
                        code = r.status
                except urllib.error.HTTPError as e:
                    code = e.code
                return 200 <= code < 400, f"GET {url}: {code}"
            if "tcpSocket" in probe:
                port = self._port(c, probe["tcpSocket"]["port"])
                socket.create_connection((probe["tcpSocket"].get("host", self.pod_ip), port),
                                         timeout=timeout).close()
                return True, f"tcp {port} open"
            if "exec" in probe:
                r = self.exec(c["name"], probe["exec"]["command"], timeout=timeout)
                return r.returncode == 0, f"exec rc {r.returncode}"
        except (OSError, grpc.RpcError) as e:
            return False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return False, f"probe kind not simulated: {sorted(probe)}"

    def _wait_started(self, c):
        """Waits for the container's startupProbe at its period and failure threshold, as
        the kubelet does; a container that exits meanwhile fails at once."""
        name = c["name"]
        probe = c.get("startupProbe")
        if probe is None:
            self.event(f"{name}: no startupProbe, started")
            return self.procs[name].poll() is None
        time.sleep(probe.get("initialDelaySeconds", 0))
        period = probe.get("periodSeconds", 10)
        for attempt in range(1, probe.get("failureThreshold", 3) + 1):
            rc = self.procs[name].poll()
            if rc is not None:
                self.fail(f"container {name} exited with {rc} before its startupProbe passed;"
                          f" log: {self.log(name).strip()[-600:]}")
                return False
            ok, detail = self.probe_once(c, probe)
            if ok:
                self.event(f"{name}: startupProbe passed on attempt {attempt} ({detail})")
                return True
            deadline = time.monotonic() + period
            while time.monotonic() < deadline and self.procs[name].poll() is None:
                time.sleep(0.02)  # The probe period, cut short if the container exits.
        self.fail(f"container {name}: startupProbe failed {attempt} times: {detail}")
        return False

    # ---- the pod ------------------------------------------------------------------------
    def run(self):
        """Starts the pod; returns True when every container started and every probe
        passed. self.failures says what went wrong."""
        socket.sethostname(self.hostname())  # Our own UTS namespace (enter_pod_network).
        self._make_volumes()
        if self.failures:
            return False
        self.hosts = self._hosts_file()
        if self.spec.get("shareProcessNamespace"):
            self._holder_proc = subprocess.Popen(["unshare", "--pid", "--fork", "--",
                                                  "sleep", "infinity"],
                                                 stdin=subprocess.DEVNULL,
                                                 stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.DEVNULL)
            end = time.monotonic() + 5
            while self.holder is None and time.monotonic() < end:
                try:
                    with open(f"/proc/{self._holder_proc.pid}/task/{self._holder_proc.pid}"
                              "/children") as f:
                        kids = f.read().split()
                    self.holder = int(kids[0]) if kids else None
                except OSError:
                    pass
                time.sleep(0.01)  # Polling with a deadline.
        for c in self.spec.get("initContainers", []):
            if not self._start(c):
                return False
            if c.get("restartPolicy") == "Always":
                if not self._wait_started(c):
                    return False
            else:
                rc = self.procs[c["name"]].wait(timeout=60)
                if rc != 0:
                    self.fail(f"init container {c['name']} exited with {rc}: "
                              f"{self.log(c['name'])[-600:]}")
                    return False
        for c in self.spec["containers"]:
            if not self._start(c):
                return False
        for c in self.spec["containers"]:
            if not self._wait_started(c):
                return False
        for c in self.spec.get("initContainers", []) + self.spec["containers"]:
            for kind in ("readinessProbe", "livenessProbe"):
                if kind in c:
                    ok, detail = self.probe_once(c, c[kind])
                    self.event(f"{c['name']}: {kind} {'passed' if ok else 'FAILED'} ({detail})")
                    if not ok:
                        self.fail(f"container {c['name']}: {kind} failed: {detail}")
        return not self.failures

    def stop(self):
        """Stops the app containers, then the sidecars in reverse order (as the kubelet
        does), SIGTERM then SIGKILL after a grace period; returns {name: exit code}."""
        order = [c["name"] for c in self.spec["containers"]]
        order += [c["name"] for c in reversed(self.spec.get("initContainers", []))]
        codes = {}
        for name in order:
            proc = self.procs.get(name)
            if proc is None:
                continue
            pid = self.main_pid(name, timeout=0.1) if proc.poll() is None else None
            if pid:
                _kill(pid, signal.SIGTERM)
            try:
                codes[name] = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                if pid:
                    _kill(pid, signal.SIGKILL)
                proc.kill()
                codes[name] = proc.wait(timeout=5)
        holder_proc = getattr(self, "_holder_proc", None)
        if holder_proc:
            if self.holder:
                _kill(self.holder, signal.SIGKILL)  # PID 1 of the pod: its namespace ends.
            holder_proc.kill()
            holder_proc.wait(timeout=5)
        return codes


    def remove(self):
        """Deletes the pod's files (after stop: no mount namespace holds them any more)."""
        shutil.rmtree(self.dir, ignore_errors=True)


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def secret_from_manifest(doc):
    """{key: bytes} of a v1 Secret object (data is base64, stringData plain)."""
    data = {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (doc.get("stringData") or {}).items()})
    return data
