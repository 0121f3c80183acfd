"""Bad input to every entry point: the legacy exception (or the documented drop), and nothing recorded."""

from __future__ import annotations

import io
import logging
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import expstream as neptune
from expstream.api_exceptions import ChannelDoesNotExist, ExperimentValidationError
from expstream.exceptions import (
    ArtifactPathError,
    FileNotFound,
    InvalidChannelValue,
    NeptuneException,
    NoChannelValue,
    NotADirectory,
    NotAFile,
)
from expstream.experiments import Experiment
from expstream.projects import Project

Sync = Callable[..., None]


# --- log_metric / log_text / log_image ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected", "actual"),
    [
        (("abc",), "float", "str"),
        (("0.5",), "float", "str"),  # numeric strings too (docs/legacy-behaviour.md#logged-values)
        ((b"1",), "float", "bytes"),
        ((1, "0.5"), "float", "str"),
        (("abc", 0.5), "float", "str"),  # a non-numeric x with a value
        ((object(),), "float", "object"),
        (([1.0],), "float", "list"),
        (({"a": 1},), "float", "dict"),
        ((1j,), "float", "complex"),
    ],
)
def test_log_metric_invalid_values(exp: Experiment, args: tuple[Any, ...], expected: str, actual: str) -> None:
    with pytest.raises(InvalidChannelValue) as info:
        exp.log_metric("m", *args)
    assert expected in str(info.value) and actual in str(info.value)


@pytest.mark.parametrize("method", ["log_metric", "send_metric", "log_text", "send_text", "log_image", "send_image"])
def test_no_value_at_all(exp: Experiment, method: str) -> None:
    with pytest.raises(NoChannelValue):
        getattr(exp, method)("m", None)
    with pytest.raises(NoChannelValue):
        getattr(exp, method)("m", None, None)
    with pytest.raises(NoChannelValue):
        getattr(neptune, method)("m", None)


@pytest.mark.parametrize("method", ["log_metric", "send_metric", "log_text", "send_text", "log_image", "send_image"])
def test_x_is_a_required_positional_argument(exp: Experiment, method: str) -> None:
    with pytest.raises(TypeError):
        getattr(exp, method)("m", y=0.5)
    with pytest.raises(TypeError):
        getattr(neptune, method)("m", y=0.5)


@pytest.mark.parametrize("value", [1, 0.5, b"bytes", ["a"], None])
def test_log_text_takes_only_str(exp: Experiment, value: Any) -> None:
    with pytest.raises(InvalidChannelValue) as info:
        exp.log_text("t", 0, value if value is not None else 1.5)
    assert "str" in str(info.value)
    if value is not None:
        with pytest.raises(InvalidChannelValue):
            exp.log_text("t", value)


def test_log_text_with_a_non_numeric_x(exp: Experiment) -> None:
    with pytest.raises(InvalidChannelValue):
        exp.log_text("t", "not-an-x", "value")


def test_invalid_timestamp(exp: Experiment) -> None:
    with pytest.raises(InvalidChannelValue):
        exp.log_metric("m", 1.0, timestamp="yesterday")
    with pytest.raises(InvalidChannelValue):
        exp.log_text("t", "x", timestamp="yesterday")
    with pytest.raises(InvalidChannelValue):
        exp.log_image("i", Image.new("L", (2, 2)), timestamp="yesterday")


@pytest.mark.parametrize("name", [None, 1, "", b"bytes"])
def test_log_name_must_be_a_non_empty_str(exp: Experiment, name: Any) -> None:
    for call in (
        lambda: exp.log_metric(name, 1.0),
        lambda: exp.log_text(name, "x"),
        lambda: exp.log_image(name, Image.new("L", (2, 2))),
    ):
        with pytest.raises(TypeError):
            call()


