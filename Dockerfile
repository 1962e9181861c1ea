# vhostd: one small binary beside nginx. Build: docker build -t vhostd .   (or: docker compose build)
#
# Build arguments (the defaults need nothing but a registry; all three exist for offline builds):
#   BUILD_IMAGE      the build stage: a Rust toolchain on Debian bookworm (glibc of the runtime base)
#   BASE_IMAGE       the runtime base: only the binary and the CA bundle are added to it
#   VHOSTD_PREBUILT  path, inside the build context, of a vhostd binary already built for
#                    x86_64 Linux with glibc ≤ bookworm's; set, it is installed instead of running
#                    cargo (BUILD_IMAGE then needs only sh, install and /etc/ssl/certs). The test suite
#                    builds this way from local images: scripts/images.sh --vhostd target/debug/vhostd
ARG BUILD_IMAGE=rust:1-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
ARG VHOSTD_PREBUILT=
WORKDIR /src
# .dockerignore keeps the context to the crate (and a staged target/docker/vhostd).
COPY . .
RUN set -eu; \
    if [ -n "$VHOSTD_PREBUILT" ]; then \
        install -m 0755 "$VHOSTD_PREBUILT" /vhostd; \
    else \
        cargo build --release --locked --bin vhostd; \
        install -m 0755 target/release/vhostd /vhostd; \
    fi; \
    /vhostd --version; \
    test -s /etc/ssl/certs/ca-certificates.crt

FROM ${BASE_IMAGE}
# TLS to the ACME CA uses the system roots (rustls-native-certs reads this bundle).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /vhostd /usr/local/bin/vhostd
# `vhostd health` asks the admin API (--admin-addr, 127.0.0.1:9180 unless VHOSTD_ADMIN_ADDR says
# otherwise) whether the daemon's loop is alive.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["vhostd", "health"]
ENTRYPOINT ["vhostd"]
CMD ["run"]
