"""The ``expstream`` command: run the demo, materialize events, query with SQL."""

from __future__ import annotations

import signal
import sys
import threading

import click

from expstream.config import load_settings

__all__ = ["main"]


@click.group()
def main() -> None:
    """expstream: an experiment tracker that stores every change as an Avro event stream."""


@main.command()
@click.option("--once", is_flag=True, help="Materialize what is in the log now, then exit.")
def consume(once: bool) -> None:
    """Materialize events from the event log into the tables and the object store."""
    from expstream.wiring import consumer_runner

    runner = consumer_runner(load_settings())
    if once:
        applied = runner.catch_up()
        click.echo(f"materialized {applied} events ({runner.dead_letters} dead-lettered)")
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo("materializing events; Ctrl-C to stop", err=True)
    runner.run(stop)


@main.command()
@click.option("--clickhouse", "clickhouse_url", help="Target ClickHouse URL (a fresh database).")
@click.option("--s3", "s3_url", help="Target S3 URL (a fresh bucket).")
@click.option("--into", "into", type=click.Path(file_okay=False), help="Embedded target folder (fresh chdb + objects).")
def replay(clickhouse_url: str | None, s3_url: str | None, into: str | None) -> None:
    """Rebuild tables and objects from the start of the event stream into a fresh target."""
    from pathlib import Path

    from tqdm import tqdm

    from expstream.consumers.replay import replay as run_replay
    from expstream.consumers.replay import source_from_start

    settings = load_settings()
    if clickhouse_url and s3_url:
        from expstream.consumers.sinks.clickhouse import ClickHouseTables
        from expstream.consumers.sinks.s3 import S3ObjectStore

        # the target is reached like the source: with the CA bundles of EXPSTREAM_CLICKHOUSE_CA / _S3_CA
        tables = ClickHouseTables.from_url(clickhouse_url, ca=settings.clickhouse_ca)
        objects = S3ObjectStore.from_url(s3_url, ca=settings.s3_ca)
    elif into and not (clickhouse_url or s3_url):
        from expstream.consumers.sinks.chdb import ChdbTables
        from expstream.consumers.sinks.localfs import LocalFolderStore

        tables, objects = ChdbTables(Path(into) / "chdb"), LocalFolderStore(Path(into) / "objects")
    else:
        raise click.UsageError("give --clickhouse and --s3 (cluster), or --into DIR (embedded)")
    source = source_from_start(settings)
    group = settings.consumer_group if settings.distributed else "embedded"
    with tqdm(desc="replay", unit="" if settings.distributed else "B", unit_scale=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total or None
            bar.n = done
            bar.refresh()

        applied = run_replay(source, tables, objects, group=group, on_progress=progress)
    source.close()
    click.echo(f"replayed {applied} events")


@main.command()
@click.argument("experiment")
@click.option("--project", required=True, help="Project of the experiment, namespace/name.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Avro file to write.")
def export(experiment: str, project: str, output: str) -> None:
    """Write one EXPERIMENT's event stream (by short id, e.g. SAN-3) to an Avro file."""
    from expstream.consumers.replay import export_experiment, source_from_start
    from expstream.wiring import open_reader

    settings = load_settings()
    found = dict(open_reader(settings).find_experiments(project, ids=[experiment], now=0.0))
    if experiment not in found:
        raise click.ClickException(f"no experiment {experiment} in {project}")
    source = source_from_start(settings)
    with open(output, "wb") as out:
        count = export_experiment(source, found[experiment], out)
    source.close()
    click.echo(f"exported {count} events of {experiment} to {output}")


@main.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--project", help="Target project (default: the experiment's own).")
def import_(file: str, project: str | None) -> None:
    """Send an exported experiment into this installation (renumbered in the target project)."""
    from pathlib import Path

    from expstream.backend import HostedNeptuneBackend
    from expstream.transfer import import_experiment

    backend = HostedNeptuneBackend(settings=load_settings())
    short_id = import_experiment(backend, Path(file), project)
    backend.writer.close()
    click.echo(f"imported as {short_id}")


@main.command()
@click.argument("query")
@click.option("--format", "fmt", default="pretty", type=click.Choice(["pretty", "csv", "json"]))
def sql(query: str, fmt: str) -> None:
    """Run one read-only SQL QUERY over the tables (caught up with the log first).

    SELECT, SHOW, DESCRIBE and EXISTS only: writes, DDL, SET, SYSTEM, KILL, INTO OUTFILE and functions that
    reach files, URLs or other servers are refused with a one-line error and a non-zero exit.
    """
    from expstream.exceptions import NeptuneException
    from expstream.wiring import open_reader

    try:
        reader = open_reader(load_settings())
        with reader.tables.hold():
            reader.refresh()  # the materializer's writes, before the session turns read-only
            df = reader.tables.query_df(query, readonly=True)
    except NeptuneException as exc:  # refused or failed: the reason on one line, no traceback
        raise click.ClickException(" ".join(str(exc).split())) from exc
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records"))
    else:
        click.echo(df.to_string(index=False))


@main.command()
@click.option("--steps", default=200, show_default=True, help="Training steps to simulate.")
@click.option("--output", default="demo-output", show_default=True, help="Folder for the chart and downloads.")
def demo(steps: int, output: str) -> None:
    """Run a small training loop on the embedded default, read it back, and chart it."""
    from expstream.demo import run_demo

    sys.exit(run_demo(steps=steps, output=output))
