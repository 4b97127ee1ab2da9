"""OData ``$filter`` and ``$orderby`` on submissions, as Central allows them (reference §2.6), and the same
grammar over other fields for entity lists (``parse_filter``, ``evaluate``; ``central.entities``).

Fields: ``__id``, ``__system/submissionDate``, ``__system/updatedAt``, ``__system/submitterId``,
``__system/reviewState``, ``__system/deletedAt`` (on repeat tables prefixed ``$root/Submissions/``).
Operators ``eq ne lt le gt ge and or not``, parentheses, functions ``now() year() month() day() hour()
minute() second()``, literals ``null``, numbers, ``'text'``, ISO dates and times.

``compile_filter`` gives a predicate over one submission, and the part of the expression the store can
run itself: the top-level ``and`` of comparisons of submissionDate, reviewState and submitterId with a
literal becomes a ``SubmissionQuery`` (time range, review states, collector). When that covers the whole
expression the predicate is None and the store alone filters, counts and pages.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rasoat.core.models import ReviewState, Submission
from rasoat.server.central import problems
from rasoat.server.central.shapes import FROM_CENTRAL, TO_CENTRAL, actor_id, last_change

FIELDS = (
    "__id",
    "__system/submissionDate",
    "__system/updatedAt",
    "__system/submitterId",
    "__system/reviewState",
    "__system/deletedAt",
)
ROOT_PREFIX = "$root/Submissions/"
FUNCTIONS = {"year", "month", "day", "hour", "minute", "second", "now"}
COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')"
    r"|(?P<dt>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)"
    r"|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<punct>[(),])"
    r"|(?P<name>[A-Za-z_$][A-Za-z0-9_$/]*))"
)


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class Ref:
    field: str


@dataclass(frozen=True)
class Call:
    name: str
    arg: Any


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Any
    right: Any


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or | not
    args: tuple[Any, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise problems.odata_filter(f"unexpected text at {pos}: {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(
        self, text: str, sealed: frozenset[str] = frozenset(), fields: Collection[str] = FIELDS
    ) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.sealed = sealed
        self.fields = fields

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise problems.odata_filter("unexpected end")
        self.i += 1
        return tok

    def word(self, *words: str) -> str | None:
        tok = self.peek()
        if tok and tok[0] == "name" and tok[1].lower() in words:
            self.i += 1
            return tok[1].lower()
        return None

    def parse(self) -> Any:
        node = self.or_()
        if self.peek() is not None:
            raise problems.odata_filter(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return node

    def or_(self) -> Any:
        args = [self.and_()]
        while self.word("or"):
            args.append(self.and_())
        return args[0] if len(args) == 1 else BoolOp("or", tuple(args))

    def and_(self) -> Any:
        args = [self.not_()]
        while self.word("and"):
            args.append(self.not_())
        return args[0] if len(args) == 1 else BoolOp("and", tuple(args))

    def not_(self) -> Any:
        if self.word("not"):
            return BoolOp("not", (self.not_(),))
        left = self.primary()
        op = self.word(*COMPARE)
        if op is None:
            if isinstance(left, (BoolOp, Cmp)):
                return left
            raise problems.odata_filter("expected a comparison (eq, ne, lt, le, gt, ge)")
        return Cmp(op, left, self.primary())

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "punct" and text == "(":
            node = self.or_()
            self.expect(")")
            return node
        if kind == "str":
            return Lit(text[1:-1].replace("''", "'"))
        if kind == "num":
            return Lit(float(text) if "." in text else int(text))
        if kind == "dt":
            try:
                return Lit(_when(text))
            except ValueError:
                raise problems.odata_filter(f"not a date: {text!r}") from None
        if kind == "name":
            low = text.lower()
            if low == "null":
                return Lit(None)
            if low in ("true", "false"):
                return Lit(low == "true")
            if low in FUNCTIONS and self.peek() == ("punct", "("):
                self.take()
                arg = None if low == "now" else self.primary()
                self.expect(")")
                return Call(low, arg)
            field = text[len(ROOT_PREFIX) :] if text.startswith(ROOT_PREFIX) else text
            if field in self.sealed:
                raise problems.odata_filter_sealed(field)
            if field not in self.fields:
                raise problems.not_implemented("501.5", f"$filter on {text}")
            return Ref(field)
        raise problems.odata_filter(f"unexpected {text!r}")

    def expect(self, punct: str) -> None:
        if self.take() != ("punct", punct):
            raise problems.odata_filter(f"expected {punct!r}")


def _when(text: str) -> datetime:
    if "T" not in text:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- evaluation on one submission -------------------------------------------------------------------


def field_value(sub: Submission, field: str) -> Any:
    if field == "__id":
        return sub.instance_id
    if field == "__system/submissionDate":
        return sub.received_at if sub.received_at.tzinfo else sub.received_at.replace(tzinfo=UTC)
    if field == "__system/updatedAt":
        changed = last_change(sub)
        return _when(changed) if changed else None
    if field == "__system/submitterId":
        return actor_id(sub.collector_id)
    if field == "__system/reviewState":
        return TO_CENTRAL[sub.review_state]
    return None  # deletedAt: rasoat deletes nothing


def parse_filter(text: str, fields: Collection[str], sealed: frozenset[str] = frozenset()) -> Any:
    """The expression tree of a ``$filter`` over ``fields`` (another field: 501.5; one of ``sealed``:
    400.18 naming it), for ``evaluate``."""
    return _Parser(text, sealed, fields).parse()


def evaluate(node: Any, row: Callable[[str], Any]) -> Any:
    """A parsed ``$filter`` on one row, whose fields ``row`` reads."""
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Ref):
        return row(node.field)
    if isinstance(node, Call):
        if node.name == "now":
            return datetime.now(UTC)
        value = evaluate(node.arg, row)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = _when(value)
            except ValueError:
                return None
        return getattr(value, node.name, None)
    if isinstance(node, BoolOp):
        if node.op == "not":
            return not evaluate(node.args[0], row)
        results = (bool(evaluate(a, row)) for a in node.args)
        return all(results) if node.op == "and" else any(results)
    left, right = _coerce(evaluate(node.left, row), evaluate(node.right, row))
    if node.op == "eq":
        return left == right
    if node.op == "ne":
        return left != right
    if left is None or right is None:
        return False
    try:
        return {"lt": left < right, "le": left <= right, "gt": left > right, "ge": left >= right}[node.op]
    except TypeError:  # a text against a date: no row matches (the response is already streaming)
        return False


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    with contextlib.suppress(ValueError):
        if isinstance(left, datetime) and isinstance(right, str):
            right = _when(right)
        if isinstance(right, datetime) and isinstance(left, str):
            left = _when(left)
    if isinstance(left, int) and isinstance(right, str) and right.isdigit():
        right = int(right)
    if isinstance(right, int) and isinstance(left, str) and left.isdigit():
        left = int(left)
    return left, right


# --- compiling: what the store runs, and what is left ------------------------------------------------


@dataclass
class Compiled:
    query: dict[str, Any]  # SubmissionQuery fields the store applies
    predicate: Callable[[Submission], bool] | None  # the rest, or None


def compile_filter(
    text: str | None, submitter: Callable[[int], str | None], sealed: frozenset[str] = frozenset()
) -> Compiled:
    """``submitter`` maps an actor id back to an account id (None: no such account); ``sealed`` names the
    form's identifying fields (their paths and last names), refused with a 400 that names them."""
    if not text or not text.strip():
        return Compiled({}, None)
    tree = _Parser(text, sealed).parse()
    conjuncts = list(tree.args) if isinstance(tree, BoolOp) and tree.op == "and" else [tree]
    query: dict[str, Any] = {}
    rest = []
    for node in conjuncts:
        if not _push(node, query, submitter):
            rest.append(node)
    if not rest:
        return Compiled(query, None)
    residual = rest[0] if len(rest) == 1 else BoolOp("and", tuple(rest))
    return Compiled(query, lambda sub: bool(evaluate(residual, lambda name: field_value(sub, name))))


