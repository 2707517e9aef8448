"""Shopify's API search syntax (the ``query:`` argument of ``orders``, ``productVariants`` …).

Grammar (https://shopify.dev/docs/api/usage/search-syntax)::

    Query      = Term { [ whitespace Connective ] whitespace Term }
    Connective = "AND" | "OR"                  (no connective = AND; AND binds tighter than OR)
    Term       = [ Modifier ] ( "(" Query ")" | [ name Comparator ] value )
    Modifier   = "-" | "NOT" whitespace
    Comparator = ":" | ":<" | ":>" | ":<=" | ":>="
    value      = name | 'single quoted' | "double quoted"

``\\`` escapes the special characters ``: \\ ( )`` and quotes; ``field:*`` tests that a
field has a value; ``value*`` is a prefix match. The parser is lenient like Shopify's:
an unbalanced parenthesis ends the group instead of failing the request.

Evaluation is per resource: :func:`matches` takes a table of field handlers
``{name: handler(item, comparator, value) -> bool}`` plus a handler for bare words
(the resource's default text search). **Unknown filter fields match everything**, as
on Shopify, and are reported as warnings ("Invalid search field for this query.")
which the store returns in ``extensions.search`` the way Shopify does.

The ``compare_*`` helpers implement the field types: text (case-insensitive equality,
``*`` prefix), numbers, ids (numeric or GIDs, ranges), booleans and times (ISO 8601,
partial dates such as ``2026``, ``2026-11`` or ``2026-11-27`` cover the whole period,
``now``; naive times are UTC).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Union

COMPARATORS = (":<=", ":>=", ":<", ":>", ":")
OPS = {":": "=", ":<": "<", ":>": ">", ":<=": "<=", ":>=": ">="}


@dataclass(frozen=True)
class Term:
    field: str | None  # None: a bare word (default text search)
    op: str  # "=", "<", ">", "<=", ">="
    value: str
    quoted: bool = False


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Union[Term, Not, And, Or]


# --- tokenizer ----------------------------------------------------------------------------


@dataclass
class _Tok:
    kind: str  # "(", ")", "AND", "OR", "NOT", "TERM"
    term: Term | None = None
    negated: bool = False  # "-" prefix


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    quote = text[i]
    i += 1
    out = []
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == quote:
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i  # unterminated: take the rest


def _read_plain(text: str, i: int, stop: str) -> tuple[str, int]:
    out = []
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c.isspace() or c in stop:
            break
        out.append(c)
        i += 1
    return "".join(out), i


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "()":
            toks.append(_Tok(c))
            i += 1
            continue
        negated = False
        if c == "-" and i + 1 < n and not text[i + 1].isspace():
            negated = True
            i += 1
            if text[i] == "(":
                toks.append(_Tok("NOT"))
                continue
        if text[i] in "'\"":
            value, i = _read_quoted(text, i)
            toks.append(_Tok("TERM", Term(None, "=", value, True), negated))
            continue
        name, j = _read_plain(text, i, "():")
        if not negated and name in ("AND", "OR", "NOT") and (j >= n or text[j] != ":"):
            toks.append(_Tok(name))
            i = j
            continue
        if j < n and text[j] == ":" and name:
            comp = next(cp for cp in COMPARATORS if text.startswith(cp, j))
            j += len(comp)
            if j < n and text[j] in "'\"":
                value, j = _read_quoted(text, j)
                quoted = True
            else:
                value, j = _read_plain(text, j, "()")
                quoted = False
            toks.append(_Tok("TERM", Term(name.lower(), OPS[comp], value, quoted), negated))
            i = j
            continue
        if not name:  # a stray ':' or similar; skip it
            i = j + 1
            continue
        toks.append(_Tok("TERM", Term(None, "=", name), negated))
        i = j
    return toks


# --- parser ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def query(self) -> Node | None:
        parts = []
        first = self.conjunction()
        if first is not None:
            parts.append(first)
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            nxt = self.conjunction()
            if nxt is not None:
                parts.append(nxt)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Node | None:
        parts = []
        while (tok := self.peek()) is not None and tok.kind not in ("OR", ")"):
            if tok.kind == "AND":
                self.take()
                continue
            node = self.unary()
            if node is not None:
                parts.append(node)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Node | None:
        tok = self.take()
        if tok.kind == "NOT":
            nxt = self.peek()
            if nxt is None or nxt.kind in ("OR", ")"):
                return None
            child = self.unary()
            return Not(child) if child is not None else None
        if tok.kind == "(":
            inner = self.query()
            if (nxt := self.peek()) is not None and nxt.kind == ")":
                self.take()
            return inner
        if tok.kind == "TERM":
            assert tok.term is not None
            return Not(tok.term) if tok.negated else tok.term
        return None  # a stray ")" at top level


def parse(text: str | None) -> Node | None:
    """The query's syntax tree; ``None`` for an empty query (matches everything)."""
    if not text or not text.strip():
        return None
    p = _Parser(_tokenize(text))
    node = p.query()
    while p.peek() is not None:  # unbalanced ")": keep reading, AND the rest in
        p.take()
        rest = p.query()
        if rest is not None:
            node = rest if node is None else And((node, rest))
    return node


def fields_of(node: Node | None) -> set[str]:
    """The filter field names a query uses."""
    if node is None:
        return set()
    if isinstance(node, Term):
        return {node.field} if node.field else set()
    if isinstance(node, Not):
        return fields_of(node.child)
    return set().union(*(fields_of(c) for c in node.children))


