"""The ASGI application: routes (the URL scheme is part of the interface), errors as pages, assets.

Every route only reads. Unknown projects, experiments, channels and files answer 404 (a page, or
JSON under ``/api``), bad arguments 400, a thumbnail of a point that is not an image 422, a store that is busy
or down 503: never a traceback.
Assets are this package's own ``static/`` files and the chart library from the installed ``plotly``
wheel, so the UI works air-gapped.
"""

from __future__ import annotations

import functools
import gzip
import logging
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
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

__all__ = ["create_app", "plotly_js"]

log = logging.getLogger("expstream.ui")


def plotly_js() -> Path:
    """The chart library as the ``plotly`` wheel installs it (served, never copied)."""
    try:
        bundle = resources.files("plotly") / "package_data" / "plotly.min.js"
    except ModuleNotFoundError as exc:  # a dependency of expstream: only a broken install lacks it
        raise NeptuneException("the UI needs plotly: pip install plotly") from exc
    return Path(str(bundle))


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


@functools.cache
def _plotly_gzipped() -> bytes:
    """The bundle compressed once: gzipping its 4.8 MB for every page load cost the server ~0.2 s of a core."""
    return gzip.compress(plotly_js().read_bytes(), compresslevel=6)


async def _plotly(request: Request) -> Response:
    headers = {"cache-control": "public, max-age=86400", "vary": "accept-encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = await run_in_threadpool(_plotly_gzipped)
        return Response(body, media_type="text/javascript", headers={**headers, "content-encoding": "gzip"})
    return FileResponse(plotly_js(), media_type="text/javascript", headers=headers)


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204)


def create_app(browser: Browser, token: str | None = None) -> Starlette:
    """The UI over ``browser``; with ``token``, every request must bring it."""
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
        Route("/assets/plotly.min.js", _plotly),
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
