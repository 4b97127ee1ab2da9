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


def remembered(
    ctx: Ctx, key: tuple[Any, ...], compute: Callable[[], T], instead: tuple[Any, ...] | None = None
) -> tuple[T, float]:
    """``compute()`` kept for ``REMEMBER_SECONDS`` under ``key`` (and the officer's small-count rule and
    the store's submission count); also returns when it was computed. An answer kept under ``instead``
    serves as well (a whole evaluation for a page that shows part of it)."""
    tail = (scope.can(ctx.user, scope.VIEW_PERSONAL), ctx.store.count_submissions())  # counted once
    now = time.time()
    with _lock:
        kept = _remembered.get(ctx.store, {})
        for k in ([instead] if instead is not None else []) + [key]:
            entry = kept.get((*k, *tail))
            if entry is not None and now - entry[0] < REMEMBER_SECONDS:
                return entry[1], entry[0]
    value = compute()
    with _lock:
        kept = _remembered.setdefault(ctx.store, {})
        for k in [k for k, (at, _) in kept.items() if now - at >= REMEMBER_SECONDS]:
            del kept[k]
        kept[(*key, *tail)] = (now, value)
    return value, now


def forget(store: Any) -> None:
    """Drop every answer kept for ``store`` ("compute again now")."""
    with _lock:
        _remembered.pop(store, None)
