# roomstream image: one binary, every subcommand. Built for docker-compose.yml, whose services give the
# subcommand as their `command` (the entrypoint is the binary itself) and mount config/production.toml.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release --bin roomstream

FROM debian:bookworm-slim
# curl: the HTTP health checks of docker-compose.yml (/readyz, /metrics).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/roomstream /usr/local/bin/roomstream
COPY config /etc/roomstream
ENV ROOMSTREAM_CONFIG=/etc/roomstream/production.toml
USER nobody
ENTRYPOINT ["roomstream"]
