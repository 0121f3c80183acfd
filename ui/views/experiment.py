"""``/p/<namespace>/<project>/e/<SHORT_ID>``: one experiment, and the JSON its live page polls."""

from __future__ import annotations

import io
import mimetypes
import posixpath
import time
import zipfile
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response

from expstream.exceptions import FileNotFound, InvalidChannelValue
from expstream.ui.thumbnails import cached, thumbnail
from expstream.ui.views.base import browser, float_arg, int_arg, json_response, project_of, render


def _group(name: str) -> str:
    return name.split("/", 1)[0] + "/" if "/" in name else ""


def _details(request: Request) -> dict[str, Any]:
    return browser(request).experiment(project_of(request), request.path_params["short_id"])


def page(request: Request) -> Response:
    details = _details(request)
    numeric = [c for c in details["channels"] if c["type"] == "numeric" and c["namespace"] == "user"]
    groups: dict[str, list[str]] = {}
    for channel in numeric:
        groups.setdefault(_group(channel["name"]), []).append(channel["name"])
    context = {
        "project": project_of(request),
        "e": details,
        "groups": sorted(groups.items()),
        "channel_count": len(numeric),
        "texts": [c for c in details["channels"] if c["type"] == "text"],
        "images": [c["name"] for c in details["channels"] if c["type"] == "image"],
        "hardware": [c["name"] for c in details["channels"] if c["type"] == "numeric" and c["namespace"] == "system"],
        "artifact_tree": _tree(details["artifacts"]),
    }
    return render(request, "experiment.html", context)


def data(request: Request) -> Response:
    return json_response(_details(request))


#: longest a status request waits for a change (short: a graceful shutdown waits for requests in flight)
MAX_WAIT = 2.0
#: seconds between the looks of a long poll
LOOK_AGAIN = 0.1


def status(request: Request) -> Response:
    """The live state; with ``events`` (and ``state``) as the page last saw them and ``wait`` seconds, a long
    poll: it answers as soon as either differs, or when the wait is over, looking again every tenth of a
    second (each look is one small query; on the embedded default the warm materializer has the new events
    in the tables within about 50 ms of their flush)."""
    project, short_id = project_of(request), request.path_params["short_id"]
    seen = int_arg(request, "events", -1, -1, 2**62)
    state = request.query_params.get("state")
    deadline = time.monotonic() + (float_arg(request, "wait") or 0.0 if seen >= 0 else 0.0)
    while True:
        found = browser(request).status(project, short_id)
        left = min(deadline, time.monotonic() + MAX_WAIT) - time.monotonic()
        if found["events"] != seen or (state is not None and found["state"] != state) or left <= 0:
            return json_response(found)
        time.sleep(min(left, LOOK_AGAIN))


def text(request: Request) -> Response:
    args = request.query_params
    return json_response(
        browser(request).text(
            project_of(request),
            request.path_params["short_id"],
            args.get("channel", ""),
            namespace=args.get("namespace", "user"),
            search=args.get("q", ""),
            after=float_arg(request, "after"),
            limit=int_arg(request, "limit", 500, 1, 5000),
        )
    )


def line(request: Request) -> Response:
    """One whole text line as plain text (the list shows the first characters of a long one)."""
    x = float_arg(request, "x")
    if x is None:
        raise FileNotFound("a text line without x")
    args = request.query_params
    whole = browser(request).line(
        project_of(request), request.path_params["short_id"], args.get("channel", ""), x,
        namespace=args.get("namespace", "user"),
    )  # fmt: skip
    return Response(whole, media_type="text/plain; charset=utf-8", headers={"cache-control": "private, max-age=60"})


def images(request: Request) -> Response:
    channel = request.query_params.get("channel", "")
    return json_response(
        {"images": browser(request).images(project_of(request), request.path_params["short_id"], channel)}
    )


def image(request: Request) -> Response:
    """One image log's point, byte for byte; with ``thumb=1`` a PNG of at most 720 px a side (ui/thumbnails.py)."""
    x = float_arg(request, "x")
    if x is None:
        raise FileNotFound("an image without x")
    thumb = request.query_params.get("thumb", "")
    if thumb not in ("", "0", "1"):
        raise InvalidChannelValue("thumb=1 (a thumbnail) or no thumb (the image)", repr(thumb))
    found = browser(request)
    digest = found.image_digest(
        project_of(request), request.path_params["short_id"], request.query_params.get("channel", ""), x
    )
    if thumb == "1":  # the gallery's slide; the full image is what a click opens
        data = cached(digest) or thumbnail(found.blob(digest), digest)
    else:
        data = found.blob(digest)
    kind = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "application/octet-stream"
    return Response(data, media_type=kind, headers={"cache-control": "private, max-age=3600"})


# --- artifacts and sources ------------------------------------------------------------------


def _tree(files: dict[str, tuple[str, int]]) -> list[dict[str, Any]]:
    """Files as a flat, ordered tree: folders (with their depth) before the files under them."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in sorted(files):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in seen:
                seen.add(folder)
                rows.append({"folder": True, "path": folder, "name": parts[depth - 1], "depth": depth - 1})
        rows.append({"folder": False, "path": path, "name": parts[-1], "depth": len(parts) - 1, "size": files[path][1]})
    return rows


def _safe(path: str) -> str:
    """The path as stored: no absolute paths, no '..', no backslashes or NULs (else 404, as unknown)."""
    path = unquote(path)  # %2e%2e and the like decoded once more: a stored path never contains '%2e%2e/'
    if not path or path.startswith("/") or "\\" in path or "\0" in path:
        raise FileNotFound(path)
    if ".." in path.split("/") or posixpath.normpath(path) != path:
        raise FileNotFound(path)
    return path


def _kind(request: Request) -> str:
    kind = str(request.path_params["kind"])
    if kind not in ("artifacts", "sources"):
        raise FileNotFound(kind)
    return kind


def download(request: Request) -> Response:
    kind = _kind(request)
    raw = request.path_params["path"]
    files = browser(request).files(project_of(request), request.path_params["short_id"], kind)
    if raw in files:  # exactly a stored path
        path = raw
    else:
        path = _safe(raw)
        if path not in files:
            raise FileNotFound(path)
    sha256, _ = files[path]
    body = browser(request).blob(sha256)
    media = mimetypes.guess_type(path)[0] or "application/octet-stream"
    name = posixpath.basename(path).replace('"', "")
    return Response(body, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'})


def archive(request: Request) -> Response:
    """A folder of artifacts (or all of them, ``path`` empty) as one ZIP, names relative to the folder."""
    kind = _kind(request)
    folder = request.query_params.get("path", "").strip("/")
    if folder:
        folder = _safe(folder)
    files = browser(request).files(project_of(request), request.path_params["short_id"], kind)
    prefix = folder + "/" if folder else ""
    chosen = {p: v for p, v in files.items() if p.startswith(prefix)}
    if not chosen:
        raise FileNotFound(folder or kind)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for path, (sha256, _) in sorted(chosen.items()):
            out.writestr(path[len(prefix) :], browser(request).blob(sha256))
    name = (posixpath.basename(folder) or ("output" if kind == "artifacts" else "source")) + ".zip"
    return Response(
        buffer.getvalue(),
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
