"""The server's commands, registered through the ``rasoat`` entry-point group like any plugin.

``rasoat serve`` and ``rasoat collectors add|list|revoke|rotate``. The CLI and a
running server may share a data directory: the embedded store (SQLite) serialises writers across
processes and the server reads fresh state on every request, so a collector added here works at once.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import line, say
from rasoat.core.commands.common import (
    JSON_HELP,
    CommandError,
    add_data_option,
    command_group,
    command_store,
    default_actor,
    print_json,
    print_table,
)
from rasoat.core.config import load_settings, store_public_url, stored_public_url
from rasoat.core.indicators.loading import collect
from rasoat.core.plugins import get_manager

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# plugin's commands, and loading litestar, uvicorn and the server for it would slow every command
# (benchmarks/cli_startup.py).

DEFAULT_PORT = 8000




def lan_address() -> str | None:
    """This machine's address on its local network (the interface a route out would use); no packet is
    sent. None when there is no such interface (then only this machine can reach the server)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere, only picks the interface
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def _public_base(args: argparse.Namespace) -> tuple[str, str | None]:
    """(the base URL phones reach, a note saying how it was chosen when it was guessed)."""
    explicit = args.public_url or os.environ.get("RASOAT_PUBLIC_URL")
    if explicit:
        return explicit.rstrip("/"), None
    host = args.host
    if host in ("0.0.0.0", "::", ""):
        lan = lan_address()
        if lan is None:
            return (f"http://127.0.0.1:{args.port}",
                    "Không tìm thấy địa chỉ mạng nội bộ; điện thoại chưa truy cập được, dùng --public-url / "
                    "No local network address found; phones cannot reach this yet, give --public-url")
        return (f"http://{lan}:{args.port}",
                f"Địa chỉ mạng nội bộ của máy là {lan}; điện thoại dùng địa chỉ khác thì đặt --public-url / "
                f"This machine's local network address is {lan}; if phones reach it by another address, "
                "give --public-url")
    shown = f"[{host}]" if ":" in host else host
    note = None
    if host in ("127.0.0.1", "localhost", "::1"):
        note = ("Chỉ máy này truy cập được; cho điện thoại dùng --host 0.0.0.0 / Only this machine can reach "
                "it; use --host 0.0.0.0 for phones")
    return f"http://{shown}:{args.port}", note


