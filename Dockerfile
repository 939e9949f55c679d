# The protobus binary (registry, ingest, dev, ...) and the example consumer
# (examples/consumer.rs) in a small runtime image.
# docker-compose.yml builds it; the no-Docker path is scripts/kafka.sh + cargo.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# With OpenTelemetry export: off until OTEL_EXPORTER_OTLP_ENDPOINT is set.
RUN cargo build --release --locked --features otel --bin protobus --example consumer

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/protobus /usr/local/bin/protobus
COPY --from=build /src/target/release/examples/consumer /usr/local/bin/protobus-example-consumer
# No transparent huge pages for mimalloc's memory, whatever the host's THP
# mode: the binary only stops asking for them (see src/main.rs).
ENV MIMALLOC_ALLOW_THP=0
USER 65532:65532
ENTRYPOINT ["protobus"]
