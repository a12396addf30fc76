# mmo-server and mmo-loadtest in a slim runtime image (docs/deploy.md).
#
#   docker build -t mmo-netcore:dev .
#   docker run --rm -p 7777:7777/udp -p 8080:8080 mmo-netcore:dev --http-addr 0.0.0.0:8080
#
# Stage 1 builds the release binaries with Rust 1.95, the version CI builds with (Cargo.lock
# is honoured: --locked); stage 2 is Debian slim with the two binaries,
# CA certificates (TLS to PostgreSQL, NATS) and an unprivileged user. Not built in CI: no
# Docker engine runs there (docs/deploy.md says how it was checked).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Only what the build reads (see .dockerignore).
COPY . .
RUN cargo build --release --locked -p mmo-server -p mmo-loadtest \
 && install -D -m 0755 target/release/mmo-server /out/mmo-server \
 && install -D -m 0755 target/release/mmo-loadtest /out/mmo-loadtest

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/mmo --create-home mmo
COPY --from=build /out/mmo-server /out/mmo-loadtest /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/mmo
# QUIC (players) and HTTP (logins, /metrics, /healthz, /readyz).
EXPOSE 7777/udp 8080/tcp
ENV MMO_DATA_DIR=/var/lib/mmo/data
ENTRYPOINT ["/usr/local/bin/mmo-server"]
