"""The ``log_metric`` hot path: the C extension ``_hotpath`` where it was compiled, else the same in Python.

``EXPSTREAM_HOTPATH=python`` chooses the Python one (to compare, or to debug the slow path); the C one is
what the targets in bench/README.md were measured with. :data:`IMPLEMENTATION` says which is in use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__all__ = [
    "IMPLEMENTATION",
    "ChannelCore",
    "Doubles",
    "ExperimentCore",
    "ProjectCore",
    "StreamCore",
    "module_log_metric",
]

if TYPE_CHECKING:  # the Python version is the reference both are checked against
    from expstream.producer import _hotpath_py as _chosen
else:
    try:
        if os.environ.get("EXPSTREAM_HOTPATH", "").strip().lower() == "python":
            raise ImportError("EXPSTREAM_HOTPATH=python")
        from expstream.producer import _hotpath as _chosen
    except ImportError:
        from expstream.producer import _hotpath_py as _chosen

#: ``"c"`` or ``"python"``
IMPLEMENTATION = "python" if _chosen.__name__.endswith("_py") else "c"

ChannelCore = _chosen.ChannelCore
Doubles = _chosen.Doubles
ExperimentCore = _chosen.ExperimentCore
ProjectCore = _chosen.ProjectCore
StreamCore = _chosen.StreamCore
module_log_metric = _chosen.module_log_metric
