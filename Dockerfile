# The gateway as a container: `gateway serve` as a non-root user. Point it at a Redis with
# GATEWAY_REDIS_URL (the embedded Redis is for laptops, not containers) and give it the
# key-hashing secret with GATEWAY_SECRET.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_VAR_DIR=/var/lib/gateway

WORKDIR /app
COPY setup.cfg pyproject.toml README.md ./
COPY gateway ./gateway
COPY config ./config
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/gateway --create-home gateway

USER gateway
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz').status != 200)"
ENTRYPOINT ["gateway"]
CMD ["serve"]
