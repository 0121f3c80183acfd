"""Move an experiment between installations: import an exported event stream.

The experiment keeps its internal id and every event; only its short id is renumbered in the
target project (``SAN-3`` on a laptop may become ``SAN-41`` on the cluster), so nothing collides.
Importing the same file twice changes nothing: the sinks are idempotent.
"""

from __future__ import annotations

from pathlib import Path

from expstream import schemas
from expstream.backend import StreamBackend
from expstream.consumers.replay import read_export
from expstream.exceptions import ExperimentValidationError
from expstream.producer.numbering import project_key

__all__ = ["import_experiment"]


def import_experiment(backend: StreamBackend, path: Path, project: str | None = None) -> str:
    """Send the events of an export file through ``backend``; returns the experiment's new short id."""
    rows = list(read_export(path))
    created = [r for r in rows if schemas.decode(r["message"])[0] == "ExperimentCreated"]
    if len(created) != 1:
        raise ExperimentValidationError(f"{path} holds {len(created)} ExperimentCreated events, expected 1")
    kind, event = schemas.decode(created[0]["message"])
    target = project or event["project"]
    run_id = f"import:{event['header']['experiment_id']}"  # importing twice reuses the number
    number, _ = backend.numbering.number_for_run(target, run_id)
    identity = {"project": target, "number": number, "short_id": f"{project_key(target.split('/', 1)[-1])}-{number}"}
    event.update(identity)
    created[0]["message"] = schemas.encode(kind, event)
    for row in rows:  # the second record of who it is gets the new number too
        if schemas.registry.kind_of(row["message"]) == "ExperimentIdentified":
            identified_kind, identified = schemas.decode(row["message"])
            row["message"] = schemas.encode(identified_kind, {**identified, **identity})
    transport = backend.writer.transport
    for row in rows:
        transport.send(row["topic"], row["key"], [row["message"]])
    transport.flush()
    return str(event["short_id"])
