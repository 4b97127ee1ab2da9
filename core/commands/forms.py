"""``rasoat forms list | show | build | validate``: the forms of every plugin, compiled with pyxform; and
``rasoat forms publish``: any XLSForm into the data directory's store (``core.publish``)."""

from __future__ import annotations

import argparse
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import line, say
from rasoat.core.commands.common import (
    JSON_HELP,
    CommandError,
    add_data_option,
    add_settings_option,
    command_group,
    command_store,
    default_actor,
    print_json,
    print_table,
)
from rasoat.core.plugins import get_manager

if TYPE_CHECKING:  # pyxform and the catalogue load when a form command runs, not for --help
    from rasoat.core.formreg import FormCatalogue
    from rasoat.core.xlsform import CompiledForm

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading pyxform, cryptography and the form catalogue for it would slow every command
# (benchmarks/cli_startup.py).


def _catalogue(validate: bool = False) -> FormCatalogue:
    from rasoat.core.formreg import FormCatalogue

    return FormCatalogue(get_manager(), validate=validate)  # XLSFormError: the file, sheet and row


def run_list(args: argparse.Namespace) -> int:
    catalogue = _catalogue()
    forms = catalogue.describe()
    if args.json:
        print_json(forms)
        return 0
    rows = [[f["form_id"], f["version"], f["title"], f["plugin"], f["md5"]] for f in forms]
    # media files are in --json; the title and plugin wrap so a line fits 100 columns
    print_table(["Mã / Id", "Phiên bản / Version", "Tên / Title", "Plugin", "MD5"], rows, narrow=[2, 3])
    for f in forms:
        if f["missing_media"]:
            say("forms.form_missing_media", form=f["form_id"], missing=", ".join(f["missing_media"]),
                file=sys.stderr)
    return 0


def run_show(args: argparse.Namespace) -> int:
    """One form: version, plugin, media, and which fields identify a person (sealed at rest)."""
    from rasoat.core.protection import PSEUDONYM_FIELD

    found = [f for f in _catalogue().describe() if f["form_id"] == args.form_id]
    if not found:
        raise CommandError("command.no_form", form_id=args.form_id)
    form = found[0]
    if args.json:
        print_json(form)
        return 0
    rows = [["Mã / Id", form["form_id"]], ["Phiên bản / Version", form["version"]],
            ["Tên / Title", form["title"]], ["Plugin", form["plugin"]], ["MD5", form["md5"]],
            ["Media", ", ".join(form["media"]) or "—"],
            ["Mã hoá ODK / ODK encrypted", "có / yes" if form["encrypted"] else "không / no"]]
    if form["identifying"]:
        shown = [f"{p} (số định danh / ID number)" if p == form["id_field"] else p
                 for p in form["identifying"]]
        rows.append(["Trường định danh, mã hoá khi lưu / Identifying, sealed at rest", ", ".join(shown)])
        if form["id_field"]:
            rows.append(["Bí danh khoá (để rõ) / Keyed pseudonym (clear)", PSEUDONYM_FIELD])
    else:
        rows.append(["Trường định danh / Identifying fields", "không có / none"])
    print_table(["Mục / Item", "Giá trị / Value"], rows, narrow=[1])
    return 0


