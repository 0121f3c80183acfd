"""The numbering port: hands out the next experiment number of a project."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod

__all__ = ["Numbering", "project_key"]


def project_key(project_name: str) -> str:
    """The short-id prefix of a project: its first three letters or digits, upper-cased.

    ``acme/sandbox`` → ``SAN``, ``team/ml`` → ``ML``, ``team/3d-vision`` → ``3DV``; a name with no
    letter or digit gets ``EXP``. Only the part after the slash counts.
    """
    name = project_name.split("/", 1)[-1]
    letters = re.sub(r"[^0-9A-Za-z]", "", name)[:3].upper()
    return letters or "EXP"


class Numbering(ABC):
    """Atomic per-project counter shared by every process that creates experiments."""

    @abstractmethod
    def next_number(self, project: str) -> int:
        """Reserve and return the next number (1, 2, ...) of ``project``."""

    @abstractmethod
    def number_for_run(self, project: str, run_id: str) -> tuple[int, bool]:
        """The number of the experiment named ``run_id``: ``(number, True)`` for the process that
        created it, ``(number, False)`` for every process that attaches to it later."""
