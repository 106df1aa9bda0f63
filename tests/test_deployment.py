"""What an operator deploys: the container's health check follows the configured port, the image
and `make install` take their Python dependencies from one constraints file (the one this suite
runs on), and compose.yaml runs two gateways on one real Redis."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from importlib import metadata
from typing import Any

import yaml
from aiohttp.test_utils import TestServer
from packaging.requirements import Requirement

from tests.conftest import REPO, free_port

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


async def healthcheck(**env: str) -> tuple[int, str]:
    """`python -m gateway.healthcheck` with only these GATEWAY_* variables."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    environ["GATEWAY_CONFIG"] = str(REPO / "config" / "gateway.toml")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.healthcheck",
        env={**environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_healthcheck_follows_the_configured_port(gateway: TestServer) -> None:
    assert gateway.port is not None
    assert await healthcheck(GATEWAY_PORT=str(gateway.port)) == (0, "")
    # Listening on every interface: it asks over loopback.
    assert await healthcheck(GATEWAY_PORT=str(gateway.port), GATEWAY_HOST="0.0.0.0") == (0, "")  # noqa: S104
    port = free_port()  # nothing there
    code, err = await healthcheck(GATEWAY_PORT=str(port))
    assert code == 1
    assert err.startswith(f"healthcheck: http://127.0.0.1:{port}/healthz")
    assert err.count("\n") == 1
    code, err = await healthcheck(GATEWAY_PORT="not-a-port")
    assert code == 1
    assert "GATEWAY_PORT" in err


def _dockerfile_env() -> dict[str, str]:
    block = DOCKERFILE[DOCKERFILE.index("ENV ") : DOCKERFILE.index("WORKDIR")]
    return dict(re.findall(r"(GATEWAY_[A-Z_]+)=(\S+)", block))


def test_dockerfile_exposes_both_ports_and_checks_health_on_the_configured_one() -> None:
    env = _dockerfile_env()
    assert env["GATEWAY_HOST"] == env["GATEWAY_ADMIN_HOST"] == "0.0.0.0"  # noqa: S104
    exposed = re.search(r"^EXPOSE (.+)$", DOCKERFILE, re.MULTILINE)
    assert exposed is not None
    assert set(exposed.group(1).split()) == {env["GATEWAY_PORT"], env["GATEWAY_ADMIN_PORT"]}
    check = DOCKERFILE[DOCKERFILE.index("HEALTHCHECK") : DOCKERFILE.index("ENTRYPOINT")]
    assert '"gateway.healthcheck"' in check
    assert env["GATEWAY_PORT"] not in check  # no port written into the check


def _pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_canonical(name)] = version
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_image_and_make_install_take_the_constraints_file() -> None:
    assert "constraints.txt" in DOCKERFILE.split("RUN pip install", 1)[0]  # copied first
    assert "RUN pip install -c constraints.txt ." in DOCKERFILE
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"pip install .*-c constraints\.txt -e '\.\[dev,embedded\]'", makefile)
    assert re.search(r"^\$\(STAMP\):.*constraints\.txt", makefile, re.MULTILINE)


def test_every_dependency_is_pinned_and_this_suite_runs_on_the_pins() -> None:
    pins = _pins()
    assert "tenant-gateway" not in pins  # the project itself is not pinned
    requirements: list[Any] = metadata.requires("tenant-gateway") or []
    for text in requirements:
        requirement = Requirement(text)
        assert _canonical(requirement.name) in pins, f"{requirement.name} is not pinned"
    for name, version in pins.items():
        assert metadata.version(name) == version, f"{name}: installed != pinned"


def test_compose_runs_two_gateways_on_one_real_redis() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["redis"]["image"].startswith("redis:")
    gateways = {name: s for name, s in services.items() if s.get("build") == "."}
    assert set(gateways) == {"gateway", "gateway-2"}
    envs = [g["environment"] for g in gateways.values()]
    assert envs[0] == envs[1]  # one Redis, one secret: either instance serves any tenant
    assert envs[0]["GATEWAY_REDIS_URL"] == "redis://redis:6379/0"
    assert envs[0]["GATEWAY_SECRET"].startswith("${GATEWAY_SECRET:?")  # required, never inline
    for service in gateways.values():
        assert service["depends_on"]["redis"]["condition"] == "service_healthy"
        published = [p.rsplit(":", 1) for p in service["ports"]]
        targets = {target: outside for outside, target in published}
        assert set(targets) == {"8080", "8081"}
        assert targets["8081"].startswith("127.0.0.1:")  # the admin port stays on the host
