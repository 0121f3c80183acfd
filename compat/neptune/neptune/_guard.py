"""Which other installed distributions ship a top-level ``neptune`` package beside this one.

Standard library only: the build backend (``pep517/backend.py``) loads this file by path to refuse an
install before anything is overwritten, and ``neptune/__init__.py`` asks it again at import, for a
wheel installed some other way. pip does not refuse two distributions that write the same files; the
later one silently replaces the earlier one's modules.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

OWN = "expstream_neptune"


def _normalized(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _ships_neptune(info: Path) -> bool:
    top_level = info / "top_level.txt"
    if top_level.is_file() and "neptune" in top_level.read_text(encoding="utf-8", errors="replace").split():
        return True
    record = info / "RECORD"
    if record.is_file():
        with record.open(encoding="utf-8", errors="replace") as lines:
            return any(line.startswith("neptune/") for line in lines)
    return False


def foreign_owners(*folders: Path) -> list[str]:
    """``name version`` of every distribution in this environment's site-packages or in ``folders``,
    other than expstream-neptune, that installs ``neptune/``. Only ``neptune*`` distributions are read
    (neptune-client, neptune), so the check stays cheap enough to run at every import."""
    places = {Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")} | set(folders)
    found = []
    for place in sorted(places):
        for info in sorted(place.glob("[nN][eE][pP][tT][uU][nN][eE]*.dist-info")):
            name, _, rest = info.name[: -len(".dist-info")].partition("-")
            if _normalized(name) != OWN and _ships_neptune(info):
                found.append(f"{name} {rest}".strip())
    return found


def conflict_message(owners: list[str]) -> str:
    return (
        f"expstream-neptune cannot share this environment with {', '.join(owners)}: both install a "
        "top-level `neptune` package, so one would silently overwrite the other's files. Use a separate "
        "virtual environment for expstream, or remove the other one first (pip uninstall "
        f"{owners[0].split()[0]}), then install expstream-neptune again."
    )
