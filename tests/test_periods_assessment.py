"""ISO weeks and the QĐ 28/2025 assessment year (15/12 → 14/12) are periods wherever a period is accepted:
the one parser (core.indicators.periods), rounds, and the indicator engine's windows and comparisons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from indicators_support import C1, H11, add, closed_round, local_noon, run
from rasoat.core.indicators.models import Indicator
from rasoat.core.indicators.periods import Period, weeks_in_year
from rasoat.core.rounds import RoundError, make_round_id, parse_period, period_year
from rasoat.core.storage.embedded import EmbeddedStore


@pytest.mark.parametrize(
    "text, canonical, start, end, previous",
    [
        ("2026-QD28", "2026-QD28", "2025-12-15", "2026-12-15", "2025-QD28"),
        ("2026qd28", "2026-QD28", "2025-12-15", "2026-12-15", "2025-QD28"),
        ("2026-W07", "2026-W07", "2026-02-09", "2026-02-16", "2026-W06"),
        ("2026-W1", "2026-W01", "2025-12-29", "2026-01-05", "2025-W52"),
        ("2026-W53", "2026-W53", "2026-12-28", "2027-01-04", "2026-W52"),
        ("2021-W01", "2021-W01", "2021-01-04", "2021-01-11", "2020-W53"),
    ],
)
def test_weeks_and_assessment_years(text: str, canonical: str, start: str, end: str, previous: str) -> None:
    p = Period.parse(text)
    assert (str(p), p.start.isoformat(), p.end.isoformat(), str(p.previous())) == (
        canonical, start, end, previous
    )
    assert Period.parse(str(p)) == p


def test_the_assessment_year_starts_at_local_midnight_of_15_december() -> None:
    start, end = Period.parse("2026-QD28").utc_bounds()
    assert start == datetime(2025, 12, 14, 17, tzinfo=UTC) and end == datetime(2026, 12, 14, 17, tzinfo=UTC)
    assert Period.parse("2026-QD28").contains_day("2025-12-15")
    assert not Period.parse("2026-QD28").contains_day("2026-12-15")


def test_week_53_compares_with_week_52_of_a_short_year() -> None:
    assert weeks_in_year(2026) == 53 and weeks_in_year(2025) == 52
    assert str(Period.parse("2026-W53").same_in_year(2025)) == "2025-W52"
    assert str(Period.parse("2026-QD28").same_in_year(2023)) == "2023-QD28"


@pytest.mark.parametrize("bad", ["2025-W53", "2026-W00", "2026-W54", "2026-QD27", "2026-D28"])
def test_impossible_weeks_are_refused_in_both_languages(bad: str) -> None:
    with pytest.raises(ValueError, match="kỳ không hợp lệ .*invalid period .*2026-W07, 2026-QD28"):
        Period.parse(bad)
    with pytest.raises(RoundError, match="Invalid period"):
        parse_period(bad)


def test_rounds_take_the_new_periods() -> None:
    assert [d.isoformat() for d in parse_period("2026-QD28")] == ["2025-12-15", "2026-12-14"]
    assert [d.isoformat() for d in parse_period("2026-W07")] == ["2026-02-09", "2026-02-15"]
    assert period_year("2026-QD28") == 2026
    rid = make_round_id("Đánh giá địa bàn 2026", "2026-QD28", ["05563"])
    assert rid == "r-2026-qd28-danh-gia-dia-ban-05563"


COUNT = Indicator.model_validate({
    "id": "f9_reports", "name_vi": "Số báo cáo vụ việc", "name_en": "Case reports",
    "numerator": {"kind": "count", "form": "f9_case"}, "comparison": "previous", "period": "qd28",
})


def test_indicators_count_in_the_assessment_year_and_compare_with_the_last(tmp_path) -> None:
    store = EmbeddedStore(tmp_path)
    try:
        # 14/12/2025 belongs to the 2025 year; 15/12/2025 and 14/12/2026 to 2026; 15/12/2026 to 2027.
        for day in ("2025-12-14", "2025-12-15", "2026-06-01", "2026-12-14", "2026-12-15"):
            add(store, "f9_case", H11, {"offenders_arrested": 1}, received=local_noon(day))
        res = run(store, "2026-QD28", indicators=[COUNT])
        r = res[(C1, "f9_reports")]
        assert (r.value, r.period, r.previous_period, r.previous_value) == (3, "2026-QD28", "2025-QD28", 1)
        # Monday 1 June 2026 opens ISO week 23; the week before has no data (None, not 0).
        w23 = run(store, "2026-W23", indicators=[COUNT])[(C1, "f9_reports")]
        assert (w23.value, w23.previous_period, w23.previous_value) == (1, "2026-W22", None)
        closed_round(store, "r-2025-qd28", "2025-QD28", ["f9_case"])
        assert Period.parse(store.get_round("r-2025-qd28").period).start.isoformat() == "2024-12-15"
    finally:
        store.close()


def test_web_filters_take_weeks_and_the_assessment_year(tmp_path) -> None:
    from web_support import http_login, start_site, stop_site

    site = start_site(tmp_path / "data")
    try:
        client = http_login(site.url, "tinh.thainguyen")
        for period in ("2026-QD28", "2026-W07"):
            page = client.get("/indicators", params={"period": period, "unit": "19"})
            assert page.status_code == 200 and f'value="{period}"' in page.text
        bad = client.get("/indicators", params={"period": "2026-W60", "unit": "19"})
        assert "2026-W07, 2026-QD28" in bad.text  # the refusal names the accepted forms
        report = client.get("/exports/report", params={"period": "2026-QD28", "unit": "19"})
        assert report.status_code == 200 and report.content[:2] == b"PK"
    finally:
        stop_site(site)