def _check_port_free(host: str, port: int) -> None:
    """A busy port is reported before anything is printed or set up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CommandError("command.port_busy", port=port, host=host, reason=exc.strerror) from None


def _known_base(args: argparse.Namespace) -> str | None:
    """Where the server is, for commands printing URLs: --url, $RASOAT_PUBLIC_URL, or what serve stored."""

    url = getattr(args, "url", None) or os.environ.get("RASOAT_PUBLIC_URL")
    if url:
        return url.rstrip("/")
    return stored_public_url(load_settings(args.data).data_dir)


# --- serve --------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from rasoat.core.collectors import collector_url
    from rasoat.server.app import ServerSettings
    from rasoat.server.demo import demo_token, is_empty, publish_builtin_forms, setup_demo
    from rasoat.server.runner import serve

    settings = load_settings(args.data)
    _check_indicators()
    _check_port_free(args.host, args.port)
    database_url = args.database or settings.database_url
    base_url, how = _public_base(args)
    with command_store(args, create=True) as store:
        from rasoat.core.protection import keyring

        keyring(store)  # the key-encryption key of person records (made on first start, outside the data)
        empty = is_empty(store)
        if empty and not args.no_demo:
            demo_key(store, Path(settings.data_dir))
        published = publish_builtin_forms(store)
        if published:
            say("serve.published", forms=", ".join(published))
        _warn_withheld(store)
        if empty and not args.no_demo:
            setup_demo(store)
            say("serve.demo")
        token = demo_token(store)

    store_public_url(Path(settings.data_dir), base_url)
    server_settings = ServerSettings(public_url=args.public_url or os.environ.get("RASOAT_PUBLIC_URL"))
    print(f"{line('label.server')}: {base_url}  ({line('label.data')}: {settings.data_dir})")
    if how:
        print(how)
    if token:
        url = collector_url(base_url, token)
        print(f"{line('serve.demo_collector')} — ODK Collect server URL:\n  {url}")
        _print_qr(url)
    say("serve.officer_api")
    say("serve.stop")
    serve(Path(settings.data_dir), database_url, args.host, args.port, server_settings, workers=args.workers)
    return 0


def _check_indicators() -> None:
    """Load every plugin's indicator definitions before serving, so two plugins declaring one indicator
    id stop the server at once with both names (as a form id conflict does), not a page later."""

    collect(get_manager())


def demo_key(store: Any, data_dir: Path) -> Path | None:
    """The demo's project key, for the ODK encryption a form may be given (``rasoat keys forms``); returns
    the passphrase file.
    The passphrase is ``$RASOAT_KEY_PASSPHRASE`` or a generated one written to
    ``DATA/demo-key-passphrase.txt`` (mode 600): fine for trying things, never for real records
    (``rasoat keys rotate`` before real work). An existing file is never replaced: it may hold the
    passphrase of another store on the same folder (the embedded one, then PostgreSQL), so a second store
    gets ``demo-key-passphrase-2.txt`` and so on."""
    from rasoat.core.crypto import create_project_key, key_entry

    if key_entry(store) is not None:
        return None
    passphrase = os.environ.get("RASOAT_KEY_PASSPHRASE")
    path = None
    if not passphrase:
        passphrase = secrets.token_urlsafe(18)
        data_dir.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            path = data_dir / ("demo-key-passphrase.txt" if n == 1 else f"demo-key-passphrase-{n}.txt")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(passphrase + "\n")
            break
        say("serve.demo_key", path=path)
    create_project_key(store, passphrase, actor="serve")
    return path


def _warn_withheld(store: Any) -> None:
    from rasoat.core.crypto import encrypted_form_ids, public_key

    withheld = [f for f in encrypted_form_ids(store) if store.get_form(f) is None]
    if withheld and public_key(store) is None:
        say("serve.withheld", forms=", ".join(withheld))


def _print_qr(url: str) -> None:
    """A terminal QR code (half-block characters) of minimal Collect settings for the demo collector."""
    import io

    import segno
    from rasoat.core.collect_settings import encode_settings, minimal_settings

    out = io.StringIO()
    try:
        segno.make(encode_settings(minimal_settings(url)), error="l", micro=False).terminal(
            out=out, compact=True, border=2
        )
    except Exception:  # a QR is a convenience; the URL above is enough
        return
    print(out.getvalue())


# --- collectors ---------------------------------------------------------------------------------



def cmd_collectors_add(args: argparse.Namespace) -> int:
    from rasoat.core.collectors import collector_url, create_collector, digest_url, same_name
    from rasoat.server.digest import set_password

    with command_store(args) as store:
        twins = same_name(store, args.name)
        user, token = create_collector(
            store, args.name, args.unit, args.round or [], username=args.username, actor=default_actor()
        )
        password = None
        if args.password:
            password = secrets.token_urlsafe(12)
            set_password(store, user.username, password)
    base = _known_base(args)
    url = collector_url(base, token) if base else None
    if args.json:
        out: dict[str, Any] = {
            "id": user.id, "username": user.username, "name": user.display_name, "units": user.unit_codes,
            "rounds": args.round or [], "url": url, "token": token,
        }
        if password:
            out.update(password=password, digest_url=digest_url(base) if base else None)
        print_json(out)
        return 0
    for other in twins:
        say("collectors.same_name", id=other.id, username=other.username, file=sys.stderr)
    print(f"{user.id}  {user.username}  {user.display_name}")
    if url:
        print(f"ODK Collect server URL: {url}")
    else:
        say("collectors.no_server_url")
    if password:
        print(f"{line('label.or')}: {digest_url(base or 'http://MÁY-CHỦ:8000')}  "
              f"{line('label.username')}: {user.username}  {line('label.password')}: {password}")
    say("collectors.keep_secret")
    return 0


def cmd_collectors_list(args: argparse.Namespace) -> int:
    from rasoat.core.collectors import list_collectors
    from rasoat.server.accesslog import vn_time

    with command_store(args) as store:
        users = list_collectors(store)
        rounds = store.list_rounds()
    rows: list[dict[str, Any]] = []
    for u in users:
        assigned = [r.id for r in rounds if u.id in r.collector_ids]
        rows.append({"id": u.id, "username": u.username, "name": u.display_name, "units": u.unit_codes,
                     "rounds": assigned, "active": u.active, "created_at": u.created_at})
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["ID", "Tên đăng nhập / Username", "Tên / Name", "Đơn vị / Units", "Đợt / Rounds",
         "Hoạt động / Active", "Tạo lúc / Created"],
        [
            [r["id"], r["username"], r["name"], ",".join(r["units"]), ",".join(r["rounds"]),
             "có / yes" if r["active"] else "đã thu hồi / revoked", vn_time(r["created_at"])[:16]]
            for r in rows
        ],
    )
    return 0


def cmd_collectors_revoke(args: argparse.Namespace) -> int:
    from rasoat.core.collectors import revoke_collector
    from rasoat.server.digest import forget_password

    with command_store(args) as store:
        user = revoke_collector(store, args.id, actor=default_actor())
        forget_password(store, user.username)
    say("collectors.revoked", id=user.id, username=user.username)
    return 0


def cmd_collectors_rotate(args: argparse.Namespace) -> int:
    from rasoat.core.collectors import get_collector
    from rasoat.core.phone_setup import rotate_token

    if not args.yes:
        if not sys.stdin.isatty():
            raise CommandError("command.confirm_with_yes")
        answer = input(f"Cấp mã mới cho {args.id}? Thẻ QR cũ và điện thoại đang dùng nó sẽ ngừng hoạt động. "
                       f"Gõ 'yes' / New token for {args.id}? The old QR card and phones set up with it stop "
                       "working. Type 'yes': ")
        if answer.strip().lower() not in ("yes", "có", "co"):
            say("collectors.nothing_changed")
            return 1
    with command_store(args) as store:
        user = get_collector(store, args.id)
        token = rotate_token(store, user, actor=default_actor())
    base = _known_base(args)
    say("collectors.rotated", id=user.id, username=user.username)
    if base:
        from rasoat.core.collectors import collector_url

        print(f"ODK Collect server URL: {collector_url(base, token)}")
    say("collectors.print_card", username=user.username)
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="chạy máy chủ đồng bộ ODK Collect / run the ODK Collect sync server"
    )
    add_data_option(p)
    p.add_argument("--host", default="127.0.0.1", help="địa chỉ nghe / listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="cổng / port (default 8000)")
    p.add_argument("--no-demo", action="store_true", help="không tạo dữ liệu thử / do not set up the demo")
    p.add_argument("--public-url", metavar="URL",
                   help="địa chỉ điện thoại dùng / base URL phones use (default from the request)")
    p.add_argument("--workers", type=int, default=1, help="số tiến trình / worker processes (default 1)")
    p.set_defaults(func=cmd_serve)

    col = command_group(subparsers, "collectors", "người thu thập (ODK Collect) / collectors (app users)")
    a = col.add_parser("add", help="thêm người thu thập, in URL cho Collect / add a collector, print its URL")
    a.add_argument("name", help="họ tên người thu thập / the collector's full name")
    a.add_argument("--unit", action="append", required=True, metavar="CODE",
                   help="mã xã/thôn/tỉnh (lặp lại được) / unit code (repeatable)")
    a.add_argument("--round", action="append", metavar="ID",
                   help="đợt (lặp lại được) / round id (repeatable)")
    a.add_argument("--username", help="tên đăng nhập / username (default from the name)")
    a.add_argument("--password", action="store_true",
                   help="tạo thêm mật khẩu (Digest) / also make a password for Digest login")
    a.add_argument("--url", metavar="BASE",
                   help="địa chỉ máy chủ / server base URL (default $RASOAT_PUBLIC_URL, else the address "
                   "'rasoat serve' recorded in the data directory)")
    a.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(a)
    a.set_defaults(func=cmd_collectors_add)

    ls = col.add_parser("list", help="liệt kê người thu thập / list collectors")
    ls.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(ls)
    ls.set_defaults(func=cmd_collectors_list)

    ro = col.add_parser("rotate", help="cấp mã mới, thẻ cũ ngừng hoạt động / new token, the old card "
                        "stops working")
    ro.add_argument("id", help="mã hoặc tên đăng nhập / id or username")
    ro.add_argument("--yes", action="store_true", help="không hỏi lại / do not ask for confirmation")
    ro.add_argument("--url", metavar="BASE", help="địa chỉ máy chủ / server base URL")
    add_data_option(ro)
    ro.set_defaults(func=cmd_collectors_rotate)

    rv = col.add_parser("revoke", help="thu hồi mã truy cập ngay / revoke a collector's access at once")
    rv.add_argument("id", help="mã hoặc tên đăng nhập / id or username")
    add_data_option(rv)
    rv.set_defaults(func=cmd_collectors_revoke)
