"""``rasoat qr``, ``qr-sheet``, ``bundle`` and ``import-instances``: getting forms onto phones and back."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rasoat.core.cli_lines import line, say
from rasoat.core.commands.common import (
    JSON_HELP,
    CommandError,
    add_data_option,
    command_store,
    default_actor,
    print_json,
)
from rasoat.core.config import load_settings
from rasoat.core.models import AuditEvent
from rasoat.core.plugins import get_manager
from rasoat.core.units import get_units

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# plugin's commands, and loading the QR, sheet, bundle and import code for it would slow every command
# (benchmarks/cli_startup.py).

URL_HELP = ("địa chỉ máy chủ / server base URL (default $RASOAT_PUBLIC_URL, else the address 'rasoat serve' "
            "recorded in the data directory)")
ADMIN_PW_HELP = ("tệp chứa mật khẩu quản trị Collect (dòng đầu) / file holding the Collect admin password "
                 "(first line; default $RASOAT_COLLECT_ADMIN_PW, else the deployment's own)")
ENV_ADMIN_PW = "RASOAT_COLLECT_ADMIN_PW"


def _admin_pw(args: argparse.Namespace) -> str | None:
    """The Collect admin password for these cards, never from the command line (ps would show it)."""
    if args.admin_pw_file:
        try:
            lines = Path(args.admin_pw_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CommandError("command.cannot_read", path=args.admin_pw_file, reason=exc.strerror) from None
        if not lines or not lines[0].strip():
            raise CommandError("command.empty_file", path=args.admin_pw_file)
        return lines[0].strip()
    return os.environ.get(ENV_ADMIN_PW) or None


def _data_dir(args: argparse.Namespace) -> Path:
    return load_settings(args.data).data_dir





def _out_path(value: str, suffixes: tuple[str, ...]) -> Path:
    path = Path(value)
    if path.suffix.lower() not in suffixes:
        raise CommandError("command.bad_suffix", suffixes=", ".join(suffixes), path=path)
    if not path.parent.is_dir():
        raise CommandError("command.no_folder", path=path.parent)
    return path


def cmd_qr(args: argparse.Namespace) -> int:
    """One collector's Collect QR code with their current token (never a new one)."""
    from rasoat.mobile_export.phone_setup import admin_password, base_url, phone_code
    from rasoat.mobile_export.qr import save_qr

    with command_store(args) as store:
        if args.show_admin_pw and not args.collector:
            print(admin_password(store))
            return 0
        if not args.collector or not args.output:
            raise CommandError("command.collector_and_output")
        out = _out_path(args.output, (".png", ".svg"))
        code = phone_code(store, args.collector, base_url(args.url, _data_dir(args)), token=args.token,
                          admin_pw=_admin_pw(args), actor=default_actor())
        save_qr(code.payload, out)
        if args.show_admin_pw:
            print(f"{line('qr.admin_password')}: {admin_password(store)}", file=sys.stderr)
    who = code.user.display_name or code.user.username
    if args.json:
        print_json({"id": code.user.id, "username": code.user.username, "name": who, "file": str(out),
                    "server_url": code.server_url, "rotated": code.rotated})
        return 0
    say("qr.written", who=who, path=out)
    return 0


def cmd_qr_sheet(args: argparse.Namespace) -> int:
    """A printable HTML sheet of set-up cards for a commune and/or round (everyone's current token)."""
    from rasoat.mobile_export.phone_setup import base_url, phone_code
    from rasoat.mobile_export.sheet import make_card, render_sheet, sheet_collectors

    out = _out_path(args.output, (".html", ".htm"))
    base = base_url(args.url, _data_dir(args))
    admin_pw = _admin_pw(args)
    with command_store(args) as store:
        users, rnd = sheet_collectors(store, args.unit, args.round)
        if not users:
            raise CommandError("command.no_active_collectors")
        cards = []
        for user in users:
            code = phone_code(store, user.id, base, admin_pw=admin_pw, actor=default_actor())
            cards.append(make_card(store, code, rnd))
        what = []
        if args.unit:
            what.append(get_units().require(args.unit).name)
        if rnd is not None:
            what.append(rnd.name)
        html = render_sheet(cards, "Mã QR ODK Collect – " + " – ".join(what))
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    if args.json:
        print_json({"file": str(out), "cards": [{"id": c.collector_id, "name": c.name} for c in cards]})
        return 0
    say("qr.cards_written", n=len(cards), path=out)
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    """A zip of a collector's blank forms and their media, laid out like Collect's forms folder."""
    from rasoat.core.collectors import get_collector
    from rasoat.mobile_export.bundle import build_bundle
    from rasoat.mobile_export.phone_setup import base_url

    out = _out_path(args.output, (".zip",))
    base = base_url(args.url, _data_dir(args))
    admin_pw = _admin_pw(args)
    with command_store(args) as store:
        user = get_collector(store, args.collector)
        report = build_bundle(store, user, out, base, actor=default_actor(), admin_pw=admin_pw)
    if args.json:
        print_json({"file": str(report.path), "collector": report.collector_id, "forms": report.forms,
                    "missing_media": report.missing_media})
        return 0
    n_media = sum(len(f["media"]) for f in report.forms)
    say("bundle.written", forms=len(report.forms), media=n_media, path=report.path)
    for missing in report.missing_media:
        say("bundle.missing_medium", name=missing, file=sys.stderr)
    return 0


