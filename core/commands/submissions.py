"""``rasoat submissions list|count|review``: find submissions and set their review state.

Listings show metadata only (no field values), so they are not an export of personal data.
"""

from __future__ import annotations

import argparse
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.commands.common import (
    JSON_HELP,
    CommandError,
    add_data_option,
    command_store,
    default_actor,
    print_json,
    print_table,
)
from rasoat.core.commands.rounds import local_time, split_list
from rasoat.core.models import REVIEW_LABELS, ReviewState, Submission
from rasoat.core.problems import both
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.core.units import get_units

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the review rules for it would slow every command (benchmarks/cli_startup.py).


def build_query(store: Store, args: argparse.Namespace) -> SubmissionQuery:
    """A query from --form/--round/--unit/--state; --unit takes in everything below the given units."""

    units = None
    if args.unit:
        registry = get_units()
        units = sorted(registry.expand(split_list(args.unit)))
    states = None
    if args.state:
        try:
            states = [ReviewState(s) for s in split_list(args.state)]
        except ValueError as exc:
            raise CommandError("round.bad_review_state", choices=', '.join(ReviewState)) from exc
    if args.round and store.get_round(args.round) is None:
        raise CommandError("round.no_round", round=args.round)
    return SubmissionQuery(form_id=args.form, round_id=args.round, unit_codes=units, review_states=states)


def summary(sub: Submission) -> dict[str, Any]:
    return {
        "instance_id": sub.instance_id,
        "form_id": sub.form_id,
        "form_version": sub.form_version,
        "round_id": sub.round_id,
        "unit_code": sub.unit_code,
        "collector_id": sub.collector_id,
        "received_at": sub.received_at,
        "review_state": sub.review_state,
        "review_comment": sub.review_history[-1].get("comment", "") if sub.review_history else "",
        "attachments": len(sub.attachments),
        "expected_attachments": len(sub.expected_attachments),
        "encrypted": sub.encrypted,
    }


def cmd_list(args: argparse.Namespace) -> int:
    with command_store(args) as store:
        query = build_query(store, args)
        subs = []
        for n, sub in enumerate(store.iter_submissions(query)):
            if args.limit and n >= args.limit:
                break
            subs.append(summary(sub))
    if args.json:
        print_json(subs)
        return 0
    print_table(
        [
            "instanceID",
            "Phiên bản / Version",
            "Đợt / Round",
            "Đơn vị / Unit",
            "Nhận lúc / Received",
            "Duyệt / Review",
        ],
        [
            [
                s["instance_id"],
                s["form_version"],
                s["round_id"] or "",
                s["unit_code"] or "",
                local_time(s["received_at"]),
                both(REVIEW_LABELS[s["review_state"]]),
            ]
            for s in subs
        ],
        narrow=[1, 2, 3, 4, 5],  # the instanceID stays whole: it is copied into `submissions review`
    )
    return 0


def cmd_count(args: argparse.Namespace) -> int:
    with command_store(args) as store:
        query = build_query(store, args)
        total = store.count_submissions(query)
        by_state = {
            s.value: store.count_submissions(query.model_copy(update={"review_states": [s]}))
            for s in (query.review_states or list(ReviewState))
        }
    if args.json:
        print_json({"count": total, "by_state": by_state})
    else:
        print(total)
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from rasoat.core.review import review_submission

    with command_store(args) as store:
        sub = review_submission(
            store, args.instance_id, args.state, args.comment or "", args.by or default_actor()
        )
    if args.json:
        print_json(summary(sub))
    else:
        print(f"{sub.instance_id}: {both(REVIEW_LABELS[sub.review_state])}")
    return 0


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--form", required=True, metavar="ID", help="mã biểu mẫu / form id")
    p.add_argument("--round", metavar="ID", help="mã đợt / round id")
    p.add_argument("--unit", metavar="CODE[,CODE…]",
                   help="đơn vị và cấp dưới / units and everything below them")
    p.add_argument("--state", metavar="STATE[,STATE…]",
                   help="trạng thái duyệt / review states: " + ", ".join(ReviewState))
    add_data_option(p)
    p.add_argument("--json", action="store_true", help=JSON_HELP)


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("submissions", help="bản ghi đã nhận / received submissions")
    sub = parser.add_subparsers(dest="submissions_command", metavar="ACTION", required=True)

    p = sub.add_parser("list", help="liệt kê bản ghi (không gồm nội dung) / list submissions (metadata only)")
    _filters(p)
    p.add_argument("--limit", type=int, default=0, help="tối đa / at most this many (0: all)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("count", help="đếm bản ghi / count submissions")
    _filters(p)
    p.set_defaults(func=cmd_count)

    p = sub.add_parser("review", help="đặt trạng thái duyệt / set a submission's review state")
    p.add_argument("instance_id", help="mã bản ghi / instance id")
    p.add_argument("--state", required=True, choices=[s.value for s in ReviewState],
                   help="trạng thái mới / new review state")
    p.add_argument("--comment", default="", help="ghi chú (bắt buộc với has_issues, rejected) / comment")
    p.add_argument(
        "--by", metavar="USER", help="người duyệt / reviewer (default $RASOAT_USER or the OS user)"
    )
    add_data_option(p)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.set_defaults(func=cmd_review)
