"""``/p/<namespace>/<project>``: the leaderboard, filtered, sorted and paginated by query arguments."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from expstream.ui.views.base import browser, int_arg, json_response, project_of, render

STATES = ("running", "succeeded", "failed", "aborted")
PAGE = 50


def _query(request: Request) -> dict[str, Any]:
    args = request.query_params
    return {
        "states": [s for s in args.getlist("state") if s] or None,
        "owners": [o for o in args.getlist("owner") if o] or None,
        "tags": [t for t in args.getlist("tag") if t] or None,
        "text": args.get("q", ""),
        "sort": args.get("sort", "id"),
        "descending": args.get("order", "desc") != "asc",
        "offset": int_arg(request, "offset", 0, 0, 10**9),
        "limit": int_arg(request, "limit", PAGE, 1, 1000),
    }


def data(request: Request) -> Response:
    return json_response(browser(request).leaderboard(project_of(request), **_query(request)))


def page(request: Request) -> Response:
    query = _query(request)
    board = browser(request).leaderboard(project_of(request), **query)
    return render(
        request,
        "leaderboard.html",
        {"project": project_of(request), "board": board, "query": query, "states": STATES},
    )
