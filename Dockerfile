# syntax=docker/dockerfile:1
# tracardi-twitter: build with the Rust toolchain, run on a small Debian with only CA certificates.
#
#   docker build -t tracardi-twitter .
#   docker run -p 20000:20000 -v tracardi-twitter-data:/data tracardi-twitter
#
# `bash scripts/lint-docker.sh` lints this file (hadolint).

# The builder is pinned to the minimum Rust version (Cargo.toml's rust-version); its image
# brings the C compiler that ring and the bundled SQLite need.
FROM rust:1.89-slim-bookworm AS builder
WORKDIR /src
COPY . .
# The caches keep downloaded crates and compiled dependencies between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tracardi-twitter \
    && cp target/release/tracardi-twitter /usr/local/bin/tracardi-twitter

FROM debian:bookworm-slim
# TLS to X uses rustls (no OpenSSL) and the system's CA certificates. Their version is not pinned
# on purpose: the CA bundle is what should follow Debian's updates at each build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin tracardi \
    && mkdir -p /data \
    && chown tracardi:tracardi /data \
    && chmod 700 /data
COPY --from=builder /usr/local/bin/tracardi-twitter /usr/local/bin/tracardi-twitter

# Generated API key and secret (service-keys.json) live here when API_KEY/SECRET are not given.
ENV DATA_DIR=/data \
    LISTEN_ADDR=0.0.0.0:20000
VOLUME ["/data"]
EXPOSE 20000
# The user made above, by number, so that the host can resolve it too.
USER 10001:10001
# `healthcheck` without an address asks LISTEN_ADDR's port on 127.0.0.1, so a container run with
# another LISTEN_ADDR is checked where it listens.
HEALTHCHECK --interval=30s --timeout=6s --start-period=5s --retries=3 \
    CMD ["tracardi-twitter", "healthcheck"]
# No command runs the service; `docker run IMAGE validate --help` and `openapi` work too.
ENTRYPOINT ["tracardi-twitter"]
