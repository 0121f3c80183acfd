"""Exit and fork hooks that must not keep their object alive.

``atexit`` and ``os.register_at_fork`` hold what they are given until the interpreter ends; a hook
that holds a weak reference lets a writer or a project be collected as usual.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["call_if_alive"]

T = TypeVar("T")


def call_if_alive(ref: weakref.ref[T], method: Callable[[T], object]) -> None:
    """Run ``method`` on the referent if it still exists."""
    target = ref()
    if target is not None:
        method(target)
