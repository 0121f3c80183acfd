"""``Session``: holds a backend and validates project names."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Any

from expstream.backend import Backend, HostedNeptuneBackend, OfflineBackend, StreamBackend
from expstream.exceptions import NamespaceNotFound, NeptuneIncorrectProjectQualifiedNameException, ProjectNotFound
from expstream.projects import Project, project_internal_id

__all__ = ["Session", "parse_project_name"]

log = logging.getLogger("expstream")

_PROJECT = re.compile(r"^([^/]+)/([^/]+)$")


def parse_project_name(project_qualified_name: Any) -> tuple[str, str]:
    """``'namespace/name'`` → its two parts; legacy exceptions for empty and malformed names."""
    if project_qualified_name == "" or project_qualified_name is None:
        raise ProjectNotFound(str(project_qualified_name or ""))
    match = _PROJECT.match(str(project_qualified_name))
    if match is None:
        raise NeptuneIncorrectProjectQualifiedNameException(str(project_qualified_name))
    return match.group(1), match.group(2)


class Session:
    """A backend plus project lookup. The API token is accepted and ignored (docs/legacy-behaviour.md#api-token)."""

    def __init__(self, api_token: str | None = None, proxies: Any = None, backend: Backend | None = None) -> None:
        self._backend = backend if backend is not None else HostedNeptuneBackend(api_token, proxies)

    @classmethod
    def with_default_backend(cls, api_token: str | None = None) -> Session:
        return cls(backend=HostedNeptuneBackend(api_token))  # the token is ignored, NEPTUNE_API_TOKEN too

    def get_project(self, project_qualified_name: str) -> Any:
        namespace, name = parse_project_name(project_qualified_name)
        if isinstance(self._backend, StreamBackend):
            # a script that picks its project logs or reads next: the read path (on the embedded default the
            # home's warm materializer, ~0.5-0.9 s to start) gets ready meanwhile; this never blocks
            self._backend.warm_up()
            return Project(self._backend, project_internal_id(namespace, name), namespace, name)
        return self._backend.get_project(namespace, name)  # offline mode's NoopObject, a legacy custom backend

    def get_projects(self, namespace: str) -> OrderedDict[str, Any]:
        """Projects of ``namespace`` that have experiments."""
        names = self._backend.list_projects(namespace)
        if not names and not isinstance(self._backend, OfflineBackend):
            raise NamespaceNotFound(namespace)
        return OrderedDict((full, self.get_project(full)) for full in names)
