"""One experiment's outgoing stream: channel buffers, pending events, and their encoding.

``log_metric`` / ``log_text`` append to a :class:`~expstream.producer.channels.Channel`; every other
change becomes a pending event. :meth:`ExperimentStream.drain`, called by the writer's flusher
thread, turns both into Avro messages in the order they happened.
"""

from __future__ import annotations

import logging
import threading
import time
import types
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from expstream import schemas
from expstream.eventlog.records import EVENTS
from expstream.exceptions import EventTooLarge, InvalidChannelValue
from expstream.producer.channels import (
    IMAGE,
    NUMERIC,
    TEXT,
    Channel,
    check_text,
    resolve_metric,
    resolve_x,
    text_bytes,
    to_float,
    to_timestamp,
)
from expstream.producer.hotpath import StreamCore

__all__ = ["CLOCK_STEP", "ENVELOPE_BYTES", "ExperimentStream", "Origin"]

log = logging.getLogger("expstream")
_time = time.time
_KIND_OF_TYPE = {NUMERIC: "NumericPoints", TEXT: "TextPoints", IMAGE: "ImagePoints"}
_SERIES_OF_TYPE = {NUMERIC: "NumericSeries", TEXT: "TextSeries", IMAGE: "ImageSeries"}
#: room an event needs around its points: header (ids, host), channel fields, Avro framing
ENVELOPE_BYTES = 4096
#: encoded bytes of one point besides its strings: x and ts doubles, lengths, an image's hash and size
_POINT_BYTES = 96
_TRUNCATED = " [... truncated by expstream: the line was longer than one event may be]"


def _points_clock() -> Callable[[], float] | None:
    """None when ``_time`` is the interpreter's own ``time.time``: the hot path then reads the wall clock in C.
    Otherwise ``_time`` itself, a clock a test shifted (before expstream was imported, or by patching this
    module's ``_time`` before the stream opened), which points then follow as event headers do."""
    if isinstance(_time, types.BuiltinFunctionType) and _time.__self__ is time and _time.__name__ == "time":
        return None
    return _time


#: the least step of the event clock: one microsecond, several float64 ulps at today's Unix time
CLOCK_STEP = 1e-6


class Origin:
    """The producing process: session id, host, pid, the session's sequence numbers and its event clock.

    The event clock (the ``ts`` of every header) is a hybrid logical clock: the wall clock, but
    never less than :data:`CLOCK_STEP` past the previous event of this process nor past what
    :meth:`observe` was shown. A backward step of the wall clock therefore never makes a later
    event order before an earlier one; the clock runs on from where it was, one step per event,
    until the wall clock passes it again. Current values (tags, properties, artifacts, state) are
    chosen by the greatest ``(ts, session_id, seq)`` (docs/architecture.md#order-of-changes).
    """

    def __init__(self, host: str, pid: int) -> None:
        self.session_id = uuid.uuid4().hex
        self.host = host
        self.pid = pid
        self._seq = 0
        self._clock = 0.0
        self._lock = threading.Lock()

    def observe(self, ts: float) -> None:
        """Every later event of this process orders after ``ts`` (an event it has seen, e.g. read)."""
        with self._lock:
            self._clock = max(self._clock, float(ts))

    def header(self, experiment_id: str, ts: float | None = None) -> dict[str, Any]:
        with self._lock:
            self._seq += 1
            seq = self._seq
            if ts is None:
                ts = self._clock = max(_time(), self._clock + CLOCK_STEP)
        return {
            "event_id": uuid.uuid4().hex,
            "experiment_id": experiment_id,
            "session_id": self.session_id,
            "seq": seq,
            "ts": ts,
            "host": self.host,
            "pid": self.pid,
        }


