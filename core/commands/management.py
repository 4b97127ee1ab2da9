"""``rasoat management …``: Decree 105/2021 management records: the monthly lists of a commune (terms
ending, residence checks not done, moved persons and their transfer note) and the terms in force."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import say
from rasoat.core.commands.common import (
    JSON_HELP,
    CommandError,
    add_data_option,
    add_settings_option,
    command_store,
    print_json,
    print_table,
)
from rasoat.core.indicators.periods import vn_today
from rasoat.core.units import get_units

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the follow-up and management registers for it would slow every command
# (benchmarks/cli_startup.py).


def _as_of(args: argparse.Namespace) -> date:
    try:
        return date.fromisoformat(args.as_of) if args.as_of else vn_today()
    except ValueError:
        raise CommandError("command.bad_date", date=args.as_of) from None


def cmd_lists(args: argparse.Namespace) -> int:
    from rasoat.core.audit import record_view
    from rasoat.core.followup import overdue
    from rasoat.core.identities import person_names
    from rasoat.core.management import monthly_lists, records
    from rasoat.core.scope import VIEW_PERSONAL, can, require_unit

    as_of = _as_of(args)
    with command_store(args) as store:
        user = store.get_user_by_name(args.as_user)
        if user is None or not user.active:
            raise CommandError("command.no_account", username=args.as_user)
        require_unit(user, args.commune)
        units = sorted(get_units().expand([args.commune]))
        lists = monthly_lists(records(store, units), as_of)
        late = overdue(store, units, lists.month)  # the persons list's answer, as the web pages show it
        names = person_names(store, units) if can(user, VIEW_PERSONAL) else {}
        record_view(
            store,
            user.username,
            "view.management",
            filters={"commune": args.commune},
            count=len(lists.ending) + len(late) + len(lists.moved),
            via="cli",
        )

    def who(key: str) -> str:
        return names.get(key, "")

    if lists.unreadable:
        say("management.unreadable", n=lists.unreadable, file=sys.stderr)
    if args.json:
        print_json(
            {
                "month": lists.month,
                "unreadable": lists.unreadable,
                "ending": [
                    {"person_key": r.person_key, "name": who(r.person_key), "end": r.end, "days_left": left}
                    for r, left in lists.ending
                ],
                "checks_missing": [
                    {"person_key": f.entity.uuid, "name": who(f.entity.uuid), "last_visit": f.last_visit}
                    for f in late
                ],
                "moved": [
                    {
                        "person_key": r.person_key,
                        "name": who(r.person_key),
                        "moved": r.moved[0] if r.moved else None,
                        "to": r.moved[1] if r.moved else "",
                        "transfer_due": due,
                        "overdue": overdue,
                        "transfer": r.transfer,
                    }
                    for r, due, overdue in lists.moved
                ],
            }
        )
        return 0
    say("management.ending", day=f"{as_of:%d/%m/%Y}")
    print_table(
        ["Mã / Key", "Họ tên / Name", "Kết thúc / Ends", "Còn (ngày) / Days left"],
        [[r.person_key, who(r.person_key), f"{r.end:%d/%m/%Y}", left] for r, left in lists.ending],
    )
    say("management.late", month=lists.month)
    print_table(
        ["Mã / Key", "Họ tên / Name", "Lần thăm gần nhất / Last visit"],
        [[f.entity.uuid, who(f.entity.uuid), f.last_visit] for f in late],
    )
    say("management.moved")
    print_table(
        ["Mã / Key", "Họ tên / Name", "Chuyển đến / To", "Hạn chuyển hồ sơ / Due", "Thông báo / Notice"],
        [
            [
                r.person_key,
                who(r.person_key),
                r.moved[1] if r.moved else "",
                f"{due:%d/%m/%Y}",
                (r.transfer or {}).get("no") or ("QUÁ HẠN / OVERDUE" if overdue else "chưa / not yet"),
            ]
            for r, due, overdue in lists.moved
        ],
    )
    return 0


def cmd_terms(args: argparse.Namespace) -> int:
    from rasoat.core.management import terms_table

    print_table(
        ["Tên / Name", "Giá trị / Value", "Căn cứ / Source"], [list(r) for r in terms_table(_as_of(args))]
    )
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("management", help="hồ sơ quản lý (NĐ 105/2021) / management records")
    sub = parser.add_subparsers(dest="management_command", metavar="ACTION", required=True)
    p = sub.add_parser("lists", help="danh sách hằng tháng của xã / a commune's monthly lists")
    p.add_argument("commune", help="mã xã / commune code")
    p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME",
                   help="trong phạm vi của cán bộ này / within this officer's scope")
    p.add_argument("--as-of", help="ngày lập danh sách YYYY-MM-DD (mặc định hôm nay) / date (default today)")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(p)
    p.set_defaults(func=cmd_lists)
    p = sub.add_parser("terms", help="thời hạn, thời hạn chuyển hồ sơ đang áp dụng / terms in force")
    p.add_argument("--as-of", help="ngày áp dụng YYYY-MM-DD / date in force (YYYY-MM-DD)")
    add_settings_option(p)
    p.set_defaults(func=cmd_terms)
