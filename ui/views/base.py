"""What every view shares: the templates (autoescaped), JSON responses, the browser of the app."""

from __future__ import annotations

import datetime as dt
import json
import math
from importlib import resources
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from expstream.exceptions import (
    ArtifactPathError,
    ChannelDoesNotExist,
    ExperimentNotFound,
    FileNotFound,
    InvalidChannelValue,
    ProjectNotFound,
)
from expstream.query.browse import Browser
from expstream.ui.thumbnails import NotAnImage

__all__ = ["browser", "float_arg", "int_arg", "json_response", "project_of", "render", "status_of"]

_NOT_FOUND = (ExperimentNotFound, ProjectNotFound, ChannelDoesNotExist, FileNotFound, ArtifactPathError)


def status_of(exc: Exception) -> int | None:
    """The HTTP status of an error that says what was wrong with the request, None for any other."""
    if isinstance(exc, _NOT_FOUND):
        return 404
    if isinstance(exc, InvalidChannelValue):
        return 400
    if isinstance(exc, NotAnImage):  # the request is fine, the logged point is not an image
        return 422
    return None


def _when(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)) or not seconds:
        return ""
    return dt.datetime.fromtimestamp(float(seconds), tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _cell(value: object) -> str:
    """A leaderboard value: numbers (stored as text) shortened to 6 significant digits."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number) or text.lower() in ("true", "false"):
        return text
    return f"{number:.6g}"


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(resources.files("expstream.ui") / "templates")),
    autoescape=True,  # every user string is data: escaped by the engine, never by hand
    undefined=jinja2.StrictUndefined,
)
_env.filters["when"] = _when
_env.filters["duration"] = _duration
_env.filters["size"] = _size
_env.filters["cell"] = _cell
templates = Jinja2Templates(env=_env)


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


class _JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # most answers hold no NaN, infinity or numpy scalar: encoded as they are, without a walk over every value
        # (20 charts' point lists took 65 ms to walk, 20 ms to encode); the rest are cleaned first
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        except (ValueError, TypeError):
            return json.dumps(_clean(content), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def json_response(content: Any, status_code: int = 200) -> Response:
    return _JSON(content, status_code=status_code, headers={"cache-control": "no-store"})


def browser(request: Request) -> Browser:
    """The app's Browser."""
    found: Browser = request.app.state.browser
    return found


def project_of(request: Request) -> str:
    return f"{request.path_params['namespace']}/{request.path_params['project']}"


def float_arg(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidChannelValue(f"a number for {name}", repr(raw)) from None
    if not math.isfinite(value):
        raise InvalidChannelValue(f"a finite number for {name}", repr(raw))
    return value


def int_arg(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidChannelValue(f"an integer for {name}", repr(raw)) from None
    return max(lo, min(hi, value))
