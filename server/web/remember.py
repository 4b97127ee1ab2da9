"""Figures that take seconds over a province's hundred thousand submissions (indicators, round coverage),
kept for a short while per server process so officers can open the pages many times an hour.

An answer is keyed by what it depends on: the caller's key (unit, period, round…), whether small counts
are withheld from this officer, and how many submissions the store holds (a new one is seen at once; a
review decision within ``REMEMBER_SECONDS``). Pages say when their figures were computed and offer to
compute them again (``forget``).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from rasoat.core import scope
from rasoat.server.web.base import Ctx

T = TypeVar("T")
REMEMBER_SECONDS = 120
_remembered: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], tuple[float, Any]]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def _full(ctx: Ctx, key: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*key, scope.can(ctx.user, scope.VIEW_PERSONAL), ctx.store.count_submissions())


def _fresh(ctx: Ctx, full: tuple[Any, ...], now: float) -> tuple[float, Any] | None:
    with _lock:
        entry = _remembered.get(ctx.store, {}).get(full)
    return entry if entry is not None and now - entry[0] < REMEMBER_SECONDS else None


def known(ctx: Ctx, key: tuple[Any, ...]) -> bool:
    """Whether an answer is kept under ``key`` now (``remembered`` would not compute it)."""
    return _fresh(ctx, _full(ctx, key), time.time()) is not None


def remembered(ctx: Ctx, key: tuple[Any, ...], compute: Callable[[], T]) -> tuple[T, float]:
    """``compute()`` kept for ``REMEMBER_SECONDS`` under ``key`` (and the officer's small-count rule and
    the store's submission count); also returns when it was computed."""
    full = _full(ctx, key)
    now = time.time()
    entry = _fresh(ctx, full, now)
    if entry is not None:
        return entry[1], entry[0]
    value = compute()
    with _lock:
        kept = _remembered.setdefault(ctx.store, {})
        for k in [k for k, (at, _) in kept.items() if now - at >= REMEMBER_SECONDS]:
            del kept[k]
        kept[full] = (now, value)
    return value, now


def forget(store: Any) -> None:
    """Drop every answer kept for ``store`` ("compute again now")."""
    with _lock:
        _remembered.pop(store, None)
