"""``rasoat entities lists|backlog|force-backlog|approval``: the entity lists of issue 23 (core.entities).

``force-backlog`` is how rasoat does what Central's scheduled task does: offline updates held longer than
``--days`` (default 5, Central's) waiting for an earlier update of their branch are applied without it
(``core.storage.entity_rules``). rasoat keeps no timer of its own: run it daily from cron or a systemd
timer (``rasoat entities force-backlog``), or by hand after checking ``rasoat entities backlog``.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
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
from rasoat.core.entities import FORCE_AFTER_DAYS
from rasoat.core.models import AuditEvent, utcnow
from rasoat.core.storage.base import EntityQuery


def cmd_lists(args: argparse.Namespace) -> int:
    with command_store(args) as store:
        rows: list[dict[str, Any]] = []
        for lst in store.list_entity_lists():
            q = EntityQuery(list_name=lst.name)
            rows.append({"name": lst.name, "approval_required": lst.approval_required,
                         "forms": list(lst.forms), "properties": list(lst.properties),
                         "entities": store.count_entities(q),
                         "conflicts": store.count_entities(q.model_copy(update={"conflict_only": True})),
                         "held": len(store.entity_backlog(lst.name))})
    if args.json:
        print_json(rows)
        return 0
    print_table(["Danh sách / List", "Duyệt / Approval", "Biểu mẫu / Forms", "Thực thể / Entities",
                 "Xung đột / Conflicts", "Đang chờ / Held"],
                [[r["name"], "có / yes" if r["approval_required"] else "không / no", ", ".join(r["forms"]),
                  r["entities"], r["conflicts"], r["held"]] for r in rows])
    return 0


def cmd_backlog(args: argparse.Namespace) -> int:
    with command_store(args) as store:
        held = store.entity_backlog(args.list)
    rows: list[dict[str, Any]] = [
        {"held_at": h.held_at.isoformat(), "reason": h.reason, "list": h.list_name, "uuid": h.uuid,
         "branch_id": h.branch_id, "base_version": h.branch_base_version, "submission": h.instance_id,
         "actor": h.actor} for h in held]
    if args.json:
        print_json(rows)
        return 0
    print_table(["Từ lúc / Held since", "Lý do / Reason", "Danh sách / List", "Thực thể / Entity",
                 "Bản gốc / Base", "Bản ghi / Submission"],
                [[r["held_at"][:19], r["reason"], r["list"], r["uuid"], r["base_version"] or "",
                  r["submission"]] for r in rows])
    return 0


def cmd_force(args: argparse.Namespace) -> int:
    if args.days < 0:
        raise CommandError("command.negative_days")
    with command_store(args) as store:
        done = store.force_entity_backlog(utcnow() - timedelta(days=args.days))
        store.append_audit(AuditEvent(actor="cli", action="entities.force_backlog", target="",
                                      details={"days": args.days, "applied": done}))
    say("entities.applied", n=done, days=args.days)
    return 0


def cmd_approval(args: argparse.Namespace) -> int:
    with command_store(args) as store:
        try:
            lst = store.set_entity_list(args.list, approval_required=args.state == "on")
        except KeyError:
            raise CommandError("command.no_entity_list", list=args.list) from None
        store.append_audit(AuditEvent(actor="cli", action="entities.approval", target=lst.name,
                                      details={"approval_required": lst.approval_required}))
    say("entities.approval_on" if lst.approval_required else "entities.approval_off", name=lst.name)
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("entities", help="danh sách thực thể (ODK Entities) / entity lists")
    sub = p.add_subparsers(dest="entities_command", metavar="ACTION", required=True)
    lists = sub.add_parser("lists", help="các danh sách, số thực thể, xung đột / lists, counts, conflicts")
    lists.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(lists)
    lists.set_defaults(func=cmd_lists)
    backlog = sub.add_parser("backlog", help="khối thực thể đang chờ / blocks waiting")
    backlog.add_argument("--list", metavar="NAME", help="chỉ danh sách này / only this list")
    backlog.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(backlog)
    backlog.set_defaults(func=cmd_backlog)
    force = sub.add_parser("force-backlog", help="áp dụng cập nhật ngoại tuyến chờ quá lâu / "
                           "apply offline updates held too long")
    force.add_argument("--days", type=float, default=FORCE_AFTER_DAYS,
                       help=f"chờ quá N ngày / held over N days (mặc định / default {FORCE_AFTER_DAYS})")
    add_data_option(force)
    force.set_defaults(func=cmd_force)
    approval = sub.add_parser("approval", help="cần duyệt bản ghi mới tạo thực thể / approval before create")
    approval.add_argument("list", metavar="NAME", help="tên danh sách / the list's name")
    approval.add_argument("state", choices=["on", "off"], help="bật hoặc tắt / on or off")
    add_data_option(approval)
    approval.set_defaults(func=cmd_approval)
