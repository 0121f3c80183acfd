"""The composition root: every adapter chosen from the settings in one module."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from expstream import wiring
from expstream.config import Settings
from expstream.consumers.sinks.chdb import ChdbTables
from expstream.consumers.sinks.localfs import LocalFolderStore
from expstream.consumers.sources.local_log import LocalLogSource
from expstream.exceptions import ConfigurationError
from tests.conftest import QUIET


def test_a_missing_client_library_names_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "kafka" else real(name, *a))
    settings = Settings(
        kafka="127.0.0.1:9", clickhouse="clickhouse://default:@127.0.0.1:9/x", s3="http://a:b@127.0.0.1:9/bucket"
    )
    for build in (wiring.consumer_runner, wiring.open_reader, wiring.backend_parts, wiring.replay_source):
        with pytest.raises(ConfigurationError, match=r"kafka-python: pip install 'expstream\[distributed\]'"):
            build(settings)


def test_distributed_mode_needs_all_three_services() -> None:
    with pytest.raises(ConfigurationError, match="EXPSTREAM_CLICKHOUSE, EXPSTREAM_S3"):
        wiring.open_reader(Settings(kafka="127.0.0.1:9"))


def test_the_registry_builds_every_adapter_by_name(tmp_path: Path) -> None:
    assert set(wiring.OBJECT_STORES) == {"memory", "localfs", "s3"}
    assert set(wiring.TABLE_STORES) == {"chdb", "clickhouse"}
    tables, objects = wiring.embedded_stores(tmp_path)
    assert isinstance(tables, ChdbTables) and tables.folder == tmp_path / "chdb"
    assert isinstance(objects, LocalFolderStore)
    with pytest.raises(ConfigurationError, match="Unknown table store"):
        wiring.create_table_store("sqlite")


def test_embedded_replay_reads_the_local_log_from_its_start(tmp_path: Path) -> None:
    source = wiring.replay_source(Settings(home=tmp_path / "home"))
    try:
        assert isinstance(source, LocalLogSource)
        assert source.poll(timeout=0.0) == []
    finally:
        source.close()


def test_the_services_container_closes_what_it_opened(tmp_path: Path) -> None:
    """Injected at the front door, used, then closed as a context manager: everything logged is readable after."""
    import expstream
    from expstream.backend import StreamBackend

    settings = Settings(home=tmp_path / "home")
    with StreamBackend(settings, **wiring.backend_parts(settings)) as services:
        project = expstream.Session(backend=services).get_project("acme/sandbox")
        exp = project.create_experiment(name="embedded", **QUIET)
        exp.log_metric("loss", 0.5)
        assert exp.get_numeric_channels_values("loss")["loss"].tolist() == [0.5]
        exp.stop()
    assert services.reader_is_open is False
    services.close()  # idempotent
    with StreamBackend(settings, **wiring.backend_parts(settings)) as again:
        (found,) = expstream.Session(backend=again).get_project("acme/sandbox").get_experiments()
        assert found.state == "succeeded"
        assert found.get_numeric_channels_values("loss")["loss"].tolist() == [0.5]
