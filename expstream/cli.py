"""The ``expstream`` command: run the demo, materialize events, query with SQL."""

from __future__ import annotations

import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

import click

from expstream.config import load_settings

if TYPE_CHECKING:
    from pydantic import SecretStr

    from expstream.config import Settings

__all__ = ["main"]


@click.group()
def main() -> None:
    """expstream: an experiment tracker that stores every change as an Avro event stream."""


@main.command()
@click.option("--once", is_flag=True, help="Materialize what is in the log now, then exit.")
@click.option(
    "--lock-timeout",
    type=float,
    default=None,
    help="With --once: seconds to wait for the embedded tables' lock (default EXPSTREAM_LOCK_TIMEOUT).",
)
def consume(once: bool, lock_timeout: float | None) -> None:
    """Materialize events from the event log into the tables and the object store.

    Bad records are dead-lettered and never stop it; a service that is down is retried with backoff.
    What does end it (a service unreachable at start, a setting it cannot use) is one ``Error:`` line."""
    from expstream.exceptions import ExpstreamIOError, LockTimeout, NeptuneException
    from expstream.wiring import LOCK_TIMEOUT_EXIT, consumer_runner

    try:
        runner = consumer_runner(load_settings())
    except NeptuneException as exc:
        raise click.ClickException(" ".join(str(exc).split())) from exc
    if once:
        try:
            with runner.tables.hold(lock_timeout):
                applied = runner.catch_up()
        except LockTimeout as exc:
            click.echo(str(exc), err=True)
            sys.exit(LOCK_TIMEOUT_EXIT)
        except ExpstreamIOError as exc:  # a store or log that fails now: nothing moved, the next run retries
            raise click.ClickException(" ".join(str(exc).split())) from exc
        click.echo(f"materialized {applied} events ({runner.dead_letters} dead-lettered)")
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    click.echo("materializing events; Ctrl-C to stop", err=True)
    try:
        runner.run(stop)
    finally:  # leave the consumer group now: its partitions move on at once, not after the session timeout
        runner.source.close()


@main.command()
def materializer() -> None:
    """Run the warm materializer of the embedded EXPSTREAM_HOME in the foreground.

    sync() and reads start it on demand; it keeps chdb open, tails the local log and answers them, and exits
    after EXPSTREAM_MATERIALIZER_IDLE seconds without work, on SIGTERM, or when the home is removed."""
    import logging

    from expstream.consumers.warm.daemon import serve
    from expstream.exceptions import NeptuneException
    from expstream.wiring import embedded_runner

    settings = load_settings()
    if settings.distributed:
        raise click.ClickException("the warm materializer serves the embedded default; on a cluster run consume")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        runner = embedded_runner(settings)
        status = serve(runner, settings.home.expanduser().absolute(), idle=settings.materializer_idle)
    except NeptuneException as exc:
        raise click.ClickException(" ".join(str(exc).split())) from exc
    sys.exit(status)


@main.command()
@click.option("--clickhouse", "clickhouse_url", help="Target ClickHouse URL without its password (a fresh database).")
@click.option(
    "--clickhouse-password-file",
    type=click.Path(dir_okay=False),
    help="File holding the --clickhouse password (else EXPSTREAM_REPLAY_CLICKHOUSE_PASSWORD).",
)
@click.option("--s3", "s3_url", help="Target S3 URL without its secret key (a fresh bucket).")
@click.option(
    "--s3-secret-file",
    type=click.Path(dir_okay=False),
    help="File holding the --s3 secret key (else EXPSTREAM_REPLAY_S3_SECRET_KEY).",
)
@click.option("--into", "into", type=click.Path(file_okay=False), help="Embedded target folder (fresh chdb + objects).")
def replay(
    clickhouse_url: str | None,
    clickhouse_password_file: str | None,
    s3_url: str | None,
    s3_secret_file: str | None,
    into: str | None,
) -> None:
    """Rebuild tables and objects from the start of the event stream into a fresh target.

    Without --clickhouse/--s3/--into, the cluster's own EXPSTREAM_CLICKHOUSE and EXPSTREAM_S3 are
    rebuilt. Passwords never go on the command line: a URL that carries one is refused."""
    from tqdm import tqdm

    from expstream.consumers.replay import replay as run_replay
    from expstream.exceptions import ConfigurationError
    from expstream.wiring import replay_source

    settings = load_settings()
    try:
        tables, objects = _replay_target(
            settings, clickhouse_url, clickhouse_password_file, s3_url, s3_secret_file, into
        )
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    source = replay_source(settings)
    group = settings.consumer_group if settings.distributed else "embedded"
    with tqdm(desc="replay", unit="" if settings.distributed else "B", unit_scale=True) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total or None
            bar.n = done
            bar.refresh()

        applied = run_replay(source, tables, objects, group=group, on_progress=progress)
    source.close()
    click.echo(f"replayed {applied} events")


