# syntax=docker/dockerfile:1
#
# Dockerfile -- OrderFlow on Debian 12 (bookworm), two stages.
#
#   build:   the README's steps: scripts/deps.sh run (the same Debian package
#            list), then the same cmake Release build as scripts/run.sh; npm
#            installs swagger-ui-dist at configure time for /docs (without
#            it /docs is a plain page and the build still succeeds).
#   runtime: the shared libraries only, a non-root user, HEALTHCHECK on /health.
#
#   docker build -t orderflow .
#   docker run --rm -p 8000:8000 \
#       -e ORDERFLOW_DATABASE_URL=postgresql://orderflow:...@db/orderflow \
#       -e ORDERFLOW_JWT_SECRET_FILE=/run/secrets/jwt_secret \
#       -v /srv/orderflow/orderflow.cfg:/etc/orderflow/orderflow.cfg:ro \
#       orderflow
#   docker run --rm -e ORDERFLOW_DATABASE_URL=... orderflow migrate up
#   docker run --rm -i -e ORDERFLOW_DATABASE_URL=... orderflow user create --email a@b.c --role admin
#
# Config: /etc/orderflow/orderflow.cfg (mount your own; the image has the
# sample). Inside a container set server.forwarded_allow_ips to the proxy's
# address and metrics.allow to the scraper's, both as seen from the container.
# Secrets: the environment (ORDERFLOW_JWT_SECRET, ORDERFLOW_DATABASE_URL) or
# files named by ORDERFLOW_JWT_SECRET_FILE / ORDERFLOW_DATABASE_URL_FILE
# (Docker/Kubernetes secrets), read by deploy/docker/entrypoint.sh.
# (Not buildable on the development machines: no Docker engine there.)

FROM debian:12 AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh run \
 && apt-get install -y -qq --no-install-recommends npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build-release -j"$(nproc)" \
 && build-release/orderflow --version

FROM debian:12-slim AS runtime
RUN apt-get update \
 && apt-get install -y -qq --no-install-recommends \
        libevent-2.1-7 libevent-pthreads-2.1-7 libjansson4 libpq5 libconfig9 libsodium23 \
        libjwt0 libssl3 libsystemd0 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /nonexistent --shell /usr/sbin/nologin orderflow
COPY --from=build /src/build-release/orderflow /usr/local/bin/orderflow
COPY migrations/ /usr/local/share/orderflow/migrations/
COPY config/orderflow.cfg /etc/orderflow/orderflow.cfg
COPY deploy/docker/entrypoint.sh /usr/local/bin/orderflow-entrypoint
ENV ORDERFLOW_CONFIG=/etc/orderflow/orderflow.cfg \
    ORDERFLOW_MIGRATIONS_DIR=/usr/local/share/orderflow/migrations \
    ORDERFLOW_LISTEN=0.0.0.0:8000
USER orderflow:orderflow
EXPOSE 8000
# TERM = graceful stop (workers finish in-flight requests); give it
# server.graceful_timeout with `docker stop -t 40`.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${ORDERFLOW_LISTEN##*:}/health" || exit 1
ENTRYPOINT ["/usr/local/bin/orderflow-entrypoint"]
CMD ["serve"]
