"""The server's read-only watch pages: ``/`` (the live dashboard), ``/api/status`` (its JSON), ``/metrics``.

The page is three files of this package (``index.html``, ``dashboard.js``, ``dashboard.css``):
no CDN, no framework, so it works on a machine without internet. It polls ``/api/status``
once a second and draws the job's settings, the current iteration with a bar of uploads
against the threshold, per-iteration timings, the devices' accuracy and loss curves (their
pushMetrics), bytes, refusals and the processes of a group. Every route here is a GET that
changes nothing. With ``metrics_token`` each of them asks for ``Authorization: Bearer
<token>`` (or ``?token=`` for a browser, which the page passes on to its requests); the
device endpoints, and the page's script and style, never do.
"""
from __future__ import annotations

import hmac
from importlib import resources
from typing import Any, Awaitable, Callable

from aiohttp import web

from pyflclient.server.config import ServerConfig
from pyflclient.server.metrics import ServerMetrics
from pyflclient.server.store import StateStore

__all__ = ["add_watch_routes", "WATCH_PATHS"]

_ASSETS = {"dashboard.js": "application/javascript", "dashboard.css": "text/css"}
#: the paths the token guards: those that hold the job's numbers (the page's script and style do not)
WATCH_PATHS = frozenset({"/", "/metrics", "/api/status"})


def _asset(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


def _job(config: ServerConfig) -> dict[str, Any]:
    """The settings a person watching the job wants to see."""
    keys = ("fl_name", "server_mode", "fl_iteration_num", "start_fl_job_threshold", "update_model_ratio",
            "start_fl_job_time_window", "update_model_time_window", "client_epoch_num", "client_batch_size",
            "client_learning_rate", "encrypt_type", "admission_policy", "server_num")
    job = {key: getattr(config, key) for key in keys}
    job["update_model_threshold"] = config.update_model_threshold
    job["store"] = "redis" if config.distributed_cache_address else "memory"
    return job


async def status(config: ServerConfig, store: StateStore, metrics: ServerMetrics) -> dict[str, Any]:
    """The dashboard's one JSON document."""
    now = await metrics.refresh(store)
    view = await store.view()
    devices = await metrics.device_summaries(store, view)
    return {"job": _job(config), "now": now, "iterations": metrics.history.iterations[-500:],
            "devices": [d.as_dict() for d in devices], "process": metrics.process, "totals": metrics.totals(),
            "processes": {**await store.processes(), metrics.process: metrics.status()}}


def _guard(token: str | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware asking the watch paths for the bearer token (constant-time comparison)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
        if token is None or request.path not in WATCH_PATHS:
            return await handler(request)
        given = request.headers.get("Authorization", "")
        given = given[7:] if given.startswith("Bearer ") else request.query.get("token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.Response(status=401, text="401 Unauthorized: give Authorization: Bearer <metrics_token>",
                                headers={"WWW-Authenticate": 'Bearer realm="pyflclient"'})
        return await handler(request)

    return middleware


def add_watch_routes(app: web.Application, config: ServerConfig, store: StateStore, metrics: ServerMetrics) -> None:
    """``/metrics`` and, unless ``dashboard=off``, the dashboard, on ``app`` (the FL ports' or metrics_port's)."""
    app.middlewares.append(_guard(config.metrics_token))

    async def prometheus(_request: web.Request) -> web.Response:
        await metrics.refresh(store)
        return web.Response(body=metrics.exposition(), headers={"Content-Type": "text/plain; version=0.0.4; "
                                                                                "charset=utf-8"})

    app.router.add_get("/metrics", prometheus)
    if config.dashboard != "on":
        return

    async def page(_request: web.Request) -> web.Response:
        return web.Response(body=_asset("index.html"), content_type="text/html", charset="utf-8")

    async def api(_request: web.Request) -> web.Response:
        return web.json_response(await status(config, store, metrics), headers={"Cache-Control": "no-store"})

    def asset(name: str, kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(_request: web.Request) -> web.Response:
            return web.Response(body=_asset(name), content_type=kind, charset="utf-8")
        return serve

    app.router.add_get("/", page)
    app.router.add_get("/api/status", api)
    for name, kind in _ASSETS.items():
        app.router.add_get(f"/dashboard/{name}", asset(name, kind))
