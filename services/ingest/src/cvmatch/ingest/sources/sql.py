"""The SELECT-only check of a source query, before it is sent to any database.

Defence in depth: the query also runs in a read-only transaction with a statement timeout and a row limit
(:mod:`.database`), so this check does not have to be a full SQL parser. It has to be *strict*: a lexer
that understands the quoting of PostgreSQL, MySQL and SQLite (quotes, doubled quotes, backslash escapes,
``E''`` strings, dollar quotes, quoted identifiers, ``--``/``#``/``/* */`` comments) finds the words that
are really keywords, and the query is refused when it is not exactly one ``SELECT`` (optionally behind a
``WITH``) or when any keyword or function that writes, locks, reads server files or changes the session
appears anywhere in it, including inside a CTE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Longest query accepted, in characters.
MAX_QUERY_CHARS = 20_000

# Words that make a single SELECT write or lock (data-modifying CTEs, SELECT INTO, INTO OUTFILE, FOR
# UPDATE/SHARE, LOCK IN SHARE MODE), plus statement verbs that have no business anywhere in a query. Words
# that are also common column names (``comment``, ``set``, ``close``) are left out: they cannot start a
# statement inside a single SELECT, which is all that the statement checks below let through.
_FORBIDDEN_KEYWORDS = frozenset(
    {
        "insert",
        "update",
        "delete",
        "merge",
        "upsert",
        "into",
        "outfile",
        "dumpfile",
        "create",
        "drop",
        "alter",
        "truncate",
        "grant",
        "revoke",
        "copy",
        "call",
        "exec",
        "execute",
        "attach",
        "detach",
        "pragma",
        "vacuum",
        "lock",
        "unlock",
        "share",
        "nowait",
        "savepoint",
        "rollback",
        "commit",
    }
)
# ``REPLACE`` is a statement in MySQL and SQLite but also a string function everywhere: only the
# function form (followed by a parenthesis) is allowed.
_FORBIDDEN_UNLESS_CALL = frozenset({"replace"})

# Functions with side effects or that read the database server's files.
_FORBIDDEN_FUNCTIONS = frozenset(
    {
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_dir",
        "pg_stat_file",
        "lo_import",
        "lo_export",
        "lo_get",
        "lo_put",
        "lo_from_bytea",
        "dblink",
        "dblink_exec",
        "dblink_connect",
        "set_config",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_sleep",
        "pg_advisory_lock",
        "pg_advisory_xact_lock",
        "pg_try_advisory_lock",
        "nextval",
        "setval",
        "query_to_xml",
        "query_to_json",
        "load_file",
        "sys_exec",
        "sys_eval",
        "sleep",
        "benchmark",
        "get_lock",
        "load_extension",
        "writefile",
        "readfile",
        "fts3_tokenizer",
        "edit",
    }
)

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


class QueryRejected(ValueError):
    """The query is not a single read-only SELECT; ``str()`` says why (never echoes the query)."""


@dataclass(frozen=True, slots=True)
class _Token:
    word: str
    followed_by_paren: bool


def _tokens(query: str, *, backslash_escapes: bool) -> tuple[list[_Token], list[int]]:
    """The bare words of ``query`` (outside quotes and comments) and the offsets of top-level ``;``."""
    words: list[_Token] = []
    semicolons: list[int] = []
    i, n = 0, len(query)

    def skip_quoted(start: int, quote: str, backslash: bool) -> int:
        j = start + 1
        while j < n:
            c = query[j]
            if backslash and c == "\\":
                j += 2
                continue
            if c == quote:
                if j + 1 < n and query[j + 1] == quote:  # doubled quote: an escaped quote
                    j += 2
                    continue
                return j + 1
            j += 1
        raise QueryRejected("The query has an unterminated quoted string or identifier.")

    while i < n:
        c = query[i]
        if c in " \t\r\n\f":
            i += 1
        elif (c == "-" and query.startswith("--", i)) or c == "#":
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and query.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:  # PostgreSQL nests block comments; counting is safe for the others
                if query.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif query.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise QueryRejected("The query has an unterminated /* comment.")
            i = j
        elif c == "'":
            i = skip_quoted(i, "'", backslash=backslash_escapes)
        elif c in '"`':
            i = skip_quoted(i, c, backslash=False)
        elif c == "[":
            end = query.find("]", i)
            if end < 0:
                raise QueryRejected("The query has an unterminated [identifier].")
            i = end + 1
        elif c == "$":
            m = _DOLLAR_TAG.match(query, i)
            if m:
                end = query.find(m.group(0), m.end())
                if end < 0:
                    raise QueryRejected("The query has an unterminated dollar-quoted string.")
                i = end + len(m.group(0))
            else:
                i += 1
        elif c == ";":
            semicolons.append(i)
            i += 1
        else:
            m = _WORD.match(query, i)
            if m:
                j = m.end()
                while j < n and query[j] in " \t\r\n":
                    j += 1
                words.append(_Token(m.group(0).lower(), j < n and query[j] == "("))
                i = m.end()
            else:
                i += 1
    return words, semicolons


def check_select_only(query: str) -> str:
    """Returns the query without a trailing ``;`` when it is a single read-only SELECT.

    Raises :class:`QueryRejected` with a reason otherwise: empty, too long, several statements, not
    starting with ``SELECT``/``WITH``, or containing a writing/locking keyword or a side-effect function.
    """
    if len(query) > MAX_QUERY_CHARS:
        raise QueryRejected(f"The query is longer than {MAX_QUERY_CHARS} characters.")
    if "\x00" in query:
        raise QueryRejected("The query contains a NUL character.")
    # Whether a backslash escapes a quote depends on the engine and its settings (MySQL: yes unless
    # NO_BACKSLASH_ESCAPES; PostgreSQL: only in E'' strings; SQLite: never). A quote that one reading hides
    # could end the string in the other and expose a second statement, so the query must pass both.
    _check_reading(query, backslash_escapes=False)
    _check_reading(query, backslash_escapes=True)
    stripped = query.rstrip()
    return stripped[:-1].rstrip() if stripped.endswith(";") else stripped


def _check_reading(query: str, *, backslash_escapes: bool) -> None:
    words, semicolons = _tokens(query, backslash_escapes=backslash_escapes)
    if not words:
        raise QueryRejected("The query is empty.")
    stripped = query.rstrip()
    for pos in semicolons:
        # Only one ';', and only as the very last character (comments after it are not worth allowing).
        if pos != len(stripped) - 1:
            raise QueryRejected("Only a single SELECT statement is accepted (found several statements).")
    if words[0].word not in ("select", "with"):
        raise QueryRejected(f"Only SELECT statements are accepted (the query starts with {words[0].word.upper()}).")
    if not any(t.word == "select" for t in words):
        raise QueryRejected("Only SELECT statements are accepted.")
    for t in words:
        if t.word in _FORBIDDEN_KEYWORDS:
            raise QueryRejected(f"Only read-only SELECT statements are accepted ({t.word.upper()} is not allowed).")
        if t.word in _FORBIDDEN_UNLESS_CALL and not t.followed_by_paren:
            raise QueryRejected(f"Only read-only SELECT statements are accepted ({t.word.upper()} is not allowed).")
        if t.followed_by_paren and t.word in _FORBIDDEN_FUNCTIONS:
            raise QueryRejected(f"The function {t.word}() is not allowed in a source query.")
