"""``import neptune`` for expstream: the legacy package name as an alias of expstream itself.

Third-party integrations (neptune-contrib, pytorch-ignite, skorch, ...) ``import neptune`` and use
``neptune.exceptions``, ``neptune.experiments.Experiment``, ``neptune.OfflineBackend`` and so on. This
package makes every such name *the same object* as expstream's (``neptune.exceptions.NeptuneException
is expstream.exceptions.NeptuneException``), so ``isinstance`` and ``except`` agree whichever name a
caller used and module state (``neptune.project``) is one: ``neptune`` is ``expstream`` in
``sys.modules``, and a finder maps ``neptune.<sub>`` to the already imported ``expstream.<sub>`` instead
of loading its file a second time. Nothing of the neptune-client distribution is copied or needed.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from neptune import _guard

_ALIAS = "neptune"
_REAL = "expstream"


class _AliasLoader(importlib.abc.Loader):
    """Hands out the real expstream module; there is nothing to execute."""

    def __init__(self, real: str) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.real)

    def exec_module(self, module: ModuleType) -> None:
        return None


class _AliasFinder(importlib.abc.MetaPathFinder):
    """``neptune.x.y`` → ``expstream.x.y``; names expstream lacks (``neptune.new``) are not found."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_ALIAS + "."):
            return None
        real = _REAL + fullname[len(_ALIAS) :]
        try:
            spec = importlib.util.find_spec(real)
        except ModuleNotFoundError:
            return None
        if spec is None:
            return None
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(real), is_package=spec.submodule_search_locations is not None
        )


def _install() -> ModuleType:
    owners = _guard.foreign_owners(Path(__file__).resolve().parent.parent)  # beside this package, too
    if owners:
        from expstream.exceptions import NeptunePackageConflict

        raise NeptunePackageConflict(_guard.conflict_message(owners))
    import expstream

    if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())  # before the path finder, which would load a second copy
    return expstream


sys.modules[__name__] = _install()
