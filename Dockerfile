# rpcsvc: the JSON-RPC task service. Settings come from RPCSVC_* variables at run time
# (see docker-compose.yml and the README's configuration table).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml setup.cfg README.md ./
COPY rpcsvc ./rpcsvc
COPY workers ./workers
RUN pip install . \
    && useradd --system --uid 10001 --no-create-home rpcsvc \
    && mkdir -p /data \
    && chown rpcsvc /data
USER rpcsvc

# Inside a container the service must listen on every interface to be reachable.
ENV RPCSVC_HOST=0.0.0.0 \
    RPCSVC_PORT=8080
EXPOSE 8080
VOLUME ["/data"]

# /healthz answers 200 once the worker pool is up (503 while starting or draining).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RPCSVC_PORT', '8080') + '/healthz', timeout=2)"]

# SIGTERM (docker stop) lets running tasks finish for RPCSVC_SHUTDOWN_GRACE seconds.
STOPSIGNAL SIGTERM
CMD ["rpcsvc", "serve"]
