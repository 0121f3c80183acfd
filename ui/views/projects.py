"""``/``: every project, its number of experiments and its latest activity."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from expstream.ui.views.base import browser, json_response, render


def page(request: Request) -> Response:
    return render(request, "projects.html", {"projects": browser(request).projects()})


def data(request: Request) -> Response:
    return json_response({"projects": browser(request).projects()})
