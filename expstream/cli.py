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
@click.argument("query")
@click.option("--format", "fmt", default="pretty", type=click.Choice(["pretty", "csv", "json"]))
def sql(query: str, fmt: str) -> None:
    """Run a read-only SQL QUERY over the tables (caught up with the log first)."""
    from expstream.wiring import open_reader

    reader = open_reader(load_settings())
    with reader.tables.hold():
        reader.refresh()
        df = reader.tables.query_df(query)
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