class ExperimentStream(StreamCore):
    """Buffers of one experiment, written by user threads, drained by the flusher.

    ``log_metric`` of a log that exists is :class:`~expstream.producer.hotpath.StreamCore`'s, in C where it
    was compiled; it calls :meth:`_log_metric_slow` for every call that is not the plain case."""

    def __init__(
        self,
        experiment_id: str,
        origin: Origin,
        *,
        batch_points: int,
        buffer_points: int,
        backpressure: Callable[[], None],
        max_event_bytes: int = 4 << 20,
    ) -> None:
        """``max_event_bytes``: no event of this stream is larger (``EXPSTREAM_MAX_EVENT_BYTES``); a
        call that would need a larger one is refused, batches of points are cut to fit."""
        self.experiment_id = experiment_id
        self.origin = origin
        self.batch_points = batch_points
        self.buffer_points = buffer_points
        self._numeric_limit = 3 * buffer_points  # doubles in a numeric buffer: 3 per point
        self._backpressure = backpressure
        self._clock = _points_clock()
        self.numeric = {}
        self.text: dict[str, Channel] = {}
        self.image: dict[str, Channel] = {}
        self.system: dict[tuple[str, str], Channel] = {}
        self._channels: list[Channel] = []
        self.max_event_bytes = max_event_bytes
        self._pending: deque[tuple[str, bytes]] = deque()
        self._drain_lock = threading.Lock()
        self._warned: set[tuple[str, str]] = set()
        #: takes no more points (finished experiment); tag, property and artifact events still go out
        self.closed = False
        #: takes nothing at all (a forked child's inherited copy)
        self.abandoned = False
        #: send heartbeats while running (legacy ``run_monitoring_thread``)
        self.heartbeats = True

    # --- channels -------------------------------------------------------------------------

    def channel(self, name: Any, type_: str) -> Channel | None:
        """The user channel ``name`` of ``type_``, created on first use; None when it takes no points."""
        by_type = self._by_type(type_)
        ch = by_type.get(name)
        if ch is not None:
            return ch
        if not self.accepts(name, type_):
            return None
        ch = Channel(name, type_)
        with self._drain_lock:
            self._channels.append(ch)
        by_type[name] = ch
        return ch

    def accepts(self, name: Any, type_: str) -> bool:
        """Whether a point of ``type_`` may go to log ``name``, without creating the log.

        ``log_*`` validate the value between this check and :meth:`channel`, so a call that raises
        leaves no log behind and does not fix the log's type: the first recorded point does
        (docs/legacy-behaviour.md#log-types).
        """
        if name in self._by_type(type_):
            return True
        if not isinstance(name, str) or not name:
            raise TypeError(f"log name must be a non-empty str, got {name!r}")
        check_text(name, "log name")
        self.check_fits("log name", text_bytes(name))
        if self.closed:
            self._warn_once(("closed", name), "Experiment is finished: log %r is not recorded.", name)
            return False
        for other in (NUMERIC, TEXT, IMAGE):
            if other != type_ and name in self._by_type(other):
                # a type clash is a logged error, never an exception (docs/legacy-behaviour.md#log-types)
                self._warn_once(
                    ("type", name),
                    "Log %r holds %s values: %s values are not recorded.",
                    name,
                    other,
                    type_,
                    level=logging.ERROR,
                )
                return False
        return True

    def system_channel(self, name: str, type_: str) -> Channel:
        key = (name, type_)
        ch = self.system.get(key)
        if ch is None:
            ch = Channel(name, type_, namespace="system")
            with self._drain_lock:
                self._channels.append(ch)
            self.system[key] = ch
        return ch

    def _by_type(self, type_: str) -> dict[str, Channel]:
        return self.numeric if type_ == NUMERIC else self.text if type_ == TEXT else self.image

    def find(self, name: str) -> Channel | None:
        return self.numeric.get(name) or self.text.get(name) or self.image.get(name)

    def _warn_once(self, key: tuple[str, str], message: str, *args: Any, level: int = logging.WARNING) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.log(level, message, *args)

    # --- the hot path ---------------------------------------------------------------------

    def _log_metric_slow(self, log_name: Any, x: Any, y: Any = None, timestamp: Any = None) -> None:
        """Every ``log_metric`` the hot path does not take: a new log, keyword arguments, values to convert,
        warn about or refuse, an x that does not increase."""
        ch = self.numeric.get(log_name)
        if ch is None:
            if not self.accepts(log_name, NUMERIC):
                return
            _, value = resolve_x(x, y)  # the first call validates before the log exists
            to_float(value)
            if timestamp is not None:
                to_timestamp(timestamp)
            ch = self.channel(log_name, NUMERIC)
            if ch is None:
                return
        resolved = resolve_metric(ch, x, y, timestamp, self._now)
        if resolved is None:
            return
        px, value, ts = resolved
        if px <= ch.last_x:
            self._not_increasing(ch, px)
            return
        ch.last_x = px
        ch.next_x = px + 1.0
        points = ch.points  # x, y, ts flat in a Doubles buffer
        points.append(px)
        points.append(value)
        points.append(ts)
        if len(points) >= self._numeric_limit:
            self._backpressure()

    def _now(self) -> float:
        """The time of a point logged without one: the wall clock, or the clock a test shifted."""
        clock = self._clock
        return _time() if clock is None else clock()

    def log_text(self, log_name: Any, x: Any, y: Any = None, timestamp: Any = None) -> None:
        ch = self.text.get(log_name)
        if ch is None and not self.accepts(log_name, TEXT):
            return
        px, value = resolve_x(x, y)
        if type(value) is not str:
            raise InvalidChannelValue("str", type(value).__name__)
        check_text(value, "text")
        if len(value) > self._room // 4:  # only long values can be too large: measure those
            self.check_fits(f"text point of log {log_name!r}", text_bytes(value) + text_bytes(log_name))
        ts = self._now() if timestamp is None else to_timestamp(timestamp)
        if ch is None:
            ch = self.channel(log_name, TEXT)
            if ch is None:
                return
        self.append_text(ch, px, value, ts)

    def append_text(self, ch: Channel, px: float | None, value: str, ts: float) -> None:
        """Append a validated text point; NaN/inf or missing x is auto-assigned (legacy)."""
        if px is None or px - px != 0.0:
            px = ch.next_x
        elif px <= ch.last_x:
            self._not_increasing(ch, px)
            return
        ch.last_x = px
        ch.next_x = px + 1.0
        ch.points.append((px, value, ts))
        if len(ch.points) >= self.buffer_points:
            self._backpressure()

    def append_image(
        self,
        ch: Channel,
        px: float | None,
        ts: float,
        name: str | None,
        description: str | None,
        sha256: str,
        size: int,
    ) -> None:
        if px is None or px - px != 0.0:
            px = ch.next_x
        elif px <= ch.last_x:
            self._not_increasing(ch, px)
            return
        ch.last_x = px
        ch.next_x = px + 1.0
        ch.points.append((px, ts, name, description, sha256, size))

    def append_system(self, name: str, type_: str, x: float, value: Any, ts: float) -> None:
        """A point of a system log (monitoring, stdout, logger); a stale x is silently skipped."""
        if self.closed:
            return
        ch = self.system_channel(name, type_)
        if x <= ch.last_x:
            return
        if type(value) is str and len(value) > self._room // 4 and text_bytes(value) > self._room // 2:
            value = self._truncate(name, value)
        ch.last_x = x
        ch.next_x = x + 1.0
        points = ch.points
        if ch.width == 3:
            points.append(x)
            points.append(value)
            points.append(ts)
        else:
            points.append((x, value, ts))
        if len(points) >= self.buffer_points * ch.width:
            self._backpressure()

    def _not_increasing(self, ch: Channel, x: float) -> None:
        self._warn_once(
            ("x", ch.name),
            "Log %r: x=%r is not greater than the previous x=%r; the point is dropped "
            "(x must be strictly increasing; further drops in this log are not reported).",
            ch.name,
            x,
            ch.last_x,
        )

    @property
    def _room(self) -> int:
        """Bytes the strings of one point may take: an event less its envelope."""
        return self.max_event_bytes - ENVELOPE_BYTES

    def check_fits(self, what: str, size: int) -> None:
        if size > self._room:
            raise EventTooLarge(
                f"{what} takes {size} bytes, more than one event may carry ({self._room} bytes: "
                f"EXPSTREAM_MAX_EVENT_BYTES={self.max_event_bytes} less {ENVELOPE_BYTES} of envelope); "
                "nothing of this call was recorded (log large content as an artifact)"
            )

    def _truncate(self, name: str, value: str) -> str:
        """A captured line (stdout, stderr, a logger) too large for an event keeps its head."""
        self._warn_once(("truncated", name), "Lines of %r longer than %d bytes are truncated.", name, self._room // 2)
        head = value.encode("utf-8", "replace")[: self._room // 2].decode("utf-8", "ignore")
        return head + _TRUNCATED

    # --- other events ---------------------------------------------------------------------

    def add_event(self, kind: str, fields: dict[str, Any], topic: str = EVENTS) -> None:
        """Queue a non-point event; its header (and place in the order) is fixed now.

        It is encoded now too, so that a value Avro cannot take or an event larger than
        ``max_event_bytes`` is an error of this call instead of a failure of the flusher."""
        if self.abandoned:
            return
        message = self.encode_now(kind, fields)
        self._pending.append((topic, message))

    def encode_now(self, kind: str, fields: dict[str, Any]) -> bytes:
        """Encode an event immediately (blob chunks go straight to the transport)."""
        record = dict(fields)
        record["header"] = self.origin.header(self.experiment_id)
        message = schemas.encode(kind, record)
        if len(message) > self.max_event_bytes:
            raise EventTooLarge(
                f"this {kind} event would take {len(message)} bytes, more than EXPSTREAM_MAX_EVENT_BYTES="
                f"{self.max_event_bytes}; nothing of this call was recorded"
            )
        return message

    def reset(self, ch: Channel) -> None:
        """Points logged before the reset are sent first, then the reset; later points start afresh."""
        with self._drain_lock:
            self._pending.extend(self._point_messages(ch))
            ch.reset()
            self.add_event(
                "ChannelReset",
                {"channel": ch.name, "namespace": ch.namespace, "type": ch.type, "generation": ch.generation},
            )

    def abandon(self) -> None:
        """Drop everything buffered and take nothing more (the copy a forked child inherited)."""
        self.abandoned = True
        self.close()
        self._drain_lock = threading.Lock()
        self._pending.clear()
        for ch in self._channels:
            ch.clear()

    def close(self) -> None:
        """Take no more points: later log_* calls warn once per log name."""
        self.closed = True
        self.numeric = {}
        self.text = {}
        self.image = {}

    # --- the flusher side -----------------------------------------------------------------

    def drain(self) -> list[tuple[str, list[bytes]]]:
        """Encode everything buffered, in order: ``[(topic, messages)]`` for this experiment's key."""
        with self._drain_lock:
            out: dict[str, list[bytes]] = {}
            while self._pending:
                topic, message = self._pending.popleft()
                out.setdefault(topic, []).append(message)
            events = out.setdefault(EVENTS, [])
            for ch in self._channels:
                if ch.points:
                    events.extend(message for _, message in self._point_messages(ch))
            return [(topic, messages) for topic, messages in out.items() if messages]

    def has_data(self) -> bool:
        return bool(self._pending) or any(ch.points for ch in self._channels)

    def _point_messages(self, ch: Channel) -> Iterable[tuple[str, bytes]]:
        points = ch.take()
        if ch.width == 3:  # the flat doubles as rows of (x, y, ts)
            import numpy as np  # on the flusher's first drain, not in the script's `import expstream`

            points = np.frombuffer(points, dtype=np.float64).reshape(-1, 3)
        kind = _KIND_OF_TYPE[ch.type]
        for chunk in self._batches(ch, points):
            series: dict[str, Any] = {"channel": ch.name, "namespace": ch.namespace, "generation": ch.generation}
            if ch.type == IMAGE:
                xs, ts, names, descriptions, sha256s, sizes = zip(*chunk, strict=True)
                series.update(
                    xs=list(xs),
                    ts=list(ts),
                    names=list(names),
                    descriptions=list(descriptions),
                    sha256s=list(sha256s),
                    sizes=list(sizes),
                )
            elif ch.type == NUMERIC:  # rows of (x, y, ts) doubles: three column views, no copy
                series.update(xs=chunk[:, 0], ys=chunk[:, 1], ts=chunk[:, 2])
            else:
                xs, ys, ts = zip(*chunk, strict=True)
                series.update(xs=list(xs), ys=list(ys), ts=list(ts))
            record = {"header": self.origin.header(self.experiment_id), "series": [series]}
            yield EVENTS, schemas.encode(kind, record)

    def _batches(self, ch: Channel, points: Any) -> Iterable[Any]:
        """``points`` cut into batches of at most ``batch_points`` whose event fits ``max_event_bytes``."""
        room = self._room - text_bytes(ch.name)
        if ch.type == NUMERIC:
            step = max(1, min(self.batch_points, room // _POINT_BYTES))
            for start in range(0, len(points), step):
                yield points[start : start + step]
            return
        start = size = 0
        for i, point in enumerate(points):
            strings = (point[1],) if ch.type == TEXT else (point[2], point[3])
            cost = _POINT_BYTES + sum(text_bytes(s) for s in strings if s)
            if i > start and (i - start >= self.batch_points or size + cost > room):
                yield points[start:i]
                start, size = i, 0
            size += cost
        if start < len(points):
            yield points[start:]
