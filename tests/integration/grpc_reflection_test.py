#!/usr/bin/env python3
"""Server reflection describes every service it lists: grpcurl and
grpcui ask for the file that contains a symbol and build their stubs from it. A raw
ServerReflectionInfo call (Debian's python3-grpcio has no reflection client), decoded with
protobuf's descriptor_pb2, so nothing here trusts the server's own helpers."""

import os
import subprocess
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

EPMDX, SOURCE = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from epmdx_testlib import check, finish, free_port, wait_port  # noqa: E402

# ServerReflectionRequest fields: file_by_filename = 3, file_containing_symbol = 4,
# list_services = 7. ServerReflectionResponse: file_descriptor_response = 4 (its field 1:
# repeated bytes file_descriptor_proto), list_services_response = 6, error_response = 7.


def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def field(number, payload):
    return varint((number << 3) | 2) + varint(len(payload)) + payload


def fields(buf):
    """(number, bytes) of each length-delimited field; other wire types are skipped."""
    i, out = 0, []
    while i < len(buf):
        key, shift = 0, 0
        while True:
            b = buf[i]
            i += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        number, wire = key >> 3, key & 7
        if wire == 0:
            while buf[i] & 0x80:
                i += 1
            i += 1
        elif wire == 2:
            length, shift = 0, 0
            while True:
                b = buf[i]
                i += 1
                length |= (b & 0x7F) << shift
                shift += 7
                if b < 0x80:
                    break
            out.append((number, buf[i:i + length]))
            i += length
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return out


def reflect(ch, service, request):
    call = ch.stream_stream(f"/{service}/ServerReflectionInfo",
                            request_serializer=lambda b: b, response_deserializer=lambda b: b)
    return list(call(iter([request]), timeout=5))


def descriptors(response):
    """The FileDescriptorProtos of a file_descriptor_response, or the error text."""
    files, error = [], None
    for number, payload in fields(response):
        if number == 4:
            for n, fd in fields(payload):
                if n == 1:
                    files.append(descriptor_pb2.FileDescriptorProto.FromString(fd))
        elif number == 7:
            error = b"".join(p for n, p in fields(payload) if n == 2).decode(errors="replace")
    return files, error


epmd_port, grpc_port = free_port(), free_port()
tokens = f"/tmp/epmdx-reflection-{os.getpid()}.tokens"
with open(tokens, "w") as f:
    f.write("reflect-token read\n")
daemon = subprocess.Popen([EPMDX, "-port", str(epmd_port), f"--grpc-listen=127.0.0.1:{grpc_port}",
                           "--http-listen=off", f"--tokens-file={tokens}"],
                          stderr=subprocess.DEVNULL)
try:
    assert wait_port(epmd_port) and wait_port(grpc_port), "epmdx did not start"
    ch = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    svc = "grpc.reflection.v1alpha.ServerReflection"

    listed = reflect(ch, svc, field(7, b""))
    names = [p.decode() for resp in listed for n, lst in fields(resp) if n == 6
             for m, s in fields(lst) if m == 1 for k, p in fields(s) if k == 1]
    check("reflection lists the health service", "grpc.health.v1.Health" in names, names)
    check("reflection lists the registry", "epmdx.v1.Registry" in names, names)

    # Every listed service can be described (what grpcurl describe/list does).
    for name in names:
        files, error = descriptors(reflect(ch, svc, field(4, name.encode()))[0])
        check(f"{name} is described", files and error is None, error)

    files, error = descriptors(reflect(ch, svc, field(4, b"grpc.health.v1.Health"))[0])
    check("no 'Symbol not found' for grpc.health.v1.Health", error is None, error)
    health = [f for f in files if any(s.name == "Health" for s in f.service)]
    check("a file declares service Health", len(health) == 1, [f.name for f in files])
    if health:
        fd = health[0]
        check("in package grpc.health.v1", fd.package == "grpc.health.v1", fd.package)
        methods = {m.name: m for m in fd.service[0].method}
        check("Health has Check and Watch", set(methods) >= {"Check", "Watch"}, list(methods))
        check("Watch streams", methods.get("Watch") and methods["Watch"].server_streaming)
        # The descriptors are complete: a pool builds them and resolves the messages, as
        # grpcurl does before it can encode a request.
        pool = descriptor_pool.DescriptorPool()
        by_name = {f.name: f for f in files}
        added = set()

        def add(name):
            if name in added or name not in by_name:
                return
            for dep in by_name[name].dependency:
                add(dep)
            pool.Add(by_name[name])
            added.add(name)

        try:
            for n in by_name:
                add(n)
            req = pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest")
            resp = pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")
            check("HealthCheckRequest has service", "service" in req.fields_by_name)
            check("HealthCheckResponse has status", "status" in resp.fields_by_name)
        except Exception as e:  # noqa: BLE001 - any failure to build is the finding
            check("the health descriptors build into a pool", False, repr(e))

    # The file can also be fetched by its name, as grpcurl does for dependencies.
    if health:
        files, error = descriptors(reflect(ch, svc, field(3, health[0].name.encode()))[0])
        check("file_by_filename serves the health file", files and error is None, error)

    # And the call that reflection promised works: Check, as grpcurl would send it.
    check_call = ch.unary_unary("/grpc.health.v1.Health/Check",
                                request_serializer=lambda b: b, response_deserializer=lambda b: b)
    reply = check_call(b"", timeout=5)
    check("Health/Check answers SERVING (status = 1)", reply == b"\x08\x01", reply)
finally:
    daemon.terminate()
    daemon.wait(timeout=10)
    os.unlink(tokens)
finish()
