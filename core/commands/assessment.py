"""``rasoat assessment …``: the QĐ 28/2025 yearly classification: officer facts (population, key route),
the computed classes, the sign-off steps (``--as`` names the officer account whose role and units apply)
and the workbook the province sends."""

from __future__ import annotations

import argparse
from collections.abc import Callable
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
from rasoat.core.indicators.periods import vn_today
from rasoat.core.problems import both
from rasoat.core.storage.base import Store
from rasoat.core.units import get_units

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the assessment rules and workbook for it would slow every command
# (benchmarks/cli_startup.py).


def _officer(store: Store, username: str):
    user = store.get_user_by_name(username)
    if user is None or not user.active:
        raise CommandError("command.no_active_account", username=username)
    return user


def _year(args: argparse.Namespace) -> int:
    return args.year or vn_today().year


def _fmt(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".").replace(".", ",")
    return str(value)


def cmd_fact(args: argparse.Namespace) -> int:
    from rasoat.core.assessment import facts, signoff

    with command_store(args) as store:
        if args.as_user:  # as that officer, under the page's rule of who may
            entry = signoff.set_fact(store, _officer(store, args.as_user), _year(args), args.unit, args.fact,
                                     args.value, args.source, args.as_of)
        else:  # the server's operator
            entry = facts.set_fact(store, _year(args), args.unit, args.fact, args.value, args.source,
                                   args.as_of, args.by or default_actor())
    print(f"{args.unit}: {args.fact} = {entry['value']} ({entry['source']}, {entry['as_of']})")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from rasoat.core.assessment.facts import import_facts

    text = Path(args.file).read_text(encoding="utf-8")
    with command_store(args) as store:
        n = import_facts(store, _year(args), text, args.by or default_actor(), {u.code for u in get_units()})
    say("assessment.imported", n=n)
    return 0


def _commune_rows(communes: list[Any], docs: dict[str, dict[str, Any]] | None = None) -> list[list[Any]]:
    from rasoat.core.assessment.rules import class_label
    from rasoat.core.assessment.signoff import state_names

    rows = []
    for c in communes:
        i, r = c.inputs, c.result
        row = [c.code, c.name, both(class_label(r.klass)), _fmt(r.r_pct), _fmt(i.venues.value), _fmt(r.a_pct),
               _fmt(i.plants.value), _fmt(i.area_m2.value), _fmt(i.on_route.value),
               "; ".join(both(f.message) for f in r.flags)]
        if docs is not None:
            row.insert(3, both(state_names(docs[c.code]["state"])))
        rows.append(row)
    return rows


HEADERS = ["Mã / Code", "Xã / Commune", "Loại / Class", "R %", "P", "A %", "Cây / Plants", "m²",
           "Tuyến / Route", "Cần xem xét / Review"]


def _assessment_json(c: Any) -> dict[str, Any]:
    return {
        "code": c.code, "name": c.name, "class": c.result.klass, "r_pct": c.result.r_pct,
        "a_pct": c.result.a_pct, "bands": c.result.bands, "drug_free": c.result.drug_free,
        "conditions": c.result.conditions, "f10_class": c.f10_class,
        "inputs": {
            name: {"value": f.value, "source": both(f.source), "records": f.records, "typed": f.typed,
                   "disagrees": f.disagrees, "unknown_reason": both(f.unknown_reason)}
            for name, f in c.inputs.items()
        },
        "flags": [{"code": f.code, "message": both(f.message)} for f in c.result.flags],
    }


