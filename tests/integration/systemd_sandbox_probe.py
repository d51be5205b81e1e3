#!/usr/bin/env python3
"""Run by deploy_systemd_test.py as the ExecStart of a copy of epmdx.service, inside the
by-hand sandbox (systemd_exec.py): tries what the unit forbids and prints what happened,
one `name: result` line each, then makes a call outside the system call allow-list, which
must kill the process with SIGSYS."""

import ctypes
import mmap
import os
import socket

libc = ctypes.CDLL(None, use_errno=True)


def report(name, fn):
    try:
        r = fn()
        print(f"{name}: allowed {r}", flush=True)
    except OSError as e:
        print(f"{name}: {e.errno}", flush=True)


def ctypes_call(fn, *args):
    if fn(*args) != 0:
        raise OSError(ctypes.get_errno(), "")
    return 0


report("socket AF_NETLINK", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW))
report("socket AF_PACKET", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
report("socket AF_INET", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
report("mmap write+exec", lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE |
                                             mmap.PROT_EXEC))
report("unshare user namespace", lambda: ctypes_call(libc.unshare, 0x10000000))
report("personality", lambda: ctypes_call(libc.personality, 0x0008))
report("write /var/lib", lambda: open("/var/lib/epmdx-probe", "w"))
report("read /root", lambda: os.listdir("/root"))
report("/dev entries", lambda: sorted(os.listdir("/dev")))
print("acct: calling", flush=True)
libc.acct(None)  # @privileged: not in the allow-list.
print("acct: survived", flush=True)
