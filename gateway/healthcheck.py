"""`python -m gateway.healthcheck`: exit 0 when this gateway's `/healthz` answers 200, else 1.

The container's HEALTHCHECK runs it, so the check follows the configured port (the same
`config/gateway.toml` and `GATEWAY_*` variables `gateway serve` reads), not a port written into
the Dockerfile. Standard library only: it must start fast and never need the network.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError

TIMEOUT = 3.0


def health_url(settings: Settings) -> str:
    host = settings.host
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - listening everywhere: ask over loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/healthz"


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    try:
        url = health_url(load_settings())
    except ConfigError as exc:
        sys.stderr.write(f"healthcheck: {exc.message}\n")
        return 1
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310 - http only
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        sys.stderr.write(f"healthcheck: {url}: {getattr(exc, 'reason', exc)}\n")
        return 1
    if status != 200:
        sys.stderr.write(f"healthcheck: {url} answered {status}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
