"""The sharded layout (deploy/clickhouse/cluster) mirrors the single-server tables exactly."""

from __future__ import annotations

import re

import pytest

from expstream.consumers.sinks.base import cluster_ddl_statements, ddl_statements
from expstream.exceptions import ConfigurationError

_CREATE = re.compile(
    r"CREATE TABLE IF NOT EXISTS (?:\w+\.)?(\w+)(?: ON CLUSTER \w+)?\s*(?:AS (\w+)\.(\w+)\s*)?(\(.*?\n\))?\s*"
    r"ENGINE = (\w+)(?:\((.*?)\))?\s*(?:ORDER BY (.*))?$",
    re.S,
)


def parsed(statements: list[str]) -> dict[str, tuple[str | None, ...]]:
    tables = {}
    for statement in statements:
        match = _CREATE.match(statement)
        assert match, statement
        name, as_db, as_table, columns, engine, args, order = match.groups()
        tables[name] = (as_db, as_table, columns, engine, args, order)
    return tables


def test_every_table_has_a_replicated_local_table_and_a_distributed_one_by_experiment() -> None:
    single = parsed(ddl_statements())
    sharded = parsed(cluster_ddl_statements("fleet", "db1"))
    assert set(sharded) == set(single) | {f"{name}_local" for name in single}
    for name, (_, _, columns, engine, args, order) in single.items():
        _, _, local_columns, local_engine, local_args, local_order = sharded[f"{name}_local"]
        assert (local_columns, local_order) == (columns, order), f"{name}_local differs from {name}"
        assert engine == "ReplacingMergeTree" and local_engine == "ReplicatedReplacingMergeTree"
        version = f", {args}" if args else ""  # the version column of ReplacingMergeTree(ts) stays
        assert local_args == f"'/clickhouse/tables/{{shard}}/{{database}}/{{table}}', '{{replica}}'{version}"
        as_db, as_table, _, dist_engine, dist_args, _ = sharded[name]
        assert (as_db, as_table, dist_engine) == ("db1", f"{name}_local", "Distributed")
        key = "consumer_group" if name == "consumer_progress" else "experiment_id"
        assert dist_args == f"fleet, db1, {name}_local, sipHash64({key})"


def test_statements_run_on_the_whole_cluster() -> None:
    statements = cluster_ddl_statements("fleet", "db1")
    assert all(" ON CLUSTER fleet" in s for s in statements)
    assert not any("${" in s for s in statements)


@pytest.mark.parametrize("cluster, database", [("a b", "db"), ("fleet", "db; DROP TABLE x"), ("", "db")])
def test_names_must_be_plain_identifiers(cluster: str, database: str) -> None:
    with pytest.raises(ConfigurationError):
        cluster_ddl_statements(cluster, database)
