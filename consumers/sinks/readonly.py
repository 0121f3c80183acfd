"""Read-only SQL: what the engines' ``readonly = 1`` does not stop, refused from ClickHouse's own parse.

``readonly = 1`` (per query on a server, per session on chdb) is the guard: it refuses writes, DDL,
``SET``, ``SYSTEM`` and table functions that reach files, URLs or other servers. Some statements pass
it anyway, measured on chdb 26.9 and ClickHouse 18.16:

* ``INTO OUTFILE``: chdb writes the file outside the guard (a server ignores it over the native protocol);
* ``KILL QUERY``: allowed to readonly users on both;
* ``USE``: changes the connection's database for the queries after it;
* several statements separated by ``;``: chdb runs them all;
* on chdb, the ``Python()`` table function (the process's Python objects) and scalar functions that
  reach files or other servers (``file('/etc/passwd')`` reads any path in embedded mode).

So before a read-only query runs, ClickHouse itself parses it (chdb's ``formatQuerySingleLine``, then
``EXPLAIN AST`` of that single statement) and only one ``SELECT``, ``SHOW``, ``DESCRIBE`` or ``EXISTS``
statement without ``INTO OUTFILE``, table functions or those scalar functions is accepted. The statement
text is never matched with regular expressions: a keyword inside a string literal is data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from expstream.consumers.sinks.params import format_param
from expstream.exceptions import StorageError

__all__ = ["Parse", "check_read_only", "parse_with_chdb"]

#: runs one query on a chdb session (``{name:Type}`` values bound as by ``query_df``) and returns its TSVRaw
#: text; raises on any error
Parse = Callable[[str, Mapping[str, str] | None], str]

_ROOTS = {"SelectWithUnionQuery", "DescribeQuery"}
_ROOT_PREFIXES = ("Show", "Exists")  # ShowTables, ShowColumns, ShowCreateTableQuery, ExistsTableQuery, ...
#: scalar functions that read files or connect to servers, which chdb's readonly mode lets through
_REACHING_FUNCTIONS = {"file", "hascolumnintable", "catboostevaluate"}


def check_read_only(sql: str, parse: Parse) -> None:
    """Raise :class:`StorageError` unless ``sql`` is one statement that only reads (see the module doc)."""
    try:
        single = parse("SELECT formatQuerySingleLine({q:String})", {"q": sql}).rstrip("\n")
    except Exception as exc:
        raise StorageError(f"not one valid SQL statement: {_reason(exc)}") from exc
    try:
        tree = parse("EXPLAIN AST " + single, None)  # one statement now: nothing after a ';' can run
    except Exception as exc:
        raise StorageError(f"not a read-only statement: {_reason(exc)}") from exc
    _check_tree(tree)


def _check_tree(tree: str) -> None:
    nodes = [(len(line) - len(line.lstrip(" ")), line.split()) for line in tree.splitlines() if line.strip()]
    if not nodes:
        raise StorageError("read-only SQL: the statement parsed to nothing")
    root = nodes[0][1][0]
    if root not in _ROOTS and not root.startswith(_ROOT_PREFIXES):
        kind = root.removesuffix("Query") or root
        raise StorageError(f"read-only SQL runs SELECT, SHOW, DESCRIBE or EXISTS only, not {kind}")
    parents: list[str] = []  # node name at each depth on the path to the current line
    for depth, words in nodes[1:]:
        del parents[depth - 1 :]
        parent = parents[-1] if parents else root
        name = words[0]
        if depth == 1 and name == "Literal":  # a query's own literal child is its INTO OUTFILE target
            raise StorageError("read-only SQL cannot write files: INTO OUTFILE is refused")
        if name == "Function" and len(words) > 1:
            function = words[1]
            if parent == "TableExpression":
                raise StorageError(f"read-only SQL reads the tables only: table function {function}() is refused")
            if function.lower() in _REACHING_FUNCTIONS:
                raise StorageError(f"read-only SQL reads the tables only: {function}() is refused")
        parents.append(name)


def _reason(exc: BaseException) -> str:
    """The engine's message on one line, without the wrapper query it names."""
    text = " ".join(str(exc).split())
    return text.split(": In scope SELECT formatQuerySingleLine(", 1)[0]


@contextmanager
def parse_with_chdb() -> Iterator[Parse]:
    """A parser for statements bound for a ClickHouse server: a throwaway in-memory chdb, read-only.

    chdb holds one embedded server per process, so this works in a process that has not opened a chdb
    store (the ``expstream sql`` command on the cluster); elsewhere it raises StorageError.
    """
    from chdb import session as chs

    try:
        session = chs.Session()
        session.query("SET readonly = 1")
    except Exception as exc:
        raise StorageError(f"cannot check the statement with chdb's parser: {_reason(exc)}") from exc

    def parse(sql: str, params: Mapping[str, str] | None) -> str:
        bound = {k: format_param(v) for k, v in (params or {}).items()}
        return bytes(session.query(sql, "TSVRaw", params=bound).bytes()).decode()

    try:
        yield parse
    finally:
        session.close()
