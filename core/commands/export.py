"""``rasoat export`` (a form's raw data workbook) and ``rasoat report`` (the indicator report workbook)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import line, say
from rasoat.core.commands.common import CommandError, add_data_option, command_store, default_actor
from rasoat.core.commands.keys import print_derived
from rasoat.core.commands.users import read_secret
from rasoat.core.models import ReviewState

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the Excel writers, cryptography and the store for it would slow every command
# (benchmarks/cli_startup.py).

_SUFFIX = {"xlsx": ".xlsx", "csv": ".zip"}


def _output(path: str, fmt: str = "xlsx") -> Path:
    out = Path(path)
    suffix = _SUFFIX[fmt]
    if out.suffix.lower() != suffix:
        raise CommandError("command.bad_suffix", path=path, suffixes=suffix)
    if not out.parent.exists():
        raise CommandError("command.no_folder", path=out.parent)
    return out


def _states(text: str | None) -> list[ReviewState] | None:
    if not text:
        return None
    out = []
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        try:
            out.append(ReviewState(part))
        except ValueError:
            allowed = ", ".join(s.value for s in ReviewState)
            raise CommandError("command.unknown_state", allowed=allowed, state=part) from None
    return out


def _decryptor(store: Any, args: argparse.Namespace, form_id: str | None, purpose: str) -> Any:
    """A ``Decryptor`` of the store's records when a passphrase is given (or asked for an encrypted form's
    export on a terminal); None when not needed. A wrong passphrase is a one-line error."""
    from rasoat.core.crypto import form_is_encrypted, open_decryptor

    wanted = bool(getattr(args, "passphrase_file", None))
    if not wanted and form_id is not None and form_is_encrypted(store, form_id):
        if not sys.stdin.isatty():
            raise CommandError("command.passphrase_needed", form_id=form_id)
        wanted = True
    if not wanted:
        return None
    passphrase = read_secret(args.passphrase_file, "Cụm mật khẩu khoá dự án / Project key passphrase",
                             confirm=False)
    return open_decryptor(store, passphrase, actor=default_actor(), purpose=purpose)


def _decrypted_note(opener: Any) -> None:
    if opener is not None and opener.failed:
        say("export.undecryptable", n=opener.failed, file=sys.stderr,
            ids=f"{', '.join(opener.failed_ids[:5])}{' …' if opener.failed > 5 else ''}")


def _format(args: argparse.Namespace) -> str:
    """--format, or what the output's name says (.zip: CSV files, else xlsx)."""
    if args.format:
        return str(args.format)
    return "csv" if str(args.output).lower().endswith(".zip") else "xlsx"


def _officer(store: Any, args: argparse.Namespace) -> Any:
    """The officer named by ``--as``: their role must hold the identity permission for personal columns
    (a refusal is audited) and the export is cut to their units. None without ``--as``: the server's
    operator, who reads the data directory anyway (every command runs so), audited as ``default_actor``."""
    from rasoat.core.identities import require_identities

    if not args.as_user:
        return None
    user = store.get_user_by_name(args.as_user)
    if user is None or not user.active:
        raise CommandError("command.no_active_account", username=args.as_user)
    if args.include_personal:
        require_identities(store, user, "export.raw", target=args.form_id, via="cli")
    return user


def run_export(args: argparse.Namespace) -> int:
    # the Excel writers load when an export runs, not for every CLI call
    from rasoat.core.excel.from_store import ExportFilters, count_for_export, export_form
    from rasoat.core.excel.raw import RawExportOptions
    from rasoat.core.scope import export_units
    from tqdm import tqdm

    fmt = _format(args)
    out = _output(args.output, fmt)
    states = _states(args.states)
    with command_store(args) as store:
        officer = _officer(store, args)
        units = tuple(args.unit or ())
        if officer is not None:
            units = export_units(officer, units)
        actor = officer.username if officer is not None else default_actor()
        filters = ExportFilters(
            round_id=args.round,
            unit_codes=units,
            period=args.period,
            review_states=states,
            form_version=args.form_version,
        )
        options = RawExportOptions(
            labels=args.labels,
            group_prefix=not args.no_group_prefix,
            choice_labels=False if args.values else None,
            split_multiple=not args.no_split,
            include_personal=args.include_personal,
            drop_fields=frozenset(f for item in args.drop or () for f in item.split(",") if f),
            attachment_url=args.attachment_url,
        )
        opener = None
        opener = _decryptor(store, args, args.form_id, "export")
        total = count_for_export(store, args.form_id, filters)
        with tqdm(
            total=total, desc=args.form_id, unit=" bản ghi", file=sys.stderr, disable=args.quiet or None
        ) as bar:
            stats = export_form(
                store,
                args.form_id,
                out,
                format="csv" if fmt == "csv" else "xlsx",
                filters=filters,
                options=options,
                actor=actor,
                progress=bar.update,
                decryptor=opener,
            )
        if opener is not None:
            opener.record("export", target=args.form_id, submissions=stats.submissions)
    _decrypted_note(opener)
    repeats = ", ".join(f"{t}: {n}" for t, n in stats.rows.items() if t != args.form_id)
    say("export.raw_written", path=out, n=stats.submissions, repeats=f" ({repeats})" if repeats else "")
    if stats.dropped_columns and not args.include_personal:
        say("export.personal_left_out", columns=", ".join(stats.dropped_columns), file=sys.stderr)
    return 0