def test_log_image_invalid_values(exp: Experiment, tmp_path: Path) -> None:
    with pytest.raises(FileNotFound):
        exp.log_image("i", str(tmp_path / "missing.png"))
    with pytest.raises(NotAFile):
        exp.log_image("i", str(tmp_path))
    with pytest.raises(InvalidChannelValue) as info:
        exp.log_image("i", 12345)
    assert "image" in str(info.value) and "int" in str(info.value)
    with pytest.raises(InvalidChannelValue):
        exp.log_image("i", b"\x89PNG raw bytes")
    for shape in [(4,), (2, 2, 2), (2, 2, 5), (2, 2, 3, 1)]:
        with pytest.raises(ValueError):
            exp.log_image("i", np.zeros(shape))
    with pytest.raises(ValueError):
        exp.log_image("i", np.zeros((0, 3)))
    with pytest.raises(TypeError):
        exp.log_image("i", Image.new("L", (2, 2)), image_name=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        exp.log_image("i", Image.new("L", (2, 2)), description=["d"])  # type: ignore[arg-type]


def test_rejected_calls_record_nothing(exp: Experiment, sync: Sync, tmp_path: Path) -> None:
    bad_calls: list[Callable[[], Any]] = [
        lambda: exp.log_metric("m", "abc"),
        lambda: exp.log_metric("m", None),
        lambda: exp.log_text("t", 5),
        lambda: exp.log_image("i", 12345),
        lambda: exp.log_image("i", str(tmp_path / "missing.png")),
        lambda: exp.append_tag("bad\ttag"),
        lambda: exp.log_artifact(str(tmp_path / "missing.bin")),
        lambda: exp.log_artifact(io.BytesIO(b"x"), "../escape"),
    ]
    for call in bad_calls:
        with pytest.raises((NeptuneException, ValueError, TypeError)):
            call()
    sync(exp)
    assert exp.get_logs() == {}
    assert exp.get_tags() == []
    exp.download_artifacts(destination_dir=str(tmp_path / "dl"))
    with zipfile.ZipFile(tmp_path / "dl" / "output.zip") as archive:
        assert archive.namelist() == []


def test_a_rejected_first_call_does_not_fix_the_log_type(
    exp: Experiment, sync: Sync, caplog: pytest.LogCaptureFixture
) -> None:
    """The type of a log is fixed by its first *recorded* point, not by a call that raised.

    docs/legacy-behaviour.md#log-types
    """
    with pytest.raises(InvalidChannelValue):
        exp.log_metric("a", "not a number")
    with pytest.raises(InvalidChannelValue):
        exp.log_text("b", 42)
    with pytest.raises(InvalidChannelValue):
        exp.log_image("c", 42)
    with caplog.at_level(logging.WARNING, logger="expstream"):
        exp.log_text("a", "text after all")
        exp.log_metric("b", 1.0)
        exp.log_metric("c", 2.0)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    sync(exp)
    assert {name: log.channelType for name, log in exp.get_logs().items()} == {
        "a": "text",
        "b": "numeric",
        "c": "numeric",
    }


# --- tags and properties --------------------------------------------------------------------------


INVALID_TAGS = ["", "x" * 129, "tab\t", "new\nline", "del\x7f", "lone\udcff", 5, None, ("a", "b")]


@pytest.mark.parametrize("tag", INVALID_TAGS)
def test_invalid_tags(project: Project, exp: Experiment, sync: Sync, tag: Any) -> None:
    """An invalid tag is named in the error; the valid tags of the same call are still added."""
    with pytest.raises(ExperimentValidationError) as info:
        exp.append_tag(tag)
    assert repr(tag) in str(info.value)
    with pytest.raises(ExperimentValidationError) as info:
        exp.append_tag("fine", tag)
    assert repr(tag) in str(info.value) and "'fine'" not in str(info.value)
    with pytest.raises(ExperimentValidationError):
        exp.append_tags([tag, "fine_too"])
    with pytest.raises(ExperimentValidationError):
        project.create_experiment(tags=["fine", tag], upload_source_files=[])
    assert neptune.get_experiment() is exp  # no experiment was created
    sync(exp)
    assert exp.get_tags() == ["fine", "fine_too"]


def test_several_invalid_tags_are_all_named(exp: Experiment, sync: Sync) -> None:
    with pytest.raises(ExperimentValidationError) as info:
        exp.append_tag(["", "ok", "x" * 129, 7])
    assert all(repr(bad) in str(info.value) for bad in ("", "x" * 129, 7))
    sync(exp)
    assert exp.get_tags() == ["ok"]


LEGACY_TAGS = ["no_preprocessing", "finished_successfully", "initial tag 1", "dot.ted", "ünï", "slash/tag", "x" * 128]


def test_tags_as_legacy_accepted_them(project: Project, exp: Experiment, sync: Sync) -> None:
    """Tags used by Neptune's own example scripts round-trip exactly."""
    exp.append_tag(LEGACY_TAGS[:4])
    exp.append_tag(*LEGACY_TAGS[4:])
    other = project.create_experiment(tags=["initial tag 1", "A-z-0-9"], upload_source_files=[])
    sync(exp)
    sync(other)
    assert exp.get_tags() == sorted(LEGACY_TAGS)
    assert other.get_tags() == ["A-z-0-9", "initial tag 1"]
    assert [e.id for e in project.get_experiments(tag="initial tag 1")] == [exp.id, other.id]


def test_removing_a_tag_that_cannot_exist(exp: Experiment) -> None:
    with pytest.raises(ExperimentValidationError):
        exp.remove_tag("lone\udcff")


def test_remove_tag_needs_a_str(exp: Experiment) -> None:
    with pytest.raises(TypeError):
        exp.remove_tag(["a"])  # type: ignore[arg-type]


def test_property_errors(exp: Experiment) -> None:
    with pytest.raises(KeyError):
        exp.remove_property("missing")
    with pytest.raises(TypeError):
        exp.set_property(5, "v")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        exp.set_property("", "v")


# --- reading --------------------------------------------------------------------------------------


def test_reset_log_of_an_unknown_log(exp: Experiment, sync: Sync) -> None:
    with pytest.raises(ChannelDoesNotExist):
        exp.reset_log("nothing")
    exp.log_metric("m", 1.0)
    sync(exp)
    with pytest.raises(ChannelDoesNotExist):
        exp.reset_log("M")  # names are case-sensitive


def test_get_numeric_channels_values_errors(exp: Experiment, sync: Sync) -> None:
    exp.log_metric("m", 1.0)
    exp.log_text("t", "x")
    exp.log_image("i", Image.new("L", (2, 2)))
    sync(exp)
    with pytest.raises(ValueError):
        exp.get_numeric_channels_values()
    with pytest.raises(KeyError):
        exp.get_numeric_channels_values("missing")
    with pytest.raises(NeptuneException):
        exp.get_numeric_channels_values("t")
    with pytest.raises(NeptuneException):
        exp.get_numeric_channels_values("m", "i")


def test_download_errors(exp: Experiment, sync: Sync, tmp_path: Path) -> None:
    exp.log_artifact(io.BytesIO(b"x"), "dir/file.bin")
    sync(exp)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    with pytest.raises(NotADirectory):
        exp.download_artifact("dir/file.bin", str(blocker))
    with pytest.raises(NotADirectory):
        exp.download_artifacts(destination_dir=str(blocker))
    with pytest.raises(NotADirectory):
        exp.download_sources(destination_dir=str(blocker))
    with pytest.raises(NotADirectory):
        exp.download_artifact("dir/file.bin", str(blocker / "below"))
    with pytest.raises(FileNotFound):
        exp.download_artifact("dir/missing.bin", str(tmp_path / "out"))
    with pytest.raises(FileNotFound):
        exp.download_artifact("dir", str(tmp_path / "out"))  # a directory is not a file
    with pytest.raises(FileNotFound):
        exp.download_artifacts("elsewhere", str(tmp_path / "out"))
    with pytest.raises(FileNotFound):
        exp.download_sources("anything.py", str(tmp_path / "out"))
    assert blocker.read_text() == "a file, not a directory"


# --- artifacts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("destination", ["../x", "a/../../x", "/abs/x", "C:/x", "", ".", "nul\0byte"])
def test_log_artifact_destinations_outside_the_root(exp: Experiment, tmp_path: Path, destination: str) -> None:
    source = tmp_path / "f.txt"
    source.write_text("f")
    with pytest.raises(ArtifactPathError) as info:
        exp.log_artifact(str(source), destination)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ArtifactPathError):
        exp.log_artifact(io.StringIO("s"), destination)