def cmd_import_instances(args: argparse.Namespace) -> int:
    """Import a phone's instances folder with an upload's rules; exit 1 if any instance failed."""
    from rasoat.core.collectors import get_collector
    from rasoat.mobile_export.importer import import_instances

    root = Path(args.dir)
    if not root.is_dir():
        raise CommandError("command.no_folder", path=root)
    with command_store(args) as store:
        user = get_collector(store, args.collector) if args.collector else None
        report = import_instances(store, root, user, get_manager().hook.check_submission,
                                  progress=not args.json)
        store.append_audit(AuditEvent(
            actor=default_actor(), action="instances.import", target=str(root.resolve()),
            details={"collector": user.id if user else None, "created": report.count("created"),
                     "duplicate": report.count("duplicate"), "failed": len(report.failed)},
        ))
    if args.json:
        print_json(report.as_dict())
    else:
        for r in report.results:
            if r.outcome not in ("created", "duplicate"):
                print(f"{r.file}: {r.message}")
        print(report.summary())
    return 1 if report.failed else 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "qr", help="mã QR cài ODK Collect cho một người thu thập / a collector's Collect QR code"
    )
    p.add_argument("collector", nargs="?", metavar="COLLECTOR", help="mã hoặc tên đăng nhập / id or username")
    p.add_argument("-o", "--output", metavar="FILE.png|FILE.svg", help="tệp ảnh mã QR / QR image file")
    p.add_argument("--url", metavar="BASE", help=URL_HELP)
    p.add_argument("--token", help="mã hiện tại để kiểm tra / the current token, checked (optional)")
    p.add_argument("--admin-pw-file", metavar="FILE", help=ADMIN_PW_HELP)
    p.add_argument("--show-admin-pw", action="store_true",
                   help="in mật khẩu quản trị Collect / print the Collect admin password")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(p)
    p.set_defaults(func=cmd_qr)

    s = subparsers.add_parser("qr-sheet", help="trang in thẻ mã QR / printable sheet of QR cards (HTML)")
    s.add_argument("--unit", metavar="CODE", help="xã/tỉnh / commune or province code")
    s.add_argument("--round", metavar="ID", help="đợt / round id")
    s.add_argument("-o", "--output", required=True, metavar="FILE.html", help="trang để in / printable page")
    s.add_argument("--url", metavar="BASE", help=URL_HELP)
    s.add_argument("--admin-pw-file", metavar="FILE", help=ADMIN_PW_HELP)
    s.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(s)
    s.set_defaults(func=cmd_qr_sheet)

    b = subparsers.add_parser("bundle", help="gói biểu mẫu ngoại tuyến / offline form bundle (zip)")
    b.add_argument("--collector", required=True, metavar="ID", help="mã hoặc tên đăng nhập / id or username")
    b.add_argument("-o", "--output", required=True, metavar="FILE.zip", help="tệp zip / zip file")
    b.add_argument("--url", metavar="BASE", help=URL_HELP)
    b.add_argument("--admin-pw-file", metavar="FILE", help=ADMIN_PW_HELP)
    b.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(b)
    b.set_defaults(func=cmd_bundle)

    i = subparsers.add_parser(
        "import-instances", help="nhập thư mục instances của điện thoại / import a phone's instances folder"
    )
    i.add_argument("dir", metavar="DIR", help="thư mục instances / the instances folder")
    i.add_argument("--collector", metavar="ID", help="người gửi / the collector who filled them in")
    i.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(i)
    i.set_defaults(func=cmd_import_instances)
