#!/usr/bin/env python3
"""docs/openapi.json against the live daemon: every response the real epmdx gives on every
route (successes and errors, including 405/431/403-host) must be documented for that path
and method, and its JSON body must match the documented schema: every `required` field
present, no field the schema does not name, the right JSON types.

usage: openapi_live_test.py EPMDX_BIN SOURCE_DIR"""

import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from epmdx_testlib import check, finish, free_port, wait_port  # noqa: E402

EPMDX, SRC = sys.argv[1], sys.argv[2]
SPEC = json.load(open(os.path.join(SRC, "docs/openapi.json")))


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        cur = SPEC
        for part in node["$ref"].lstrip("#/").split("/"):
            cur = cur[part]
        node = cur
    return node


def validate(value, schema, where):
    """Errors of `value` against the subset of JSON Schema the document uses."""
    schema = resolve(schema)
    errors = []
    t = schema.get("type")
    if t == "object":
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        props = schema.get("properties", {})
        for r in schema.get("required", []):
            if r not in value:
                errors.append(f"{where}: required field {r} missing")
        for k, v in value.items():
            if k not in props:
                if schema.get("additionalProperties", True) is False:
                    errors.append(f"{where}: undocumented field {k}")
                continue
            errors += validate(v, props[k], f"{where}.{k}")
    elif t == "array":
        if not isinstance(value, list):
            return [f"{where}: not an array"]
        for i, v in enumerate(value):
            errors += validate(v, schema.get("items", {}), f"{where}[{i}]")
    elif t == "string":
        if not isinstance(value, str):
            errors.append(f"{where}: not a string")
        elif "enum" in schema and value not in schema["enum"]:
            errors.append(f"{where}: {value} not in enum")
    elif t == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{where}: not an integer")
    elif t == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: not a boolean")
    return errors


def spec_path(path):
    if path.startswith("/v1/nodes/"):
        return "/v1/nodes/{name}"
    if path.startswith("/v1/holds/"):
        return "/v1/holds/{name}"
    return path.split("?")[0]


seen = set()


def conforms(name, method, path, status, headers, body):
    """Checks one live response against the document."""
    ops = SPEC["paths"].get(spec_path(path), {})
    if status == 405:
        # Not an operation of the document: the path is, and Allow lists its operations.
        documented = sorted(m.upper() for m in ops if m in ("get", "delete", "post", "put"))
        allowed = sorted(m.strip() for m in headers.get("allow", "").split(",") if m.strip() != "HEAD")
        check(f"{name}: Allow lists the documented methods", allowed == documented,
              f"{allowed} vs {documented}")
        check(f"{name}: 405 has a JSON ErrorBody", headers.get("content-type", "").startswith(
            "application/json") and not validate(json.loads(body), {"$ref": "#/components/schemas/ErrorBody"}, name))
        return
    op = ops.get(method.lower())
    check(f"{name}: {method} {spec_path(path)} is documented", op is not None)
    if op is None:
        return
    resp = op["responses"].get(str(status))
    check(f"{name}: {status} documented for {method} {spec_path(path)}", resp is not None,
          f"documented: {sorted(op['responses'])}")
    if resp is None:
        return
    seen.add((spec_path(path), method.lower(), str(status)))
    resp = resolve(resp)
    ctype = headers.get("content-type", "").split(";")[0]
    content = resp.get("content", {})
    check(f"{name}: content type {ctype} documented", ctype in content or not content,
          f"documented {list(content)}")
    if status >= 400:
        check(f"{name}: a {status} has a JSON body", ctype == "application/json")
    if ctype == "application/json" and "schema" in content.get(ctype, {}):
        try:
            value = json.loads(body)
        except ValueError:
            check(f"{name}: JSON body parses", False, body[:200])
            return
        errs = validate(value, content[ctype]["schema"], name)
        check(f"{name}: body matches the schema", not errs, "; ".join(errs))
        if status >= 400 and value.get("status") != "OUT_OF_RANGE":
            check(f"{name}: no revision window outside OUT_OF_RANGE",
                  "oldestRevision" not in value and "currentRevision" not in value, body)
    if status == 405:
        check(f"{name}: 405 names what is allowed", "allow" in headers, str(headers))


