#!/usr/bin/env python3
"""An independent gRPC client in another language (Python, Debian's python3-grpcio)
against a real epmdx process: the epmdx.v1 API, auth, health through shutdown, and
server reflection. Stubs are generated from the repository's .proto files at run time."""

import importlib.util
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import grpc

EPMDX, SOURCE = sys.argv[1], sys.argv[2]
from epmdx_testlib import check, finish, free_port, wait_port  # noqa: E402


def alive2(port, name, node_port):
    s = socket.create_connection(("127.0.0.1", port))
    n = name.encode()
    body = b"x" + struct.pack(">HBBHHH", node_port, 77, 0, 6, 5, len(n)) + n + b"\x00\x00"
    s.sendall(struct.pack(">H", len(body)) + body)
    reply = s.recv(6)
    assert reply[:2] == b"v\x00", reply
    return s


gen = tempfile.mkdtemp(prefix="epmdx-pygen-")
subprocess.check_call(["protoc", "-I", os.path.join(SOURCE, "proto"), f"--python_out={gen}",
                       "epmdx/v1/registry.proto", "grpc/health/v1/health.proto"])
sys.path.insert(0, gen)
from epmdx.v1 import registry_pb2 as pb  # noqa: E402
# The generated grpc/health/v1 package would clash with grpcio's "grpc": load it by path.
_spec = importlib.util.spec_from_file_location(
    "health_pb2", os.path.join(gen, "grpc", "health", "v1", "health_pb2.py"))
hpb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hpb)

tokens = os.path.join(gen, "tokens")
with open(tokens, "w") as f:
    f.write("pyadmin read evict name=python\npyreader read\n")
epmd_port, grpc_port = free_port(), free_port()
daemon = subprocess.Popen([EPMDX, "-port", str(epmd_port),
                           f"--grpc-listen=127.0.0.1:{grpc_port}", "--http-listen=off",
                           f"--tokens-file={tokens}"], stderr=subprocess.DEVNULL)
