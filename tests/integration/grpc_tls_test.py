#!/usr/bin/env python3
"""The gRPC admin API over TLS and mutual TLS, with certificates made by openssl for the
test, and Debian's python3-grpcio as the client."""

import os
import socket
import subprocess
import sys
import tempfile
import time

import grpc

EPMDX, SOURCE = sys.argv[1], sys.argv[2]
from epmdx_testlib import check, finish, free_port, wait_port  # noqa: E402


d = tempfile.mkdtemp(prefix="epmdx-tls-")
p = lambda n: os.path.join(d, n)  # noqa: E731


def ssl(*args):
    subprocess.check_call(["openssl", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# A CA, a server certificate for 127.0.0.1/localhost, and a client certificate.
ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=epmdx test CA",
    "-keyout", p("ca.key"), "-out", p("ca.pem"))
with open(p("san.cnf"), "w") as f:
    f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
for who, ext in (("server", ["-extfile", p("san.cnf")]), ("client", [])):
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={who}", "-keyout", p(f"{who}.key"),
        "-out", p(f"{who}.csr"))
    ssl("x509", "-req", "-in", p(f"{who}.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
        "-CAcreateserial", "-days", "1", "-out", p(f"{who}.pem"), *ext)
with open(p("tokens"), "w") as f:
    f.write("tls-token read\n")
read = lambda n: open(p(n), "rb").read()  # noqa: E731

subprocess.check_call(["protoc", "-I", os.path.join(SOURCE, "proto"), f"--python_out={d}",
                       "epmdx/v1/registry.proto"])
sys.path.insert(0, d)
from epmdx.v1 import registry_pb2 as pb  # noqa: E402


def list_nodes(channel):
    call = channel.unary_unary("/epmdx.v1.Registry/ListNodes",
                               request_serializer=pb.ListNodesRequest.SerializeToString,
                               response_deserializer=pb.ListNodesResponse.FromString)
    return call(pb.ListNodesRequest(), metadata=[("authorization", "Bearer tls-token")], timeout=5)


for mutual in (False, True):
    port = free_port()
    args = [EPMDX, "-port", str(free_port()), f"--grpc-listen=127.0.0.1:{port}",
            "--http-listen=off", f"--tokens-file={p('tokens')}",
            f"--grpc-tls-cert={p('server.pem')}", f"--grpc-tls-key={p('server.key')}"]
    if mutual:
        args.append(f"--grpc-tls-client-ca={p('ca.pem')}")
    daemon = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    label = "mTLS" if mutual else "TLS"
    try:
        check(f"{label}: listening", wait_port(port))
        opts = (("grpc.ssl_target_name_override", "localhost"),)
        client = (grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem"))
                  if mutual else grpc.ssl_channel_credentials(read("ca.pem")))
        with grpc.secure_channel(f"127.0.0.1:{port}", client, options=opts) as ch:
            check(f"{label}: list over TLS", list_nodes(ch).revision > 0)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            try:
                list_nodes(ch)
                check(f"{label}: plaintext refused", False)
            except grpc.RpcError as e:
                check(f"{label}: plaintext refused", e.code() == grpc.StatusCode.UNAVAILABLE, e)
        if mutual:
            with grpc.secure_channel(f"127.0.0.1:{port}", grpc.ssl_channel_credentials(read("ca.pem")),
                                     options=opts) as ch:
                try:
                    list_nodes(ch)
                    check("mTLS: no client certificate refused", False)
                except grpc.RpcError as e:
                    check("mTLS: no client certificate refused",
                          e.code() == grpc.StatusCode.UNAVAILABLE, e)
    finally:
        daemon.terminate()
        daemon.wait(timeout=5)

finish()
