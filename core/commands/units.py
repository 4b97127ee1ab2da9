"""``rasoat units``: look up administrative units by name (no diacritics needed) or by code."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.commands.common import JSON_HELP, CommandError, add_data_option, print_json, print_table
from rasoat.core.units import LEVELS, get_units


def _unit_dict(unit: Any) -> dict[str, Any]:
    return asdict(unit)  # every field, nulls included, so the JSON shape does not depend on the level


def run_search(args: argparse.Namespace) -> int:
    units = get_units()
    if args.within and args.within not in units:
        raise CommandError(_unknown(units, args.within))
    found = units.search(args.name, level=args.level, within=args.within, limit=args.limit)
    if args.json:
        print_json([{**_unit_dict(u), "full_name": units.full_name(u.code)} for u in found])
        return 0
    if not found:
        raise CommandError(f"không tìm thấy '{args.name}' / nothing matches '{args.name}'")
    print_table(
        ["Mã / Code", "Tên / Name", "Cấp / Level", "Thuộc / In"],
        [[u.code, u.name, u.level, ", ".join(a.name for a in units.ancestors(u.code))] for u in found],
    )
    return 0


def _unknown(units: Any, code: str) -> str:
    try:
        units.require(code)
    except KeyError as exc:
        return str(exc)
    return ""


def run_show(args: argparse.Namespace) -> int:
    units = get_units()
    unit = units.get(args.code)
    if unit is None:
        raise CommandError(_unknown(units, args.code))
    children = units.children(unit.code)
    info = {
        **_unit_dict(unit),
        "full_name": units.full_name(unit.code),
        "era": units.era,
        "data_version": units.data_version,
        "ancestors": [{"code": a.code, "name": a.name, "level": a.level} for a in units.ancestors(unit.code)],
        "children": len(children),
        "descendants": len(units.descendants(unit.code)),
    }
    if args.json:
        print_json(info)
        return 0
    rows: list[tuple[str, object]] = [
        ("Mã / Code", unit.code),
        ("Tên / Name", unit.name),
        ("Cấp / Level", f"{unit.level} ({unit.division_type})"),
        ("Thuộc / In", " → ".join(f"{a.name} ({a.code})" for a in units.ancestors(unit.code)) or "-"),
        ("Đơn vị trực thuộc / Children", len(children)),
        ("Danh mục / Units of", f"{units.era}, {units.data_version}"),
    ]
    if unit.level == "hamlet":
        rows += [("Số hộ / Households", unit.households if unit.households is not None else "-"),
                 ("Nguồn / Source", unit.source)]
    width = max(len(str(r[0])) for r in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("units", help="tra cứu đơn vị hành chính / look up administrative units")
    sub = parser.add_subparsers(dest="units_command", metavar="ACTION", required=True)

    search = sub.add_parser("search", help="tìm theo tên, không cần dấu / find by name")
    search.add_argument("name", help="tên cần tìm / name to look for")
    search.add_argument("--level", choices=LEVELS, help="cấp / level")
    search.add_argument("--within", metavar="CODE", help="chỉ trong đơn vị này / only inside this unit")
    search.add_argument("--limit", type=int, default=20, help="tối đa / at most this many")
    search.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(search)
    search.set_defaults(func=run_search)

    show = sub.add_parser("show", help="xem một đơn vị theo mã / show one unit by code")
    show.add_argument("code", help="mã đơn vị / unit code")
    show.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(show)
    show.set_defaults(func=run_show)
