"""Inline SVG drawn on the server: coverage bars and the indicator bar chart (no JavaScript, no library).

Colours come from CSS classes (``web.css``), so the strict Content-Security-Policy needs no inline style.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

STATUS_CLASS = {
    "met": "st-met",
    "not_met": "st-not-met",
    "on_track": "st-on-track",
    "no_data": "st-no-data",
    "no_target": "st-no-target",
    "unknown": "st-unknown",
}


def bar(pct: float | None, label: str = "") -> str:
    """A 100-wide coverage bar; ``pct`` None draws an empty (grey) bar."""
    value = 0.0 if pct is None else max(0.0, min(100.0, float(pct)))
    level = "hi" if value >= 80 else "mid" if value >= 50 else "lo"
    title = f"<title>{escape(label)}</title>" if label else ""
    return (
        f'<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label or f"{value:g} %")}">{title}'
        f'<rect class="bar-bg" x="0" y="0" width="100" height="10" rx="2"/>'
        f'<rect class="bar-fg bar-{level}" x="0" y="0" width="{value:.1f}" height="10" rx="2"/></svg>'
    )


@dataclass(frozen=True)
class ChartRow:
    label: str
    value: float | None
    status: str
    text: str  # the value as shown ("72,5 %")
    key: str = ""  # what the bar stands for (a unit code, a period), as ``data-key`` for readers and tests


VALUE_CHAR_PX = 8.5  # a character of .chart's 13px font (a digit of DejaVu Sans: 8.3), in viewBox units


def _short(text: str, n: int = 20) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def bar_chart(
    rows: Sequence[ChartRow], target: float | None = None, title: str = "", target_label: str = ""
) -> str:
    """Horizontal bars, one per row (a unit, a period), coloured by status, with the target as a dashed
    line. Every row is drawn (a long chart scrolls in its box on the page, never loses rows); each row is a
    ``g.chart-row`` with ``data-key`` (and ``data-value`` when it has one) so what is drawn can be read
    back."""
    if not rows:
        return ""
    # the value column as wide as its longest text ("102 người", "1.234,5 persons"): a fixed width cut
    # the end of a long figure off at the chart's edge
    value_w = max(76, 12 + VALUE_CHAR_PX * max(len(r.text) for r in rows))
    label_w, plot_w, row_h, top = 150, 264, 22, 28 if target is not None else 8
    width = label_w + plot_w + value_w
    height = top + row_h * len(rows) + 8
    values = [r.value for r in rows if r.value is not None]
    top_value = max([*values, target or 0, 0])
    low = min([*values, target or 0, 0])
    span = (top_value - low) or 1.0
    span *= 1.08

    def x(v: float) -> float:
        return label_w + (v - low) / span * plot_w

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    zero = x(0)
    for i, r in enumerate(rows):
        y = top + i * row_h
        value = "" if r.value is None else f' data-value="{r.value:g}"'
        parts.append(
            f'<g class="chart-row" data-key="{escape(r.key)}"{value}>'
            f'<text class="chart-label" x="{label_w - 6}" y="{y + 15}" text-anchor="end">'
            f"{escape(_short(r.label))}</text>"
        )
        if r.value is not None:
            x0, x1 = sorted((zero, x(r.value)))
            css = STATUS_CLASS.get(r.status, "st-no-data")
            parts.append(
                f'<rect class="chart-bar {css}" x="{x0:.1f}" y="{y + 3}" '
                f'width="{max(x1 - x0, 1):.1f}" height="{row_h - 6}" rx="2"><title>{escape(r.label)}: '
                f"{escape(r.text)}</title></rect>"
            )
        parts.append(
            f'<text class="chart-value" x="{label_w + plot_w + 6}" y="{y + 15}">{escape(r.text)}</text></g>'
        )
    parts.append(
        f'<line class="chart-axis" x1="{zero:.1f}" y1="{top - 2}" x2="{zero:.1f}" y2="{height - 6}"/>'
    )
    if target is not None:
        tx = x(target)
        parts.append(
            f'<line class="chart-target" x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{height - 6}"/>'
            f'<text class="chart-target-label" x="{tx:.1f}" y="{top - 10}" text-anchor="middle">'
            f"{escape(target_label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
