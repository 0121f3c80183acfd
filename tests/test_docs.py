"""The repository documents itself: nothing points outside it, and every link into ``docs/`` lands.

Comments and the README once cited a specification kept outside the repository (by path, by section
sign, by decision number). A reader of a clone cannot follow such a reference, so this test fails on
any of them, and checks that every ``docs/<page>.md#<anchor>`` reference names a heading that exists.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: references to something outside the repository; written so that none matches this file itself
_OUTSIDE = {
    "a path above the repository": re.compile(r"\.\./shared\b|/work/(?:shared|prompts)\b|\bshared/(?:spec|seeds)\b"),
    "the external specification": re.compile(r"legacy-api\.md|neptune\.experiments\.txt"),
    "a section number of an external document": re.compile(r"§\s?[0-9]"),
    "a bare decision number": re.compile(r"\bD[0-9]{1,2}\b|\bdecision [0-9]{1,2}\b"),
    "a quirk number of an external document": re.compile(r"\bquirks? [0-9]{1,2}\b", re.IGNORECASE),
}

#: a reference to a docs page with an anchor, anywhere (comment, docstring, README text or link)
_DOC_REF = re.compile(r"\bdocs/([A-Za-z0-9_./-]+\.md)#([A-Za-z0-9_-]+)")
#: ``[text](target)`` in Markdown
_MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def _files() -> list[Path]:
    """Tracked files, plus new ones not yet added (so a check fails before the commit, not after)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [ROOT / name for name in sorted(set(out.splitlines())) if (ROOT / name).is_file()]


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None  # binary: no references to check


def _texts() -> dict[str, str]:
    texts = {}
    for path in _files():
        text = _text(path)
        if text is not None:
            texts[path.relative_to(ROOT).as_posix()] = text
    return texts


def slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every anchor of a Markdown page (repeated headings get ``-1``, ``-2`` ... as on GitHub)."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    in_code = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        match = None if in_code else _HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(1))
        n = counts.get(base, 0)
        counts[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def test_slug_follows_github() -> None:
    assert slug("Read-your-writes") == "read-your-writes"
    assert slug("Explicit x, NaN and infinity") == "explicit-x-nan-and-infinity"
    assert slug("From `log_metric` to a ClickHouse row") == "from-log_metric-to-a-clickhouse-row"
    assert anchors("# A\n## Tags\n```\n## Not a heading\n```\n## Tags\n") == {"a", "tags", "tags-1"}


def test_no_file_refers_outside_the_repository() -> None:
    problems = [
        f"{name}:{text.count(chr(10), 0, match.start()) + 1}: {what}: {match.group(0)!r}"
        for name, text in _texts().items()
        for what, pattern in _OUTSIDE.items()
        for match in pattern.finditer(text)
    ]
    assert not problems, "references outside the repository:\n" + "\n".join(problems)


def test_every_docs_anchor_reference_resolves() -> None:
    texts = _texts()
    references = [
        (name, page, anchor, text.count("\n", 0, match.start()) + 1)
        for name, text in texts.items()
        for match in _DOC_REF.finditer(text)
        for page, anchor in [match.groups()]
    ]
    assert references, "nothing links into docs/: the pattern or the docs are missing"
    problems = []
    for name, page, anchor, line in references:
        target = texts.get(f"docs/{page}")
        if target is None:
            problems.append(f"{name}:{line}: docs/{page} does not exist")
        elif anchor not in anchors(target):
            problems.append(f"{name}:{line}: docs/{page} has no heading for #{anchor}")
    assert not problems, "\n".join(problems)


def test_markdown_links_stay_inside_and_resolve() -> None:
    texts = _texts()
    problems = []
    for name, text in texts.items():
        if not name.endswith(".md"):
            continue
        for match in _MD_LINK.finditer(text):
            target = match.group(1)
            if re.match(r"[a-z]+:", target):  # https:, mailto: ...
                continue
            path_part, _, anchor = target.partition("#")
            resolved = (ROOT / name).parent / path_part if path_part else ROOT / name
            try:
                relative = resolved.resolve().relative_to(ROOT)
            except ValueError:
                problems.append(f"{name}: link {target!r} leaves the repository")
                continue
            if not resolved.exists():
                problems.append(f"{name}: link {target!r} names a missing file")
            elif anchor and relative.suffix == ".md" and anchor not in anchors(resolved.read_text(encoding="utf-8")):
                problems.append(f"{name}: link {target!r} names a missing heading")
    assert not problems, "\n".join(problems)
