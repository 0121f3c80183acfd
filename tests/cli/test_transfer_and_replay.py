"""The command line: export one experiment, import it elsewhere (renumbered), rebuild with replay."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner

import expstream
from expstream.cli import main


def use_home(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("EXPSTREAM_HOME", str(folder))
    for backend in list(expstream._backends.values()):
        backend.writer.close()
    expstream._backends.clear()


def make_experiment(name: str) -> expstream.Experiment:
    expstream.init("acme/laptop")
    exp = expstream.create_experiment(name, params={"lr": 0.5}, tags=["moved"], upload_source_files=[])
    for i in range(500):
        exp.log_metric("loss", 1.0 / (i + 1))
    exp.log_artifact(io.BytesIO(b"weights" * 1000), "model.bin")
    exp.stop()
    return exp


def test_export_import_moves_an_experiment(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    original = make_experiment("move-me")
    exported = tmp_path / "lap1.avro"
    result = runner.invoke(main, ["export", "LAP-1", "--project", "acme/laptop", "-o", str(exported)])
    assert result.exit_code == 0, result.output

    use_home(monkeypatch, tmp_path / "elsewhere")
    make_experiment("already-here")  # LAP-1 is taken in the target
    for _ in range(2):  # importing twice changes nothing
        result = runner.invoke(main, ["import", str(exported)])
        assert result.exit_code == 0, result.output
        assert "imported as LAP-2" in result.output
    project = expstream.init("acme/laptop")
    (moved,) = project.get_experiments(id="LAP-2")
    assert moved.internal_id == original.internal_id and moved.name == "move-me"
    assert moved.get_parameters() == {"lr": 0.5} and moved.get_tags() == ["moved"]
    assert moved.get_numeric_channels_values("loss")["loss"].tolist() == [1.0 / (i + 1) for i in range(500)]
    moved.download_artifact("model.bin", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "model.bin").read_bytes() == b"weights" * 1000
    assert len(project.get_experiments()) == 2


def test_export_of_an_unknown_experiment_fails_clearly(home: Path, tmp_path: Path) -> None:
    make_experiment("one")
    result = CliRunner().invoke(main, ["export", "LAP-9", "--project", "acme/laptop", "-o", str(tmp_path / "x")])
    assert result.exit_code != 0 and "no experiment LAP-9" in result.output


def test_replay_into_a_fresh_embedded_target(home: Path, tmp_path: Path) -> None:
    from expstream.consumers.sinks.chdb import ChdbTables
    from expstream.consumers.sinks.localfs import LocalFolderStore
    from expstream.query.reader import Reader

    exp = make_experiment("rebuild")
    exp.sync()
    before = exp.get_numeric_channels_values("loss")
    result = CliRunner().invoke(main, ["replay", "--into", str(tmp_path / "rebuilt")])
    assert result.exit_code == 0, result.output
    rebuilt = Reader(ChdbTables(tmp_path / "rebuilt" / "chdb"), LocalFolderStore(tmp_path / "rebuilt" / "objects"))
    try:
        assert rebuilt.numeric_values(exp.internal_id, ["loss"]).equals(before)
        assert rebuilt.tags(exp.internal_id) == ["moved"]
        sha, _ = rebuilt.artifacts(exp.internal_id)["model.bin"]
        assert rebuilt.blob(sha) == b"weights" * 1000
    finally:
        rebuilt.tables.close()


def test_replay_needs_a_target(home: Path) -> None:
    result = CliRunner().invoke(main, ["replay"])
    assert result.exit_code != 0 and "--into" in result.output