@pytest.mark.parametrize("artifact", [None, 42, 1.5, ["a.txt"], object()])
def test_log_artifact_of_something_that_is_neither_path_nor_stream(exp: Experiment, artifact: Any) -> None:
    with pytest.raises(ValueError):
        exp.log_artifact(artifact)


@pytest.mark.parametrize("path", ["..", "../x", "a/../..", "", ".", "/", "./", None, 5, ["ok", None]])
def test_delete_artifacts_invalid_paths(exp: Experiment, path: Any) -> None:
    with pytest.raises(ValueError):
        exp.delete_artifacts(path)


def test_delete_artifacts_missing_path(exp: Experiment) -> None:
    with pytest.raises(FileNotFound):
        exp.delete_artifacts("missing")
    with pytest.raises(FileNotFound):
        exp.delete_artifacts(["missing"])


# --- create_experiment ----------------------------------------------------------------------------


@pytest.mark.parametrize("argument", ["name", "description", "hostname"])
@pytest.mark.parametrize("value", [1, 2.5, b"b", ["x"], True])
def test_create_experiment_str_arguments(project: Project, argument: str, value: Any) -> None:
    with pytest.raises(ValueError):
        project.create_experiment(upload_source_files=[], **{argument: value})
    with pytest.raises(ValueError):
        neptune.create_experiment(upload_source_files=[], **{argument: value})


