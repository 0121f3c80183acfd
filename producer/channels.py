"""Channel buffers: the ``log_*`` hot path validates a point and appends it, nothing more.

The background flusher (:mod:`expstream.producer.writer`) drains the buffers into columnar
batches. Appends and drains share the buffers without a lock: under the GIL an append (``list.append``,
or the C hot path's three doubles) is atomic and the drainer removes exactly the prefix it took.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from expstream.exceptions import InvalidChannelValue, NoChannelValue
from expstream.producer.hotpath import ChannelCore, Doubles

__all__ = [
    "IMAGE",
    "NUMERIC",
    "TEXT",
    "Channel",
    "check_text",
    "resolve_metric",
    "resolve_x",
    "text_bytes",
    "to_float",
    "to_timestamp",
]

log = logging.getLogger("expstream")

NUMERIC = "numeric"
TEXT = "text"
IMAGE = "image"

_NEG_INF = -math.inf


class Channel(ChannelCore):
    """One log of one experiment: its type, its reset generation and the points not yet sent.

    A numeric log buffers its points flat in :class:`~expstream.producer.hotpath.Doubles` — x, y, ts, x, y,
    ts, … — so that a point costs 24 bytes instead of a tuple and three floats, ``log_metric`` appends one
    in C, and the flusher turns a batch into columns with one ``frombuffer`` instead of walking (and later
    freeing) millions of objects. Other logs buffer one tuple per point. ``last_x``, ``next_x`` and
    ``points`` are fields of :class:`~expstream.producer.hotpath.ChannelCore`, which the hot path reads.
    """

    __slots__ = ("generation", "name", "namespace", "type", "width")

    def __init__(self, name: str, type_: str, namespace: str = "user", generation: int = 0) -> None:
        self.name = name
        self.type = type_
        self.namespace = namespace
        self.generation = generation
        self.last_x = _NEG_INF  # explicit x must be greater than this
        self.next_x = 0.0  # the first automatic x is 0, later ones last x + 1 (docs/legacy-behaviour.md#automatic-x)
        #: buffer items per point: 3 doubles for a numeric log, 1 tuple otherwise
        self.width = 3 if type_ == NUMERIC else 1
        self.points = Doubles() if type_ == NUMERIC else []

    def take(self) -> Any:
        """Remove and return the whole points appended so far (safe against concurrent appends:
        a point half-appended by the logging thread stays for the next take)."""
        points = self.points
        if type(points) is list:
            n = len(points)
            batch = points[:n]
            del points[:n]
            return batch
        return points.take(self.width)

    def clear(self) -> None:
        self.points.clear()

    def reset(self) -> None:
        self.generation += 1
        self.last_x = _NEG_INF
        self.next_x = 0.0


def to_float(value: Any, expected: str = "float") -> float:
    """``float(value)`` for numbers; strings, non-numbers and ints beyond a double (``10**400``) get
    :class:`InvalidChannelValue`."""
    if isinstance(value, (str, bytes)):
        raise InvalidChannelValue(expected, type(value).__name__)
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidChannelValue(expected, type(value).__name__) from None


def to_timestamp(value: Any) -> float:
    """A caller's Unix time: a finite number (a NaN would be stored as 1970, infinity as garbage)."""
    ts = to_float(value, "finite float (Unix time)")
    if ts - ts != 0.0:
        raise InvalidChannelValue("finite float (Unix time)", repr(ts))
    return ts


def check_text(value: str, what: str) -> str:
    """``value`` if UTF-8 can encode it. Python strings may hold lone surrogates (``os.fsdecode`` of odd
    file names gives them) that would fail later, at encoding, and take other data with them."""
    problem = utf8_problem(value)
    if problem is not None:
        raise InvalidChannelValue(f"{what} encodable as UTF-8", f"str with {problem}")
    return value


def text_bytes(value: str) -> int:
    """Length of ``value`` in UTF-8, without encoding it when it is ASCII (the common case)."""
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def utf8_problem(value: str) -> str | None:
    """Why UTF-8 cannot encode ``value`` (e.g. ``surrogates not allowed at 5``), or None; ASCII is free."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{exc.reason} at {exc.start}"
    return None


def resolve_x(x: Any, y: Any) -> tuple[Any, Any]:
    """Legacy argument forms: ``(value)`` or ``(x, value)``; returns ``(x or None, value)``."""
    if y is None:
        if x is None:
            raise NoChannelValue()
        return None, x
    if x is None:
        return None, y
    return to_float(x), y


def resolve_metric(
    channel: Channel, x: Any, y: Any, timestamp: Any, now: Callable[[], float] = time.time
) -> tuple[float, float, float] | None:
    """The slow path of ``log_metric``: every form the fast path does not take. None = dropped. ``now``: the
    stream's clock, for a point without a timestamp."""
    x, value = resolve_x(x, y)
    value = to_float(value)
    if value - value != 0.0:  # NaN or +/-inf
        log.warning("Invalid metric value %r for log %r: NaN and infinity are ignored.", value, channel.name)
        return None
    if x is None:
        x = channel.next_x
    elif x - x != 0.0:
        log.warning("Invalid x %r for log %r: NaN and infinity are ignored.", x, channel.name)
        return None
    ts = now() if timestamp is None else to_timestamp(timestamp)
    return x, value, ts
