# syntax=docker/dockerfile:1
# tracardi-twitter: build with the Rust toolchain, run on a small Debian with only CA certificates.
#
#   docker build -t tracardi-twitter .
#   docker run -p 20000:20000 -v tracardi-twitter-data:/data tracardi-twitter

FROM rust:1-slim-bookworm AS builder
WORKDIR /src
COPY . .
# The caches keep downloaded crates and compiled dependencies between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin tracardi-twitter \
    && cp target/release/tracardi-twitter /usr/local/bin/tracardi-twitter

FROM debian:bookworm-slim
# TLS to X uses rustls (no OpenSSL) and the system's CA certificates.
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
USER tracardi
HEALTHCHECK --interval=30s --timeout=6s --start-period=5s --retries=3 \
    CMD ["tracardi-twitter", "healthcheck", "http://127.0.0.1:20000"]
# No command runs the service; `docker run IMAGE validate --help` and `openapi` work too.
ENTRYPOINT ["tracardi-twitter"]
