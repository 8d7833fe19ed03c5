# Vitrine as a container image: one process, data in the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VITRINE_SERVER_HOST=0.0.0.0 \
    VITRINE_STORAGE_DATA_DIR=/data

WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
COPY scripts/install scripts/install
COPY appliance appliance
COPY media media
COPY web web
# The same install step scripts/run uses (through scripts/bootstrap): pinned, hashed.
RUN scripts/install /usr/local/bin/python --editable \
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
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]
CMD ["vitrine", "serve"]
