"""``rasoat units``: look up administrative units by name (no diacritics needed) or by code, and load the
registers of hamlets, schools, enterprises and industrial zones per commune (``core.unit_lists``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import say
from rasoat.core.commands.common import (
    JSON_HELP,
    CommandError,
    add_data_option,
    command_store,
    default_actor,
    print_json,
    print_table,
)
from rasoat.core.problems import both
from rasoat.core.units import LEVELS, get_units

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the unit-list importer and openpyxl for it would slow every command
# (benchmarks/cli_startup.py).

LIST_KINDS = ("hamlets", "schools", "enterprises", "zones")  # core.unit_lists.KINDS, without loading it


def _unit_dict(unit: Any) -> dict[str, Any]:
    return asdict(unit)  # every field, nulls included, so the JSON shape does not depend on the level


def _registry(args: argparse.Namespace) -> Any:
    """The data directory's registry (with the hamlet lists loaded there), else the plugins' alone: a
    lookup needs no data directory."""
    from rasoat.core.datadir import NotADataDirectory
    from rasoat.core.unit_lists import units_for

    try:
        with command_store(args) as store:
            return units_for(store)
    except NotADataDirectory:
        return get_units()


def run_search(args: argparse.Namespace) -> int:
    units = _registry(args)
    if args.within:
        units.require(args.within)  # an unknown code is refused as unknown (UnknownUnit)
    found = units.search(args.name, level=args.level, within=args.within, limit=args.limit)
    if args.json:
        print_json([{**_unit_dict(u), "full_name": units.full_name(u.code)} for u in found])
        return 0
    if not found:
        raise CommandError("command.nothing_matches", name=args.name)
    print_table(
        ["Mã / Code", "Tên / Name", "Cấp / Level", "Thuộc / In"],
        [[u.code, u.name, u.level, ", ".join(a.name for a in units.ancestors(u.code))] for u in found],
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    units = _registry(args)
    unit = units.require(args.code)
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


def run_template(args: argparse.Namespace) -> int:
    from rasoat.core.unit_lists import template

    out = Path(args.output or f"mau-{args.kind}.xlsx")
    out.write_bytes(template(args.kind, "csv" if out.suffix.lower() == ".csv" else "xlsx"))
    print(out)
    return 0


def _preview_lines(pv: Any) -> list[str]:
    lines = []
    for c in pv.changes:
        lines.append(f"{c.commune} {c.name}: +{len(c.added)} thêm/added, {len(c.renamed)} đổi tên/renamed, "
                     f"-{len(c.removed)} bỏ/removed, {c.unchanged} giữ nguyên/unchanged "
                     f"(trước / before: {both(c.before)})")
        lines += [f"  + {code} {name}" for code, name in c.added]
        lines += [f"  ~ {code} {old} → {new}" for code, old, new in c.renamed]
        lines += [f"  - {code} {name}" for code, name in c.removed]
    return lines


def run_import(args: argparse.Namespace) -> int:
    from rasoat.core import scope
    from rasoat.core.unit_lists import UnitListError, apply, preview, read_file

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CommandError("command.cannot_read", path=path, reason=exc.strerror or exc) from exc
    with command_store(args) as store:
        actor, units = default_actor(), None
        if args.as_user:
            user = store.get_user_by_name(args.as_user)
            if user is None or not user.active:
                raise CommandError("command.no_account", username=args.as_user)
            scope.require(user, scope.MANAGE_UNIT_LISTS)
            actor = user.username
            units = None if scope.allowed_units(user) is None else list(user.unit_codes)
        try:
            pv = preview(store, read_file(store, args.kind, data, path.name, units))
            info = None if args.preview else apply(store, pv, actor)
        except UnitListError as exc:
            print("\n".join(str(p) for p in exc.problems), file=sys.stderr)
            say("units.nothing_loaded", n=len(exc.problems), file=sys.stderr)
            return 1
    if args.json:
        print_json({"changes": [asdict(c) for c in pv.changes], "applied": info})
        return 0
    print("\n".join(_preview_lines(pv)))
    if info is None:
        say("units.not_applied")
    else:
        say("units.loaded", version=info["version"], rows=info["rows"], communes=len(info["communes"]),
            sha256=info["sha256"][:12])
    return 0


def run_versions(args: argparse.Namespace) -> int:
    from rasoat.core.unit_lists import versions

    with command_store(args) as store:
        found = versions(store, args.kind)
    if args.json:
        print_json(found)
        return 0
    print_table(
        ["Phiên bản / Version", "Lúc / At", "Người nạp / By", "Tệp / File", "Dòng / Rows", "Xã / Communes",
         "SHA-256"],
        [[v["version"], v["at"][:19], v["actor"], v["source"], v["rows"], ", ".join(v["communes"]),
          v["sha256"][:12]] for v in found],
    )
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

    tpl = sub.add_parser("template", help="tải mẫu danh sách (.xlsx hoặc .csv) / write a list template")
    tpl.add_argument("kind", choices=LIST_KINDS, help="danh sách / list")
    tpl.add_argument("-o", "--output", metavar="FILE", help="tệp ghi ra (.xlsx, .csv) / output file")
    add_data_option(tpl)  # unused: the template is the same everywhere, but every command takes --data
    tpl.set_defaults(func=run_template)

    imp = sub.add_parser(
        "import", help="nạp danh sách thôn, trường, doanh nghiệp, khu công nghiệp / load a unit list"
    )
    imp.add_argument("kind", choices=LIST_KINDS, help="danh sách / list")
    imp.add_argument("file", help="tệp .xlsx hoặc .csv theo mẫu / a filled template")
    imp.add_argument("--preview", action="store_true",
                     help="chỉ xem thay đổi, không áp dụng / show the changes, apply nothing")
    imp.add_argument("--as", dest="as_user", metavar="USERNAME",
                     help="nạp với quyền của cán bộ này / load with this officer's units")
    imp.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(imp)
    imp.set_defaults(func=run_import)

    ver = sub.add_parser("versions", help="các phiên bản đã nạp / versions loaded")
    ver.add_argument("kind", choices=LIST_KINDS, help="danh sách / list")
    ver.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(ver)
    ver.set_defaults(func=run_versions)
