"""``rasoat rounds …``: create, open, close, archive, reopen, list, show and progress of survey rounds."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rasoat.core import hookimpl
from rasoat.core.cli_lines import line, say
from rasoat.core.commands.common import (
    JSON_HELP,
    add_data_option,
    command_store,
    default_actor,
    print_json,
    print_table,
)
from rasoat.core.models import ROUND_KINDS
from rasoat.core.problems import both

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the round rules, the form catalogue and cryptography for it would slow every
# command (benchmarks/cli_startup.py).

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")



def split_list(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def local_time(value: Any) -> str:
    from datetime import datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


# --- commands ----------------------------------------------------------------------------------


def cmd_create(args: argparse.Namespace) -> int:
    from rasoat.core.rounds import create_round, describe

    with command_store(args) as store:
        rnd = create_round(
            store,
            args.name,
            args.period,
            split_list(args.forms),
            split_list(args.units),
            kind=args.kind,
            collectors=split_list(args.collectors),
            actor=args.by or default_actor(),
            round_id=args.id,
            counted_states=split_list(args.counted) or None,
        )
    if args.json:
        print_json(describe(rnd))
    else:
        print(rnd.id)
    return 0


def _state_command(action: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from rasoat.core import round_lifecycle, rounds

        actor = args.by or default_actor()
        with command_store(args) as store:
            if action == "reopen":
                rnd = round_lifecycle.reopen_round(store, args.id, args.reason, actor)
            elif action == "open":
                rnd = round_lifecycle.open_round(store, args.id, actor, args.allow_missing_hamlets)
            elif action == "close":
                rnd = round_lifecycle.close_round(store, args.id, actor, args.acknowledge_encrypted)
            else:
                rnd = getattr(round_lifecycle, f"{action}_round")(store, args.id, actor)
        if args.json:
            print_json(rounds.describe(rnd))
        else:
            print(f"{rnd.id}: {both(rounds.STATE_LABELS[rnd.state])}")
        return 0

    return run


def cmd_list(args: argparse.Namespace) -> int:
    from rasoat.core.rounds import STATE_LABELS, describe, parse_period

    with command_store(args) as store:
        rounds = store.list_rounds()
    if args.state:
        rounds = [r for r in rounds if r.state.value == args.state]
    rounds.sort(key=lambda r: (parse_period(r.period)[0], r.created_at), reverse=True)
    if args.json:
        print_json([describe(r) for r in rounds])
        return 0
    print_table(
        [
            "ID",
            "Tên / Name",
            "Loại / Kind",
            "Kỳ / Period",
            "Trạng thái / State",
            "Biểu mẫu / Forms",
            "Đơn vị / Units",
        ],
        [
            [
                r.id,
                r.name,
                r.kind,
                r.period,
                both(STATE_LABELS[r.state]),
                ",".join(r.form_ids),
                ",".join(r.unit_codes),
            ]
            for r in rounds
        ],
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rasoat.core.rounds import describe, get_round, kind_label

    with command_store(args) as store:
        rnd = get_round(store, args.id)
        snapshot = store.get_snapshot(rnd.id)
    data = describe(rnd)
    data["snapshot"] = snapshot
    if args.json:
        print_json(data)
        return 0
    print(f"{rnd.id}  {rnd.name}")
    print(f"  {both(kind_label(rnd.kind))} · {rnd.period} · {data['state_label']}")
    print(f"  {line('label.forms')}: {', '.join(rnd.form_ids)}")
    print(f"  {line('label.units')}: {', '.join(rnd.unit_codes)}")
    print(f"  {line('rounds.counted_states')}: {', '.join(s.value for s in rnd.counted_states)}")
    for h in rnd.history:
        extra = ", ".join(f"{k}={v}" for k, v in h.items() if k not in ("at", "actor", "action"))
        print(f"  {local_time(h['at'])}  {h['actor']}  {h['action']}  {extra}".rstrip())
    return 0


def cmd_progress(args: argparse.Namespace) -> int:
    from rasoat.core.progress import round_progress
    from rasoat.core.rounds import get_round

    with command_store(args) as store:
        report = round_progress(store, get_round(store, args.id))
    if args.json:
        print_json(report)
        return 0
    print_progress(report)
    return 0


def _fmt_pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def print_progress(report: dict[str, Any]) -> None:
    """Per commune, then its hamlets indented; pledges, sites and persons when the round has them."""
    t = report["totals"]
    print(f"{report['round_id']}  {report['name']} ({report['period']}, {report['state']})")
    say("rounds.progress", counted=t["counted"], received=t["received"], covered=t["hamlets_covered"],
        expected=t["hamlets_expected"], pct=_fmt_pct(t["hamlets_pct"]))
    headers = ["Mã / Code", "Đơn vị / Unit", "Bản ghi / Subs", "Xóm / Hamlets"]
    pledge = "households_pledged" in t
    sites = [k for k in ("schools", "enterprises") if k in t]
    census = "persons" in t
    if pledge:
        # over the households of the hamlet list, not the pledge indicator's (F2's own totals): named so
        headers.append("Hộ cam kết / hộ trong danh sách thôn — Pledged / listed households")
    headers += [{"schools": "Trường / Schools", "enterprises": "DN / Enterprises"}[k] for k in sites]
    if census:
        headers.append("Theo dõi / Followed up")
    rows = []

    def ratio(a: Any, b: Any, p: float | None) -> str:
        return f"{a if a is not None else '–'}/{b if b is not None else '–'} ({_fmt_pct(p)})"

    for c in report["communes"]:
        row = [
            c["code"],
            c["name"],
            c["submissions"],
            ratio(c["hamlets_covered"], c["hamlets_expected"], c["hamlets_pct"]),
        ]
        if pledge:
            extra = c["households_pledged"] - c["households_pledged_counted"]
            row.append(
                ratio(c["households_pledged_counted"], c["households"], c["pledged_pct"])
                + (f" +{extra}" if extra else "")
            )
        row += [ratio(c[k]["covered"], c[k]["expected"], c[k]["pct"]) for k in sites]
        if census:
            p = c["persons"]
            row.append(ratio(p["followed_up"], p["roster"], p["pct"]) + f" +{p['new']}")
        rows.append(row)
        for h in c["hamlets"]:
            hrow = ["  " + h["code"], "  " + h["name"], h["submissions"], "✓" if h["covered"] else "✗"]
            if pledge:
                hrow.append(ratio(h["households_pledged"], h["households"], h["pledged_pct"]))
            hrow += [""] * len(sites) + ([""] if census else [])
            rows.append(hrow)
    print_table(headers, rows)
    if pledge and t["hamlets_without_households"]:
        say("rounds.no_households", n=t["hamlets_without_households"])
    for c in report["communes"]:
        for k in sites:
            for s in c[k]["missing"]:
                print(f"{line('rounds.missing')} {k[:-1]}: {c['code']} {s['code']} {s['name']}")


def cmd_rule(args: argparse.Namespace) -> int:
    from rasoat.core.rounds import describe, set_counted_states

    with command_store(args) as store:
        rnd = set_counted_states(store, args.id, split_list(args.states), args.by or default_actor())
    if args.json:
        print_json(describe(rnd))
    else:
        print(f"{rnd.id}: {', '.join(s.value for s in rnd.counted_states)}")
    return 0


def cmd_assign(args: argparse.Namespace) -> int:
    from rasoat.core.rounds import assign_collectors, describe

    with command_store(args) as store:
        rnd = assign_collectors(store, args.id, split_list(args.collectors), args.by or default_actor())
    if args.json:
        print_json(describe(rnd))
    else:
        print(f"{rnd.id}: {', '.join(rnd.collector_ids)}")
    return 0


def cmd_roster(args: argparse.Namespace) -> int:
    """Last year's persons for one commune as the F1 media CSV (personal data: audited)."""
    from rasoat.core.rollforward import persons_media, record_roster_download
    from rasoat.core.rounds import get_round

    actor = args.by or default_actor()
    with command_store(args) as store:
        rnd = get_round(store, args.id)
        data = persons_media(store, rnd, args.commune)
        record_roster_download(store, actor, data, "cli", round_id=rnd.id, output=args.output or "-")
    if args.output:
        Path(args.output).write_bytes(data)
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


