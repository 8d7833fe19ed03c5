# Vitrine as a container image: one process, data in the /data volume.
#
# The base is python:3.11-slim, pinned by digest (Docker Hub's multi-platform index, as
# quoted by other projects' Dockerfiles: not re-checked against the registry here, where
# none is reachable). Bump it with `docker pull python:3.11-slim` and
# `docker inspect --format '{{index .RepoDigests 0}}' python:3.11-slim`.
# scripts/image-test passes another Debian base with Python 3.11 (made with mmdebstrap)
# through --build-arg BASE_IMAGE=... on machines that reach no image registry.
ARG BASE_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VITRINE_SERVER_HOST=0.0.0.0 \
    VITRINE_SERVER_PORT=8080 \
    VITRINE_STORAGE_DATA_DIR=/data

# tini as PID 1: it forwards SIGTERM to the server and reaps any child process.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*

WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
COPY scripts/install scripts/install
COPY appliance appliance
COPY media media
COPY web web
# The same install step scripts/run uses (through scripts/bootstrap): pinned, hashed; the
# lock holds setuptools too, which the editable install of /app builds with.
RUN scripts/install python3 --editable \
    && groupadd --system --gid 10001 vitrine \
    && useradd --system --uid 10001 --gid vitrine --home-dir /app --shell /usr/sbin/nologin vitrine \
    && mkdir -m 0700 /data \
    && chown vitrine:vitrine /data

USER 10001:10001
VOLUME ["/data"]
# HTTP, and the UDP range WebRTC media uses when the container is started with
# --sysctl net.ipv4.ip_local_port_range="40000 40199" (see docs/operator.md).
EXPOSE 8080/tcp
EXPOSE 40000-40199/udp
# Asks the port the server listens on (VITRINE_SERVER_PORT), not a fixed one.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, sys, urllib.request; port = os.environ.get('VITRINE_SERVER_PORT') or '8080'; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# `vitrine serve --demo` would also create the demo shop on the first start:
#   docker run ... vitrine vitrine serve --demo   (or later: docker exec vitrine vitrine seed-demo)
CMD ["vitrine", "serve"]
