"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples() -> None:
    assert len(python_blocks()) >= 2


def test_readme_python_examples_run(home: Path, capsys) -> None:
    namespace: dict[str, object] = {}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "loss" in printed and "acc" in printed
    assert "succeeded" in printed
    assert "Experiment(SAN-1)" in printed


def test_readme_lists_every_setting() -> None:
    """The configuration tables name every environment variable the settings read."""
    from expstream.config import Settings, env_name

    text = README.read_text()
    names = [env_name(field) for field in Settings.model_fields]
    assert "NEPTUNE_NOTEBOOK_ID" in names and "EXPSTREAM_RUN_ID" in names  # legacy names count too
    missing = [name for name in names if f"`{name}`" not in text]
    assert missing == []
