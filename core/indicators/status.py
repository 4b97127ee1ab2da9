"""Judging a value against its target: met / not met / on track / no data.

Rules, in order:
- no target → ``no_target`` (or ``no_data`` when there is no value);
- the compared quantity (the value, or its change on the comparison period for "growth < 1 %" and
  "+5 % on last year") is unknown → ``no_data`` (nothing reported, zero denominator, no previous value);
- the target holds → ``met``;
- a reach-by target (``deadline`` ahead, not ``each_period``) → ``on_track`` unless the previous
  value shows it moving away from the target or standing still (→ ``not_met``); with no previous
  value it gets the benefit of the doubt;
- otherwise → ``not_met``.
"""

from __future__ import annotations

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


def judge(
    target: Target | None,
    year: int,
    value: float | None,
    previous: float | None = None,
    change: float | None = None,
    change_pct: float | None = None,
) -> Status:
    """The status of one value in a period of ``year``."""
    if target is None:
        return Status.no_target if value is not None else Status.no_data
    x = compared_quantity(target, value, change, change_pct)
    if x is None:
        return Status.no_data
    if holds(target.op, x, target.value):
        return Status.met
    if target.deadline is not None and not target.each_period and year < target.deadline:
        if target.of is TargetOn.value and previous is not None and value is not None:
            return Status.on_track if _closer(target, previous, value) else Status.not_met
        return Status.on_track
    return Status.not_met


def _closer(target: Target, previous: float, value: float) -> bool:
    """Whether the value moved toward the threshold since the previous period."""
    return abs(target.value - value) < abs(target.value - previous) - _EPS
