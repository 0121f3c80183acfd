"""Query parameters in ClickHouse's text form, for chdb (which binds parameters only as text).

Shared by the chdb table store and the statement checker of the read-only SQL path.
"""

from __future__ import annotations

from typing import Any

__all__ = ["format_param"]


#: ClickHouse reads a scalar parameter in its escaped (TabSeparated) form: ``a\b`` would arrive as
#: ``a<backspace>``, and a newline, a tab or a trailing backslash would not parse at all
_ESCAPED = str.maketrans({"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"})


def format_param(value: Any) -> str:
    """A query parameter in ClickHouse's text form: arrays as literals, strings escaped."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_literal(v) for v in value) + "]"
    return value.translate(_ESCAPED) if isinstance(value, str) else str(value)


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return format_param(value)
    return repr(float(value)) if isinstance(value, float) else str(value)
