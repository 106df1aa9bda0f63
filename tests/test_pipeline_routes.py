"""Every tenant route is served by the pipeline: the router is enumerated, so a route added
later without it fails here."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.app import create_app
from gateway.config import Settings
from gateway.pipeline import TENANT_ROUTES, is_pipeline_view
from gateway.routes import fallback, use_post


def _tenant_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path pattern, handler) of every route a tenant's request can reach."""
    out = []
    for resource in app.router.resources():
        canonical = resource.canonical
        if not (canonical.startswith("/v1") or canonical.startswith("/tenants/")):
            continue
        for route in resource:
            out.append((route.method, canonical, route.handler))
    return out


def test_every_post_and_models_route_is_a_pipeline_view(settings: Settings) -> None:
    app = create_app(settings, "secret")
    routes = _tenant_routes(app)
    served = [(m, p) for m, p, h in routes if is_pipeline_view(h)]
    others = [(m, p, h) for m, p, h in routes if not is_pipeline_view(h)]
    # Everything a tenant can POST, and GET /v1/models, is a pipeline view ...
    for method, path, handler in others:
        assert method != "POST", f"POST {path} is not served by the pipeline"
        assert not path.endswith("/v1/models"), f"{method} {path} is not served by the pipeline"
        # ... the rest are the 405 for GET on a POST route and the catch-all.
        assert handler in (use_post, fallback), f"{method} {path} -> {handler}"
    expected = {(r.method, r.path) for r in TENANT_ROUTES}
    expected |= {(r.method, "/tenants/{tenant}" + r.path) for r in TENANT_ROUTES}
    assert set(served) == expected


def test_path_routing_off_registers_no_tenant_paths(settings: Settings) -> None:
    app = create_app(settings.replace(path_routing=False), "secret")
    assert not [p for _, p, _ in _tenant_routes(app) if p.startswith("/tenants/")]
