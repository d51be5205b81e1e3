#!/usr/bin/env python3
"""Runs a systemd service's ExecStart with the unit's sandbox applied by hand, as systemd's
exec step would, for machines where systemd is not PID 1 (this one; `systemd-run` needs a
running systemd). Run as root, under systemd-socket-activate for socket activation:

  systemd_exec.py UNIT_FILE

Every [Service] directive of the unit must be one this file knows; an unknown one is an
error (exit 99), so a directive cannot be added to the unit without being applied here.
Where this differs from systemd it is stricter: personality() is refused for every persona
but PER_LINUX (systemd also allows the query 0xffffffff)."""

import ctypes
import errno
import os
import pwd
import shlex
import stat
import subprocess
import sys

# Directives that manage the process from outside (start, stop, restart) and change nothing
# in the process itself, with the reason.
NOT_SANDBOX = {
    "Type", "ExecStart", "ExecReload", "Restart", "RestartSec", "KillSignal",
    "TimeoutStopSec",
    # Removes the user's System V IPC objects when the service stops: nothing while it runs.
    "RemoveIPC",
    # With PrivateDevices the only device nodes are null, zero, full, random, urandom and
    # tty, which is what DevicePolicy=closed allows.
    "DevicePolicy",
}
SANDBOX = {
    "User", "Group", "LimitNOFILE", "UMask", "CapabilityBoundingSet", "AmbientCapabilities",
    "NoNewPrivileges", "ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices",
    "ProtectHostname", "ProtectClock", "ProtectKernelTunables", "ProtectKernelModules",
    "ProtectKernelLogs", "ProtectControlGroups", "ProcSubset", "RestrictAddressFamilies",
    "RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality",
    "MemoryDenyWriteExecute", "SystemCallArchitectures", "SystemCallFilter", "Environment",
}

CLONE_NEWNS, CLONE_NEWUTS = 0x00020000, 0x04000000
NS_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
            0x40000000, 0x00000080]  # mnt, cgroup, uts, ipc, user, pid, net, time
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 38, 24
SCMP_ACT_KILL_PROCESS, SCMP_ACT_ALLOW = 0x80000000, 0x7FFF0000
SCMP_CMP_EQ, SCMP_CMP_GT, SCMP_CMP_NE, SCMP_CMP_MASKED_EQ = 4, 6, 1, 7
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
FAMILIES = {"AF_UNIX": AF_UNIX, "AF_INET": AF_INET, "AF_INET6": AF_INET6}

libc = ctypes.CDLL(None, use_errno=True)
seccomp = ctypes.CDLL("libseccomp.so.2", use_errno=True)


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


seccomp.seccomp_init.restype = ctypes.c_void_p
seccomp.seccomp_init.argtypes = [ctypes.c_uint32]
seccomp.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(ArgCmp)]
seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
seccomp.seccomp_load.argtypes = [ctypes.c_void_p]


def die(msg, code=99):
    print(f"systemd_exec: {msg}", file=sys.stderr, flush=True)
    os._exit(code)


def parse_service(path):
    """[Service] as a list of (key, value), in order (keys repeat)."""
    out, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section == "[Service]":
                k, _, v = line.partition("=")
                out.append((k.strip(), v.strip()))
    return out


def mount(*args):
    subprocess.run(["mount", *args], check=True)


def syscall_group(name, seen=None):
    """The system calls of a systemd group such as @system-service, nested groups expanded
    (systemd-analyze syscall-filter is systemd's own list)."""
    seen = set() if seen is None else seen
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                         text=True, check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            calls |= syscall_group(line, seen)
    return calls


def nr(name):
    n = seccomp.seccomp_syscall_resolve_name(name.encode())
    return n if n >= 0 else None


class Filter:
    """One seccomp filter; filters stack, and the strictest answer of all of them wins, as
    with systemd's own separate filters."""

    def __init__(self, default):
        self.ctx = seccomp.seccomp_init(default)
        if not self.ctx:
            die("seccomp_init failed")

    def rule(self, action, name, *cmps):
        n = nr(name)
        if n is None:
            return
        arr = (ArgCmp * max(1, len(cmps)))(*[ArgCmp(*c) for c in cmps])
        rc = seccomp.seccomp_rule_add_array(self.ctx, action, n, len(cmps), arr)
        if rc < 0:
            die(f"seccomp rule for {name}: {os.strerror(-rc)}")

    def load(self):
        rc = seccomp.seccomp_load(self.ctx)
        if rc < 0:
            die(f"seccomp_load: {os.strerror(-rc)}")


def errno_action(e):
    return 0x00050000 | (e & 0xFFFF)


