#!/usr/bin/env python3
"""Remote peers for real: a network namespace with a veth pair and private
addresses of its own (made here, removed after) plays another host.

- OTP's rules for non-local peers hold byte for byte: ALIVE2, DUMP, KILL and STOP from the
  "remote host" are refused exactly as OTP's epmd refuses them (both daemons in the same
  setup, the same packets), NAMES and PORT_PLEASE2 are answered the same.
- A real Erlang node in the namespace resolves and pings a node on the host through epmdx
  while the policy allows it; with --names-from / --lookups-from closed to loopback (changed
  by SIGHUP, no restart) it can no longer list or resolve, while loopback clients still can.

Needs root (ip netns). Where namespaces cannot be made, the test says so and fails.

usage: remote_peers_test.py EPMDX_BIN
       remote_peers_test.py --client HOST PORT HEXPACKET   (run inside the namespace)"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from epmdx_testlib import check, finish, free_port, wait_port  # noqa: E402


def client(host, port, packet_hex):
    """One request from inside the namespace: the reply bytes and whether the daemon closed."""
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(bytes.fromhex(packet_hex))
    data, closed = b"", False
    s.settimeout(2)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    print(json.dumps({"reply": data.hex(), "closed": closed}))


if len(sys.argv) == 5 and sys.argv[1] == "--client":
    client(*sys.argv[2:])
    sys.exit(0)

EPMDX = sys.argv[1]
PID = os.getpid()
NS = f"epmdx-rp-{PID}"
HOST_IF, NS_IF = f"erp{PID % 100000}h", f"erp{PID % 100000}n"
NET = f"10.251.{PID % 250}"
HOST_IP, NS_IP = f"{NET}.1", f"{NET}.2"


def run(*cmd, **kw):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60, **kw)


def in_ns(*cmd):
    return ["ip", "netns", "exec", NS, *cmd]


def setup():
    steps = [["ip", "netns", "add", NS],
             ["ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF],
             ["ip", "link", "set", NS_IF, "netns", NS],
             ["ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_IF],
             ["ip", "link", "set", HOST_IF, "up"],
             in_ns("ip", "addr", "add", f"{NS_IP}/30", "dev", NS_IF),
             in_ns("ip", "link", "set", NS_IF, "up"),
             in_ns("ip", "link", "set", "lo", "up")]
    for step in steps:
        r = run(*step)
        if r.returncode != 0:
            print(f"FAIL network namespaces are not available here: {' '.join(step)}: "
                  f"{r.stderr.strip()} (this test needs root and iproute2; it does not skip)")
            teardown()
            check("network namespace set up", False)
            finish()


def teardown():
    run("ip", "netns", "del", NS)  # Takes the namespace's end of the veth, and so the pair.
    run("ip", "link", "del", HOST_IF)


def frame(body):
    return len(body).to_bytes(2, "big") + body


def alive2(name, port):
    n = name.encode()
    return frame(bytes([120]) + port.to_bytes(2, "big") + bytes([77, 0]) + (6).to_bytes(2, "big")
                 + (5).to_bytes(2, "big") + len(n).to_bytes(2, "big") + n + (0).to_bytes(2, "big"))


def remote(port, packet):
    r = run(*in_ns(sys.executable, os.path.abspath(__file__), "--client", HOST_IP, str(port),
                   packet.hex()))
    if r.returncode != 0:
        return {"reply": "error " + r.stderr.strip(), "closed": None}
    return json.loads(r.stdout)


def normalise(result, port):
    """NAMES starts "epmd: up and running on port P": the ports differ by design."""
    reply = bytes.fromhex(result["reply"]) if result["closed"] is not None else b""
    if reply[:4] == port.to_bytes(4, "big"):  # NAMES_RESP: the epmd port, then the text.
        reply = b"PORT" + reply[4:]
    return {"reply": reply.replace(str(port).encode(), b"PORT").hex(), "closed": result["closed"]}


def wire_rules_match_otp():
    otp_port, our_port = free_port(), free_port()
    otp = subprocess.Popen(["epmd", "-port", str(otp_port)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    ours = subprocess.Popen([EPMDX, "-port", str(our_port), "--grpc-listen=off",
                             "--http-listen=off"], stderr=subprocess.DEVNULL)
    held = []
    try:
        check("both daemons up", wait_port(otp_port, 20) and wait_port(our_port, 20))
        for port in (otp_port, our_port):  # The same node on both, registered locally.
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(alive2("here", 5555))
            check("local ALIVE2 accepted", s.recv(16)[:2] == b"v\x00")
            held.append(s)
        cases = {"ALIVE2 from a remote host": alive2("intruder", 6000),
                 "DUMP from a remote host": frame(bytes([100])),
                 "KILL from a remote host": frame(bytes([107])),
                 "STOP from a remote host": frame(bytes([115]) + b"here"),
                 "NAMES from a remote host": frame(bytes([110])),
                 "PORT_PLEASE2 from a remote host": frame(bytes([122]) + b"here"),
                 "PORT_PLEASE2 of an unknown name": frame(bytes([122]) + b"nobody")}
        for name, packet in cases.items():
            theirs = normalise(remote(otp_port, packet), otp_port)
            mine = normalise(remote(our_port, packet), our_port)
            check(f"{name}: the same bytes and close as OTP's epmd", mine == theirs,
                  f"epmdx {mine} OTP {theirs}")
        names = remote(our_port, frame(bytes([110])))
        check("the remote host reads NAMES by default (OTP's behaviour)",
              b"name here at port 5555" in bytes.fromhex(names["reply"]), names)
        check("nothing a remote host sent changed the registry",
              ours.poll() is None and otp.poll() is None)
    finally:
        for s in held:
            s.close()
        ours.terminate()
        otp.terminate()
        ours.wait(10)
        otp.wait(10)


def erl_eval(node, port, code, ns=False, timeout=60):
    cmd = ["erl", "-name", node, "-setcookie", "epmdxremote", "-noshell", "-start_epmd", "false",
           "-eval", code]
    env = dict(os.environ, ERL_EPMD_PORT=str(port), HOME="/tmp")
    r = subprocess.run(in_ns(*cmd) if ns else cmd, capture_output=True, text=True, env=env,
                       timeout=timeout)
    return r.stdout + r.stderr


def http_json(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def erlang_across_hosts():
    port, http_port = free_port(), free_port()
    access = tempfile.NamedTemporaryFile("w", suffix=".access", delete=False)
    access.write("# open, as OTP\n")
    access.close()
    host_epmdx = subprocess.Popen([EPMDX, "-port", str(port), "--grpc-listen=off",
                                   f"--http-listen=127.0.0.1:{http_port}",
                                   f"--access-file={access.name}"], stderr=subprocess.PIPE,
                                  text=True)
    # The "remote host" has an epmd of its own for its node to register with.
    ns_epmdx = subprocess.Popen(in_ns(EPMDX, "-port", str(port), "--grpc-listen=off",
                                      "--http-listen=off"), stderr=subprocess.DEVNULL)
    host_node = None
    try:
        check("host epmdx up", wait_port(port, 20) and wait_port(http_port, 20))
        host_node = subprocess.Popen(
            ["erl", "-name", f"a@{HOST_IP}", "-setcookie", "epmdxremote", "-noshell",
             "-start_epmd", "false", "-eval", "timer:sleep(120000), halt()."],
            env=dict(os.environ, ERL_EPMD_PORT=str(port), HOME="/tmp"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 30
        while time.time() < end and '"a"' not in http_json(http_port, "/v1/nodes").replace(
                '"name":"a"', '"a"'):
            time.sleep(0.1)  # Polling with a deadline.
        check("host node registered", '"name":"a"' in http_json(http_port, "/v1/nodes"))
        probe = (f"Ping = fun F(0) -> pang; F(N) -> case net_adm:ping('a@{HOST_IP}') of "
                 "pong -> pong; pang -> timer:sleep(300), F(N - 1) end end, "
                 f"io:format(\"~p ~p~n\", [Ping(3), net_adm:names(\"{HOST_IP}\")]), halt().")

        out = erl_eval(f"b@{NS_IP}", port, probe, ns=True)
        check("open: the remote node resolves and pings the host's node", "pong" in out, out)
        check("open: the remote node lists the host's names", '{ok,[{"a",' in out, out)

        def reload(text):
            with open(access.name, "w") as f:
                f.write(text)
            host_epmdx.send_signal(signal.SIGHUP)
            want = "names from " + ("loopback" if "names-from=loopback" in text else "any")
            end = time.time() + 10
            while time.time() < end and want not in http_json(http_port, "/readyz?verbose"):
                time.sleep(0.05)  # Polling with a deadline.
            check(f"SIGHUP applied: {want}", want in http_json(http_port, "/readyz?verbose"))

        reload("names-from=loopback\n")
        out = erl_eval(f"c@{NS_IP}", port, probe, ns=True)
        check("names closed: the remote node still pings (lookups open)", "pong" in out, out)
        # OTP's client reads the silent close as an empty list: it sees no name.
        check("names closed: the remote node cannot list", '{"a",' not in out, out)
        local = subprocess.run(["epmd", "-port", str(port), "-names"], capture_output=True,
                               text=True, timeout=20)
        check("names closed: NAMES from loopback still works", "name a at port" in local.stdout,
              local.stdout)
        clusters = json.loads(http_json(http_port, "/v1/clusters"))["clusters"][0]
        check("ListClusters shows the policy", clusters.get("namesFrom") == "loopback" and
              clusters.get("lookupsFrom") == "any", clusters)

        reload("names-from=loopback\nlookups-from=loopback\n")
        out = erl_eval(f"d@{NS_IP}", port, probe, ns=True)
        check("lookups closed: the remote node cannot resolve the host's node (pang)",
              "pang" in out and "pong" not in out, out)
        metrics = http_json(http_port, "/metrics")
        check("refusals counted by type", 'epmdx_epmd_policy_refused_total{type="port_please2"}'
              in metrics and 'epmdx_epmd_policy_refused_total{type="port_please2"} 0' not in
              metrics, metrics[-600:])
        check("the daemon served through it all", host_epmdx.poll() is None)
    finally:
        if host_node:
            host_node.kill()
            host_node.wait(10)
        host_epmdx.terminate()
        ns_epmdx.terminate()
        host_epmdx.wait(10)
        ns_epmdx.wait(10)
        os.unlink(access.name)


def main():
    if os.geteuid() != 0:
        check("run as root (network namespaces need it; this test does not skip)", False)
        finish()
    setup()
    try:
        wire_rules_match_otp()
        erlang_across_hosts()
    finally:
        teardown()
    finish()


main()
