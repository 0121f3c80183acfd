"""Artifact destinations, artifact sources, blob chunking, delete paths and source-file selection.

docs/legacy-behaviour.md#artifacts-and-sources
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from expstream.exceptions import ArtifactPathError, FileNotFound, StorageError
from expstream.producer.uploads import (
    SOURCES_WARNING_BYTES,
    artifact_files,
    blob_chunks,
    delete_paths,
    normalize_destination,
    resolve_source_files,
    sources_size_warning,
    sources_total_size,
)


def read_all(files: list) -> dict[str, bytes]:
    result = {}
    for destination, opener in files:
        with opener() as f:
            result[destination] = f.read()
    return result


# --- normalize_destination ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("model.pkl", "model.pkl"),
        ("validation/images/a.png", "validation/images/a.png"),
        ("validation\\images\\a.png", "validation/images/a.png"),
        ("./a//b/./c.txt", "a/b/c.txt"),
        ("a/b/../c", "a/c"),
        ("dir/", "dir"),
        ("wyniki/zażółć 漢字.csv", "wyniki/zażółć 漢字.csv"),
    ],
)
def test_destinations_are_clean_relative_posix_paths(given: str, expected: str) -> None:
    assert normalize_destination(given) == expected


@pytest.mark.parametrize(
    "bad", ["../x", "a/../../x", "..", "/abs/x", "\\abs\\x", "C:\\x", "c:/x", "", ".", "a/..", "a\0b"]
)
def test_destinations_that_escape_or_name_the_root_are_refused(bad: str) -> None:
    with pytest.raises(ArtifactPathError) as e:
        normalize_destination(bad)
    assert isinstance(e.value, ValueError)
    assert repr(bad) in str(e.value)


# --- artifact_files -----------------------------------------------------------------------------


def test_file_goes_under_its_basename_or_the_destination(tmp_path: Path) -> None:
    path = tmp_path / "images" / "wrong_prediction_1.png"
    path.parent.mkdir()
    path.write_bytes(b"png")
    assert read_all(artifact_files(str(path))) == {"wrong_prediction_1.png": b"png"}
    assert read_all(artifact_files(str(path), "validation\\images\\x.png")) == {"validation/images/x.png": b"png"}
    assert read_all(artifact_files(path)) == {"wrong_prediction_1.png": b"png"}  # pathlib.Path accepted


def test_directory_is_uploaded_recursively_under_its_name_or_the_destination(tmp_path: Path) -> None:
    root = tmp_path / "results"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"a")
    (root / "sub" / "b.txt").write_bytes(b"b")
    (root / "sub" / "deeper" / "ąć.txt").write_bytes(b"c")
    expected = {"results/a.txt": b"a", "results/sub/b.txt": b"b", "results/sub/deeper/ąć.txt": b"c"}
    assert read_all(artifact_files(str(root))) == expected
    assert read_all(artifact_files(str(root) + os.sep)) == expected
    assert read_all(artifact_files(str(root), "out/run1")) == {
        "out/run1/a.txt": b"a",
        "out/run1/sub/b.txt": b"b",
        "out/run1/sub/deeper/ąć.txt": b"c",
    }


def test_empty_directory_gives_nothing(tmp_path: Path) -> None:
    assert artifact_files(str(tmp_path)) == []


def test_missing_path_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFound, match=r"missing\.bin"):
        artifact_files(str(tmp_path / "missing.bin"))


def test_bad_destination_for_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ArtifactPathError):
        artifact_files(str(tmp_path / "f"), "../f")


def test_file_opener_can_be_called_again(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"again")
    [(_, opener)] = artifact_files(str(tmp_path / "f"))
    for _ in range(2):
        with opener() as f:
            assert f.read() == b"again"


def test_bytes_stream_is_read_from_its_position_and_left_open() -> None:
    stream = io.BytesIO(b"skip-kept")
    stream.seek(5)
    [(destination, opener)] = artifact_files(stream, "dir\\data.bin")
    assert destination == "dir/data.bin"
    with opener() as f:
        assert f.read() == b"kept"
    assert not stream.closed


def test_text_stream_is_utf8_encoded_and_left_open() -> None:
    stream = io.StringIO("zażółć 漢字 " * 1000)
    [(_, opener)] = artifact_files(stream, "notes.txt")
    with opener() as f:
        blob = blob_chunks(f, 7)  # chunk boundaries fall inside multi-byte characters
        data = b"".join(chunk for _, chunk in blob.chunks)
    assert data == ("zażółć 漢字 " * 1000).encode("utf-8")
    assert blob.size == len(data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert not stream.closed


def test_open_binary_file_object_is_left_open(tmp_path: Path) -> None:
    (tmp_path / "f.bin").write_bytes(b"content")
    with open(tmp_path / "f.bin", "rb") as handle:
        [(_, opener)] = artifact_files(handle, "f.bin")
        with opener() as f:
            assert f.read() == b"content"
        assert not handle.closed


def test_stream_needs_a_destination() -> None:
    with pytest.raises(ValueError, match="destination"):
        artifact_files(io.BytesIO(b"x"))


@pytest.mark.parametrize("value", [42, None, b"bytes", ["a"]])
def test_other_artifacts_raise_value_error(value: object) -> None:
    with pytest.raises(ValueError):
        artifact_files(value)


# --- blob_chunks --------------------------------------------------------------------------------


def test_multi_chunk_file_is_hashed_then_read_again_in_chunks(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    (tmp_path / "big").write_bytes(data)
    with open(tmp_path / "big", "rb") as f:
        blob = blob_chunks(f, 4096)
        assert blob.sha256 == hashlib.sha256(data).hexdigest()
        assert blob.size == 10_000
        chunks = list(blob.chunks)
    assert [offset for offset, _ in chunks] == [0, 4096, 8192]
    assert [len(chunk) for _, chunk in chunks] == [4096, 4096, 1808]
    assert b"".join(chunk for _, chunk in chunks) == data


def test_bytes_are_chunked_directly() -> None:
    blob = blob_chunks(b"abcdefg", 3)
    assert (blob.sha256, blob.size) == (hashlib.sha256(b"abcdefg").hexdigest(), 7)
    assert list(blob.chunks) == [(0, b"abc"), (3, b"def"), (6, b"g")]


@pytest.mark.parametrize("source", [b"", io.BytesIO(b"")])
def test_empty_blob_has_one_empty_chunk(source: bytes | io.BytesIO) -> None:
    blob = blob_chunks(source, 10)
    assert (blob.sha256, blob.size) == (hashlib.sha256(b"").hexdigest(), 0)
    assert list(blob.chunks) == [(0, b"")]


class _OneWayStream:
    """Only .read(): a pipe-like source that cannot rewind, so blob_chunks must spool it."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


