"""Sinks: where consumers write and the query side reads (ports in ``base``, one adapter module per technology).

Which adapter serves which settings is decided in one place, ``expstream.wiring`` (its ``OBJECT_STORES`` and
``TABLE_STORES`` list them; the contract tests are parametrized over them).
"""

from __future__ import annotations

from expstream.consumers.sinks.base import ObjectStore, TableStore, validate_key

__all__ = ["ObjectStore", "TableStore", "validate_key"]
