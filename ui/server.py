"""``expstream ui``: one long-lived process serving the UI for the backend the settings select.

On the embedded default it also keeps the chdb tables caught up with the local log (:mod:`.live`),
holding them only per request and per catch-up. uvicorn turns Ctrl-C and SIGTERM into a graceful
shutdown: requests in flight finish, the catch-up thread finishes its turn, the tables close. The
UI writes nothing, so nothing can be lost.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import cast

from expstream.config import Settings
from expstream.consumers.sinks.chdb import ChdbTables
from expstream.query.browse import Browser
from expstream.query.reader import Reader
from expstream.ui.app import create_app
from expstream.ui.auth import check_bind
from expstream.ui.live import CatchUp
from expstream.ui.store import OnStoreThread, StoreThread

__all__ = ["Opened", "open_browser", "serve"]


@dataclass
class Opened:
    """What the UI reads through, the embedded catch-up (if any), and how to close it all."""

    browser: Browser
    catch_up: CatchUp | None
    close: Callable[[], None]


def open_browser(settings: Settings) -> Opened:
    from expstream import wiring

    if settings.distributed:
        reader = wiring.open_reader(settings)  # the consumer services keep the tables current
        return Opened(Browser(reader), None, reader.tables.close)
    runner = wiring.embedded_runner(settings)
    tables = runner.tables
    assert isinstance(tables, ChdbTables)
    store = StoreThread(tables)
    # no refresh per read: the catch-up thread does it, so requests only read
    browser = cast(Browser, OnStoreThread(Browser(Reader(tables, runner.objects)), store))

    def close() -> None:
        store.close()
        tables.close()

    return Opened(browser, CatchUp(runner, run=store.call), close)


def serve(settings: Settings, host: str, port: int, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` gets the URL once the socket listens (port 0: any free)."""
    import uvicorn

    token = settings.ui_token.get_secret_value() if settings.ui_token is not None else None
    check_bind(host, token)
    # Our own handlers from the start: a signal during startup stops before serving, and the signal that
    # uvicorn re-raises after its graceful shutdown lands here instead of killing the process before the
    # catch-up thread has finished its turn and the tables are closed.
    stopping = threading.Event()
    servers: list[uvicorn.Server] = []

    def on_signal(sig: int, frame: FrameType | None) -> None:
        stopping.set()
        for server in servers:
            if not server.should_exit:
                server.handle_exit(sig, frame)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    opened: Opened | None = None
    catch_up: CatchUp | None = None
    sock: socket.socket | None = None
    try:
        opened = open_browser(settings)
        catch_up = opened.catch_up
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        if catch_up is not None:
            catch_up.once()  # the first page already shows everything logged so far
            catch_up.start()
        changes = catch_up.changes if catch_up is not None else None
        app = create_app(opened.browser, token, changes)
        servers.append(uvicorn.Server(uvicorn.Config(app, log_level="warning")))
        hint = " (add ?token=<EXPSTREAM_UI_TOKEN>)" if token else ""
        announce(f"expstream UI at http://{shown}:{bound}/{hint}; Ctrl-C to stop")
        if not stopping.is_set():
            servers[0].run(sockets=[sock])
    finally:
        if catch_up is not None:
            catch_up.stop()
        if opened is not None:
            opened.close()
        if sock is not None:
            sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
