"""``rasoat indicators``: compute every indicator for a unit (and the units of a level inside it).

    rasoat indicators --unit 19 --level commune --period 2026      # Thái Nguyên and all its communes
    rasoat indicators --unit "Phượng Tiến" --json                   # a name works when it is unique
    rasoat indicators --definitions                                  # what is defined, by which plugin
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import say
from rasoat.core.commands.common import (
    JSON_HELP,
    CommandError,
    add_data_option,
    command_store,
    print_json,
    print_table,
)
from rasoat.core.indicators.loading import collect
from rasoat.core.indicators.models import reported_text, uncounted_text
from rasoat.core.models import utcnow
from rasoat.core.problems import both
from rasoat.core.units import get_units

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the indicator engine and openpyxl for it would slow every command
# (benchmarks/cli_startup.py).


def _fmt(x: float | None, label: str = "") -> str:
    if x is None:
        return "—"
    text = f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"
    return f"{text} {label}".strip()


def _change(r: Any) -> str:
    if r.change is None:
        return ""
    out = f"{r.change:+,.1f}".replace(".0", "") if float(r.change).is_integer() else f"{r.change:+,.1f}"
    if r.change_pct is not None:
        out += f" ({r.change_pct:+.1f} %)"
    return out


def _current_year() -> str:
    from rasoat.core.excel.cells import to_vn_naive

    return str(to_vn_naive(utcnow()).year)


def _resolve_unit(text: str) -> str:
    return get_units().resolve(text).code


def run(args: argparse.Namespace) -> int:
    from rasoat.core.indicators.engine import evaluate

    indicators = collect()
    if args.indicator:
        unknown = sorted(set(args.indicator) - {i.id for i in indicators})
        if unknown:
            raise CommandError("command.no_indicator", ids=', '.join(unknown))
        indicators = [i for i in indicators if i.id in set(args.indicator)]
    if args.definitions:
        return _definitions(indicators, args.json)


    unit = _resolve_unit(args.unit) if args.unit else None
    with command_store(args) as store:
        progress = _progress_bar(args.json)
        try:
            results = evaluate(
                store,
                args.period or _current_year(),
                units=[unit] if unit else None,
                level=args.level,
                indicators=indicators,
                round_id=args.round,
                progress=progress.update if progress else None,
            )
        except ValueError as exc:
            raise CommandError.with_text("command.refused", str(exc)) from exc
        finally:
            if progress:
                progress.close()
    if args.json:
        print_json([r.model_dump(mode="json") for r in results])
        return 0
    if not results:
        say("indicators.no_data", file=sys.stderr)
        return 0
    rows = [
        [
            f"{r.unit_code} {r.unit_name}" if r.unit_name != r.unit_code else r.unit_code,
            f"{r.name_vi} / {r.name_en}" if r.name_en and r.name_en != r.name_vi else r.name_vi,
            both(uncounted_text(r.uncounted_encrypted)) if r.uncounted_encrypted
            else _fmt(r.value, r.unit_label),
            r.target_text or "",
            r.status_label,
            reported_text(r),
            _change(r),
        ]
        for r in results
    ]
    print_table(
        ["Đơn vị / Unit", "Chỉ tiêu / Indicator", "Giá trị / Value", "Mục tiêu / Target",
         "Đánh giá / Status", "Đã báo cáo / Reported", "Thay đổi / Change"],
        rows,
        narrow=[0, 1, 2, 3, 4, 5],
    )
    if any(r.uncounted_encrypted for r in results):
        print("Bản ghi mã hoá chưa tính: 'rasoat keys unlock' tính và giữ trường thống kê của chúng /")
        print("Encrypted records not counted: 'rasoat keys unlock' derives and keeps their statistical "
              "fields")
    return 0


def _progress_bar(quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(desc="Đọc bản ghi / Reading submissions", unit=" bản ghi", file=sys.stderr, leave=False)


def _definitions(indicators: list[Any], as_json: bool) -> int:
    if as_json:
        print_json([i.model_dump(mode="json", exclude_defaults=True) for i in indicators])
        return 0
    rows = [
        [
            i.id,
            i.name_vi,
            i.level.value,
            i.target.text() if i.target else "",
            (i.source.document or i.source.ref or "") if i.source else "",
        ]
        for i in indicators
    ]
    headers = ["Mã / Id", "Chỉ tiêu / Indicator", "Cấp / Level", "Mục tiêu / Target", "Nguồn / Source"]
    print_table(headers, rows)
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "indicators",
        help="tính các chỉ tiêu / compute indicators",
        description="Tính chỉ tiêu cho một đơn vị và các đơn vị cấp dưới / "
        "Compute indicators for a unit and the units of a level inside it",
    )
    parser.add_argument("--unit", metavar="CODE", help="mã hoặc tên đơn vị / unit code or name")
    parser.add_argument(
        "--level",
        choices=["province", "commune", "hamlet"],
        help="cả các đơn vị cấp này bên trong --unit (không có --unit: mọi đơn vị cấp này có số liệu) / "
        "also every unit of this level inside --unit (without --unit: every such unit with data)",
    )
    parser.add_argument(
        "--period",
        help="kỳ (mặc định năm nay) / period (default this year): "
        "2026, 2026-H1, 2026-Q2, 2026-03, 2026-W07, 2026-QD28",
    )
    parser.add_argument("--round", metavar="ID", help="chỉ tính bản ghi của đợt này / only this round's data")
    parser.add_argument(
        "--indicator", action="append", metavar="ID", help="chỉ tiêu cần tính (lặp lại được) / repeatable"
    )
    parser.add_argument(
        "--definitions", action="store_true", help="liệt kê định nghĩa chỉ tiêu / list the definitions"
    )
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(parser)
    parser.set_defaults(func=run)
