"""Filters compiled to small closures over a submission's (or a repeat row's) field dict, and the same
filters as conditions the store tests itself in SQL (``condition``) where it can.

Submitted values are strings ("yes", "3", "2026-03-05", "a b c" for select_multiple); typing happens
here: ``gt``/``lt`` compare numbers when the threshold is a number, text otherwise (ISO dates sort as
text); ``eq``/``in`` compare text, so a YAML ``0`` matches "0".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasoat.core.indicators.models import Filter, FilterOp
from rasoat.core.storage.base import Condition

Predicate = Callable[[dict[str, Any]], bool]


def number(value: Any) -> float | None:
    """A submitted answer as a number, or None when blank or not numeric."""
    try:
        return float(value)  # the common case: "12", "3.5"
    except (TypeError, ValueError):
        pass
    if value is None or isinstance(value, bool | list | dict):
        return None
    try:
        return float(str(value).strip().replace(",", "."))
    except ValueError:
        return None


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _answered(value: Any) -> bool:
    return value is not None and value != "" and value != []


def compile_filter(f: Filter) -> Predicate:
    path, op, v = f.field, f.op, f.value
    if op is FilterOp.exists:
        return lambda d: _answered(d.get(path))
    if op is FilterOp.missing:
        return lambda d: not _answered(d.get(path))
    if op in (FilterOp.eq, FilterOp.ne):
        if v is None:
            test: Predicate = lambda d: not _answered(d.get(path))  # noqa: E731
        else:
            want = _text(v)
            test = lambda d: d.get(path) == want  # noqa: E731
        return test if op is FilterOp.eq else (lambda d: not test(d))
    if op in (FilterOp.in_, FilterOp.not_in):
        options = frozenset(_text(x) for x in (v if isinstance(v, list) else [v]))
        if op is FilterOp.in_:
            return lambda d: d.get(path) in options
        return lambda d: d.get(path) not in options
    if op in (FilterOp.contains, FilterOp.lacks):
        wanted = [_text(x) for x in (v if isinstance(v, list) else [v])]
        if len(wanted) == 1:
            one = wanted[0]
            has: Predicate = lambda d: one in str(d.get(path) or "").split()  # noqa: E731
        else:
            has = lambda d: any(w in str(d.get(path) or "").split() for w in wanted)  # noqa: E731
        return has if op is FilterOp.contains else (lambda d: not has(d))
    # ordering: numbers when the threshold is one, else text (ISO dates)
    compare: Callable[[Any, Any], bool] = {
        FilterOp.gt: lambda a, b: a > b,
        FilterOp.ge: lambda a, b: a >= b,
        FilterOp.lt: lambda a, b: a < b,
        FilterOp.le: lambda a, b: a <= b,
    }[op]
    if isinstance(v, int | float):
        threshold = float(v)

        def numeric(d: dict[str, Any]) -> bool:
            x = number(d.get(path))
            return x is not None and compare(x, threshold)

        return numeric
    text = str(v)

    def textual(d: dict[str, Any]) -> bool:
        x = d.get(path)
        return _answered(x) and compare(str(x), text)

    return textual


def compile_all(filters: list[Filter]) -> Predicate | None:
    """One predicate for all filters (AND), or None when there are none (the caller skips the call)."""
    preds = [compile_filter(f) for f in filters]
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda d: a(d) and b(d)
    return lambda d: all(p(d) for p in preds)


def condition(f: Filter) -> Condition | None:
    """The filter as a test the store makes itself (``Store.aggregate``), taking what ``compile_filter``
    takes; None for the orderings and the word tests (``contains``, ``lacks``), which read numbers and
    words as Python does (``number``, ``str.split``): those stay here."""
    path, op, v = f.field, f.op, f.value
    if op in (FilterOp.exists, FilterOp.missing):
        return Condition(path, "answered", negate=op is FilterOp.missing)
    if op in (FilterOp.eq, FilterOp.ne):
        if v is None:
            return Condition(path, "answered", negate=op is FilterOp.eq)
        return Condition(path, "eq", (_text(v),), negate=op is FilterOp.ne)
    if op in (FilterOp.in_, FilterOp.not_in):
        options = sorted({_text(x) for x in (v if isinstance(v, list) else [v])})
        return Condition(path, "eq", tuple(options), negate=op is FilterOp.not_in)
    return None
