#!/usr/bin/env python3
"""The systemd deployment, as the README installs it: `deploy/systemd/install` runs for real
in a private mount, network and hostname namespace (overlays on /etc, /usr/local, /var and
/run keep this machine's files untouched), `systemd-analyze verify` checks the installed
units, `systemd-analyze security --offline=true` rates the service, and the installed
unit's ExecStart runs under socket activation with every sandbox directive of the unit
applied by hand (systemd_exec.py; systemd is not PID 1 here, so systemd-run cannot be
used). A real Erlang node registers on port 4369 through the activated socket, epmdxctl
reads the installed admin token, ExecReload re-reads the tokens, SIGTERM stops it.

  deploy_systemd_test.py EPMDX SOURCE_DIR      (as root: namespaces, users, mounts)"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
EPMDX, SOURCE = sys.argv[1], sys.argv[2]
if os.environ.get("EPMDX_SYSTEMD_NS") != "1":
    if os.geteuid() != 0:
        raise SystemExit("deploy_systemd_test needs root (namespaces, useradd, mounts)")
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", "--net", "--uts",
                           "--", "/usr/bin/python3", os.path.abspath(__file__), *sys.argv[1:]],
               dict(os.environ, EPMDX_SYSTEMD_NS="1"))

sys.path.insert(0, HERE)
import readme_steps  # noqa: E402
from epmdx_testlib import check, finish  # noqa: E402

MAX_EXPOSURE = 3.0
UNIT = os.path.join(SOURCE, "deploy", "systemd", "epmdx.service")
ETC_UNIT = "/etc/systemd/system/epmdx.service"
ETC_SOCKET = "/etc/systemd/system/epmdx.socket"

# ---- a private copy of the machine ----------------------------------------------------------
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
scratch = tempfile.mkdtemp(prefix="epmdx-systemd-")
for n, d in enumerate(["/etc", "/usr/local", "/var", "/run"]):
    os.makedirs(f"{scratch}/ov{n}/upper")
    os.makedirs(f"{scratch}/ov{n}/work")
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={d},upperdir={scratch}/ov{n}/upper,workdir={scratch}/ov{n}/work",
                    d], check=True)
check("no epmdx user before the install", subprocess.run(
    ["getent", "passwd", "epmdx"], capture_output=True).returncode != 0)

# ---- the unit's rating -------------------------------------------------------------------
r = subprocess.run(["systemd-analyze", "security", "--offline=true", UNIT],
                   capture_output=True, text=True)
m = re.search(r"Overall exposure level for epmdx.service: ([0-9.]+)", r.stdout)
exposure = float(m.group(1)) if m else 99.0
print(f"systemd-analyze security --offline=true: {exposure}")
check(f"exposure {exposure} <= {MAX_EXPOSURE}", exposure <= MAX_EXPOSURE, r.stdout[-400:])

# ---- the README's install step -----------------------------------------------------------
readme = readme_steps.shell_block(SOURCE, "systemd")
check("README: install, then epmdxctl with the admin token",
      len(readme) == 2 and readme[0].startswith("deploy/systemd/install") and
      readme[1].startswith("epmdxctl "), readme)
install = ["bash", "-c", readme[0]]
env = dict(os.environ, EPMDX_BUILD_DIR=os.path.dirname(EPMDX))
r = subprocess.run(install, capture_output=True, text=True, env=env, timeout=60, cwd=SOURCE)
check("install exits 0", r.returncode == 0, r.stdout + r.stderr)
check("install says systemd is not running here", "systemd is not running" in r.stderr,
      r.stderr)
pw = subprocess.run(["getent", "passwd", "epmdx"], capture_output=True, text=True).stdout
fields = pw.strip().split(":")
check("system user epmdx", len(fields) == 7 and int(fields[2]) < 1000 and
      fields[6] == "/usr/sbin/nologin", pw)
uid = int(fields[2]) if len(fields) == 7 else -1
gid = int(fields[3]) if len(fields) == 7 else -1


def mode_owner(path):
    st = os.stat(path)
    return oct(st.st_mode & 0o7777), st.st_uid, st.st_gid


check("/usr/local/bin/epmdx", mode_owner("/usr/local/bin/epmdx") == (oct(0o755), 0, 0))
check("/usr/local/bin/epmdxctl", mode_owner("/usr/local/bin/epmdxctl") == (oct(0o755), 0, 0))
check("/etc/epmdx root:epmdx 0750", mode_owner("/etc/epmdx") == (oct(0o750), 0, gid),
      mode_owner("/etc/epmdx"))
check("tokens root:epmdx 0640", mode_owner("/etc/epmdx/tokens") == (oct(0o640), 0, gid),
      mode_owner("/etc/epmdx/tokens"))
check("admin.token root 0600", mode_owner("/etc/epmdx/admin.token") == (oct(0o600), 0, 0),
      mode_owner("/etc/epmdx/admin.token"))
with open("/etc/epmdx/admin.token") as f:
    admin = f.read().strip()
with open("/etc/epmdx/tokens") as f:
    tokens_text = f.read()
check("tokens file holds the admin token with both scopes",
      f"{admin} read evict name=admin" in tokens_text and len(admin) == 64, tokens_text)
check("units installed", open(ETC_UNIT).read() == open(UNIT).read() and
      os.path.exists(ETC_SOCKET))
r = subprocess.run(install, capture_output=True, text=True, env=env, timeout=60, cwd=SOURCE)
check("install again: exits 0, keeps the tokens", r.returncode == 0 and
      open("/etc/epmdx/tokens").read() == tokens_text, r.stderr)

r = subprocess.run(["systemd-analyze", "verify", ETC_SOCKET, ETC_UNIT], capture_output=True,
                   text=True, timeout=60)
check("systemd-analyze verify is clean", r.returncode == 0 and r.stdout + r.stderr == "",
      r.stdout + r.stderr)

# ---- the unit's ExecStart, socket-activated, sandboxed -------------------------------------
listen = re.findall(r"^ListenStream=(\S+)$", open(ETC_SOCKET).read(), re.M)
check("socket listens on loopback 4369", listen == ["127.0.0.1:4369", "[::1]:4369"], listen)
os.makedirs("/run/epmdx-test")
notify_path = "/run/epmdx-test/notify"
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
os.chmod(notify_path, 0o777)  # As systemd's /run/systemd/notify: any service may write.
notify.settimeout(10)


def activate(unit):
    args = ["systemd-socket-activate"]
    for addr in listen:
        args += ["-l", addr]
    args += ["-E", f"NOTIFY_SOCKET={notify_path}", "/usr/bin/python3",
             os.path.join(HERE, "systemd_exec.py"), unit]
    log = open(os.path.join(scratch, "service.log"), "w+")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT), log


def wait_listening(port=4369, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)  # Polling with a deadline.
    return False


def epmdxctl(*args):
    return subprocess.run(["/usr/local/bin/epmdxctl", *args], capture_output=True, text=True,
                          timeout=15)


cookie = "epmdx-systemd-test"
svc, log = activate(ETC_UNIT)
beam = None
try:
    check("socket activation listens", wait_listening())
    # The node's first connection to 4369 starts epmdx.
    beam = subprocess.Popen(["erl", "-sname", "sdnode", "-setcookie", cookie, "-start_epmd",
                             "false", "-noshell", "-eval", "timer:sleep(infinity)."],
                            env=dict(os.environ, HOME=scratch), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        msg = notify.recv(4096).decode()
    except socket.timeout:
        msg = ""
    check("READY=1 from the sandboxed service", "READY=1" in msg, msg + log.read())
    end = time.monotonic() + 15
    names = None
    while time.monotonic() < end:
        r = epmdxctl("--token-file=/etc/epmdx/admin.token", "list", "-o", "names")
        names = r.stdout.split()
        if "sdnode" in names:
            break
        time.sleep(0.1)  # Polling with a deadline: erl takes a moment to register.
    check("the Erlang node is registered; epmdxctl reads the installed admin token",
          names == ["sdnode"], (names, r.stderr))
    r = subprocess.run(["bash", "-c", readme[1]], capture_output=True, text=True, timeout=15)
    check("README: " + readme[1], r.returncode == 0 and "sdnode" in r.stdout,
          (r.stdout, r.stderr))
    r = subprocess.run([EPMDX, "-names"], capture_output=True, text=True, timeout=10)
    check("epmd -names on 4369", "name sdnode at port" in r.stdout, r.stdout)
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            "http://127.0.0.1:4371/readyz", timeout=5) as resp:
        check("HTTP /readyz on its default port", resp.status == 200)

    # The sandbox is really there: what the kernel says about the running epmdx.
    pid = svc.pid
    status = open(f"/proc/{pid}/status").read()

    def field(name):
        m = re.search(rf"^{name}:\s*(.*)$", status, re.M)
        return m.group(1).split() if m else []

    check("runs as epmdx", field("Uid")[:1] == [str(uid)] and field("Gid")[:1] == [str(gid)],
          status)
    check("no capabilities, none possible", field("CapEff") == ["0000000000000000"] and
          field("CapBnd") == ["0000000000000000"], (field("CapEff"), field("CapBnd")))
    check("no_new_privs", field("NoNewPrivs") == ["1"])
    check("seccomp filters", field("Seccomp") == ["2"] and int(field("Seccomp_filters")[0]) >= 2,
          (field("Seccomp"), field("Seccomp_filters")))
    mounts = {}
    for line in open(f"/proc/{pid}/mountinfo"):
        parts = line.split()
        mounts[parts[4]] = (parts[5], line.split(" - ")[1].split()[0])
    check("root file system read-only", mounts.get("/", ("",))[0].startswith("ro"),
          mounts.get("/"))
    check("/etc read-only", mounts.get("/etc", ("",))[0].startswith("ro"), mounts.get("/etc"))
    check("private /tmp", mounts.get("/tmp", ("", ""))[1] == "tmpfs", mounts.get("/tmp"))
    check("no home directories", mounts.get("/root", ("", ""))[1] == "tmpfs")
    check("private /dev", mounts.get("/dev", ("", ""))[1] == "tmpfs")
    check("/proc with only processes", "subset=pid" in open(f"/proc/{pid}/mountinfo").read())
    with open(f"/proc/{pid}/limits") as f:
        nofile = [line for line in f if line.startswith("Max open files")]
    import resource
    want = str(min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    check(f"LimitNOFILE: soft = hard = {want}", nofile and nofile[0].split()[3:5] == [want, want],
          nofile)

    # ExecReload re-reads the tokens.
    new_token = "0123456789abcdef0123456789abcdef"
    with open("/etc/epmdx/tokens", "a") as f:
        f.write(f"{new_token} read name=reader\n")
    reload_cmd = re.search(r"^ExecReload=(.*)$", open(ETC_UNIT).read(), re.M).group(1)
    r = subprocess.run(shlex.split(reload_cmd.replace("$MAINPID", str(pid))), timeout=10)
    check("ExecReload runs", r.returncode == 0)
    end = time.monotonic() + 5
    while time.monotonic() < end and epmdxctl(f"--token={new_token}", "list").returncode != 0:
        time.sleep(0.05)  # Polling with a deadline.
    check("the reloaded token works", epmdxctl(f"--token={new_token}", "list").returncode == 0)
    check("still serving after reload", svc.poll() is None, log.read())

    t0 = time.monotonic()
    svc.send_signal(signal.SIGTERM)
    rc = svc.wait(timeout=10)
    check("SIGTERM: exit 0 within TimeoutStopSec", rc == 0 and time.monotonic() - t0 < 5,
          (rc, time.monotonic() - t0))
finally:
    if svc.poll() is None:
        svc.kill()
        svc.wait()
    if beam:
        beam.kill()
        beam.wait()
log.seek(0)
print("--- service log\n" + log.read())

# ---- negatives: what the old install steps and an unapplied directive do ------------------
os.rename("/etc/epmdx/tokens", "/etc/epmdx/tokens.away")
svc, log = activate(ETC_UNIT)
wait_listening()
socket.create_connection(("127.0.0.1", 4369), timeout=2).close()  # Starts the service.
rc = svc.wait(timeout=10)
log.seek(0)
out = log.read()
check("without /etc/epmdx/tokens (the old README) the service exits 1",
      rc == 1 and "cannot read tokens file" in out, (rc, out))
os.rename("/etc/epmdx/tokens.away", "/etc/epmdx/tokens")

extra = os.path.join(scratch, "extra.service")
with open(extra, "w") as f:
    f.write(open(ETC_UNIT).read().replace("[Service]\n", "[Service]\nProtectProc=invisible\n"))
svc, log = activate(extra)
wait_listening()
socket.create_connection(("127.0.0.1", 4369), timeout=2).close()
rc = svc.wait(timeout=10)
log.seek(0)
out = log.read()
check("a directive the sandbox does not apply fails the test", rc == 99 and
      "ProtectProc" in out, (rc, out))

# ---- the sandbox bites: a probe in the unit's place tries what the unit forbids ----------
import errno  # noqa: E402
probe_unit = os.path.join(scratch, "probe.service")
# Into the private /usr/local: the sandbox hides /tmp, /home and /root, where a checkout of the
# repository may well live (CI clones into a temporary folder).
probe_path = "/usr/local/libexec/epmdx-systemd-sandbox-probe.py"
os.makedirs(os.path.dirname(probe_path), exist_ok=True)
shutil.copy(os.path.join(HERE, "systemd_sandbox_probe.py"), probe_path)
with open(probe_unit, "w") as f:
    f.write(re.sub(r"^ExecStart=.*$", "ExecStart=/usr/bin/python3 " + probe_path,
                   open(ETC_UNIT).read(), flags=re.M))
svc, log = activate(probe_unit)
wait_listening()
socket.create_connection(("127.0.0.1", 4369), timeout=2).close()
rc = svc.wait(timeout=20)
log.seek(0)
out = log.read()
seen = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
expect = {"socket AF_NETLINK": str(errno.EAFNOSUPPORT), "socket AF_PACKET": str(errno.EAFNOSUPPORT),
          "socket AF_INET": "allowed None", "mmap write+exec": str(errno.EPERM),
          "unshare user namespace": str(errno.EPERM), "personality": str(errno.EPERM),
          "write /var/lib": str(errno.EROFS),
          "read /root": str(errno.EACCES),
          "/dev entries": "allowed ['full', 'null', 'random', 'shm', 'tty', 'urandom', 'zero']"}
for name, want in expect.items():
    check(f"sandbox: {name} -> {want}", seen.get(name) == want, (seen.get(name), out[-300:]))
check("sandbox: a call outside the allow-list is killed with SIGSYS",
      rc == -signal.SIGSYS and "acct: survived" not in out, (rc, out[-300:]))

for d in ["/run", "/var", "/usr/local", "/etc"]:
    subprocess.run(["umount", "--lazy", d], check=False)
shutil.rmtree(scratch, ignore_errors=True)
finish()