_FLIP = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
_TICK = timedelta(microseconds=1)


def _push(node: Any, query: dict[str, Any], submitter: Callable[[int], str | None]) -> bool:
    if not isinstance(node, Cmp):
        return False
    op, left, right = node.op, node.left, node.right
    if isinstance(left, Lit) and isinstance(right, Ref):
        op, left, right = _FLIP[op], right, left
    if not (isinstance(left, Ref) and isinstance(right, Lit)):
        return False
    value = right.value
    if left.field == "__system/submissionDate" and op != "ne":
        if isinstance(value, str):
            try:
                value = _when(value)
            except ValueError:
                return False
        if not isinstance(value, datetime):
            return False
        lo = {"eq": value, "gt": value + _TICK, "ge": value}.get(op)
        hi = {"eq": value + _TICK, "lt": value, "le": value + _TICK}.get(op)
        if lo is not None:
            query["received_from"] = max(lo, query.get("received_from", lo))
        if hi is not None:
            query["received_to"] = min(hi, query.get("received_to", hi))
        return True
    if (
        left.field == "__system/reviewState"
        and op in ("eq", "ne")
        and (value is None or isinstance(value, str))
    ):
        named = {FROM_CENTRAL[value]} if value in FROM_CENTRAL else set()
        states = named if op == "eq" else set(ReviewState) - named
        query["review_states"] = sorted(set(query.get("review_states", ReviewState)) & states)
        return True
    if left.field == "__system/submitterId" and op == "eq" and isinstance(value, (int, str)):
        try:
            account = submitter(int(value))
        except ValueError:
            account = None
        if account is None or query.get("collector_id", account) != account:
            query["review_states"] = []  # nobody: an empty state list matches no row in every store
        else:
            query["collector_id"] = account
        return True
    return False


# --- $orderby ------------------------------------------------------------------------------------------


def parse_orderby(text: str | None, fields: Collection[str] = FIELDS) -> list[tuple[str, bool]]:
    """``[(field, descending)]`` over ``fields`` (another: 501); for submissions the caller lets only
    submissionDate (and __id, as its tie-break) lead, as rasoat's stores page by receipt time."""
    if not text or not text.strip():
        return []
    out = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise problems.odata_filter(f"$orderby {part!r}")
        field = words[0][len(ROOT_PREFIX) :] if words[0].startswith(ROOT_PREFIX) else words[0]
        if field not in fields:
            raise problems.not_implemented("501.5", f"$orderby on {words[0]}")
        out.append((field, len(words) == 2 and words[1].lower() == "desc"))
    return out
