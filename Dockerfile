# Multi-stage image of the ferroplane CLI.
#   docker build -t ferroplane .
#   docker run --rm ferroplane                      # built-in demo (null ports, 5 s)
#   docker run --rm -v $PWD/configs:/configs ferroplane run /configs/l2fwd-null.toml
# Huge pages and AF_XDP need extra privileges (--privileged, a hugetlbfs mount); the demo does not.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ferroplane-apps --bin ferroplane

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/ferroplane /usr/local/bin/ferroplane
COPY configs /usr/share/ferroplane/configs
EXPOSE 9100
ENTRYPOINT ["/usr/local/bin/ferroplane"]
CMD ["run"]
