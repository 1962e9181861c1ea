# vhostd: one small binary beside nginx. Build: docker build -t vhostd .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY templates ./templates
RUN cargo build --release --locked --bin vhostd

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/vhostd /usr/local/bin/vhostd
# The admin API answers on 127.0.0.1:9180 inside the container; the health check asks it.
HEALTHCHECK --interval=30s --timeout=5s CMD ["vhostd", "health"]
ENTRYPOINT ["vhostd"]
CMD ["run"]
