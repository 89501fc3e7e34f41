# syntax=docker/dockerfile:1
#
# Dockerfile -- OrderFlow on Debian 12 (bookworm): the Debian package
# installed into debian:12-slim, a non-root user, HEALTHCHECK on /health.
#
#   scripts/package.sh && docker build -t orderflow .     (or scripts/image.sh)
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
#
# The image installs the Debian package (scripts/package.sh -> dist/), so the
# image and the .deb cannot drift: same binary, migrations (found at
# /usr/share/orderflow/migrations without a variable), config and man pages.
# scripts/image.sh builds it with buildah/podman from a local debootstrap base
# tagged debian:12-slim, runs it against a PostgreSQL and checks /health, the
# non-root user and the HEALTHCHECK.

FROM debian:12-slim
ARG DEB=dist/orderflow_0.1.0-1_amd64.deb
COPY ${DEB} /tmp/orderflow.deb
COPY deploy/docker/entrypoint.sh /usr/local/bin/orderflow-entrypoint
RUN apt-get update \
 && apt-get install -y -qq --no-install-recommends /tmp/orderflow.deb curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /tmp/orderflow.deb \
 && orderflow --version
# the package's system user (postinst: adduser --system orderflow)
ENV ORDERFLOW_CONFIG=/etc/orderflow/orderflow.cfg \
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
