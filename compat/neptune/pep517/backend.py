"""PEP 517 backend of expstream-neptune: setuptools, after refusing an environment that already has
another distribution's ``neptune`` package (pip would let this one overwrite its files silently).

The build runs with the target environment's interpreter, so its site-packages (``sysconfig``) are the
ones the wheel is about to be installed into, also under build isolation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import build_sdist, get_requires_for_build_sdist  # noqa: F401

_spec = importlib.util.spec_from_file_location(
    "_expstream_neptune_guard", Path(__file__).parent.parent / "neptune" / "_guard.py"
)
assert _spec is not None and _spec.loader is not None
_guard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_guard)


def _refuse_a_second_neptune() -> None:
    owners = _guard.foreign_owners()
    if owners:
        raise SystemExit(_guard.conflict_message(owners))


def get_requires_for_build_wheel(config_settings: Any = None) -> Any:
    _refuse_a_second_neptune()
    return _setuptools.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_editable(config_settings: Any = None) -> Any:
    _refuse_a_second_neptune()
    return _setuptools.get_requires_for_build_editable(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Any = None) -> Any:
    _refuse_a_second_neptune()
    return _setuptools.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: Any = None) -> Any:
    _refuse_a_second_neptune()
    return _setuptools.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_wheel(wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None) -> Any:
    _refuse_a_second_neptune()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory: str, config_settings: Any = None, metadata_directory: str | None = None) -> Any:
    _refuse_a_second_neptune()
    return _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
