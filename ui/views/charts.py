"""``/p/<namespace>/<project>/api/chart``: the per-pixel envelope of a channel of one or more experiments."""

from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.responses import Response

from expstream.exceptions import ExperimentNotFound
from expstream.query.charts import MAX_WIDTH
from expstream.ui.views.base import browser, float_arg, int_arg, json_response, project_of


def data(request: Request) -> Response:
    args = request.query_params
    ids = [i for i in args.get("ids", "").split(",") if i][:20]
    if not ids:
        raise ExperimentNotFound("(none given: ?ids=A,B)", project_of(request))
    chart = browser(request).chart(
        project_of(request),
        ids,
        args.get("channel", ""),
        namespace=args.get("namespace", "user"),
        axis=args.get("axis", "step"),
        x_from=float_arg(request, "x_from"),
        x_to=float_arg(request, "x_to"),
        width=int_arg(request, "width", 1000, 1, MAX_WIDTH),
    )
    return json_response(asdict(chart))