@pytest.mark.parametrize("argument", ["params", "properties"])
@pytest.mark.parametrize("value", [[("a", 1)], "a=1", 5, ("a", 1)])
def test_create_experiment_dict_arguments(project: Project, argument: str, value: Any) -> None:
    with pytest.raises(ValueError):
        project.create_experiment(upload_source_files=[], **{argument: value})


# --- text Python can hold but UTF-8 cannot, timestamps, huge numbers ------------------------------

SURROGATE = "name-\udcff"


def test_strings_utf8_cannot_encode_are_refused_at_the_call(project: Project, exp: Experiment, sync: Sync) -> None:
    """A lone surrogate is an error at the call and costs none of the valid data around it."""
    exp.log_text("notes", "before")
    exp.log_metric("m", 1.0)
    calls: list[Callable[[], Any]] = [
        lambda: exp.log_text("notes", SURROGATE),
        lambda: exp.log_text(SURROGATE, "text"),
        lambda: exp.log_metric(SURROGATE, 1.0),
        lambda: exp.set_property(SURROGATE, "v"),
        lambda: exp.set_property("k", SURROGATE),
        lambda: exp.log_image("img", np.zeros((2, 2)), image_name=SURROGATE),
        lambda: project.create_experiment(name=SURROGATE, upload_source_files=[]),
        lambda: project.create_experiment(params={"lr": SURROGATE}, upload_source_files=[]),
        lambda: project.create_experiment(properties={SURROGATE: "v"}, upload_source_files=[]),
    ]
    for call in calls:
        with pytest.raises(InvalidChannelValue, match="UTF-8"):
            call()
    exp.log_text("notes", "after")
    exp.log_metric("m", 2.0)
    sync(exp)
    assert list(exp.get_numeric_channels_values("m")["m"]) == [1.0, 2.0]
    assert list(exp.get_logs()) == ["m", "notes"]
    assert exp.get_properties() == {}
    assert neptune.get_experiment() is exp


@pytest.mark.parametrize("timestamp", [math.nan, math.inf, -math.inf])
def test_a_non_finite_timestamp_is_refused(exp: Experiment, sync: Sync, timestamp: float) -> None:
    for call in (
        lambda: exp.log_metric("m", 1.0, timestamp=timestamp),
        lambda: exp.log_metric("m", 0, 1.0, timestamp=timestamp),
        lambda: exp.log_text("t", "x", timestamp=timestamp),
    ):
        with pytest.raises(InvalidChannelValue):
            call()
    exp.log_metric("m", 3.0, timestamp=1_700_000_000.0)
    sync(exp)
    assert exp.get_logs()["m"].y == 3.0


def test_a_number_beyond_a_double_is_an_invalid_value(exp: Experiment) -> None:
    for call in (
        lambda: exp.log_metric("m", 10**400),
        lambda: exp.log_metric("m", 10**400, 1.0),
        lambda: exp.log_metric("m", 1.0, timestamp=10**400),
    ):
        with pytest.raises(InvalidChannelValue):
            call()
