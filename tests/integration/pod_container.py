#!/usr/bin/env python3
"""Starts one container of a simulated pod (see pod_sim.py). Runs as root inside the
container's fresh mount namespace (and the pod's PID and network namespaces), does what a
container runtime does, then becomes the container's process:

  pod_container.py SPEC.json            set up the mounts, drop to the user, exec the command
  pod_container.py --exec SPEC.json ARGV...   `kubectl exec`: same user and env, run ARGV

The mounts: a fresh /proc (the pod's PID namespace), the image's files at their image paths,
each volume at its mountPath (read-only when the manifest says so), the pod's /etc/hosts,
and a read-only root when readOnlyRootFilesystem is set. A mount point that does not exist
on this machine is created in an overlay on its parent directory, so the machine's own
directories are never written to."""

import ctypes
import json
import os
import subprocess
import sys

PR_SET_NO_NEW_PRIVS = 38


def mount(*args):
    subprocess.run(["mount", *args], check=True)


def nearest_existing(path):
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    return parent


def set_up_mounts(spec):
    mount("-t", "proc", "proc", "/proc")
    binds = [(f["source"], f["target"], f["read_only"]) for f in spec["image_files"]]
    binds += [(m["source"], m["target"], m["read_only"]) for m in spec["mounts"]]
    binds.append((spec["hosts_file"], "/etc/hosts", True))
    overlays = []
    for n, (source, target, _) in enumerate(binds):
        if os.path.lexists(target):
            continue
        parent = nearest_existing(target)
        if parent == "/":
            raise SystemExit(f"pod_container: no overlay for a mount point at the root: {target}")
        if parent not in overlays:
            upper = os.path.join(spec["scratch"], f"overlay-{n}")
            os.makedirs(upper + "/upper")
            os.makedirs(upper + "/work")
            mount("-t", "overlay", "overlay", "-o",
                  f"lowerdir={parent},upperdir={upper}/upper,workdir={upper}/work", parent)
            overlays.append(parent)
        if os.path.isdir(source):
            os.makedirs(target, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            open(target, "w").close()
    for source, target, read_only in binds:
        mount("--bind", source, target)
        if read_only:
            mount("-o", "remount,bind,ro", target)
    if spec["read_only_root"]:
        for path in ["/", *overlays]:
            mount("-o", "remount,bind,ro", path)


def become(spec, argv):
    libc = ctypes.CDLL(None, use_errno=True)
    if spec["no_new_privs"] and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SystemExit("pod_container: prctl(NO_NEW_PRIVS) failed")
    os.setgroups(spec["groups"])
    os.setresgid(spec["gid"], spec["gid"], spec["gid"])
    os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    os.chdir(spec["working_dir"])
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as e:
        # The runtime's "executable file not found": the container exits 127.
        print(f"pod_container: exec {argv[0]}: {e}", file=sys.stderr, flush=True)
        os._exit(127)


def main():
    if sys.argv[1] == "--exec":
        with open(sys.argv[2]) as f:
            spec = json.load(f)
        become(spec, sys.argv[3:])
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    set_up_mounts(spec)
    become(spec, spec["argv"])


main()
