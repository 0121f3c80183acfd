"""The numbering port: hands out the next experiment number of a project."""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["MAX_NUMBER", "KnownNumbers", "Numbering", "project_key", "run_experiment_id"]

#: the last experiment number: numbers travel as Avro ``long`` (signed 64 bits)
MAX_NUMBER = (1 << 63) - 1

_RUN_NAMESPACE = uuid.UUID("9e8d4c1b-2f6a-4d3e-8b7c-1a2b3c4d5e6f")


def project_key(project_name: str) -> str:
    """The short-id prefix of a project: its first three letters or digits, upper-cased.

    ``acme/sandbox`` → ``SAN``, ``team/ml`` → ``ML``, ``team/3d-vision`` → ``3DV``; a name with no
    letter or digit gets ``EXP``. Only the part after the slash counts.
    """
    name = project_name.split("/", 1)[-1]
    letters = re.sub(r"[^0-9A-Za-z]", "", name)[:3].upper()
    return letters or "EXP"


def run_experiment_id(project: str, run_id: str) -> str:
    """The internal id of the experiment of ``run_id``: the same in every process that attaches,
    and what numbering recovery looks for in the event log."""
    return str(uuid.uuid5(_RUN_NAMESPACE, f"{project}/{run_id}"))


@dataclass(frozen=True)
class KnownNumbers:
    """What the recorded events already say about a project's numbers."""

    highest: int = 0
    #: internal experiment id → its number
    numbers: dict[str, int] = field(default_factory=dict)


#: looks up :class:`KnownNumbers` of a project where the events are (the event log, the tables)
NumberSource = Callable[[str], KnownNumbers]


class Numbering(ABC):
    """Atomic per-project counter shared by every process that creates experiments.

    Numbers are at most :data:`MAX_NUMBER`; asking for one more raises
    ``ExperimentNumbersExhausted`` before anything is recorded. A number is never handed out twice.
    """

    @abstractmethod
    def next_number(self, project: str) -> int:
        """Reserve and return the next number (1, 2, ...) of ``project``."""

    @abstractmethod
    def number_for_run(self, project: str, run_id: str) -> tuple[int, bool]:
        """The number of the experiment named ``run_id``: ``(number, True)`` for the process that
        created it, ``(number, False)`` for every process that attaches to it later."""
