"""The log_metric hot path: the C extension and its Python twin decide the plain case alike, and leave every
other case to the Python methods that hold the behaviour."""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from expstream.producer import _hotpath_py, hotpath

IMPLEMENTATIONS = ["python"]
try:
    IMPLEMENTATIONS.append(importlib.import_module("expstream.producer._hotpath").__name__)
except ImportError:  # not compiled here: test_the_c_hot_path_is_built says whether that is expected
    pass


def _module(name: str) -> ModuleType:
    return _hotpath_py if name == "python" else importlib.import_module(name)


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda name: "python" if name == "python" else "c")
def impl(request: pytest.FixtureRequest) -> ModuleType:
    return _module(request.param)


def _parts(impl: ModuleType) -> tuple[type, type, type]:
    """A channel, a stream and an experiment class on ``impl``'s bases, recording what goes to Python."""

    class Channel(impl.ChannelCore):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.last_x = -math.inf
            self.next_x = 0.0
            self.points = impl.Doubles()

    class Stream(impl.StreamCore):  # type: ignore[misc,name-defined]
        def __init__(self, limit: int = 10**9, clock: Any = None) -> None:
            self.numeric = {"loss": Channel()}
            self._numeric_limit = limit
            self.pressed = 0
            self._backpressure = self._press
            self._clock = clock
            self.slow: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def _press(self) -> None:
            self.pressed += 1

        def _log_metric_slow(self, *args: Any, **kwargs: Any) -> None:
            self.slow.append((args, kwargs))

    class Experiment(impl.ExperimentCore):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.general: list[tuple[Any, ...]] = []

        def _log_metric_general(self, *args: Any) -> None:
            self.general.append(args)

    return Channel, Stream, Experiment


def test_the_plain_call_appends_x_value_and_the_wall_clock(impl: ModuleType) -> None:
    _, Stream, _ = _parts(impl)
    stream = Stream()
    before = _wall()
    stream.log_metric("loss", 0.5)
    stream.log_metric("loss", 2)  # an int is a value too
    stream.log_metric("loss", 10, 0.25)  # an explicit x
    stream.log_metric("loss", 0.125)  # the automatic x goes on after it
    after = _wall()
    ch = stream.numeric["loss"]
    rows = np.frombuffer(ch.points, dtype=np.float64).reshape(-1, 3)
    assert rows[:, :2].tolist() == [[0.0, 0.5], [1.0, 2.0], [10.0, 0.25], [11.0, 0.125]]
    assert ((rows[:, 2] >= before) & (rows[:, 2] <= after)).all()
    assert (ch.last_x, ch.next_x) == (11.0, 12.0)
    assert stream.slow == []


