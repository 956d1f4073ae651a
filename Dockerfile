# syntax=docker/dockerfile:1
# TokenGate: release build in the Swift image, run in debian:bookworm-slim as a non-root user
# (10001) on a read-only root file system.
#
#   docker build -t tokengate .
#   docker run --rm tokengate key generate
#
# No key, password or users file is baked in: give them at run time. docker-compose.yml runs
# `tokengate init` once to write the missing ones into a volume at /var/lib/tokengate/secrets.

# The Swift version the project is built and tested with.
ARG SWIFT_VERSION=6.3

# ---- build ---------------------------------------------------------------------------------------
FROM swift:${SWIFT_VERSION}-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libhiredis-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a source change does not download them again.
COPY Package.* ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
# The Swift runtime and Foundation are linked in statically: the runtime image needs only libc,
# libstdc++ and hiredis.
RUN swift build -c release --product tokengate --static-swift-stdlib \
 && install -D -m 0755 "$(swift build -c release --show-bin-path)/tokengate" /out/tokengate

# ---- run -----------------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libhiredis0.14 libstdc++6 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tokengate \
 && useradd --system --uid 10001 --gid tokengate --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin tokengate \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/tokengate/secrets \
 && install -d -o 10001 -g 10001 -m 0755 /var/lib/tokengate/app-secrets
COPY --from=build /out/tokengate /usr/local/bin/tokengate
COPY deploy/docker/healthcheck /usr/local/bin/tokengate-healthcheck

USER 10001:10001
ENV TOKENGATE_LISTEN=0.0.0.0:8080
EXPOSE 8080
# /readyz answers 200 only while Redis answers (a replica that cannot reach Redis is unhealthy);
# bash's /dev/tcp does the request (no curl needed).
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/tokengate-healthcheck"]
# tokengate runs as PID 1 and handles SIGTERM/SIGINT itself: it stops accepting, lets in-flight
# requests finish, closes Redis, then exits. Give it a few seconds (compose: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tokengate"]
CMD ["serve"]