def test_non_seekable_stream_is_spooled_and_chunked() -> None:
    data = os.urandom(5000)
    source = _OneWayStream(data)
    [(_, opener)] = artifact_files(source, "piped.bin")
    blob = blob_chunks(opener(), 2000)
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert list(blob.chunks) == [(0, data[:2000]), (2000, data[2000:4000]), (4000, data[4000:])]


def test_seekable_stream_is_hashed_from_its_current_position() -> None:
    stream = io.BytesIO(b"headerPAYLOAD")
    stream.seek(6)
    blob = blob_chunks(stream, 4)
    assert blob.sha256 == hashlib.sha256(b"PAYLOAD").hexdigest()
    assert list(blob.chunks) == [(0, b"PAYL"), (4, b"OAD")]


def test_a_file_changed_between_the_passes_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "moving"
    path.write_bytes(b"a" * 100)
    with open(path, "rb") as f:
        blob = blob_chunks(f, 30)
        path.write_bytes(b"b" * 100)
        with pytest.raises(StorageError, match="changed"):
            list(blob.chunks)


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        blob_chunks(b"x", 0)


# --- delete_paths -------------------------------------------------------------------------------


def test_delete_paths_accepts_a_str_or_a_list() -> None:
    assert delete_paths("forest_results.pkl") == ["forest_results.pkl"]
    assert delete_paths(["forest_results.pkl", "directory/"]) == ["forest_results.pkl", "directory"]
    assert delete_paths([]) == []


def test_delete_paths_strips_a_leading_slash() -> None:
    assert delete_paths("/dir/file") == ["dir/file"]
    assert delete_paths("/../x") == ["x"]  # normalises to /x, as legacy accepted


@pytest.mark.parametrize("path", ["a/../../x", "../x", "..", ["ok", "../bad"]])
def test_delete_paths_refuses_paths_outside_the_artifacts(path: str | list[str]) -> None:
    with pytest.raises(ValueError):
        delete_paths(path)


@pytest.mark.parametrize("path", ["", ".", "/", "//", "a/..", ["ok", ""]])
def test_delete_paths_refuses_the_whole_artifacts_directory(path: str | list[str]) -> None:
    with pytest.raises(ValueError, match="cannot delete the whole artifacts directory"):
        delete_paths(path)


@pytest.mark.parametrize("path", [None, 5, ["a", None], {"a"}])
def test_delete_paths_refuses_other_types(path: object) -> None:
    with pytest.raises(ValueError):
        delete_paths(path)