def run_build(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    catalogue = _catalogue(validate=args.validate)
    for entry in tqdm(list(catalogue), desc="forms", unit="form", file=sys.stderr, disable=None):
        form = entry.form
        (out / f"{form.form_id}.xml").write_bytes(form.xml)
        media_dir = out / f"{form.form_id}-media"
        if entry.media_paths:
            media_dir.mkdir(exist_ok=True)
            for name, path in entry.media_paths.items():
                shutil.copyfile(path, media_dir / name)
        media = ", ".join(entry.missing_media)
        missing = f"  ({line('label.missing')}: {media})" if media else ""
        print(f"{form.form_id} {form.version} → {out / (form.form_id + '.xml')}{missing}")
    say("forms.written", n=len(catalogue), path=out)
    return 0


def _validate_one(path: str) -> tuple[str, CompiledForm | None, str | None]:
    from rasoat.core.xlsform import XLSFormError, compile_xlsform

    try:
        return path, compile_xlsform(path, validate=True), None
    except XLSFormError as exc:
        return path, None, str(exc)


def run_validate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    # ODK Validate is a JVM per form: two at a time keeps a 2-core machine busy without thrashing.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            tqdm(
                pool.map(_validate_one, args.files),
                total=len(args.files),
                desc="ODK Validate",
                unit="form",
                file=sys.stderr,
                disable=None,
            )
        )
    report: list[dict[str, Any]] = []
    for path, form, error in results:
        if form is not None:
            report.append(
                {
                    "file": path,
                    "valid": True,
                    "form_id": form.form_id,
                    "version": form.version,
                    "md5": form.md5,
                    "warnings": form.warnings,
                }
            )
        else:
            report.append({"file": path, "valid": False, "error": error})
    if args.json:
        print_json(report)
    else:
        for item in report:
            if item["valid"]:
                print(f"OK  {item['file']} ({item['form_id']} {item['version']})")
                for warning in item["warnings"]:
                    print(f"    {line('label.warning')}: {warning}")
            else:
                print(f"{line('label.error')}: {item['error']}", file=sys.stderr)
    bad = sum(not item["valid"] for item in report)
    if bad:
        if not args.json:
            say("forms.invalid", bad=bad, total=len(report), file=sys.stderr)
        return 1
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from rasoat.core.publish import publish_file

    path = Path(args.file)
    if not path.is_file():
        raise CommandError("command.no_file", path=path)
    media: dict[str, bytes] = {}
    for item in args.media or []:
        mp = Path(item)
        if not mp.is_file():
            raise CommandError("command.no_file", path=mp)
        media[mp.name] = mp.read_bytes()
    with command_store(args) as store:
        published = publish_file(store, path, media, actor=default_actor(), round_id=args.round,
                                 validate=not args.no_validate, via="cli")  # PublishError: one line
    if args.json:
        print_json(published.as_json())
        return 0
    form = published.form
    key = "forms.published_to_round" if args.round else "forms.published"
    say(key, form=form.form_id, version=form.version, md5=form.md5, round=args.round)
    if published.missing_media:
        missing = ", ".join(published.missing_media)
        say("forms.missing_media", missing=missing)
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    sub = command_group(subparsers, "forms", "biểu mẫu XLSForm / XLSForm forms")

    p = sub.add_parser("list", help="liệt kê biểu mẫu của mọi plugin / list every plugin's forms")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    add_settings_option(p)
    p.set_defaults(func=run_list)

    p = sub.add_parser("show", help="một biểu mẫu và các trường định danh / one form and its "
                       "identifying fields")
    p.add_argument("form_id", metavar="ID", help="mã biểu mẫu / form id")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    add_settings_option(p)
    p.set_defaults(func=run_show)

    p = sub.add_parser("build", help="ghi XForm và media vào thư mục / write XForms and media into DIR")
    p.add_argument("dir", metavar="DIR", help="thư mục ghi ra / output folder")
    p.add_argument("--validate", action="store_true", help="chạy ODK Validate / also run ODK Validate")
    add_settings_option(p)
    p.set_defaults(func=run_build)

    p = sub.add_parser("validate", help="kiểm tra bằng ODK Validate / check with ODK Validate")
    p.add_argument("files", nargs="+", metavar="FILE", help="tệp XLSForm / XLSForm files")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    add_settings_option(p)
    p.set_defaults(func=run_validate)

    p = sub.add_parser("publish", help="đăng một XLSForm bất kỳ / publish any XLSForm")
    p.add_argument("file", metavar="FILE.xlsx", help="tệp XLSForm / the XLSForm file")
    p.add_argument("--round", metavar="ID", help="thêm vào đợt / add to this round")
    p.add_argument("--media", action="append", metavar="FILE", help="tệp đính kèm / media file (repeatable)")
    p.add_argument("--no-validate", action="store_true", help="bỏ qua ODK Validate / skip ODK Validate")
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    add_data_option(p)
    p.set_defaults(func=run_publish)
