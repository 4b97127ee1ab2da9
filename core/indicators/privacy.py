"""Small-cell protection: a count of persons below commune level between 1 and the threshold (default 3,
``RASOAT_SMALL_CELL_THRESHOLD``) could point at one family in a hamlet ("one person with psychosis in
Xóm 3"). For users without the identity permission (``core.scope.VIEW_PERSONAL``) such a figure is shown
as "< 3": value, numerator, denominator and the previous year's value are withheld, the status stays.

Person indicators are those reading a person register (F1, or any form named in ``PERSON_FORMS``)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from rasoat.core.indicators.loading import collect
from rasoat.core.indicators.models import Indicator, IndicatorResult, Level

DEFAULT_THRESHOLD = 3
PERSON_FORMS = frozenset({"f1_person", "f11_management", "f12_visit", "f13_test"})


def small_cell_threshold() -> int:
    """The threshold in force: ``RASOAT_SMALL_CELL_THRESHOLD`` (an integer ≥ 1), else 3."""
    text = os.environ.get("RASOAT_SMALL_CELL_THRESHOLD", "").strip()
    return int(text) if text.isdigit() and int(text) >= 1 else DEFAULT_THRESHOLD


def person_indicator_ids(indicators: Iterable[Indicator]) -> set[str]:
    return {i.id for i in indicators if any(m.form in PERSON_FORMS for m in i.measures())}


def protect(
    results: Sequence[IndicatorResult], person_ids: set[str], threshold: int | None = None
) -> list[IndicatorResult]:
    """The results with every person count of 1 … threshold − 1 below commune level replaced by
    "< threshold" (``suppressed``)."""
    limit = small_cell_threshold() if threshold is None else threshold
    out = []
    for r in results:
        small = [x for x in (r.numerator, r.denominator) if x is not None and 1 <= x < limit]
        if r.level is Level.hamlet and r.indicator_id in person_ids and small:
            r = r.model_copy(update={
                "value": None, "numerator": None, "denominator": None, "previous_value": None,
                "change": None, "change_pct": None, "compared_value": None, "progress_pct": None,
                "suppressed": f"< {limit}",
            })
        out.append(r)
    return out


def protect_for_viewer(results: Sequence[IndicatorResult], may_see_persons: bool) -> list[IndicatorResult]:
    """``protect`` with the loaded indicators, unless the user may see persons."""
    if may_see_persons:
        return list(results)

    return protect(results, person_indicator_ids(collect()))
