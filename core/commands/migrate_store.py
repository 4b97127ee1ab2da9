"""``rasoat migrate-store``: copy everything from one store to another, then prove the copy is whole.

Works between any two backends (embedded → PostgreSQL is the usual move; PostgreSQL → embedded for a
copy a commune can carry away). Copies the durable settings (the project's encryption key and which forms
are encrypted, Digest passwords, site lists, the Collect admin password), forms (XML, schema, media),
rounds and their snapshots, users and collectors, submissions (XML, attachments, review history, edit
chains) and the audit log; short-lived kv entries (sessions, nonces, throttles) stay behind. Re-running
after an interruption resumes: stored submissions come back as duplicates and audit lines already copied
are skipped. A destination holding anything the source does not (another project's key, a demo round
that ``serve`` made there) is refused before anything is written.

Verification compares counts, every record and setting, and the md5 of every form, media file,
submission XML and attachment; any difference is listed and the command exits 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import say
from rasoat.core.commands.common import JSON_HELP, CommandError, add_data_option, print_json, print_table
from rasoat.core.config import load_settings
from rasoat.core.storage.base import Store
from rasoat.core.storage.copy import KINDS, MAX_PROBLEMS_SHOWN, Report, copy_store, verify_stores

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading both storage engines (psycopg too) for it would slow every command
# (benchmarks/cli_startup.py).


def is_database_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def open_target(target: str, files_dir: Path | None) -> Store:
    """A store named by a data directory or a ``postgresql://`` URL (its attachments under ``files_dir``)."""
    if is_database_url(target):
        from rasoat.core.storage.postgres import PostgresStore

        if files_dir is None:
            raise CommandError("command.files_dir_needed")
        return PostgresStore(target, files_dir=files_dir)
    from rasoat.core.storage.embedded import EmbeddedStore

    return EmbeddedStore(Path(target))


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.data)
    args.to = args.to or args.database or settings.database_url
    if not args.to:
        raise CommandError("command.destination_needed")
    default_files = settings.data_dir
    from_files = Path(args.from_files) if args.from_files else default_files
    to_files = Path(args.to_files) if args.to_files else default_files
    from rasoat.core.datadir import NotADataDirectory, check_can_create, require_data_dir

    try:
        if not is_database_url(args.source):
            require_data_dir(Path(args.source).resolve())
        if not is_database_url(args.to):
            check_can_create(Path(args.to).resolve())
    except NotADataDirectory as exc:
        raise CommandError("command.store_refused", detail=exc) from None
    if args.source == args.to:
        raise CommandError("command.same_store")
    src = open_target(args.source, from_files)
    try:
        dst = open_target(args.to, to_files)
        try:
            copy_problems: list[str] = []
            if not args.verify_only:
                copy_problems = copy_store(src, dst, quiet=args.quiet)
            report = verify_stores(src, dst, quiet=args.quiet)
            report.problems[:0] = copy_problems
        finally:
            dst.close()
    finally:
        src.close()
    _print(report, args.json)
    if not report.ok:
        raise CommandError("command.verification_failed", count=len(report.problems))
    return 0


def _print(report: Report, as_json: bool) -> None:
    if as_json:
        print_json(report.as_dict())
        return
    rows = [[k, report.source[k], report.dest[k], "✓" if report.source[k] == report.dest[k] else "✗"]
            for k in KINDS]
    print_table(["Loại / Kind", "Nguồn / Source", "Đích / Destination", ""], rows)
    for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
        print(f"  ✗ {problem}")
    if len(report.problems) > MAX_PROBLEMS_SHOWN:
        say("migrate.more", n=len(report.problems) - MAX_PROBLEMS_SHOWN)
    if report.ok:
        say("migrate.matches")


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "migrate-store",
        help="chép toàn bộ dữ liệu sang kho khác và kiểm tra / copy all data to another store and verify",
        description="Chép khoá mã hoá và thiết lập, biểu mẫu, đợt, người dùng, người thu thập, bản nộp, "
        "lịch sử duyệt, tệp đính kèm, nhật ký sang kho đích rồi so khớp tất cả / Copy the encryption key "
        "and settings, forms, rounds, users, collectors, submissions, review history, attachments and "
        "audit to the destination, then compare all of it.",
    )
    parser.add_argument("--from", dest="source", required=True, metavar="DIR|URL",
                        help="kho nguồn: thư mục dữ liệu hoặc postgresql://… / source store")
    parser.add_argument("--to", metavar="URL|DIR",
                        help="kho đích: postgresql://…[?schema=NAME] hoặc thư mục / destination store "
                        "(default: --database or $RASOAT_DATABASE_URL)")
    parser.add_argument("--verify-only", action="store_true", help="chỉ so khớp / only compare, copy nothing")
    parser.add_argument("--from-files", metavar="DIR",
                        help="tệp đính kèm của nguồn PostgreSQL / attachments root of a PostgreSQL source "
                        "(default: --data)")
    parser.add_argument("--to-files", metavar="DIR",
                        help="tệp đính kèm của đích PostgreSQL / attachments root of a PostgreSQL "
                        "destination (default: --data)")
    parser.add_argument("--quiet", action="store_true", help="không hiện tiến độ / no progress bar")
    parser.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(parser)
    parser.set_defaults(func=run)
