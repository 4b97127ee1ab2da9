"""``rasoat users add|list|set-role|password|token|disable|enable|unlock``: officer accounts.

Passwords are read from ``--password-file`` (first line), else asked twice on a terminal, else read
from the first line of standard input; they are never taken on the command line (shell history, ``ps``).
"""

from __future__ import annotations

import argparse
import getpass
import sys
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
from rasoat.core.models import OFFICER_ROLES

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading argon2 and the account rules for it would slow every command
# (benchmarks/cli_startup.py).


def read_secret(path: str | None, prompt: str, confirm: bool = True) -> str:
    """A password or passphrase from a file, a terminal prompt, or stdin (never argv)."""
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError("command.cannot_read", path=path, reason=exc.strerror) from None
        return text.splitlines()[0] if text else ""
    if sys.stdin.isatty():
        first = getpass.getpass(f"{prompt}: ")
        if confirm and getpass.getpass("Nhập lại / Again: ") != first:
            raise CommandError("command.entries_differ")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")



def _row(u: Any) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "name": u.display_name,
        "role": u.role.value,
        "units": u.unit_codes,
        "active": u.active,
        "api_token": u.token_hash is not None,
        "created_at": u.created_at,
    }


def cmd_add(args: argparse.Namespace) -> int:
    from rasoat.core.users import create_user

    password = read_secret(args.password_file, "Mật khẩu / Password")
    with command_store(args) as store:
        user = create_user(
            store,
            args.username,
            password,
            args.role,
            args.unit or [],
            args.name or "",
            actor=args.by or default_actor(),
        )
    if args.json:
        print_json(_row(user))
    else:
        say("users.created", username=user.username, role=user.role.value,
            units=", ".join(user.unit_codes) or ("toàn quốc", "all"))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from rasoat.core.users import list_officers

    with command_store(args) as store:
        rows = [_row(u) for u in list_officers(store)]
    if args.json:
        print_json(rows)
        return 0
    print_table(
        [
            "Tên đăng nhập / Username",
            "Tên / Name",
            "Vai trò / Role",
            "Đơn vị / Units",
            "Hoạt động / Active",
            "API token",
        ],
        [
            [
                r["username"],
                r["name"],
                r["role"],
                ",".join(r["units"]) or "*",
                "có / yes" if r["active"] else "khoá / disabled",
                "có / yes" if r["api_token"] else "",
            ]
            for r in rows
        ],
    )
    return 0


def cmd_set_role(args: argparse.Namespace) -> int:
    from rasoat.core.users import set_role

    with command_store(args) as store:
        user = set_role(store, args.username, args.role, args.unit, actor=args.by or default_actor())
    print(f"{user.username}: {user.role.value} ({', '.join(user.unit_codes) or '*'})")
    return 0


def cmd_password(args: argparse.Namespace) -> int:
    from rasoat.core.users import set_password

    password = read_secret(args.password_file, "Mật khẩu mới / New password")
    with command_store(args) as store:
        user = set_password(store, args.username, password, actor=args.by or default_actor())
    say("users.password_changed", username=user.username)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from rasoat.core.users import new_api_token

    with command_store(args) as store:
        token = new_api_token(store, args.username, actor=args.by or default_actor())
    if args.json:
        print_json({"username": args.username, "token": token})
    else:
        print(token)
        say("users.token_use", file=sys.stderr)
    return 0


def cmd_disable(args: argparse.Namespace) -> int:
    from rasoat.core.users import disable_user, enable_user

    with command_store(args) as store:
        func = enable_user if args.enable else disable_user
        user = func(store, args.username, actor=args.by or default_actor())
    say("users.active" if user.active else "users.disabled", username=user.username)
    return 0


def cmd_unlock(args: argparse.Namespace) -> int:
    from rasoat.core.audit import record
    from rasoat.core.users import unlock

    with command_store(args) as store:
        unlock(store, username=args.username, ip=args.ip)
        record(store, args.by or default_actor(), "user.unlock", args.username or "", ip=args.ip or "")
    say("users.unlocked")
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("users", help="tài khoản cán bộ / officer accounts")
    sub = parser.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    roles = [r.value for r in OFFICER_ROLES]

    def common(p: argparse.ArgumentParser, by: bool = True) -> None:
        add_data_option(p)
        if by:
            p.add_argument("--by", metavar="USER", help="người thực hiện (nhật ký) / actor for the audit log")

    p = sub.add_parser("add", help="thêm cán bộ / add an officer")
    p.add_argument("username", help="tên đăng nhập / username")
    p.add_argument("--role", required=True, choices=roles, help="vai trò / role")
    p.add_argument("--unit", action="append", metavar="CODE", help="đơn vị / unit (repeatable)")
    p.add_argument("--name", help="họ tên / display name")
    p.add_argument("--password-file", metavar="FILE", help="tệp mật khẩu / read the password from FILE")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    common(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("list", help="liệt kê cán bộ / list officers")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    common(p, by=False)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("set-role", help="đổi vai trò, đơn vị / change role (and units)")
    p.add_argument("username", help="tên đăng nhập / username")
    p.add_argument("role", choices=roles, help="vai trò mới / new role")
    p.add_argument("--unit", action="append", metavar="CODE", help="đơn vị mới / new units (repeatable)")
    common(p)
    p.set_defaults(func=cmd_set_role)

    p = sub.add_parser("password", help="đặt mật khẩu mới / set a new password")
    p.add_argument("username", help="tên đăng nhập / username")
    p.add_argument("--password-file", metavar="FILE", help="tệp mật khẩu / read the password from FILE")
    common(p)
    p.set_defaults(func=cmd_password)

    p = sub.add_parser("token", help="mã API cá nhân mới / new personal API token")
    p.add_argument("username", help="tên đăng nhập / username")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    common(p)
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("disable", help="khoá tài khoản ngay / disable an account at once")
    p.add_argument("username", help="tên đăng nhập / username")
    p.add_argument("--enable", action="store_true", help="mở lại / enable again")
    common(p)
    p.set_defaults(func=cmd_disable)

    p = sub.add_parser("unlock", help="mở khoá đăng nhập sai nhiều lần / lift a login lock")
    p.add_argument("username", nargs="?", help="tên đăng nhập / username")
    p.add_argument("--ip", metavar="ADDR", help="địa chỉ IP / IP address")
    common(p)
    p.set_defaults(func=cmd_unlock)
