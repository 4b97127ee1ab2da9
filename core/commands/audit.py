"""``rasoat audit [--since] [--user] [--action] [--json] [--xlsx FILE]``: read the audit log."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the audit log's readers for it would slow every command
# (benchmarks/cli_startup.py).

VN = ZoneInfo("Asia/Ho_Chi_Minh")
_RELATIVE = re.compile(r"^(\d+)\s*([dhm])$")


def parse_since(text: str | None) -> datetime | None:
    """``2026-03-01``, ``2026-03-01T08:00`` (Vietnam time) or ``7d`` / ``12h`` / ``30m`` ago."""
    if not text:
        return None
    m = _RELATIVE.match(text.strip().lower())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]
        return datetime.now(UTC) - delta
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CommandError("command.bad_time", text=text) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=VN)
    return when.astimezone(UTC)


def cmd_audit(args: argparse.Namespace) -> int:
    from rasoat.core.audit import HEADERS, event_row, iter_events, write_xlsx

    since = parse_since(args.since)
    with command_store(args) as store:
        events = iter_events(store, since=since, user=args.user, action=args.action)
        if args.xlsx:
            if not args.xlsx.lower().endswith(".xlsx"):
                raise CommandError("command.xlsx_only")
            n = write_xlsx(events, args.xlsx)
            say("audit.written", path=args.xlsx, n=n)
            return 0
        rows = list(events)
        if args.limit:
            rows = rows[-args.limit :]
    if args.json:
        print_json([e.model_dump(mode="json") for e in rows])
        return 0
    print_table(HEADERS, [event_row(e) for e in rows])
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("audit", help="nhật ký truy cập, thay đổi / audit log")
    p.add_argument("--since", metavar="WHEN", help="từ lúc / from (2026-03-01, 7d, 12h)")
    p.add_argument("--user", metavar="ACTOR", help="chỉ người này / only this actor")
    p.add_argument("--action", metavar="NAME", help="hành động / action or prefix (login, export)")
    p.add_argument("--limit", type=int, default=0, help="chỉ N dòng cuối / only the last N events")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("--xlsx", metavar="FILE.xlsx", help="xuất ra Excel / export to Excel")
    add_data_option(p)
    p.set_defaults(func=cmd_audit)
