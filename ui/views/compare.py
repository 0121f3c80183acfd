"""``/p/<namespace>/<project>/compare?ids=A,B``: channels overlaid, and where parameters differ."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from expstream.exceptions import ExperimentNotFound
from expstream.ui.views.base import browser, json_response, project_of, render


def _ids(request: Request) -> list[str]:
    raw = ",".join(request.query_params.getlist("ids"))
    ids = list(dict.fromkeys(i.strip() for i in raw.split(",") if i.strip()))
    if not ids:
        raise ExperimentNotFound("(none given: ?ids=A,B)", project_of(request))
    return ids[:20]


def _data(request: Request) -> dict[str, Any]:
    project = project_of(request)
    found = [browser(request).experiment(project, i) for i in _ids(request)]
    names = sorted({k for e in found for k in e["parameters"]})
    rows = []
    for name in names:
        values = [e["parameters"].get(name) for e in found]
        rows.append({"name": name, "values": values, "differs": len({repr(v) for v in values}) > 1})
    channels = sorted(
        {c["name"] for e in found for c in e["channels"] if c["type"] == "numeric" and c["namespace"] == "user"}
    )
    experiments = [{"id": e["id"], "name": e["name"], "state": e["state"]} for e in found]
    return {"experiments": experiments, "parameters": rows, "channels": channels}


def page(request: Request) -> Response:
    return render(request, "compare.html", {"project": project_of(request), "c": _data(request)})


def data(request: Request) -> Response:
    return json_response(_data(request))