# --- evaluation -------------------------------------------------------------------------------

Handler = Callable[[Any, str, str], bool]


@dataclass
class Filter:
    """A parsed query bound to one resource's field handlers."""

    text: str | None
    handlers: dict[str, Handler]
    default: Callable[[Any, str], bool]
    node: Node | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.node = parse(self.text)
        for name in sorted(fields_of(self.node)):
            if name not in self.handlers:
                self.warnings.append({"field": name, "message": "Invalid search field for this query."})

    def __call__(self, item: Any) -> bool:
        return self._eval(self.node, item)

    def _eval(self, node: Node | None, item: Any) -> bool:
        if node is None:
            return True
        if isinstance(node, Term):
            if node.field is None:
                return self.default(item, node.value)
            handler = self.handlers.get(node.field)
            if handler is None:
                return True  # unknown fields are ignored, as on Shopify
            if node.value == "*" and not node.quoted and node.op == "=":
                return handler(item, "exists", "")
            return handler(item, node.op, node.value)
        if isinstance(node, Not):
            return not self._eval(node.child, item)
        if isinstance(node, And):
            return all(self._eval(c, item) for c in node.children)
        return any(self._eval(c, item) for c in node.children)

    def apply(self, items: Iterable[Any]) -> list[Any]:
        return [i for i in items if self(i)]


def matches(
    query: str | None, item: Any, handlers: dict[str, Handler], default: Callable[[Any, str], bool]
) -> bool:
    return Filter(query, handlers, default)(item)


# --- comparators -------------------------------------------------------------------------------


def _cmp(a: Any, op: str, b: Any) -> bool:
    if op == "=":
        return a == b
    if op == "<":
        return a < b
    if op == ">":
        return a > b
    if op == "<=":
        return a <= b
    if op == ">=":
        return a >= b
    raise ValueError(op)


def compare_text(actual: Any, op: str, value: str) -> bool:
    """Case-insensitive text comparison; ``value*`` is a prefix match; lists match any element."""
    if isinstance(actual, (list, tuple, set)):
        if op == "exists":
            return bool(actual)
        return any(compare_text(a, op, value) for a in actual)
    if op == "exists":
        return actual not in (None, "")
    if actual is None:
        return False
    a, v = str(actual).lower(), value.lower()
    if op == "=" and v.endswith("*"):
        return a.startswith(v[:-1])
    return _cmp(a, op, v)


def _number(value: Any) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def compare_number(actual: Any, op: str, value: str) -> bool:
    if op == "exists":
        return actual is not None
    a, v = _number(actual), _number(value)
    if a is None or v is None:
        return False
    return _cmp(a, op, v)


_GID = re.compile(r"^gid://shopify/[^/]+/(\d+)")


def numeric_id(value: Any) -> int | None:
    """The numeric id of ``123``, ``"123"`` or ``"gid://shopify/Order/123"``."""
    if value is None:
        return None
    s = str(value).strip()
    m = _GID.match(s)
    if m:
        return int(m.group(1))
    return int(s) if s.isdigit() else None


def compare_id(actual: Any, op: str, value: str) -> bool:
    if op == "exists":
        return actual is not None
    a, v = numeric_id(actual), numeric_id(value)
    if a is None or v is None:
        return False
    return _cmp(a, op, v)


def compare_bool(actual: Any, op: str, value: str) -> bool:
    if op == "exists":
        return actual is not None
    return bool(actual) == (value.strip().lower() in ("true", "1", "yes"))


_PARTIAL = [
    (re.compile(r"^\d{4}$"), "year"),
    (re.compile(r"^\d{4}-\d{2}$"), "month"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "day"),
]


def parse_time(value: Any) -> datetime | None:
    """A timezone-aware datetime from an ISO 8601 string (naive = UTC) or a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    s = str(value).strip()
    if not s:
        return None
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def time_interval(value: str, now: datetime | None = None) -> tuple[datetime, datetime] | None:
    """The half-open interval ``[start, end)`` a search time value denotes."""
    s = value.strip()
    if s.lower() == "now":
        t = now or datetime.now(UTC)
        return t, t
    for rx, unit in _PARTIAL:
        if rx.match(s):
            if unit == "year":
                start = datetime(int(s), 1, 1, tzinfo=UTC)
                return start, start.replace(year=start.year + 1)
            if unit == "month":
                y, m = (int(p) for p in s.split("-"))
                start = datetime(y, m, 1, tzinfo=UTC)
                end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
                return start, end
            start = datetime.fromisoformat(s).replace(tzinfo=UTC)
            return start, start + timedelta(days=1)
    t = parse_time(s)
    if t is None:
        return None
    step = timedelta(seconds=1) if t.microsecond == 0 else timedelta(microseconds=1)
    return t, t + step


def compare_time(actual: Any, op: str, value: str, now: datetime | None = None) -> bool:
    if op == "exists":
        return actual is not None
    a = parse_time(actual)
    interval = time_interval(value, now)
    if a is None or interval is None:
        return False
    start, end = interval
    if start == end:  # "now": an instant
        return _cmp(a, op, start)
    if op == "=":
        return start <= a < end
    if op == ">":
        return a >= end
    if op == ">=":
        return a >= start
    if op == "<":
        return a < start
    if op == "<=":
        return a < end
    raise ValueError(op)