def set_up_mounts(cfg):
    flags = CLONE_NEWNS | (CLONE_NEWUTS if cfg.get("ProtectHostname") == "true" else 0)
    if libc.unshare(flags) != 0:
        die(f"unshare: {os.strerror(ctypes.get_errno())}")
    mount("--make-rprivate", "/")
    writable = set()
    if cfg.get("PrivateTmp") == "true":
        for d in ("/tmp", "/var/tmp"):
            mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", d)
            writable.add(d)
    if cfg.get("PrivateDevices") == "true":
        mount("-t", "tmpfs", "-o", "mode=755,nosuid,noexec", "tmpfs", "/dev")
        for name, major, minor in [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7),
                                   ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)]:
            os.mknod(f"/dev/{name}", stat.S_IFCHR | 0o666, os.makedev(major, minor))
            os.chmod(f"/dev/{name}", 0o666)
        os.mkdir("/dev/shm")
        mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "tmpfs", "/dev/shm")
        writable |= {"/dev", "/dev/shm"}
    if cfg.get("ProcSubset") == "pid":
        mount("-t", "proc", "-o", "subset=pid,nosuid,nodev,noexec", "proc", "/proc")
        writable.add("/proc")
    if cfg.get("ProtectHome") == "true":
        for d in ("/home", "/root", "/run/user"):
            if os.path.isdir(d):
                mount("-t", "tmpfs", "-o", "mode=000,ro,nosuid,nodev,noexec", "tmpfs", d)
    if cfg.get("ProtectKernelModules") == "true":
        for d in ("/usr/lib/modules", "/lib/modules"):
            if os.path.isdir(d) and not os.path.islink(d):
                mount("-t", "tmpfs", "-o", "mode=000,ro", "tmpfs", d)
    strict = cfg.get("ProtectSystem") == "strict"
    tunables = cfg.get("ProtectKernelTunables") == "true"
    cgroups = cfg.get("ProtectControlGroups") == "true"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].encode().decode("unicode_escape") for line in f]
    for mp in points:
        if mp in writable or any(mp.startswith(w + "/") for w in writable):
            continue
        under_sys = mp == "/sys" or mp.startswith("/sys/")
        if strict or (tunables and under_sys) or (cgroups and mp.startswith("/sys/fs/cgroup")):
            subprocess.run(["mount", "-o", "remount,bind,ro", mp], check=False)


