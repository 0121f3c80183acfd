"""The access token: required when the UI listens beyond loopback, checked on every request.

A browser brings it once as ``?token=...`` (then it is kept in an HttpOnly cookie), a script as
``Authorization: Bearer ...``. Comparisons are constant-time; the token is never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from expstream.exceptions import ConfigurationError

__all__ = ["COOKIE", "TokenMiddleware", "check_bind"]

COOKIE = "expstream_ui_token"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token, saying why and what to do."""
    if not is_loopback(host) and not token:
        raise ConfigurationError(
            f"refusing to serve the UI on {host}: beyond loopback anyone who reaches the port could read every "
            "experiment; set EXPSTREAM_UI_TOKEN to a secret and open the printed URL with ?token=<that secret>, "
            "or listen on 127.0.0.1"
        )


class TokenMiddleware:
    """Answers 401 to any request without the token (query, bearer header or cookie)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()
        # the cookie carries a digest, not the token: any token is then a valid cookie value
        self.cookie_value = hmac.new(self.token, b"expstream-ui-cookie", hashlib.sha256).hexdigest().encode()

    def _matches(self, value: str | None, expected: bytes | None = None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), self.token if expected is None else expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [None])[0]
        bearer = headers.get("authorization", "")
        bearer_token = bearer[7:] if bearer.lower().startswith("bearer ") else None
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is no token
            cookie = SimpleCookie()
        from_cookie = cookie[COOKIE].value if COOKIE in cookie else None
        if self._matches(query) or self._matches(bearer_token) or self._matches(from_cookie, self.cookie_value):
            if self._matches(query):  # keep it, so that links and the page's own requests need no token

                async def send_with_cookie(message: Message) -> None:
                    if message["type"] == "http.response.start":
                        value = f"{COOKIE}={self.cookie_value.decode()}; HttpOnly; SameSite=Strict; Path=/"
                        message["headers"] = [*message.get("headers", []), (b"set-cookie", value.encode())]
                    await send(message)

                await self.app(scope, receive, send_with_cookie)
                return
            await self.app(scope, receive, send)
            return
        body = b"401: this expstream UI needs its access token (open the URL with ?token=...)\n"
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
