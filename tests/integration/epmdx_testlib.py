"""Helpers shared by the Python integration tests: checks that count toward the closing
'N passed, N failed' line, and loopback ports."""

import socket
import sys
import time

results = {"passed": 0, "failed": 0}


def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print(f"FAIL {name} {detail}", flush=True)


def free_port():
    """A free port below the kernel's ephemeral range (tests holding many client sockets take
    ports from that range, and a daemon finding its port taken exits 0 quietly, as OTP's)."""
    import random
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError):
        low = 32768
    for _ in range(1000):
        port = random.randrange(10000, max(10001, low - 1))
        if 4369 <= port <= 4371:
            continue
        s = socket.socket(socket.AF_INET6)
        try:
            s.bind(("::", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port")


def wait_port(port, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.02)  # Polling with a deadline.
    return False


def finish():
    print(f"{results['passed']} passed, {results['failed']} failed")
    sys.exit(1 if results["failed"] or not results["passed"] else 0)