try:
    assert wait_port(epmd_port) and wait_port(grpc_port), "epmdx did not start"
    ch = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")

    def rpc(method, req_cls, resp_cls, stream=False):
        path = f"/epmdx.v1.Registry/{method}"
        make = ch.unary_stream if stream else ch.unary_unary
        return make(path, request_serializer=req_cls.SerializeToString,
                    response_deserializer=resp_cls.FromString)

    admin = [("authorization", "Bearer pyadmin")]
    reader = [("authorization", "Bearer pyreader")]
    list_nodes = rpc("ListNodes", pb.ListNodesRequest, pb.ListNodesResponse)
    get_node = rpc("GetNode", pb.GetNodeRequest, pb.Node)
    evict = rpc("EvictNode", pb.EvictNodeRequest, pb.EvictNodeResponse)
    watch = rpc("WatchNodes", pb.WatchNodesRequest, pb.WatchNodesResponse, stream=True)

    conn = alive2(epmd_port, "py\u00e9node", 5555)
    listed = list_nodes(pb.ListNodesRequest(), metadata=reader, timeout=5)
    check("list revision", listed.revision > 1700000000 * 10**6, listed)  # From the clock.
    check("list node", [n.name for n in listed.nodes] == ["py\u00e9node"], listed)
    node = get_node(pb.GetNodeRequest(name="py\u00e9node"), metadata=reader, timeout=5)
    check("get port", node.port == 5555 and node.node_type == pb.NODE_TYPE_NORMAL, node)
    try:
        get_node(pb.GetNodeRequest(name="nosuch"), metadata=reader, timeout=5)
        check("get missing", False)
    except grpc.RpcError as e:
        check("get missing", e.code() == grpc.StatusCode.NOT_FOUND, e)
    for md, code in ((None, grpc.StatusCode.UNAUTHENTICATED),
                     ([("authorization", "Bearer nope")], grpc.StatusCode.UNAUTHENTICATED),
                     (reader, grpc.StatusCode.PERMISSION_DENIED)):
        try:
            evict(pb.EvictNodeRequest(name="py\u00e9node"), metadata=md, timeout=5)
            check(f"evict refused {code}", False)
        except grpc.RpcError as e:
            check(f"evict refused {code}", e.code() == code, e)
    check("still registered", len(list_nodes(pb.ListNodesRequest(), metadata=reader).nodes) == 1)

    stream = watch(pb.WatchNodesRequest(after_revision=listed.revision), metadata=reader)
    try:
        evict(pb.EvictNodeRequest(name="py\u00e9node", registration_id=node.registration_id + 7),
              metadata=admin, timeout=5)
        check("precondition", False)
    except grpc.RpcError as e:
        check("precondition", e.code() == grpc.StatusCode.FAILED_PRECONDITION, e)
    ev = evict(pb.EvictNodeRequest(name="py\u00e9node", registration_id=node.registration_id,
                                   reason="python says so"), metadata=admin, timeout=5)
    check("evict revision", ev.revision == listed.revision + 1, ev)
    conn.settimeout(2)
    check("epmd connection closed", conn.recv(1) == b"")
    got = None
    for msg in stream:
        if msg.events:
            got = msg.events[0]
            break
    check("watch event", got is not None and got.type == pb.NodeEvent.UNREGISTERED
          and got.reason == pb.EVICTED and got.detail == "python says so"
          and got.actor.startswith("python@") and got.revision == ev.revision, got)
    stream.cancel()

    # ListEvents: the history's registration and eviction, oldest first, as the watch had them.
    list_events = rpc("ListEvents", pb.ListEventsRequest, pb.ListEventsResponse)
    recent = list_events(pb.ListEventsRequest(limit=10), metadata=reader, timeout=5)
    check("events oldest first", [e.type for e in recent.events] ==
          [pb.NodeEvent.REGISTERED, pb.NodeEvent.UNREGISTERED], recent)
    check("events end with the watched one", recent.events[-1] == got and
          recent.revision == ev.revision and recent.oldest_revision == listed.revision, recent)
    check("a loopback node's host is this host's short name",
          recent.events[0].node.host == socket.gethostname().split(".")[0], recent.events[0])
    after = list_events(pb.ListEventsRequest(after_revision=listed.revision), metadata=reader)
    check("events after a revision", [e.revision for e in after.events] == [ev.revision], after)
    try:
        list_events(pb.ListEventsRequest(limit=1001), metadata=reader, timeout=5)
        check("events over the limit", False)
    except grpc.RpcError as e:
        check("events over the limit", e.code() == grpc.StatusCode.INVALID_ARGUMENT, e)
    clusters = rpc("ListClusters", pb.ListClustersRequest, pb.ListClustersResponse)
    check("clusters name the host",
          clusters(pb.ListClustersRequest(), metadata=reader, timeout=5).host ==
          socket.gethostname().split(".")[0])

    try:
        list(watch(pb.WatchNodesRequest(after_revision=3), metadata=reader, timeout=5))
        check("revision of an earlier run", False)
    except grpc.RpcError as e:
        check("revision of an earlier run", e.code() == grpc.StatusCode.OUT_OF_RANGE, e)

    try:
        list(watch(pb.WatchNodesRequest(after_revision=ev.revision + 99), metadata=reader,
                   timeout=5))
        check("future revision", False)
    except grpc.RpcError as e:
        check("future revision", e.code() == grpc.StatusCode.INVALID_ARGUMENT, e)

    # Reflection: list the services (raw ServerReflectionRequest{list_services: ""}).
    reflect = ch.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    raw = b"".join(reflect(iter([b"\x3a\x00"]), timeout=5))
    check("reflection lists epmdx.v1.Registry", b"epmdx.v1.Registry" in raw, raw)
    check("reflection lists health", b"grpc.health.v1.Health" in raw, raw)

    check_health = ch.unary_unary("/grpc.health.v1.Health/Check",
                                  request_serializer=hpb.HealthCheckRequest.SerializeToString,
                                  response_deserializer=hpb.HealthCheckResponse.FromString)
    check("health SERVING",
          check_health(hpb.HealthCheckRequest(), timeout=5).status ==
          hpb.HealthCheckResponse.SERVING)
    check("health of the service",
          check_health(hpb.HealthCheckRequest(service="epmdx.v1.Registry"), timeout=5).status ==
          hpb.HealthCheckResponse.SERVING)

    # Health through shutdown: SERVING, then NOT_SERVING after SIGTERM, and exit 0 fast.
    health_watch = ch.unary_stream("/grpc.health.v1.Health/Watch",
                                   request_serializer=hpb.HealthCheckRequest.SerializeToString,
                                   response_deserializer=hpb.HealthCheckResponse.FromString)
    statuses = []
    hw = health_watch(hpb.HealthCheckRequest(), timeout=10)
    first = next(hw)
    statuses.append(first.status)
    w2 = watch(pb.WatchNodesRequest(), metadata=reader)
    watch_end = {}

    def drain_watch():
        try:
            for _ in w2:
                pass
        except grpc.RpcError as e:
            watch_end["code"] = e.code()

    t = threading.Thread(target=drain_watch)
    t.start()
    t0 = time.time()
    daemon.send_signal(signal.SIGTERM)
    try:
        for m in hw:
            statuses.append(m.status)
    except grpc.RpcError:
        pass
    rc = daemon.wait(timeout=5)
    elapsed = time.time() - t0
    t.join(5)
    check("health went NOT_SERVING", statuses[0] == hpb.HealthCheckResponse.SERVING and
          hpb.HealthCheckResponse.NOT_SERVING in statuses, statuses)
    check("watch ended UNAVAILABLE", watch_end.get("code") == grpc.StatusCode.UNAVAILABLE,
          watch_end)
    check("exit 0", rc == 0, rc)
    check("exit within a second", elapsed < 1.0, elapsed)
finally:
    if daemon.poll() is None:
        daemon.kill()

finish()