def _replay_target(
    settings: Settings,
    clickhouse_url: str | None,
    clickhouse_password_file: str | None,
    s3_url: str | None,
    s3_secret_file: str | None,
    into: str | None,
) -> tuple[Any, Any]:
    """The tables and object store ``replay`` writes to, with secrets from files or the environment."""
    from pathlib import Path

    from expstream.credentials import refuse_secret_in_url, with_secret
    from expstream.exceptions import ConfigurationError
    from expstream.wiring import embedded_stores, stores_from_urls

    if into:
        if clickhouse_url or s3_url:
            raise ConfigurationError("give --into DIR (embedded) or --clickhouse and --s3 (cluster), not both")
        return embedded_stores(Path(into))

    if clickhouse_url and s3_url:
        how = "with --clickhouse-password-file FILE or EXPSTREAM_REPLAY_CLICKHOUSE_PASSWORD"
        refuse_secret_in_url(clickhouse_url, "--clickhouse", how)
        refuse_secret_in_url(s3_url, "--s3", "with --s3-secret-file FILE or EXPSTREAM_REPLAY_S3_SECRET_KEY")
        password = _secret(clickhouse_password_file, "--clickhouse-password-file", settings.replay_clickhouse_password)
        secret_key = _secret(s3_secret_file, "--s3-secret-file", settings.replay_s3_secret_key)
        clickhouse_url, s3_url = with_secret(clickhouse_url, password), with_secret(s3_url, secret_key)
    elif clickhouse_url or s3_url or clickhouse_password_file or s3_secret_file:
        raise ConfigurationError("give both --clickhouse and --s3 (cluster), or --into DIR (embedded)")
    elif settings.clickhouse is not None and settings.s3 is not None:
        clickhouse_url, s3_url = settings.clickhouse.get_secret_value(), settings.s3.get_secret_value()
    else:
        raise ConfigurationError(
            "give --clickhouse and --s3 (cluster) or --into DIR (embedded), or set EXPSTREAM_CLICKHOUSE and _S3"
        )
    # the target is reached like the source: with the CA bundles of EXPSTREAM_CLICKHOUSE_CA / _S3_CA, and in the
    # layout of EXPSTREAM_CLICKHOUSE_CLUSTER
    return stores_from_urls(settings, clickhouse_url, s3_url)


def _secret(path: str | None, option: str, from_env: SecretStr | None) -> str | None:
    """A secret from its file option, else from its EXPSTREAM_* variable, else None."""
    from pathlib import Path

    from expstream.credentials import read_secret_file

    if path:
        return read_secret_file(Path(path), option)
    return from_env.get_secret_value() if from_env is not None else None


@main.command()
@click.argument("experiment")
@click.option("--project", required=True, help="Project of the experiment, namespace/name.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Avro file to write.")
def export(experiment: str, project: str, output: str) -> None:
    """Write one EXPERIMENT's event stream (by short id, e.g. SAN-3) to an Avro file."""
    from expstream.consumers.replay import export_experiment
    from expstream.wiring import open_reader, replay_source

    settings = load_settings()
    found = dict(open_reader(settings).find_experiments(project, ids=[experiment], now=0.0))
    if experiment not in found:
        raise click.ClickException(f"no experiment {experiment} in {project}")
    source = replay_source(settings)
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
        click.echo(df.to_json(orient="records", date_format="iso"))
    else:
        click.echo(df.to_string(index=False))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (beyond loopback: token).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free).")
def ui(host: str, port: int) -> None:
    """Serve the read-only web UI; beyond loopback it needs EXPSTREAM_UI_TOKEN."""
    from expstream.exceptions import NeptuneException
    from expstream.ui.server import serve

    try:
        serve(load_settings(), host, port, announce=lambda line: click.echo(line, err=False))
    except NeptuneException as exc:
        raise click.ClickException(" ".join(str(exc).split())) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


@main.command()
@click.option("--steps", default=200, show_default=True, help="Training steps to simulate.")
@click.option("--output", default="demo-output", show_default=True, help="Folder for the chart and downloads.")
def demo(steps: int, output: str) -> None:
    """Run a small training loop on the embedded default, read it back, and chart it."""
    from expstream.demo import run_demo

    sys.exit(run_demo(steps=steps, output=output))
