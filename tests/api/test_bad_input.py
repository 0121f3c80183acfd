"""Bad input to every entry point: the legacy exception (or the documented drop), and nothing recorded."""

from __future__ import annotations

import io
import logging
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
        (("0.5",), "float", "str"),  # quirk 3: numeric strings too
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
        lambda: exp.append_tag("bad tag"),
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
    """The type of a log is fixed by its first *recorded* point (§8.2), not by a call that raised."""
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


@pytest.mark.parametrize(
    "tag",
    ["with space", "under_score", "", "x" * 129, "dot.ted", "ünï", "tab\t", "slash/tag", 5, None, ("a", "b")],
)
def test_invalid_tags(project: Project, exp: Experiment, tag: Any) -> None:
    with pytest.raises(ExperimentValidationError) as info:
        exp.append_tag(tag)
    assert repr(tag) in str(info.value)
    with pytest.raises(ExperimentValidationError):
        exp.append_tag("fine", tag)  # nothing is sent when one of them is invalid
    with pytest.raises(ExperimentValidationError):
        exp.append_tags([tag, "fine"])
    with pytest.raises(ExperimentValidationError):
        project.create_experiment(tags=["fine", tag], upload_source_files=[])
    assert neptune.get_experiment() is exp  # no experiment was created


def test_longest_valid_tag(exp: Experiment, sync: Sync) -> None:
    exp.append_tag("x" * 128, "A-z-0-9")
    with pytest.raises(ExperimentValidationError):
        exp.append_tag("fine", "not fine")
    sync(exp)
    assert exp.get_tags() == ["A-z-0-9", "x" * 128]


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