def main():
    unit = sys.argv[1]
    entries = parse_service(unit)
    for k, _ in entries:
        if k not in NOT_SANDBOX and k not in SANDBOX:
            die(f"directive not applied by this sandbox: {k}")
    cfg = {}
    filters_allow, filters_deny = None, set()
    env_extra = {}
    for k, v in entries:
        if k == "SystemCallFilter":
            if v.startswith("~"):
                for g in v[1:].split():
                    filters_deny |= syscall_group(g)
            else:
                allow = set()
                for g in v.split():
                    allow |= syscall_group(g)
                filters_allow = allow if filters_allow is None else filters_allow | allow
        elif k == "Environment":
            for kv in shlex.split(v):
                a, _, b = kv.partition("=")
                env_extra[a] = b
        else:
            cfg[k] = v
    argv = shlex.split(cfg["ExecStart"].lstrip("-@:+!"))

    user = pwd.getpwnam(cfg["User"])
    gid = user.pw_gid
    if "Group" in cfg:
        import grp
        gid = grp.getgrnam(cfg["Group"]).gr_gid

    with open("/proc/sys/kernel/cap_last_cap") as f:
        cap_last = int(f.read())  # Before ProcSubset=pid hides /proc/sys.
    set_up_mounts(cfg)

    if "LimitNOFILE" in cfg:
        import resource
        soft, _, hard = cfg["LimitNOFILE"].partition(":")
        soft, hard = int(soft), int(hard or soft)
        _, machine_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard > machine_hard:
            # Raising the hard limit needs CAP_SYS_RESOURCE, which systemd has and a
            # container's root may not: keep the unit's shape (soft = hard) at the ceiling.
            print(f"systemd_exec: LimitNOFILE={hard} capped at this machine's hard limit "
                  f"{machine_hard}", file=sys.stderr, flush=True)
            soft, hard = min(soft, machine_hard), machine_hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    os.umask(int(cfg.get("UMask", "0022"), 8))
    os.chdir("/")

    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "USER": user.pw_name, "LOGNAME": user.pw_name, "HOME": user.pw_dir,
           "SHELL": user.pw_shell}
    for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET"):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(env_extra)

    # CapabilityBoundingSet= (empty): drop every capability from the bounding set while we
    # still may; AmbientCapabilities= (empty) is the default of a non-root exec.
    if cfg.get("CapabilityBoundingSet", None) == "":
        for cap in range(cap_last + 1):
            libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    os.initgroups(user.pw_name, gid)
    os.setresgid(gid, gid, gid)
    os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
    if cfg.get("NoNewPrivileges") == "true" or filters_allow is not None:
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            die("PR_SET_NO_NEW_PRIVS failed")

    # Argument filters first (they allow by default), the allow-list last.
    f = Filter(SCMP_ACT_ALLOW)
    if "RestrictAddressFamilies" in cfg:
        allowed = {FAMILIES[a] for a in cfg["RestrictAddressFamilies"].split()}
        for fam in range(0, 46):
            if fam not in allowed:
                f.rule(errno_action(errno.EAFNOSUPPORT), "socket", (0, SCMP_CMP_EQ, fam, 0))
        f.rule(errno_action(errno.EAFNOSUPPORT), "socket", (0, SCMP_CMP_GT, 45, 0))
    if cfg.get("RestrictNamespaces") == "true":
        f.rule(errno_action(errno.EPERM), "unshare")
        f.rule(errno_action(errno.EPERM), "setns")
        for flag in NS_FLAGS:
            f.rule(errno_action(errno.EPERM), "clone", (0, SCMP_CMP_MASKED_EQ, flag, flag))
        f.rule(errno_action(errno.ENOSYS), "clone3")  # Flags in a struct: systemd does this.
    if cfg.get("RestrictRealtime") == "true":
        for policy in (1, 2, 6):  # SCHED_FIFO, SCHED_RR, SCHED_DEADLINE
            f.rule(errno_action(errno.EPERM), "sched_setscheduler",
                   (1, SCMP_CMP_EQ, policy, 0))
    if cfg.get("RestrictSUIDSGID") == "true":
        for bit in (stat.S_ISUID, stat.S_ISGID):
            f.rule(errno_action(errno.EPERM), "chmod", (1, SCMP_CMP_MASKED_EQ, bit, bit))
            f.rule(errno_action(errno.EPERM), "fchmod", (1, SCMP_CMP_MASKED_EQ, bit, bit))
            f.rule(errno_action(errno.EPERM), "fchmodat", (2, SCMP_CMP_MASKED_EQ, bit, bit))
            f.rule(errno_action(errno.EPERM), "creat", (1, SCMP_CMP_MASKED_EQ, bit, bit))
            f.rule(errno_action(errno.EPERM), "open", (1, SCMP_CMP_MASKED_EQ, os.O_CREAT,
                                                       os.O_CREAT),
                   (2, SCMP_CMP_MASKED_EQ, bit, bit))
            f.rule(errno_action(errno.EPERM), "openat", (2, SCMP_CMP_MASKED_EQ, os.O_CREAT,
                                                         os.O_CREAT),
                   (3, SCMP_CMP_MASKED_EQ, bit, bit))
    if cfg.get("LockPersonality") == "true":
        f.rule(errno_action(errno.EPERM), "personality", (0, SCMP_CMP_NE, 0, 0))
    if cfg.get("MemoryDenyWriteExecute") == "true":
        wx = 0x2 | 0x4  # PROT_WRITE | PROT_EXEC
        f.rule(errno_action(errno.EPERM), "mmap", (2, SCMP_CMP_MASKED_EQ, wx, wx))
        f.rule(errno_action(errno.EPERM), "mprotect", (2, SCMP_CMP_MASKED_EQ, 0x4, 0x4))
        f.rule(errno_action(errno.EPERM), "pkey_mprotect", (2, SCMP_CMP_MASKED_EQ, 0x4, 0x4))
        f.rule(errno_action(errno.EPERM), "shmat", (2, SCMP_CMP_MASKED_EQ, 0o100000, 0o100000))
    if cfg.get("ProtectHostname") == "true":
        f.rule(errno_action(errno.EPERM), "sethostname")
        f.rule(errno_action(errno.EPERM), "setdomainname")
    f.load()

    if filters_allow is not None:
        deny = set(filters_deny)
        if cfg.get("ProtectClock") == "true":
            deny |= syscall_group("@clock")
        if cfg.get("ProtectKernelModules") == "true":
            deny |= syscall_group("@module")
        if cfg.get("ProtectKernelLogs") == "true":
            deny.add("syslog")
        allow = Filter(SCMP_ACT_KILL_PROCESS)  # SystemCallArchitectures=native: the default.
        for name in sorted(filters_allow - deny):
            allow.rule(SCMP_ACT_ALLOW, name)
        allow.load()
    try:
        os.execve(argv[0], argv, env)
    except OSError as e:
        die(f"exec {argv[0]}: {e}", 203)  # systemd's EXIT_EXEC


main()
