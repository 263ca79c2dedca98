# PsicoIA: one process serving TCP (5001), WebSocket (8765) and HTTP (8000).
# Build: docker build -t psicoia .   Run: docker compose up   (see docs/operations.md)
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app

# Dependencies first, read from setup.cfg (one list), so code changes do not reinstall them.
COPY setup.cfg ./
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); print(c['options']['install_requires'])" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The code runs from /app (PYTHONPATH), read-only for the service user; the page's files in
# web/ sit next to the package where psicoia.transports.http looks for them.
COPY psicoia ./psicoia
COPY twisted ./twisted
COPY web ./web
COPY config.yaml /etc/psicoia/config.yaml
# Build Twisted's plugin cache now: the non-root user cannot write it at run time.
RUN python -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))" \
    && groupadd --system --gid 10001 psicoia \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/psicoia --create-home \
       --shell /usr/sbin/nologin psicoia \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/psicoia/data

# Conversations (storage.backend sqlite) live in a volume, apart from twistd's pid file, so
# they survive a new container (README, "Data and privacy").
ENV PSICOIA_STORAGE_SQLITE_PATH=/var/lib/psicoia/data/psicoia.db
VOLUME ["/var/lib/psicoia/data"]

# twistd writes its pid file in the working directory: give it one the user owns.
WORKDIR /var/lib/psicoia
USER 10001:10001

EXPOSE 5001 8765 8000

# Liveness only (/healthz never calls the provider). python, because slim images have no curl.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

STOPSIGNAL SIGTERM
CMD ["twistd", "-n", "psicoia", "--config", "/etc/psicoia/config.yaml"]
