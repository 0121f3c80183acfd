"""``expstream ui``: one long-lived process serving the UI for the backend the settings select.

On the embedded default it also keeps the chdb tables caught up with the local log (:mod:`.live`),
holding them only per request and per catch-up. uvicorn turns Ctrl-C and SIGTERM into a graceful
shutdown: requests in flight finish, the catch-up thread finishes its turn, the tables close. The
UI writes nothing, so nothing can be lost.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from expstream.config import Settings
from expstream.query.browse import Browser
from expstream.query.reader import Reader
from expstream.ui.app import create_app
from expstream.ui.auth import check_bind
from expstream.ui.live import CatchUp

__all__ = ["serve"]


def _open(settings: Settings) -> tuple[Browser, CatchUp | None]:
    from expstream import wiring

    if settings.distributed:
        reader = wiring.open_reader(settings)  # the consumer services keep the tables current
        return Browser(reader), None
    runner = wiring.embedded_runner(settings)
    # no refresh per read: the catch-up thread does it, so requests hold the tables only to read
    return Browser(Reader(runner.tables, runner.objects)), CatchUp(runner)


def serve(settings: Settings, host: str, port: int, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` gets the URL once the socket listens (port 0: any free)."""
    import uvicorn

    token = settings.ui_token.get_secret_value() if settings.ui_token is not None else None
    check_bind(host, token)
    browser, catch_up = _open(settings)
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
    server = uvicorn.Server(uvicorn.Config(create_app(browser, token), log_level="warning", access_log=False))
    hint = " (add ?token=<EXPSTREAM_UI_TOKEN>)" if token else ""
    announce(f"expstream UI at http://{shown}:{bound}/{hint}; Ctrl-C to stop")
    try:
        server.run(sockets=[sock])
    finally:
        if catch_up is not None:
            catch_up.stop()
        browser.tables.close()
        sock.close()
