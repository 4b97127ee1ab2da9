"""Indicators: definitions as data, an engine that rolls hamlet → commune → province, and the national pack.

    from rasoat.core.indicators import collect, evaluate
    results = evaluate(store, "2026", units=["19"], level="commune")   # the province and its communes

``freeze_snapshot(store, round)`` is what closing a round stores for year-on-year comparisons.
"""

from rasoat.core.indicators.engine import (
    SNAPSHOT_FORMAT,
    build_snapshot,
    evaluate,
    evaluate_history,
    find_snapshot,
    freeze_snapshot,
)
from rasoat.core.indicators.loading import IndicatorError, collect, load, merge
from rasoat.core.indicators.models import (
    STATUS_LABELS,
    Comparison,
    ComparisonKind,
    Filter,
    FilterOp,
    Indicator,
    IndicatorResult,
    Level,
    Measure,
    MeasureKind,
    PlanSource,
    Status,
    Target,
    TargetOn,
    TargetOp,
    Window,
)
from rasoat.core.indicators.periods import Period, PeriodKind

__all__ = [
    "SNAPSHOT_FORMAT",
    "STATUS_LABELS",
    "Comparison",
    "ComparisonKind",
    "Filter",
    "FilterOp",
    "Indicator",
    "IndicatorError",
    "IndicatorResult",
    "Level",
    "Measure",
    "MeasureKind",
    "Period",
    "PeriodKind",
    "PlanSource",
    "Status",
    "Target",
    "TargetOn",
    "TargetOp",
    "Window",
    "build_snapshot",
    "collect",
    "evaluate",
    "evaluate_history",
    "find_snapshot",
    "freeze_snapshot",
    "load",
    "merge",
]