def test_delete_paths_validates_everything_and_dedupes() -> None:
    assert delete_paths(("a", "./a", "b\\c")) == ["a", "b/c"]  # a tuple is as good as a list


# --- resolve_source_files -----------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small repository like the legacy tests': R/{README.md, CODE_OF_CONDUCT.md, tests/neptune/...}."""
    root = tmp_path / "R"
    (root / "tests" / "neptune").mkdir(parents=True)
    (root / "README.md").write_text("readme")
    (root / "CODE_OF_CONDUCT.md").write_text("coc")
    (root / ".hidden.md").write_text("dot-files are not matched by *")
    (root / "tests" / "neptune" / "test_project.py").write_text("tests")
    (root / "tests" / "neptune" / "test_experiment.py").write_text("tests")
    (root / "tests" / "neptune" / "data").mkdir()
    (root / "tests" / "neptune" / "data" / "x.json").write_text("{}")
    return root


def targets(pairs: list[tuple[str, str]]) -> list[str]:
    return [target for _, target in pairs]


def test_spec_example_patterns_reaching_above_the_cwd(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd = repo / "tests" / "neptune"
    monkeypatch.chdir(cwd)
    pairs = resolve_source_files(["test_project.*", "../../*.md"], entrypoint=None, cwd=os.getcwd())
    assert targets(pairs) == ["CODE_OF_CONDUCT.md", "README.md", "tests/neptune/test_project.py"]
    assert pairs[2][0] == str(cwd / "test_project.py")
    assert all(os.path.isabs(path) for path, _ in pairs)


def test_spec_example_single_file(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "tests" / "neptune")
    assert targets(resolve_source_files("test_project.py", entrypoint=None, cwd=os.getcwd())) == ["test_project.py"]


def test_spec_example_from_the_repository_root(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    found = targets(resolve_source_files(["tests/neptune/*.*"], entrypoint=None, cwd=os.getcwd()))
    assert found == ["tests/neptune/test_experiment.py", "tests/neptune/test_project.py"]


def test_recursive_glob_and_directories_and_dedupe(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    pairs = resolve_source_files(["**/*.py", "tests", "tests/neptune/test_project.py"], entrypoint=None, cwd=".")
    assert targets(pairs) == [
        "tests/neptune/data/x.json",
        "tests/neptune/test_experiment.py",
        "tests/neptune/test_project.py",
    ]


def test_star_does_not_match_dot_files(repo: Path) -> None:
    assert targets(resolve_source_files("*.md", entrypoint=None, cwd=str(repo))) == ["CODE_OF_CONDUCT.md", "README.md"]


def test_absolute_patterns_are_allowed(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pairs = resolve_source_files(str(repo / "*.md"), entrypoint=None, cwd=str(elsewhere))
    assert targets(pairs) == ["CODE_OF_CONDUCT.md", "README.md"]  # root: the matches' common path


def test_directory_outside_the_cwd_is_named_relative_to_itself(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pairs = resolve_source_files(str(repo / "tests"), entrypoint=None, cwd=str(elsewhere))
    assert targets(pairs) == ["neptune/data/x.json", "neptune/test_experiment.py", "neptune/test_project.py"]


def test_none_uploads_the_entry_script_under_its_basename(repo: Path) -> None:
    pairs = resolve_source_files(None, entrypoint="tests/neptune/test_project.py", cwd=str(repo))
    assert pairs == [(str(repo / "tests" / "neptune" / "test_project.py"), "test_project.py")]


@pytest.mark.parametrize("entrypoint", [None, "", "missing.py", "tests"])
def test_none_without_an_entry_script_file_uploads_nothing(repo: Path, entrypoint: str | None) -> None:
    assert resolve_source_files(None, entrypoint=entrypoint, cwd=str(repo)) == []


def test_empty_list_and_unmatched_patterns_upload_nothing(repo: Path) -> None:
    assert resolve_source_files([], entrypoint="README.md", cwd=str(repo)) == []
    assert resolve_source_files(["*.nothing"], entrypoint=None, cwd=str(repo)) == []


def test_source_sizes_and_the_100_mb_warning(repo: Path) -> None:
    pairs = resolve_source_files("*.md", entrypoint=None, cwd=str(repo))
    assert sources_total_size(pairs) == len("readme") + len("coc")
    assert sources_size_warning(SOURCES_WARNING_BYTES - 1) is None
    warning = sources_size_warning(SOURCES_WARNING_BYTES)
    assert warning is not None and "100 MB" in warning
