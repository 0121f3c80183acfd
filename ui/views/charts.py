"""``/p/<namespace>/<project>/api/chart`` and ``/api/charts``: the per-pixel envelope of channels of one or more
experiments; ``charts`` answers several channels in one request (a page asks for every chart in view at once)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from expstream.exceptions import ExperimentNotFound, InvalidChannelValue, NeptuneException
from expstream.query.browse import Chart
from expstream.query.charts import MAX_WIDTH
from expstream.ui.views.base import browser, float_arg, int_arg, json_response, project_of, status_of

#: channels answered by one ``/api/charts`` request at most
MAX_CHANNELS = 50


def _ids(request: Request) -> list[str]:
    ids = [i for i in request.query_params.get("ids", "").split(",") if i][:20]
    if not ids:
        raise ExperimentNotFound("(none given: ?ids=A,B)", project_of(request))
    return ids


def _shared(request: Request) -> dict[str, Any]:
    """The arguments of a chart request besides the logs and the range, checked once (a bad one: 400)."""
    args = request.query_params
    return {
        "namespace": args.get("namespace", "user"),
        "axis": args.get("axis", "step"),
        "width": int_arg(request, "width", 1000, 1, MAX_WIDTH),
    }


def _as_json(chart: Chart) -> dict[str, Any]:
    """The chart as JSON values; shallow, unlike ``dataclasses.asdict``, whose deep copy of 20 charts' point lists
    took 50 ms."""
    return {**vars(chart), "series": [vars(series) for series in chart.series]}


def data(request: Request) -> Response:
    chart = browser(request).chart(
        project_of(request),
        _ids(request),
        request.query_params.get("channel", ""),
        x_from=float_arg(request, "x_from"),
        x_to=float_arg(request, "x_to"),
        **_shared(request),
    )
    return json_response(_as_json(chart))


def many(request: Request) -> Response:
    """``?ids=A,B&channel=x&channel=y...``: the whole range of each channel, ``{"charts": [...]}`` in the order
    asked. A channel that cannot be drawn (unknown, not numeric) holds ``{"channel", "error", "status"}`` in its
    place; the others are drawn."""
    channels = request.query_params.getlist("channel")
    if not 1 <= len(channels) <= MAX_CHANNELS:
        raise InvalidChannelValue(f"1 to {MAX_CHANNELS} channel= arguments", str(len(channels)))
    found = browser(request).charts(project_of(request), _ids(request), channels, **_shared(request))
    answers: list[dict[str, Any]] = []
    for channel, answer in zip(channels, found, strict=True):
        if isinstance(answer, NeptuneException):
            answers.append({"channel": channel, "error": str(answer), "status": status_of(answer) or 500})
        else:
            answers.append(_as_json(answer))
    return json_response({"charts": answers})
