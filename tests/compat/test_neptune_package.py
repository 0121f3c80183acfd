"""The opt-in ``neptune`` package (compat/neptune): every legacy name is expstream's own object, and it
refuses to share an environment with another ``neptune`` distribution instead of overwriting it.

docs/legacy-behaviour.md#the-neptune-package
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import expstream
import expstream.api_exceptions
import expstream.exceptions
import neptune

REPO = Path(__file__).resolve().parents[2]
COMPAT = REPO / "compat" / "neptune"

_MODULES = [
    "exceptions",
    "api_exceptions",
    "experiments",
    "projects",
    "sessions",
    "envs",
    "backend",
    "utils",
    "git_info",
]


def test_neptune_is_expstream() -> None:
    assert neptune is expstream
    assert neptune.__version__ == expstream.__version__


@pytest.mark.parametrize("name", _MODULES)
def test_submodules_are_expstreams_own(name: str) -> None:
    assert importlib.import_module(f"neptune.{name}") is importlib.import_module(f"expstream.{name}")


@pytest.mark.parametrize("name", expstream.exceptions.__all__)
def test_every_exception_name_is_the_same_object(name: str) -> None:
    import neptune.exceptions

    assert getattr(neptune.exceptions, name) is getattr(expstream.exceptions, name)


@pytest.mark.parametrize("name", expstream.api_exceptions.__all__)
def test_every_api_exception_name_is_the_same_object(name: str) -> None:
    import neptune.api_exceptions

    assert getattr(neptune.api_exceptions, name) is getattr(expstream.api_exceptions, name)


def test_the_names_integrations_import() -> None:
    from neptune.exceptions import STYLES, NeptuneException
    from neptune.experiments import Experiment
    from neptune.git_info import GitInfo
    from neptune.sessions import Session
    from neptune.utils import get_git_info

    assert NeptuneException is expstream.exceptions.NeptuneException
    assert set(STYLES) >= {"h1", "h2", "blue", "python", "bash", "warning", "correct", "fail", "bold", "underline"}
    assert re.sub(r"\x1b\[[0-9]+m", "", "{h1}x{end}".format(**STYLES)) == "x"
    assert Experiment is expstream.experiments.Experiment
    assert GitInfo is expstream.git_info.GitInfo
    assert Session is expstream.sessions.Session
    assert get_git_info is expstream.git_info.get_git_info
    assert neptune.OfflineBackend is expstream.backend.OfflineBackend
    assert neptune.Session.with_default_backend == expstream.Session.with_default_backend


def test_except_and_isinstance_agree_across_names(home: Path) -> None:
    with pytest.raises(expstream.exceptions.NeptuneIncorrectProjectQualifiedNameException):
        neptune.init("no-slash")
    try:
        expstream.init("no-slash")
    except neptune.exceptions.NeptuneException as error:
        assert isinstance(error, neptune.exceptions.NeptuneIncorrectProjectQualifiedNameException)


def test_module_state_is_one(home: Path) -> None:
    project = neptune.init("acme/sandbox")
    assert expstream.project is project
    assert neptune.project is project


def test_names_expstream_lacks_are_not_found() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("neptune.new")


def test_one_copy_of_each_module() -> None:
    importlib.import_module("neptune.experiments")
    files = {m.__file__ for name, m in sys.modules.items() if name in ("neptune.experiments", "expstream.experiments")}
    assert len(files) == 1


# --- another neptune distribution in the same environment ------------------------------------------


def _fake_neptune_client(site: Path) -> Path:
    """What neptune-client leaves in site-packages: its package and a dist-info whose RECORD names it."""
    package = site / "neptune"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("LEGACY_CLIENT = True\n")
    info = site / "neptune_client-0.4.132.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: neptune-client\nVersion: 0.4.132\n")
    (info / "RECORD").write_text("neptune/__init__.py,,\nneptune_client-0.4.132.dist-info/RECORD,,\n")
    return package / "__init__.py"


def _guard() -> object:
    return importlib.import_module("neptune._guard")


def test_guard_names_the_other_distribution(tmp_path: Path) -> None:
    _fake_neptune_client(tmp_path)
    own = tmp_path / "expstream_neptune-0.1.0.dist-info"
    own.mkdir()
    (own / "RECORD").write_text("neptune/__init__.py,,\n")
    owners = _guard().foreign_owners(tmp_path)  # type: ignore[attr-defined]
    assert "neptune_client 0.4.132" in owners
    assert not any(o.startswith("expstream_neptune") for o in owners)
    message = _guard().conflict_message(owners)  # type: ignore[attr-defined]
    assert "pip uninstall neptune_client" in message


def test_import_beside_another_neptune_refuses_clearly(tmp_path: Path) -> None:
    """A wheel that got in beside neptune-client some other way: ``import neptune`` says what is wrong."""
    _fake_neptune_client(tmp_path)
    for source in (COMPAT / "neptune").glob("*.py"):
        (tmp_path / "neptune" / source.name).write_bytes(source.read_bytes())
    env = os.environ | {"PYTHONPATH": str(tmp_path)}
    script = (
        "import expstream.exceptions as e\n"
        "try:\n    import neptune\n"
        "except e.NeptunePackageConflict as error:\n    assert isinstance(error, ImportError); print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "neptune_client 0.4.132" in result.stdout and "separate virtual environment" in result.stdout


@pytest.mark.slow
def test_install_beside_another_neptune_refuses_and_overwrites_nothing(tmp_path: Path) -> None:
    """``pip install ./compat/neptune`` into an environment with neptune-client fails before writing."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    theirs = _fake_neptune_client(site)
    result = subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", str(COMPAT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "neptune_client 0.4.132" in result.stdout + result.stderr
    assert theirs.read_text() == "LEGACY_CLIENT = True\n"
    assert not list(site.glob("expstream_neptune-*"))