def cmd_show(args: argparse.Namespace) -> int:
    from rasoat.core.assessment.compute import assess_communes, assess_province
    from rasoat.core.assessment.rules import INPUT_LABELS, PROVINCE_LABELS
    from rasoat.core.scope import require_unit

    registry = get_units()
    unit = registry.require(args.unit)
    with command_store(args) as store:
        if args.as_user:
            require_unit(_officer(store, args.as_user), unit.code)
        if unit.level == "province":
            pa = assess_province(store, _year(args), unit.code, registry)
            communes, province = pa.communes, pa.result
        elif unit.level == "commune":
            communes, province = assess_communes(store, _year(args), [unit.code], registry), None
        else:
            raise CommandError("command.province_or_commune", code=unit.code)
    if args.json:
        out: dict[str, Any] = {"year": _year(args), "unit": unit.code,
                               "communes": [_assessment_json(c) for c in communes]}
        if province is not None:
            out["province"] = {"class": province.klass, "criteria": province.criteria, "met": province.met,
                               "values": province.values, "drug_free": province.drug_free,
                               "flags": [both(f.message) for f in province.flags]}
        print_json(out)
        return 0
    if unit.level == "commune":
        [c] = communes
        for name, f in c.inputs.items():
            typed = f" · F10: {_fmt(f.typed)}{' ≠' if f.disagrees else ''}" if f.typed is not None else ""
            why = f" ({both(f.unknown_reason)})" if f.value is None else ""
            print(f"{both(INPUT_LABELS[name])}: {_fmt(f.value)}{why} — {both(f.source)}{typed}")
    print_table(HEADERS, _commune_rows(communes))
    if province is not None:
        say("assessment.province", name=unit.name, klass=PROVINCE_LABELS[province.klass], met=province.met)
    return 0