def run_report(args: argparse.Namespace) -> int:
    from rasoat.core.excel.from_store import indicator_report
    from tqdm import tqdm

    out = _output(args.output)
    with command_store(args) as store:
        if args.passphrase_file:  # count the encrypted records: derive their statistical fields first
            _derive(store, args)
        with tqdm(
            desc="chỉ tiêu / indicators", unit=" bản ghi", file=sys.stderr, disable=args.quiet or None
        ) as bar:
            stats = indicator_report(
                store,
                out,
                unit_code=args.unit,
                period=args.period,
                generated_by=default_actor(),
                progress=bar.update,
            )
    print(f"{line('export.report_written', path=out, charts=stats.charts)}: {', '.join(stats.sheets)}")
    return 0


def _derive(store: Any, args: argparse.Namespace) -> None:
    """Unlock the project key and keep the statistical fields of every encrypted record (core.derive)."""
    from rasoat.core.derive import unlock_and_derive

    passphrase = read_secret(args.passphrase_file, "Cụm mật khẩu khoá dự án / Project key passphrase",
                             confirm=False)
    print_derived(unlock_and_derive(store, passphrase, actor=default_actor()))


@hookimpl
def register_commands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="xuất dữ liệu biểu mẫu ra Excel hoặc CSV / export a form's submissions to Excel or CSV",
        description="Xuất dữ liệu thô của một biểu mẫu ra tệp Excel (một trang cho mỗi nhóm lặp) hoặc "
        "tệp zip các CSV như ODK Central (KEY / PARENT_KEY) / "
        "Export a form's raw data to an Excel workbook (one sheet per repeat group) or to a zip of CSV "
        "files laid out as ODK Central's (KEY / PARENT_KEY).",
    )
    p.add_argument("form_id", metavar="FORM_ID", help="mã biểu mẫu / form id")
    p.add_argument("-o", "--output", required=True, metavar="FILE.xlsx|FILE.zip",
                   help="tệp Excel hoặc zip CSV / Excel file or zip of CSVs")
    p.add_argument(
        "--format",
        choices=("xlsx", "csv"),
        help="xlsx hoặc csv (zip; mặc định theo đuôi tệp) / xlsx or csv (a zip; default: by the file name)",
    )
    p.add_argument("--round", metavar="ROUND_ID", help="chỉ một đợt / one round only")
    p.add_argument(
        "--unit", action="append", metavar="CODE", help="đơn vị và cấp dưới (lặp lại được) / unit and below"
    )
    p.add_argument(
        "--period",
        metavar="2026",
        help="nhận trong kỳ / received in 2026, 2026-H1, 2026-Q2, 2026-03, 2026-W07, 2026-QD28",
    )
    p.add_argument("--states", metavar="S1,S2", help="trạng thái duyệt / review states (received,approved,…)")
    p.add_argument(
        "--labels", choices=("vi", "en", "none"), default="vi", help="tiêu đề cột / headers (default vi)"
    )
    p.add_argument("--values", action="store_true", help="giá trị lựa chọn thay vì nhãn / choice values")
    p.add_argument("--no-group-prefix", action="store_true", help="bỏ tên nhóm khỏi tiêu đề / no group names")
    p.add_argument("--no-split", action="store_true", help="không tách cột 0/1 / no 0/1 choice columns")
    p.add_argument(
        "--include-personal",
        action="store_true",
        help="gồm cả dữ liệu cá nhân (được ghi nhật ký) / include personal data (audited)",
    )
    p.add_argument("--as", dest="as_user", metavar="USERNAME",
                   help="cán bộ xuất: vai trò (quyền xem danh tính) và địa bàn của họ áp dụng / "
                   "the officer exporting: their role (identity permission) and units apply")
    p.add_argument("--drop", action="append", metavar="FIELD,…", help="bỏ thêm các trường / leave fields out")
    p.add_argument("--form-version", metavar="VERSION", help="chỉ một phiên bản / one form version only")
    p.add_argument("--attachment-url", metavar="URL", help="gốc liên kết tệp đính kèm / attachment link base")
    p.add_argument("-q", "--quiet", action="store_true", help="không hiện tiến độ / no progress bar")
    p.add_argument("--passphrase-file", metavar="FILE",
                   help="giải mã biểu mẫu mã hoá (được ghi nhật ký) / decrypt an encrypted form (audited)")
    add_data_option(p)
    p.set_defaults(func=run_export)

    r = subparsers.add_parser(
        "report",
        help="báo cáo chỉ tiêu ra Excel / indicator report to Excel",
        description="Báo cáo kết quả chỉ tiêu của một đơn vị và các đơn vị cấp dưới / "
        "Indicator report for a unit and the units below it.",
    )
    r.add_argument("-o", "--output", required=True, metavar="FILE.xlsx", help="tệp Excel / Excel file")
    r.add_argument("--unit", metavar="CODE", help="tỉnh hoặc xã / a province or commune code")
    r.add_argument(
        "--period", metavar="2026", help="kỳ báo cáo (mặc định năm nay) / period (default this year)"
    )
    r.add_argument("-q", "--quiet", action="store_true", help="không hiện tiến độ / no progress bar")
    r.add_argument("--passphrase-file", metavar="FILE",
                   help="tính cả bản ghi mã hoá: mở khoá và giữ trường thống kê của chúng (được ghi "
                   "nhật ký) / count encrypted records too: unlock and keep their statistical fields "
                   "(audited)")
    add_data_option(r)
    r.set_defaults(func=run_report)
