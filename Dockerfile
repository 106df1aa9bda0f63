# The gateway as a container: `gateway serve` as a non-root user. Point it at a Redis with
# GATEWAY_REDIS_URL (the embedded Redis is for laptops, not containers) and give it the
# key-hashing secret with GATEWAY_SECRET. docs/deployment.md has the rest; compose.yaml runs it.
FROM python:3.11-slim

# Both ports listen on every interface of the container; publishing them (docker run -p,
# compose.yaml) decides who reaches them. The admin port starts only with GATEWAY_ADMIN_TOKEN.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_ADMIN_HOST=0.0.0.0 \
    GATEWAY_ADMIN_PORT=8081 \
    GATEWAY_VAR_DIR=/var/lib/gateway

WORKDIR /app
# Dependencies first, pinned by the same constraints file `make install` and the tests use.
COPY setup.cfg pyproject.toml README.md constraints.txt ./
COPY gateway ./gateway
COPY config ./config
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /var/lib/gateway --create-home gateway

USER gateway
EXPOSE 8080 8081
# Reads the same settings as `gateway serve`, so it follows GATEWAY_PORT (or the config file).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-m", "gateway.healthcheck"]
ENTRYPOINT ["gateway"]
CMD ["serve"]