def _step(action: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from rasoat.core.assessment import signoff

        with command_store(args) as store:
            user = _officer(store, args.as_user)
            year = _year(args)
            if action == "propose":
                doc = signoff.propose(store, user, year, args.unit, args.comment or "")
            elif action == "accept":
                doc = signoff.review(store, user, year, args.unit, accept=True)
            elif action == "send-back":
                doc = signoff.review(store, user, year, args.unit, accept=False, reason=args.reason)
            elif action == "approve":
                doc = signoff.approve(store, user, year, args.unit)
            else:
                doc = signoff.reopen(store, user, year, args.unit, args.reason)
        print(f"{args.unit}: {both(signoff.state_names(doc['state']))}")
        return 0

    return run


def cmd_status(args: argparse.Namespace) -> int:
    from rasoat.core.assessment import signoff

    with command_store(args) as store:
        user = _officer(store, args.as_user)
        st = signoff.province_status(store, user, _year(args), args.unit)
    if args.json:
        print_json({
            "province": st["province"], "year": st["year"], "state": st["list"]["state"],
            "deadline": st["deadline"], "by_state": st["by_state"],
            "communes": [{**_assessment_json(r["assessment"]), "state": r["signoff"]["state"],
                          "comment": r["signoff"].get("comment"), "reason": r["signoff"].get("reason"),
                          "changed": {k: list(v) for k, v in r["changed"].items()}} for r in st["rows"]],
        })
        return 0
    say("assessment.status", name=st["name"], year=st["year"], state=signoff.state_names(st["list"]["state"]),
        due=st["deadline"].strftime("%d/%m/%Y"))
    print(" · ".join(f"{both(signoff.state_names(s))}: {n}" for s, n in st["by_state"].items()))
    docs = {r["assessment"].code: r["signoff"] for r in st["rows"]}
    print_table(HEADERS[:3] + ["Trạng thái / State"] + HEADERS[3:],
                _commune_rows([r["assessment"] for r in st["rows"]], docs))
    from rasoat.core.assessment.rules import INPUT_LABELS, PROVINCE_LABELS

    if st["province_changed"]:
        then, now = (PROVINCE_LABELS[k] for k in st["province_changed"])
        say("assessment.province_changed", then=then, now=now)

    for r in st["rows"]:
        for name, (then, now) in r["changed"].items():
            what = INPUT_LABELS.get(name, ("Phân loại", "Class"))
            say("assessment.changed", code=r["assessment"].code, what=what, name=name, then=_fmt(then),
                now=_fmt(now))
    return 0


def cmd_workbook(args: argparse.Namespace) -> int:
    from rasoat.core.assessment.workbook import write_workbook

    with command_store(args) as store:
        user = _officer(store, args.as_user)
        write_workbook(store, user, _year(args), args.unit, args.output, prepared_by=args.prepared_by)
    print(args.output)
    return 0


def _common(p: argparse.ArgumentParser, officer: bool = False, by: bool = False) -> None:
    p.add_argument("--year", type=int, help="năm đánh giá (15/12 năm trước → 14/12) / assessment year")
    if officer:
        p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME",
                       help="tài khoản cán bộ thực hiện / the officer account acting")
    if by:
        p.add_argument("--by", help="người thực hiện (nhật ký) / actor for the audit log")
    add_data_option(p)


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "assessment", help="đánh giá, phân loại địa bàn (QĐ 28/2025) / drug-area assessment (QĐ 28/2025)"
    )
    sub = parser.add_subparsers(dest="assessment_command", metavar="ACTION", required=True)

    for fact, text in (("population", "nhân khẩu hiện đang cư trú / current residents"),
                       ("route", "nằm trên tuyến trọng điểm (có/không) / on a key route (yes/no)")):
        p = sub.add_parser(fact, help=text)
        fsub = p.add_subparsers(dest=f"{fact}_command", metavar="ACTION", required=True)
        s = fsub.add_parser("set", help="nhập một đơn vị / enter one unit")
        s.add_argument("unit", help="mã đơn vị / unit code")
        s.add_argument("value", help="giá trị / value")
        s.add_argument("--source", required=True, help="nguồn số liệu / where the figure comes from")
        s.add_argument("--as-of", required=True, help="ngày của số liệu YYYY-MM-DD / date of the figure")
        s.add_argument("--as", dest="as_user", metavar="USERNAME",
                       help="với vai trò, địa bàn của cán bộ này / as this officer (role and units)")
        _common(s, by=True)
        s.set_defaults(func=cmd_fact, fact="on_route" if fact == "route" else fact)
        if fact == "population":
            s = fsub.add_parser("import", help="nhập từ CSV unit,population,source,as_of[,on_route] / CSV")
            s.add_argument("file", help="tệp CSV / CSV file")
            _common(s, by=True)
            s.set_defaults(func=cmd_import)

    p = sub.add_parser("show", help="kết quả tính từ sổ / classes computed from the registers")
    p.add_argument("unit", help="mã tỉnh hoặc xã / province or commune code")
    p.add_argument("--as", dest="as_user", metavar="USERNAME", help="trong phạm vi của / within the scope of")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    _common(p)
    p.set_defaults(func=cmd_show)

    for action, text, extra in (
        ("propose", "xã đề xuất kết quả / the commune proposes", "--comment"),
        ("accept", "tỉnh chấp nhận / the province accepts", None),
        ("send-back", "tỉnh trả lại (có lý do) / the province sends back", "--reason"),
        ("approve", "tỉnh phê duyệt danh sách (khoá) / approve and lock the province's list", None),
        ("reopen", "mở lại danh sách đã phê duyệt (có lý do) / reopen an approved list", "--reason"),
    ):
        p = sub.add_parser(action, help=text)
        p.add_argument("unit", help="mã xã (mã tỉnh cho approve, reopen) / commune code (province code)")
        if extra:
            p.add_argument(extra, required=extra == "--reason", default="",
                           help="ghi chú / comment" if extra == "--comment" else "lý do / reason")
        _common(p, officer=True)
        p.set_defaults(func=_step(action))

    p = sub.add_parser("status", help="danh sách xã theo trạng thái, hạn 20/12 / communes by state, deadline")
    p.add_argument("unit", help="mã tỉnh / province code")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    _common(p, officer=True)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("workbook", help="bảng tổng hợp gửi Bộ Công an (.xlsx) / the province's workbook")
    p.add_argument("unit", help="mã tỉnh / province code")
    p.add_argument("-o", "--output", required=True, help="tệp Excel / Excel file")
    p.add_argument("--prepared-by", default="", help="người lập biểu / prepared by")
    _common(p, officer=True)
    p.set_defaults(func=cmd_workbook)

