# roomstream image: one binary, every subcommand. Built for docker-compose.yml.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --locked --release --bin roomstream

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/roomstream /usr/local/bin/roomstream
COPY config /etc/roomstream
ENTRYPOINT ["roomstream", "--config", "/etc/roomstream/production.toml"]
