"""``rasoat protection show | migrate | rotate-kek``: person records protected at rest (core.protection).

``show`` says which key-encryption key protects the store and where it is read from; ``migrate`` seals
records stored before their form declared identifying fields (ODK-encrypted ones with
``--passphrase-file``); ``rotate-kek`` makes a new key-encryption key and re-wraps every record's data
key (running servers follow it without a restart; ``--finish`` re-wraps what is left under an older key).
Both are safe to rerun.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import line, say
from rasoat.core.commands.common import (
    JSON_HELP,
    add_data_option,
    command_group,
    command_store,
    default_actor,
    print_json,
)
from rasoat.core.commands.users import read_secret

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading cryptography and the record protection for it would slow every command
# (benchmarks/cli_startup.py).


def _errors(func: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        return int(func(args))

    return run


def _source() -> str:
    for name in ("RASOAT_KEK", "RASOAT_KEK_COMMAND", "RASOAT_KEK_FILE"):
        if os.environ.get(name):
            return name
    return "RASOAT_KEY_DIR"


@_errors
def cmd_show(args: argparse.Namespace) -> int:
    from rasoat.core import protection
    from rasoat.core.protect_records import entity_values_by_kek, records_by_kek

    with command_store(args) as store:
        ring = protection.keyring(store, create=False)
        forms = {f.form_id: sorted(protection.stored_declaration(store, f.form_id, f.version).identifying)
                 for f in store.list_forms()}
        by_kek = records_by_kek(store)
        entities_by_kek = entity_values_by_kek(store)
    protected = {k: v for k, v in forms.items() if v}
    info: dict[str, Any] = {"kek_id": ring.kid, "source": _source(), "key_dir": str(protection.key_dir()),
                            "retired_available": sorted(ring.retired), "forms": protected,
                            "records_by_kek": by_kek, "entity_values_by_kek": entities_by_kek}
    if args.json:
        print_json(info)
        return 0
    say("protection.kek", kid=ring.kid, source=info["source"], folder=info["key_dir"])
    for form_id, paths in protected.items():
        print(f"  {form_id}: {', '.join(paths)}")
    for kid, n in by_kek.items():
        if kid != ring.kid:
            say("protection.records_under_old", n=n, kid=kid)
    for kid, n in entities_by_kek.items():
        if kid != ring.kid:
            say("protection.entities_under_old", n=n, kid=kid)
    return 0


@_errors
def cmd_migrate(args: argparse.Namespace) -> int:
    from rasoat.core.protect_records import protect_existing

    with command_store(args) as store:
        keys = None
        if args.passphrase_file:
            from rasoat.core.crypto import unlock

            passphrase = read_secret(args.passphrase_file, "Cụm mật khẩu / Passphrase", confirm=False)
            keys = unlock(store, passphrase, actor=args.by or default_actor(), purpose="protection.migrate")
        report = protect_existing(store, args.form or None, keys, actor=args.by or default_actor())
    out = report.as_dict()
    if args.json:
        print_json(out)
    else:
        print(f"{line('label.forms')}: {', '.join(out['forms']) or '—'}")
        say("protection.sealed", converted=out["converted"], already=out["already_protected"],
            encrypted=out["encrypted_without_key"], failed=len(out["failed"]))
        for rec in out["records"]:
            print(f"  {rec['instance_id']}  {rec['digest']}")
        for bad in out["failed"]:
            print(f"  ! {bad['instance_id']}: {bad['error']}")
        say("protection.old_backups")
    return 1 if out["failed"] else 0


@_errors
def cmd_rotate(args: argparse.Namespace) -> int:
    from rasoat.core import protection
    from rasoat.core.protect_records import entity_values_by_kek, finish_rotation, records_by_kek, rotate_kek

    with command_store(args) as store:
        if args.finish:
            ring = protection.keyring(store, create=False)
            kid, path, n = ring.kid, None, finish_rotation(store, ring, actor=args.by or default_actor())
        else:
            kid, path, n = rotate_kek(store, new_file=Path(args.to) if args.to else None,
                                      actor=args.by or default_actor())
        left = sum(count for k, count in records_by_kek(store).items() if k != kid)
        entity_left = sum(count for k, count in entity_values_by_kek(store).items() if k != kid)
    say("protection.rotated_to_file" if path else "protection.rotated", kid=kid, path=path, n=n, left=left)
    if entity_left:
        say("protection.entities_left", n=entity_left)
    if not args.finish:
        say("protection.after_rotation")
    return 1 if left else 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    sub = command_group(subparsers, "protection",
                        "bảo vệ hồ sơ cá nhân khi lưu / person records protected at rest")

    def common(p: argparse.ArgumentParser) -> None:
        add_data_option(p)
        p.add_argument("--by", metavar="USER", help="người thực hiện (nhật ký) / actor for the audit log")

    p = sub.add_parser("show", help="khoá đang dùng, biểu mẫu được bảo vệ / the key and protected forms")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    common(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("migrate", help="niêm phong hồ sơ đã lưu (chạy lại an toàn) / seal stored records "
                       "(safe to rerun)")
    p.add_argument("--form", action="append", metavar="ID", help="chỉ biểu mẫu này / only this form")
    p.add_argument("--passphrase-file", metavar="FILE",
                   help="mở cả bản ghi mã hoá ODK / also open ODK-encrypted records")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    common(p)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("rotate-kek", help="khoá mã hoá khoá mới, bọc lại mọi khoá dữ liệu / new "
                       "key-encryption key, every data key re-wrapped")
    p.add_argument("--to", metavar="FILE", help="nơi ghi khoá mới (ngoài thư mục dữ liệu) / where to write "
                   "the new key (outside the data directory)")
    p.add_argument("--finish", action="store_true", help="không tạo khoá mới: bọc lại bản ghi còn dưới khoá "
                   "cũ / no new key: re-wrap records still under an older key")
    common(p)
    p.set_defaults(func=cmd_rotate)
