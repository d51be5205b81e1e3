#!/usr/bin/env python3
"""scripts/run's promise, checked against the real daemon: what `scripts/run --where` says
(the page's address, the admin token's file) is where the epmdx started with the same
arguments and environment serves its page and writes its token. And scripts/run builds only
epmdx and epmdxctl (the tests and benchmarks are for scripts/test).

usage: run_script_test.py EPMDX_BIN SOURCE_DIR"""

import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from epmdx_testlib import check, finish, free_port, wait_port  # noqa: E402

EPMDX, SRC = sys.argv[1], sys.argv[2]
RUN = os.path.join(SRC, "scripts/run")


def where(args, env):
    out = subprocess.run([RUN, "--where", *args], env=env, capture_output=True, text=True,
                         timeout=30)
    check("--where exits 0", out.returncode == 0, out.stderr)
    said = {}
    for line in out.stdout.splitlines():
        for key, prefix in (("page", "run: the web page: "), ("token", "run: the admin token: ")):
            if line.startswith(prefix):
                said[key] = line[len(prefix):].split(" ")[0]
    return said


def base_env(home):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPMDX_")}
    env.pop("XDG_RUNTIME_DIR", None)
    env["HOME"] = home
    return env


def daemon_agrees(name, args, env, http_port):
    """Starts epmdx with `args`/`env` and checks the page and the token are where --where said."""
    said = where(args, env)
    check(name + ": --where names the page and the token", "page" in said and "token" in said,
          str(said))
    proc = subprocess.Popen([EPMDX, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        check(name + ": daemon up", wait_port(http_port, 10), "")
        token = said.get("token", "/nonexistent")
        deadline = time.time() + 10
        while not os.path.exists(token) and time.time() < deadline:
            time.sleep(0.02)  # Polling with a deadline: the file is written at start-up.
        check(name + ": the token is where --where said", os.path.exists(token), token)
        page = urllib.request.urlopen(said.get("page", "http://127.0.0.1:1/"), timeout=5)
        body = page.read().decode()
        check(name + ": the page is where --where said", page.status == 200 and
              "<title>epmdx" in body, body[:200])
    finally:
        proc.terminate()
        proc.wait(10)


with tempfile.TemporaryDirectory() as tmp:
    # The defaults, without starting anything on the host's real ports.
    said = where([], base_env(tmp))
    check("default page", said.get("page") == "http://127.0.0.1:4371/", str(said))
    check("default token", said.get("token") == tmp + "/.config/epmdx/admin-4370.token",
          str(said))

    epmd, grpc, http = free_port(), free_port(), free_port()
    daemon_agrees("--x=v options, HOME", ["-port", str(epmd), f"--grpc-listen=127.0.0.1:{grpc}",
                                          f"--http-listen=127.0.0.1:{http}"],
                  base_env(tmp), http)

    # Options with a space, XDG_RUNTIME_DIR, gRPC off (the token is named after HTTP's port).
    runtime = os.path.join(tmp, "xdg")
    os.mkdir(runtime, 0o700)
    env = base_env(tmp)
    env["XDG_RUNTIME_DIR"] = runtime
    epmd, http = free_port(), free_port()
    daemon_agrees("--x v options, XDG_RUNTIME_DIR, gRPC off",
                  ["-port", str(epmd), "--grpc-listen", "off", "--http-listen",
                   f"127.0.0.1:{http}"], env, http)

    # The environment's addresses and token file, as the daemon reads them.
    env = base_env(tmp)
    epmd, grpc, http = free_port(), free_port(), free_port()
    env.update({"EPMDX_GRPC_LISTEN": f"127.0.0.1:{grpc}", "EPMDX_HTTP_LISTEN": f"127.0.0.1:{http}",
                "EPMDX_TOKEN_FILE": os.path.join(tmp, "named.token")})
    daemon_agrees("environment", ["-port", str(epmd)], env, http)

# Only the daemon and the CLI are built: the tests and the benchmarks are not.
text = open(RUN).read()
build = [l for l in text.splitlines() if l.startswith("cmake --build")]
check("one build command", len(build) == 1, str(build))
check("it builds epmdx and epmdxctl only", build and build[0].endswith("--target epmdx epmdxctl"),
      str(build))
finish()
