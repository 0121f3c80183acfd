"""``expstream ui``: one long-lived process serving the UI for the backend the settings select.

It reads through the query side like any other reader: on the embedded default that is the home's warm
materializer (``consumers/warm/``), which holds chdb, tails the local log every 50 ms and answers in Arrow,
so the UI neither loads chdb nor takes turns for its folder with training scripts, notebooks and
``expstream sql``; every request first asks it to hold the log up to its end. uvicorn turns Ctrl-C and
SIGTERM into a graceful shutdown: requests in flight finish, then the connections close. The UI writes
nothing, so nothing can be lost.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from expstream.config import Settings
from expstream.query.browse import Browser
from expstream.ui.app import create_app
from expstream.ui.auth import check_bind

__all__ = ["Opened", "open_browser", "serve"]


@dataclass
class Opened:
    """What the UI reads through, and how to close it."""

    browser: Browser
    close: Callable[[], None]


def open_browser(settings: Settings) -> Opened:
    from expstream import wiring

    reader = wiring.open_reader(settings)  # the cluster's consumers or the home's warm materializer keep it current

    def close() -> None:
        reader.tables.close()
        reader.objects.close()

    return Opened(Browser(reader), close)


def serve(settings: Settings, host: str, port: int, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` gets the URL once the socket listens (port 0: any free)."""
    import uvicorn

    token = settings.ui_token.get_secret_value() if settings.ui_token is not None else None
    check_bind(host, token)
    # Our own handlers from the start: a signal during startup stops before serving, and the signal that
    # uvicorn re-raises after its graceful shutdown lands here instead of killing the process before the
    # stores are closed.
    stopping = threading.Event()
    servers: list[uvicorn.Server] = []

    def on_signal(sig: int, frame: FrameType | None) -> None:
        stopping.set()
        for server in servers:
            if not server.should_exit:
                server.handle_exit(sig, frame)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    opened: Opened | None = None
    sock: socket.socket | None = None
    try:
        opened = open_browser(settings)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        with opened.browser.reader.reading():  # the warm materializer is up and caught up before the URL shows
            pass
        app = create_app(opened.browser, token)
        servers.append(uvicorn.Server(uvicorn.Config(app, log_level="warning")))
        hint = " (add ?token=<EXPSTREAM_UI_TOKEN>)" if token else ""
        announce(f"expstream UI at http://{shown}:{bound}/{hint}; Ctrl-C to stop")
        if not stopping.is_set():
            servers[0].run(sockets=[sock])
    finally:
        if opened is not None:
            opened.close()
        if sock is not None:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