def _wall() -> float:
    import time

    return time.time()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("new log", 1.0), {}),  # a log that does not exist yet: Python validates and creates it
        (("loss", math.nan), {}),
        (("loss", math.inf), {}),
        (("loss", 3, -math.inf), {}),
        (("loss", True), {}),  # a bool is converted by the Python path, as the legacy client did
        (("loss", np.float64(0.5)), {}),
        (("loss", "0.5"), {}),
        (("loss", 10**400), {}),  # an int no double holds
        (("loss", 1.0, 2.0, 99.0), {}),  # an explicit timestamp
        (("loss", 1.0, 2.0), {"timestamp": 99.0}),
    ],
)
def test_every_other_call_goes_to_python_unchanged(
    impl: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    _, Stream, _ = _parts(impl)
    stream = Stream()
    stream.log_metric(*args, **kwargs)
    assert len(stream.numeric["loss"].points) == 0
    assert stream.slow == [_forwarded(impl, args, kwargs)]


def _forwarded(
    impl: ModuleType, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """What reaches ``_log_metric_slow``: C passes the call on as it came, the Python twin by position."""
    if impl is not _hotpath_py:
        return args, kwargs
    bound = inspect.signature(_hotpath_py.StreamCore.log_metric).bind(None, *args, **kwargs)
    bound.apply_defaults()
    return tuple(bound.arguments.values())[1:], {}


def test_an_x_that_does_not_increase_is_left_to_python(impl: ModuleType) -> None:
    _, Stream, _ = _parts(impl)
    stream = Stream()
    stream.log_metric("loss", 5, 1.0)
    stream.log_metric("loss", 5, 2.0)  # equal: dropped with a warning, by Python
    stream.log_metric("loss", 4.5, 2.0)
    assert len(stream.numeric["loss"].points) == 3
    assert stream.slow == [_forwarded(impl, ("loss", 5, 2.0), {}), _forwarded(impl, ("loss", 4.5, 2.0), {})]


def test_a_full_buffer_calls_backpressure_and_a_shifted_clock_stamps_the_points(impl: ModuleType) -> None:
    _, Stream, _ = _parts(impl)
    stream = Stream(limit=6, clock=lambda: 1234.5)
    stream.log_metric("loss", 1.0)
    assert stream.pressed == 0
    stream.log_metric("loss", 2.0)  # 6 doubles held
    stream.log_metric("loss", 3.0)
    assert stream.pressed == 2
    assert stream.numeric["loss"].points.tolist()[2::3] == [1234.5, 1234.5, 1234.5]


def test_an_experiment_logs_to_its_open_stream_else_through_python(impl: ModuleType) -> None:
    _, Stream, Experiment = _parts(impl)
    exp = Experiment()
    exp.log_metric("loss", 0.5)
    assert exp.general == [_forwarded(impl, ("loss", 0.5), {})[0]]
    exp._stream = Stream()
    exp.log_metric("loss", 0.5)
    exp.log_metric("loss", 7, 0.25)
    assert exp._stream.numeric["loss"].points.tolist()[0::3] == [0.0, 7.0]
    exp._stream = None
    exp.log_metric("loss", 1.0)
    assert len(exp.general) == 2


def test_the_module_function_follows_the_current_project_and_experiment(impl: ModuleType) -> None:
    _, Stream, Experiment = _parts(impl)

    class Project(impl.ProjectCore):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self._stack = []

    calls: list[tuple[Any, ...]] = []

    def fallback(*args: Any, **kwargs: Any) -> None:
        calls.append(args)

    namespace: dict[str, Any] = {"__name__": "expstream", "project": None}
    log_metric = impl.module_log_metric(namespace, fallback)
    log_metric("loss", 1.0)  # no project
    project = namespace["project"] = Project()
    log_metric("loss", 2.0)  # no experiment
    first, second = Experiment(), Experiment()
    first._stream, second._stream = Stream(), Stream()
    project._stack.extend([first, second])
    log_metric("loss", 3.0)  # the last one created
    project._stack.pop()
    log_metric("loss", 4.0)
    first._stream = None  # stopped: Python decides (it raises or opens the stream)
    log_metric("loss", 5.0)
    assert [args[1] for args in calls] == [1.0, 2.0, 5.0]
    assert second._stream.numeric["loss"].points.tolist()[1::3] == [3.0]
    assert first._stream is None
    assert list(inspect.signature(log_metric).parameters) == ["log_name", "x", "y", "timestamp"]


def test_take_hands_over_whole_points_and_keeps_a_partial_one(impl: ModuleType) -> None:
    points = impl.Doubles()
    for value in range(7):
        points.append(float(value))
    taken = points.take(3)
    assert list(taken) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and points.tolist() == [6.0]
    assert np.frombuffer(taken, dtype=np.float64).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    points.clear()
    assert len(points) == 0


def test_a_viewed_buffer_does_not_change(impl: ModuleType) -> None:
    """As with ``array.array``: a view's doubles never move or change under it."""
    points = impl.Doubles()
    for value in range(6):
        points.append(float(value))
    view = np.frombuffer(points, dtype=np.float64)
    for change in (lambda: points.append(1.0), lambda: points.take(3), points.clear):
        with pytest.raises(BufferError):
            change()
    assert view.tolist() == points.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    del view
    assert len(points.take(3)) == 6


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler: the optional extension is not built here")
def test_the_c_hot_path_is_built() -> None:
    """A compiler was there at install, so the extension must be: a silent fallback would only show as a slow
    benchmark."""
    if os.environ.get("EXPSTREAM_HOTPATH", "").lower() == "python":
        pytest.skip("EXPSTREAM_HOTPATH=python")
    assert hotpath.IMPLEMENTATION == "c"


_BATTERY = textwrap.dedent(
    """
    import json, logging, math, sys
    import numpy as np
    from expstream.producer import hotpath, stream as stream_module
    stream_module._time = lambda: 1000.0  # one clock for both implementations
    warnings = []
    class Catch(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())
    logging.getLogger("expstream").addHandler(Catch())
    s = stream_module.ExperimentStream("e", stream_module.Origin("h", 1), batch_points=1000, buffer_points=10**6,
                                       backpressure=lambda: None)
    errors = []
    calls = [("loss", 0.5), ("loss", 2), ("loss", 10, 1.5), ("loss", 10, 2.5), ("loss", 9, 1.0), ("loss", math.nan),
             ("loss", True), ("loss", np.float64(0.25)), ("loss", 0.5, None), ("loss", 20, 1.0, 1500.0),
             ("loss", 10**400), ("loss", "x"), ("loss", None), ("acc", math.inf), ("acc", 1.0), ("", 1.0), (3, 1.0),
             ("loss", -math.inf, 1.0), ("loss", 30.0, 1.0)]
    for call in calls:
        try:
            s.log_metric(*call)
        except Exception as exc:
            errors.append(type(exc).__name__)
    s.log_metric(log_name="kw", x=1.0)
    s.log_metric("kw", x=5.0, y=2.0, timestamp=7.0)
    out = {name: ch.points.tolist() for name, ch in s.numeric.items()}
    print(json.dumps({"impl": hotpath.IMPLEMENTATION, "points": out, "errors": errors, "warnings": warnings}))
    """
)


def test_both_implementations_record_warn_and_refuse_alike() -> None:
    """The whole stream (hot path and slow path) over the same calls, once per implementation."""
    results = {}
    for choice in ("python", "c"):
        env = dict(os.environ, EXPSTREAM_HOTPATH=choice)
        out = subprocess.run([sys.executable, "-c", _BATTERY], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        results[choice] = json.loads(out.stdout)
    assert results["python"]["impl"] == "python"
    if len(IMPLEMENTATIONS) == 1:
        pytest.skip("the C extension is not built here")
    assert results["c"]["impl"] == "c"
    python, c = results["python"], results["c"]
    assert c["points"] == python["points"] and c["errors"] == python["errors"] and c["warnings"] == python["warnings"]
    assert python["points"]["loss"][:12] == [0.0, 0.5, 1000.0, 1.0, 2.0, 1000.0, 10.0, 1.5, 1000.0, 11.0, 1.0, 1000.0]
    assert len(python["errors"]) >= 3 and len(python["warnings"]) >= 3
