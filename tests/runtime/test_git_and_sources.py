"""Git information and source files recorded at creation."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

import expstream
from expstream.git_info import get_git_info


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), *args], check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")
def test_git_info_of_a_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ada@example.com")
    git(repo, "config", "user.name", "Ada")
    (repo / "train.py").write_text("print('hi')\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first model")
    git(repo, "remote", "add", "origin", "https://example.com/acme/models.git")
    info = get_git_info(str(repo))
    assert info is not None and len(info.commit_id) == 40
    assert (info.message, info.author_name, info.active_branch) == ("first model", "Ada", "main")
    assert info.repository_dirty is False and info.remote_urls == ["https://example.com/acme/models.git"]
    (repo / "untracked.txt").write_text("x")
    assert get_git_info(str(repo)).repository_dirty is True
    assert get_git_info(str(tmp_path / "nowhere")) is None


def test_git_info_lands_in_system_properties(project: expstream.Project, tmp_path: Path) -> None:
    info = expstream.GitInfo(commit_id="a" * 40, message="m", active_branch="dev", remote_urls=["r1", "r2"])
    exp = project.create_experiment("git", git_info=info, upload_source_files=[], send_hardware_metrics=False)
    exp.stop()
    exp.sync()
    rows = exp._backend.reader.tables.query_df(
        "SELECT key, value FROM system_properties WHERE experiment_id = {e:String}", {"e": exp.internal_id}
    )
    stored = dict(zip(rows["key"], rows["value"], strict=True))
    assert stored["git_commit_id"] == "a" * 40 and stored["git_active_branch"] == "dev"
    assert stored["git_remote_urls"] == "r1,r2"


def test_source_globs_and_download(project: expstream.Project, tmp_path: Path, caplog) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("a = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("b = 2\n")
    (tmp_path / "notes.md").write_text("# notes\n")
    exp = project.create_experiment(
        "src", upload_source_files=["pkg/**/*.py", "*.md", "nothing-*.txt"], send_hardware_metrics=False
    )
    exp.stop()
    exp.sync()
    exp.download_sources(destination_dir=str(tmp_path / "out"))
    with zipfile.ZipFile(tmp_path / "out" / "source.zip") as archive:
        assert sorted(archive.namelist()) == ["notes.md", "pkg/a.py", "pkg/sub/b.py"]
        assert archive.read("pkg/sub/b.py") == b"b = 2\n"
    exp.download_sources("pkg/sub", str(tmp_path / "out"))
    with zipfile.ZipFile(tmp_path / "out" / "sub.zip") as archive:
        assert archive.namelist() == ["sub/b.py"]
