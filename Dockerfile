# epmdx: a drop-in epmd with an admin control plane.
#
#   docker build -t epmdx .
#   docker run --rm -p 127.0.0.1:4371:4371 -e EPMDX_HTTP_LISTEN=0.0.0.0:4371 epmdx
#
# With podman: `podman build --format docker -t epmdx .` -- podman's default (OCI) image
# format has no HEALTHCHECK and silently drops the one below. Without systemd podman never
# runs healthchecks by itself either: `podman healthcheck run CONTAINER` runs one on demand.
# scripts/containers (CI) builds and runs this image with podman 4.3 from Debian 12.
#
# scripts/package builds the Debian package from this file's build stage (`--target build`,
# then packaging/Containerfile): the same compile as the image.
#
# Ports: 4369 epmd (the BEAM must share the network namespace: epmd only registers
# local peers), 4370 gRPC admin API, 4371 HTTP (REST, SSE, metrics, web page); the relay
# (--entrypoint /usr/local/bin/epmdx-fleet) 4372 gRPC, 4373 HTTP.

# ---- build ---------------------------------------------------------------------------
FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ cmake make pkg-config ca-certificates \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libboost-dev \
      libcpp-httplib-dev libssl-dev libcli11-dev libc-ares-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake cmake
COPY proto proto
COPY server server
COPY ctl ctl
COPY bench bench
COPY tests/wire tests/wire
COPY web web
COPY docs/openapi.json docs/openapi.json
# Full RELRO: the binaries are also the Debian package's (lintian's hardening checks).
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEPMDX_BUILD_TESTS=OFF \
      -DCMAKE_EXE_LINKER_FLAGS="-Wl,-z,relro,-z,now" \
 && cmake --build build -j "$(nproc)" --target epmdx epmdxctl epmdx-fleet \
 && strip build/epmdx build/epmdxctl build/epmdx-fleet

# ---- runtime: only the shared libraries the three binaries load ------------------------
# One image for the daemon and the fleet relay (deploy/kubernetes/epmdx-fleet runs it with
# command: /usr/local/bin/epmdx-fleet); c-ares is the relay's DNS discovery.
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgrpc++1.51 libprotobuf32 libc-ares2 \
      curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 4369 epmdx \
 && useradd --system --uid 4369 --gid 4369 --home-dir /var/lib/epmdx --create-home epmdx
COPY --from=build /src/build/epmdx /src/build/epmdxctl /src/build/epmdx-fleet /usr/local/bin/
USER epmdx
ENV HOME=/var/lib/epmdx \
    EPMDX_TOKEN_FILE=/var/lib/epmdx/admin.token \
    EPMDX_GRPC_LISTEN=127.0.0.1:4370 \
    EPMDX_HTTP_LISTEN=127.0.0.1:4371
EXPOSE 4369/tcp 4370/tcp 4371/tcp 4372/tcp 4373/tcp
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
  CMD curl -fsS "http://$(echo "$EPMDX_HTTP_LISTEN" | sed 's/^0\.0\.0\.0:/127.0.0.1:/')/readyz" || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/epmdx"]
CMD []