def request(port, method, path, body=None, headers=None, name=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    data = "" if hdrs.get("content-type") == "text/event-stream" else r.read().decode()
    conformed_body = data
    conforms(name or f"{method} {path}", method, path, r.status, hdrs, conformed_body)
    conn.close()
    return r.status, hdrs, data


def alive2(port, name, node_port):
    """Registers a node over the epmd wire; returns the socket that holds it."""
    s = socket.create_connection(("127.0.0.1", port))
    n = name.encode()
    req = struct.pack(">BHBBHHH", 120, node_port, 77, 0, 6, 5, len(n)) + n + struct.pack(">H", 0)
    s.sendall(struct.pack(">H", len(req)) + req)
    reply = s.recv(16)
    check(f"register {name}", reply[:2] == bytes([118, 0]), reply.hex())
    return s


def main():
    tmp = tempfile.mkdtemp()
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write("admintok read evict name=ops\nreadtok read name=viewer\n")
    os.chmod(tokens, 0o600)
    epmd, http_port = free_port(), free_port()
    proc = subprocess.Popen([EPMDX, "-port", str(epmd), "--grpc-listen=off",
                             f"--http-listen=127.0.0.1:{http_port}", f"--tokens-file={tokens}",
                             "--holder-interval=1"],
                            stderr=subprocess.PIPE, text=True)
    try:
        up = wait_port(http_port, 30) and wait_port(epmd, 30)
        check("daemon up", up, "" if up else proc.stderr.read() if proc.poll() is not None else "")
        if not up:
            finish()
        held = [alive2(epmd, "alpha", 5001), alive2(epmd, "beta", 5002)]
        admin = {"Authorization": "Bearer admintok"}
        status, _, body = request(http_port, "GET", "/v1/nodes")
        check("list 200", status == 200)
        beta_id = [n for n in json.loads(body)["nodes"] if n["name"] == "beta"][0]["registrationId"]
        request(http_port, "GET", "/v1/nodes/alpha")
        request(http_port, "GET", "/v1/nodes/nobody")
        request(http_port, "GET", "/v1/nodes/alpha@host", name="name@host")
        request(http_port, "GET", "/v1/nodes", headers={"Authorization": "Bearer wrong"})
        request(http_port, "DELETE", "/v1/nodes/alpha", name="delete without token")
        request(http_port, "DELETE", "/v1/nodes/alpha", headers={"Authorization": "Bearer readtok"},
                name="delete with a read token")
        request(http_port, "DELETE", "/v1/nodes/alpha", body="{not json", headers=admin,
                name="delete with a bad body")
        request(http_port, "DELETE", "/v1/nodes/beta", body='{"registrationId":"99999"}',
                headers=admin, name="delete with a failed precondition")
        request(http_port, "DELETE", "/v1/nodes/beta",
                body=json.dumps({"registrationId": beta_id, "reason": "openapi test"}),
                headers=admin, name="delete")
        request(http_port, "DELETE", "/v1/nodes/nobody", headers=admin, name="delete unknown")
        # Holds: an eviction that keeps the name, the list, a lift, and their errors.
        request(http_port, "DELETE", "/v1/nodes/alpha?hold_seconds=99999999", headers=admin,
                name="delete with a hold too long")
        request(http_port, "DELETE", "/v1/nodes/alpha", body='{"holdSeconds":600,"reason":"hold"}',
                headers=admin, name="delete with a hold")
        status, _, body = request(http_port, "GET", "/v1/holds")
        check("the hold is listed", status == 200 and json.loads(body)["holds"][0]["name"] == "alpha",
              body)
        request(http_port, "GET", "/v1/holds?cluster=nosuch", name="holds of an unknown cluster")
        request(http_port, "GET", "/v1/holds/alpha", name="GET on a hold")
        request(http_port, "DELETE", "/v1/holds/alpha", name="lift without token")
        request(http_port, "DELETE", "/v1/holds/alpha", headers={"Authorization": "Bearer readtok"},
                name="lift with a read token")
        request(http_port, "DELETE", "/v1/holds/alpha", body="{not json", headers=admin,
                name="lift with a bad body")
        request(http_port, "DELETE", "/v1/holds/alpha", body='{"reason":"done"}', headers=admin,
                name="lift")
        request(http_port, "DELETE", "/v1/holds/alpha", headers=admin, name="lift unknown")
        # The recent history: registrations, the evictions, the hold and its lift.
        status, _, body = request(http_port, "GET", "/v1/events")
        events = json.loads(body)["events"] if status == 200 else []
        # The holder monitor's events may come in between (it runs every second).
        types = [e["type"] for e in events if e["type"] != "HOLDER_CHANGED"]
        check("the events list the history, oldest first",
              types[:2] == ["REGISTERED", "REGISTERED"] and types[-1] == "HOLD_LIFTED", body)
        first = int(events[0]["revision"]) if events else 0
        status, _, body = request(http_port, "GET",
                                  f"/v1/events?limit=2&cluster=default&after_revision={first - 1}",
                                  name="a page of events")
        page = [e["revision"] for e in json.loads(body)["events"]] if status == 200 else []
        check("a page is the first events after the revision",
              page == [e["revision"] for e in events[:2]], body)
        status, _, body = request(http_port, "GET", "/v1/events?after_revision=1",
                                  name="events after a revision no longer kept")
        gone = json.loads(body)
        check("events after a compacted revision: 410 with the window",
              status == 410 and gone.get("status") == "OUT_OF_RANGE" and
              gone.get("oldestRevision") == str(first), body)
        request(http_port, "GET", "/v1/events?limit=1001", name="events over the limit")
        request(http_port, "GET", "/v1/events?limit=x", name="events with a bad limit")
        request(http_port, "GET", "/v1/events?cluster=nosuch", name="events of an unknown cluster")
        request(http_port, "GET", "/v1/events", headers={"Authorization": "Bearer wrong"},
                name="events with a wrong token")
        request(http_port, "POST", "/v1/events", body="{}", name="POST on the events")
        request(http_port, "DELETE", "/v1/nodes/x", body="x" * 70000, headers=admin,
                name="delete with a huge body")
        request(http_port, "POST", "/v1/nodes", body="{}", name="POST on the list")
        request(http_port, "PUT", "/v1/watch", body="", name="PUT on the watch")
        request(http_port, "GET", "/v1/watch?since=notanumber", name="watch with a bad since")
        request(http_port, "GET", "/v1/watch?heartbeat_ms=5", name="watch with a bad heartbeat")
        request(http_port, "GET", "/v1/nodes", headers={"X-Big": "y" * 20000}, name="big headers")
        request(http_port, "GET", "/v1/nodes", headers={"Host": "evil.example"}, name="foreign Host")
        request(http_port, "GET", "/v1/nodes?cluster=nosuch", name="unknown cluster")
        for path in ["/livez", "/readyz", "/readyz?verbose", "/metrics", "/v1/openapi.json",
                     "/v1/clusters", "/v1/nodes?cluster=default"]:
            request(http_port, "GET", path)
        # The watch: its head, then the first frame's JSON against WatchNodesResponse.
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        conn.request("GET", "/v1/watch?initial=true")
        r = conn.getresponse()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        conforms("watch", "GET", "/v1/watch", r.status, hdrs, "")
        frame = b""
        while b"\n\n" not in frame.split(b"retry: 1000\n\n", 1)[-1]:
            frame += r.read1(4096)
        data = [line[6:] for line in frame.decode().splitlines() if line.startswith("data: ")][0]
        errs = validate(json.loads(data), {"$ref": "#/components/schemas/WatchNodesResponse"},
                        "initial frame")
        check("initial frame matches WatchNodesResponse", not errs, "; ".join(errs))
        conn.close()
        # A registration whose holder (this process) the monitor finds: a HOLDER_CHANGED event,
        # documented like any other (the schema's enum is closed).
        held.append(alive2(epmd, "gamma", 5003))
        holder_event = None
        for _ in range(100):
            status, _, body = request(http_port, "GET", "/v1/events?limit=10",
                                      name="events with a holder change")
            holder_event = next((e for e in json.loads(body)["events"]
                                 if e["type"] == "HOLDER_CHANGED" and e["node"]["name"] == "gamma"),
                                None) if status == 200 else None
            if holder_event:
                break
            time.sleep(0.1)  # Polling the daemon for the event, with a bound.
        check("HOLDER_CHANGED names this process as gamma's holder",
              holder_event is not None and
              holder_event["node"]["holder"]["processes"][0]["pid"] == os.getpid(),
              json.dumps(holder_event))
        # Every documented success is exercised (errors are covered by the list above).
        for path, ops in SPEC["paths"].items():
            for method, op in ops.items():
                if isinstance(op, dict) and "responses" in op:
                    if op.get("x-fleet-relay-only"):
                        # Served by epmdx-fleet only (a daemon answers 404): fleet_test calls it.
                        check(f"{method.upper()} {path} is 404 on a daemon",
                              (path, method, "404") in seen or
                              request(http_port, "GET", path)[0] == 404)
                        continue
                    check(f"{method.upper()} {path} 200 exercised", (path, method, "200") in seen)
        for s in held:
            s.close()
    finally:
        proc.terminate()
        proc.wait(5)
    finish()


main()
