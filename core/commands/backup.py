"""``rasoat backup -o FILE`` and ``rasoat restore FILE --data DIR``: see ``core.backup``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import say
from rasoat.core.commands.common import (
    JSON_HELP,
    QUIET_HELP,
    CommandError,
    add_data_option,
    default_actor,
    print_json,
)
from rasoat.core.config import load_settings
from tqdm import tqdm

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the store and the backup code for it would slow every command
# (benchmarks/cli_startup.py).


def cmd_backup(args: argparse.Namespace) -> int:
    from rasoat.core.backup import backup_embedded, backup_postgres
    from rasoat.core.storage.opening import open_store

    settings = load_settings(args.data)
    database_url = args.database or settings.database_url
    target = Path(args.output)
    if not target.name.endswith((".tar.gz", ".tgz")):
        raise CommandError("command.tar_gz_only")
    if target.exists() and not args.force:
        raise CommandError("command.file_exists", target=target)
    from rasoat.core.storage.embedded import DB_NAME

    known = (settings.data_dir / DB_NAME, settings.data_dir / "store.json")  # store.json: earlier format
    if not database_url and not any(p.is_file() for p in known):
        raise CommandError("command.no_data", data_dir=settings.data_dir)
    store = open_store(settings.data_dir, database_url)
    try:
        with tqdm(desc="sao lưu / backup", unit=" tệp", file=sys.stderr, disable=args.quiet or None) as bar:
            if database_url:
                info = backup_postgres(store, database_url, target, args.by or default_actor(), bar.update)
            else:
                info = backup_embedded(store, target, args.by or default_actor(), bar.update)
    finally:
        store.close()
    if args.json:
        print_json(info)
    else:
        say("backup.done", path=info.path, submissions=info.submissions, files=info.files,
            mb=f"{info.bytes / 1e6:.1f}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from rasoat.core.backup import restore

    archive = Path(args.file)
    if not archive.is_file():
        raise CommandError("command.no_file", path=archive)
    settings = load_settings(args.data)
    with tqdm(
        desc="khôi phục / restore", unit=" tệp", file=sys.stderr, disable=args.quiet or None
    ) as bar:
        info = restore(archive, settings.data_dir, args.database, args.by or default_actor(), bar.update)
    if args.json:
        print_json(info)
    else:
        say("backup.restored", path=info.path, submissions=info.submissions, files=info.files,
            taken=info.created_at[:19])
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    p = subparsers.add_parser("backup", help="sao lưu toàn bộ dữ liệu / back up everything")
    p.add_argument("-o", "--output", required=True, metavar="FILE.tar.gz", help="tệp sao lưu / backup file")
    p.add_argument("--force", action="store_true", help="ghi đè tệp đã có / replace an existing file")
    p.add_argument("--by", metavar="USER", help="người thực hiện (nhật ký) / actor for the audit log")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(p)
    p.set_defaults(func=cmd_backup)

    r = subparsers.add_parser("restore", help="khôi phục vào thư mục trống / restore into an empty directory")
    r.add_argument("file", metavar="FILE.tar.gz", help="tệp sao lưu / backup file")
    r.add_argument("--by", metavar="USER", help="người thực hiện (nhật ký) / actor for the audit log")
    r.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    r.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(r)
    r.set_defaults(func=cmd_restore)
