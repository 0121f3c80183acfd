"""ZIP names, entries and destination folders of download_artifacts / download_sources.

docs/legacy-behaviour.md#zip-downloads
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from expstream.exceptions import ArtifactPathError, NotADirectory
from expstream.query.archives import prepare_destination_dir, write_zip, zip_name


@pytest.mark.parametrize(
    ("path", "default", "expected"),
    [
        (None, "output.zip", "output.zip"),
        (None, "source.zip", "source.zip"),
        ("", "output.zip", "output.zip"),
        ("/", "output.zip", "output.zip"),
        ("data/images", "output.zip", "images.zip"),
        ("data/images/", "output.zip", "images.zip"),
        ("dir/old_client.py", "source.zip", "old_client.py.zip"),
        ("dir", "source.zip", "dir.zip"),
        ("src\\my-module", "source.zip", "my-module.zip"),
    ],
)
def test_zip_names_follow_the_documented_rule(path: str | None, default: str, expected: str) -> None:
    assert zip_name(path, default) == expected


def test_write_zip_stores_relative_entries(tmp_path: Path) -> None:
    target = tmp_path / "images.zip"
    result = write_zip(target, [("images/a.png", b"A"), ("images/sub/b.png", lambda: b"B"), ("/images/c", b"")])
    assert result == target
    with zipfile.ZipFile(target) as archive:
        assert archive.namelist() == ["images/a.png", "images/sub/b.png", "images/c"]
        assert archive.read("images/sub/b.png") == b"B"
        assert archive.testzip() is None
    assert [p.name for p in tmp_path.iterdir()] == ["images.zip"]  # no temporary file left


def test_write_zip_with_no_entries_is_a_valid_empty_archive(tmp_path: Path) -> None:
    with zipfile.ZipFile(write_zip(tmp_path / "output.zip", [])) as archive:
        assert archive.namelist() == []


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "", ".", "a\0b"])
def test_write_zip_refuses_escaping_names_and_leaves_nothing(tmp_path: Path, name: str) -> None:
    target = tmp_path / "x.zip"
    target.write_bytes(b"previous download")
    with pytest.raises(ArtifactPathError):
        write_zip(target, [("fine", b"1"), (name, b"2")])
    assert target.read_bytes() == b"previous download"
    assert [p.name for p in tmp_path.iterdir()] == ["x.zip"]


def test_write_zip_refuses_duplicate_entries(tmp_path: Path) -> None:
    with pytest.raises(ArtifactPathError, match="twice"):
        write_zip(tmp_path / "x.zip", [("a", b"1"), ("./a", b"2")])
    assert not (tmp_path / "x.zip").exists()


def test_write_zip_keeps_the_umask_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    target = write_zip(tmp_path / "x.zip", [("a", b"1")])
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_destination_defaults_to_the_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert prepare_destination_dir(None) == Path.cwd()


def test_destination_is_created_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = prepare_destination_dir("artifacts/nested/")
    assert folder == tmp_path / "artifacts" / "nested"
    assert folder.is_dir() and folder.is_absolute()
    assert prepare_destination_dir(str(folder)) == folder  # existing folder is fine


def test_destination_that_is_a_file_raises_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectory, match="file"):
        prepare_destination_dir(str(tmp_path / "file"))
    with pytest.raises(NotADirectory):
        prepare_destination_dir(str(tmp_path / "file" / "below"))


def test_write_into_replaces_a_link_at_the_target_and_never_writes_through_it(tmp_path: Path) -> None:
    from expstream.query.archives import write_into

    folder, victim = tmp_path / "out", tmp_path / "victim.txt"
    folder.mkdir()
    victim.write_bytes(b"keep")
    (folder / "f.bin").symlink_to(victim)
    (folder / "dangling").symlink_to(tmp_path / "nowhere")
    assert write_into(folder, "f.bin", lambda f: f.write(b"new")) == folder / "f.bin"
    write_into(folder, "dangling", lambda f: f.write(b"d"))
    assert victim.read_bytes() == b"keep" and not (tmp_path / "nowhere").exists()
    assert not (folder / "f.bin").is_symlink() and (folder / "f.bin").read_bytes() == b"new"
    assert (folder / "dangling").read_bytes() == b"d"
    assert sorted(p.name for p in folder.iterdir()) == ["dangling", "f.bin"]


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "..\\x", "a\0b"])
def test_write_into_takes_one_plain_name_only(tmp_path: Path, name: str) -> None:
    from expstream.query.archives import write_into

    with pytest.raises(ArtifactPathError):
        write_into(tmp_path, name, lambda f: f.write(b"x"))
    assert list(tmp_path.iterdir()) == []


def test_safe_entries_skips_paths_that_are_not_clean(caplog: pytest.LogCaptureFixture) -> None:
    from expstream.paths import clean_artifact_path
    from expstream.query.archives import safe_entries

    files = {"a/b.txt": 1, "../x": 2, "/abs": 3, "a\\b": 4, "a//c": 5, "ok": 6}
    assert safe_entries(files, clean_artifact_path, "artifact") == {"a/b.txt": 1, "ok": 6}
    assert sum("is not downloaded" in r.getMessage() for r in caplog.records) == 4
