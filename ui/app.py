"""The ASGI application: routes (the URL scheme is part of the interface), errors as pages, assets.

Every route only reads. Unknown projects, experiments, channels and files answer 404 (a page, or
JSON under ``/api``), bad arguments 400, a thumbnail of a point that is not an image 422, a store that is busy
or down 503: never a traceback.
Assets are this package's own ``static/`` files and the chart library, uPlot, from the installed
``uplot-python`` wheel, so the UI works air-gapped.
"""

from __future__ import annotations

import functools
import logging
from importlib import metadata, resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from expstream.exceptions import ExpstreamIOError, ExpstreamTimeoutError, NeptuneException
from expstream.query.browse import Browser
from expstream.ui.auth import TokenMiddleware
from expstream.ui.views import charts, compare, experiment, leaderboard, projects
from expstream.ui.views.base import json_response, render, status_of

__all__ = ["chart_assets", "create_app"]

log = logging.getLogger("expstream.ui")


#: the chart library's files the pages load, as the ``uplot-python`` wheel installs them
CHART_ASSETS = {"uPlot.iife.js": "text/javascript", "uPlot.min.css": "text/css"}


@functools.cache
def chart_assets() -> Path:
    """The folder of uPlot's files in the installed ``uplot-python`` wheel (served, never copied).

    Found through the distribution's metadata, not by importing ``uplot``: the wrapper's own Python (and the
    IPython it imports) is never loaded. Looked up once per process (a failed lookup raises and is not kept)."""
    try:
        folder = Path(str(metadata.distribution("uplot-python").locate_file("uplot/static")))
    except metadata.PackageNotFoundError as exc:  # a dependency of expstream: only a broken install lacks it
        raise NeptuneException("the UI needs uplot-python: pip install uplot-python") from exc
    missing = [name for name in CHART_ASSETS if not (folder / name).is_file()]
    if missing:
        raise NeptuneException(f"the uplot-python install lacks {', '.join(missing)}: reinstall it")
    return folder


def _wants_json(request: Request) -> bool:
    return "/api/" in request.url.path or request.url.path.startswith("/api")


def _error(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return json_response({"error": message, "status": status}, status_code=status)
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)


async def _on_expstream_error(request: Request, exc: Exception) -> Response:
    status = status_of(exc)
    if status is not None:
        return _error(request, status, str(exc))
    if isinstance(exc, (ExpstreamTimeoutError, ExpstreamIOError)):
        log.warning("store unavailable for %s: %s", request.url.path, exc)
        return _error(request, 503, "the store is busy or unavailable; try again in a moment")
    log.exception("request failed: %s", request.url.path)
    return _error(request, 500, "internal error")


async def _on_http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return _error(request, status, "no such page" if status == 404 else str(getattr(exc, "detail", "error")))


async def _on_crash(request: Request, exc: Exception) -> Response:
    log.exception("request failed: %s", request.url.path)
    return _error(request, 500, "internal error")


async def _chart_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in CHART_ASSETS:
        raise HTTPException(404)
    return FileResponse(
        chart_assets() / name, media_type=CHART_ASSETS[name], headers={"cache-control": "public, max-age=86400"}
    )


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204)


def create_app(browser: Browser, token: str | None = None) -> Starlette:
    """The UI over ``browser``; with ``token``, every request must bring it."""
    chart_assets()  # a broken install says so at start, not on the first page
    e = "/p/{namespace}/{project}/e/{short_id}"
    routes = [
        Route("/", projects.page),
        Route("/api/projects", projects.data),
        Route("/p/{namespace}/{project}", leaderboard.page),
        Route("/p/{namespace}/{project}/api/leaderboard", leaderboard.data),
        Route("/p/{namespace}/{project}/api/chart", charts.data),
        Route("/p/{namespace}/{project}/api/charts", charts.many),
        Route("/p/{namespace}/{project}/compare", compare.page),
        Route("/p/{namespace}/{project}/api/compare", compare.data),
        Route(e, experiment.page),
        Route(e + "/api", experiment.data),
        Route(e + "/api/status", experiment.status),
        Route(e + "/api/text", experiment.text),
        Route(e + "/text/line", experiment.line),
        Route(e + "/api/images", experiment.images),
        Route(e + "/image", experiment.image),
        Route(e + "/{kind:str}.zip", experiment.archive),
        Route(e + "/{kind:str}/{path:path}", experiment.download),
        Route("/assets/{name:str}", _chart_asset),
        Route("/favicon.ico", _no_icon),
        Mount("/static", StaticFiles(directory=str(resources.files("expstream.ui") / "static")), name="static"),
    ]
    # level 1: a 1.1 MB batch of charts compresses in 10 ms (level 9, the default: 138 ms) to 6% more bytes
    middleware = [Middleware(GZipMiddleware, minimum_size=1024, compresslevel=1)]
    if token:
        middleware.insert(0, Middleware(TokenMiddleware, token=token))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={NeptuneException: _on_expstream_error, HTTPException: _on_http_error, Exception: _on_crash},
    )
    app.state.browser = browser
    return app