# --- parser ------------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser, json_flag: bool = True, by: bool = False) -> None:
    add_data_option(p)
    if json_flag:
        p.add_argument("--json", action="store_true", help=JSON_HELP)
    if by:
        p.add_argument("--by", metavar="USER", help="người thực hiện (ghi nhật ký) / actor for the audit log")


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("rounds", help="đợt rà soát / survey rounds")
    sub = parser.add_subparsers(dest="rounds_command", metavar="ACTION", required=True)

    p = sub.add_parser("create", help="tạo đợt (nháp) / create a round (draft); prints its id")
    p.add_argument("name", help="tên đợt / round name")
    p.add_argument("--period", required=True,
                   help="kỳ / period: 2026, 2026-H1, 2026-Q3, 2026-05, 2026-W07 or 2026-QD28")
    p.add_argument("--forms", required=True, metavar="ID[,ID…]", help="mã biểu mẫu / form ids")
    p.add_argument("--units", required=True, metavar="CODE[,CODE…]", help="mã đơn vị / unit codes")
    p.add_argument("--kind", choices=list(ROUND_KINDS),
                   help="loại đợt (mặc định theo biểu mẫu đầu) / kind (default: from the first form)")
    p.add_argument("--collectors", metavar="USER[,USER…]", help="người thu thập / collector ids or usernames")
    p.add_argument(
        "--counted", metavar="STATE[,STATE…]",
        help="trạng thái được tính / review states counted (default: all but rejected)",
    )
    p.add_argument("--id", help="tự chọn mã đợt / choose the id instead of a generated one")
    _common(p, by=True)
    p.set_defaults(func=cmd_create)

    for action, text in (
        ("open", "mở đợt: biểu mẫu lên điện thoại / open: forms reach the phones"),
        ("close", "đóng đợt, chốt số liệu / close and freeze the snapshot"),
        ("archive", "lưu trữ đợt đã đóng / archive a closed round"),
    ):
        p = sub.add_parser(action, help=text)
        p.add_argument("id", help="mã đợt / round id")
        if action == "open":
            p.add_argument(
                "--allow-missing-hamlets", action="store_true",
                help="mở cả khi có xã chưa có danh sách thôn / open even where a commune has no hamlet list",
            )
        if action == "close":
            p.add_argument(
                "--acknowledge-encrypted", action="store_true",
                help="đóng cả khi còn bản ghi mã hoá chưa tính (ghi vào lịch sử đợt) / close even with "
                "encrypted records not counted (recorded in the round's history)",
            )
        _common(p, by=True)
        p.set_defaults(func=_state_command(action))

    p = sub.add_parser("reopen", help="mở lại đợt đã đóng (ghi nhật ký) / reopen a closed round (audited)")
    p.add_argument("id", help="mã đợt / round id")
    p.add_argument("--reason", required=True, help="lý do / why")
    _common(p, by=True)
    p.set_defaults(func=_state_command("reopen"))

    p = sub.add_parser("list", help="liệt kê đợt / list rounds")
    p.add_argument("--state", choices=["draft", "open", "closed", "archived"],
                   help="chỉ trạng thái này / only this state")
    _common(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="chi tiết và lịch sử một đợt / one round with its history")
    p.add_argument("id", help="mã đợt / round id")
    _common(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("progress", help="tiến độ, độ bao phủ / completeness per commune and hamlet")
    p.add_argument("id", help="mã đợt / round id")
    _common(p)
    p.set_defaults(func=cmd_progress)

    p = sub.add_parser("rule", help="trạng thái duyệt được tính / review states counted in indicators")
    p.add_argument("id", help="mã đợt / round id")
    p.add_argument("--states", required=True, metavar="STATE[,STATE…]",
                   help="trạng thái duyệt / review states, e.g. approved,edited")
    _common(p, by=True)
    p.set_defaults(func=cmd_rule)

    p = sub.add_parser("assign", help="giao người thu thập / assign collectors")
    p.add_argument("id", help="mã đợt / round id")
    p.add_argument("--collectors", required=True, metavar="USER[,USER…]", help="người thu thập / collectors")
    _common(p, by=True)
    p.set_defaults(func=cmd_assign)

    p = sub.add_parser(
        "roster", help="danh sách năm trước của một xã (persons.csv) / last year's persons.csv"
    )
    p.add_argument("id", help="mã đợt / round id")
    p.add_argument("--commune", required=True, help="mã xã / commune code")
    p.add_argument("-o", "--output", metavar="FILE", help="tệp ghi ra / output file")
    _common(p, json_flag=False, by=True)
    p.set_defaults(func=cmd_roster)
