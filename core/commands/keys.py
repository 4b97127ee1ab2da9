"""``rasoat keys init|show|passphrase|rotate|forms|unlock``: the project's encryption key (ODK encrypted
forms). ``unlock`` derives the statistical fields of every encrypted record the server holds and keeps
them (``core.derive``), so figures need no passphrase afterwards.

Passphrases come from ``--passphrase-file`` (first line), a terminal prompt, or the first line of
standard input — never the command line.
"""

from __future__ import annotations

import argparse
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import line, say
from rasoat.core.commands.common import (
    JSON_HELP,
    add_data_option,
    command_store,
    default_actor,
    print_json,
)
from rasoat.core.commands.users import read_secret

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading cryptography for it would slow every command (benchmarks/cli_startup.py).


def cmd_init(args: argparse.Namespace) -> int:
    from rasoat.core.crypto import create_project_key

    passphrase = read_secret(args.passphrase_file, "Cụm mật khẩu mới / New passphrase")
    with command_store(args) as store:
        fp = create_project_key(store, passphrase, actor=args.by or default_actor())
    say("keys.created", fingerprint=fp)
    say("keys.keep_passphrase")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from rasoat.core.crypto import encrypted_form_ids, key_entry

    with command_store(args) as store:
        entry = key_entry(store)
        forms = list(encrypted_form_ids(store))
    info: dict[str, Any] = {"key": None, "encrypted_forms": forms}
    if entry:
        info["key"] = {
            "fingerprint": entry["fingerprint"],
            "public_key": entry["public_key"],
            "created_at": entry.get("created_at"),
            "created_by": entry.get("created_by"),
            "retired": [r["fingerprint"] for r in entry.get("retired") or []],
        }
    if args.json:
        print_json(info)
        return 0
    if entry is None:
        say("keys.none")
    else:
        print(f"{line('label.key')}: {entry['fingerprint']}  ({entry.get('created_at', '')[:19]})")
        print(f"public_key: {entry['public_key']}")
    print(f"{line('keys.encrypted_forms')}: {', '.join(forms) or '—'}")
    return 0


def cmd_passphrase(args: argparse.Namespace) -> int:
    from rasoat.core.crypto import change_passphrase

    old = read_secret(args.passphrase_file, "Cụm mật khẩu hiện tại / Current passphrase", confirm=False)
    new = read_secret(args.new_passphrase_file, "Cụm mật khẩu mới / New passphrase")
    with command_store(args) as store:
        change_passphrase(store, old, new, actor=args.by or default_actor())
    say("keys.passphrase_changed")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    from rasoat.core.crypto import rotate_key

    passphrase = read_secret(args.passphrase_file, "Cụm mật khẩu / Passphrase", confirm=False)
    with command_store(args) as store:
        fp = rotate_key(store, passphrase, actor=args.by or default_actor())
    say("keys.rotated", fingerprint=fp)
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    from rasoat.core.derive import unlock_and_derive

    passphrase = read_secret(args.passphrase_file, "Cụm mật khẩu / Passphrase", confirm=False)
    with command_store(args) as store:
        done = unlock_and_derive(store, passphrase, actor=args.by or default_actor())
    print_derived(done)
    return 1 if done.failed or done.refused else 0


def print_derived(done: Any) -> None:
    """One line per form derived, and the records that would not open."""
    import sys

    for form_id, n in sorted(done.by_form.items()):
        say("keys.derived", form=form_id, n=n)
    for form_id, n in sorted(done.refused.items()):
        say("keys.refused", form=form_id, n=n, file=sys.stderr)
    if not done.by_form and not done.failed and not done.refused:
        say("keys.nothing_left")
    if done.failed:
        say("keys.failed", n=done.failed, file=sys.stderr)


def cmd_forms(args: argparse.Namespace) -> int:
    from rasoat.core.crypto import set_encrypted_form_ids

    with command_store(args) as store:
        wanted = [] if args.none else args.form_ids
        ids = set_encrypted_form_ids(store, wanted, actor=args.by or default_actor())
    print(f"{line('keys.encrypted_forms')}: {', '.join(ids) or '—'}")
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="khoá mã hoá biểu mẫu / form encryption key")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser, secret: bool = True) -> None:
        if secret:
            p.add_argument("--passphrase-file", metavar="FILE", help="tệp cụm mật khẩu / passphrase file")
        p.add_argument("--by", metavar="USER", help="người thực hiện (nhật ký) / actor for the audit log")
        add_data_option(p)

    p = sub.add_parser("init", help="tạo khoá dự án / create the project key")
    common(p)
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("show", help="khoá công khai, biểu mẫu mã hoá / public key and encrypted forms")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("passphrase", help="đổi cụm mật khẩu / change the passphrase")
    p.add_argument("--new-passphrase-file", metavar="FILE", help="tệp cụm mật khẩu mới / new passphrase file")
    common(p)
    p.set_defaults(func=cmd_passphrase)

    p = sub.add_parser("rotate", help="khoá mới, giữ khoá cũ để đọc dữ liệu cũ / new key, old kept")
    common(p)
    p.set_defaults(func=cmd_rotate)

    p = sub.add_parser(
        "unlock",
        help="mở khoá, tính và giữ trường thống kê của bản ghi mã hoá / unlock and derive the statistical "
        "fields of encrypted records",
    )
    common(p)
    p.set_defaults(func=cmd_unlock)

    p = sub.add_parser("forms", help="biểu mẫu đăng kèm mã hoá / which catalogue forms are encrypted")
    p.add_argument("form_ids", nargs="*", metavar="FORM_ID", help="mã biểu mẫu / form ids")
    p.add_argument("--none", action="store_true", help="không mã hoá biểu mẫu nào / encrypt none")
    common(p, secret=False)
    p.set_defaults(func=cmd_forms)
