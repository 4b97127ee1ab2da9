"""Judging a value against its target: met / not met / on track / no data.

Rules, in order:
- records the figure depends on that the server cannot read (ODK-encrypted and not derived: their
  fields are unknown) → ``unknown``, never met or not met, whatever the readable records say;
- no target → ``no_target`` (or ``no_data`` when there is no value);
- the compared quantity (the value, or its change on the comparison period for "growth < 1 %" and
  "+5 % on last year") is unknown → ``no_data`` (nothing reported, zero denominator, no previous value);
- the target holds → ``met``;
- a reach-by target (``deadline`` ahead, not ``each_period``, a ``start`` year known) on a value that
  must rise (``>``, ``>=``) → ``on_track`` only when the progress so far (value ÷ target) is at least the
  share of the plan's time elapsed at the period's end (from 1 January of ``start`` to 31 December of
  the deadline): 20 % of a 2026–2030 target by the end of 2026, 60 % by the end of 2028. Nothing else is
  ever "on track" (a value to bring down has no baseline to measure progress from);
- otherwise → ``not_met``.
"""

from __future__ import annotations

from datetime import date

from rasoat.core.indicators.models import Status, Target, TargetOn, TargetOp

_EPS = 1e-9


def holds(op: TargetOp, x: float, threshold: float) -> bool:
    """Whether ``x op threshold``; equality allows float rounding noise."""
    if op is TargetOp.gt:
        return x > threshold + _EPS
    if op is TargetOp.ge:
        return x >= threshold - _EPS
    if op is TargetOp.lt:
        return x < threshold - _EPS
    if op is TargetOp.le:
        return x <= threshold + _EPS
    return abs(x - threshold) <= _EPS


def compared_quantity(
    target: Target, value: float | None, change: float | None, change_pct: float | None
) -> float | None:
    return {TargetOn.value: value, TargetOn.change: change, TargetOn.change_pct: change_pct}[target.of]


def elapsed_pct(target: Target | None, period_end: date) -> float | None:
    """The share (%) of a reach-by target's time gone at ``period_end`` (exclusive: the day after the
    period); None without a deadline or a start year."""
    if target is None or target.deadline is None or target.start is None or target.each_period:
        return None
    begin, end = date(target.start, 1, 1), date(target.deadline + 1, 1, 1)
    if end <= begin:
        return None
    share = (period_end - begin).days / (end - begin).days * 100
    return min(max(share, 0.0), 100.0)


def progress_pct(target: Target | None, value: float | None) -> float | None:
    """How far a value that must rise has come towards its threshold (%), counting from zero."""
    if target is None or value is None or target.of is not TargetOn.value:
        return None
    if target.op not in (TargetOp.gt, TargetOp.ge) or target.value <= 0:
        return None
    return value / target.value * 100


def judge(
    target: Target | None,
    period_end: date,
    value: float | None,
    previous: float | None = None,
    change: float | None = None,
    change_pct: float | None = None,
    uncounted: int = 0,
) -> Status:
    """The status of one value in a period ending (exclusive) on ``period_end``; ``uncounted`` is how many
    records it depends on that could not be read."""
    if uncounted:
        return Status.unknown
    if target is None:
        return Status.no_target if value is not None else Status.no_data
    x = compared_quantity(target, value, change, change_pct)
    if x is None:
        return Status.no_data
    if holds(target.op, x, target.value):
        return Status.met
    if target.deadline is not None and not target.each_period and period_end.year <= target.deadline:
        gone, done = elapsed_pct(target, period_end), progress_pct(target, value)
        if gone is not None and done is not None and done >= gone - _EPS:
            return Status.on_track
    return Status.not_met
