"""``rasoat plugin new NAME --province CODE [-o DIR]``: a separate plugin project, installed with pip.

The project (``DIR/rasoat-<name>``) holds its own ``pyproject.toml`` with the ``rasoat`` entry point, a
package with the hook implementations, plan metadata, an example XLSForm with its media, an example
indicator with a target, a hamlets CSV (sample rows) and a test that runs with pytest. Templates are data
in ``core/plugin_template/``; docs/plugins.md walks an officer from here to an installed plugin.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

from rasoat.core import hookimpl
from rasoat.core.cli_lines import line, say
from rasoat.core.commands.common import CommandError, add_settings_option
from rasoat.core.plugins import get_manager
from rasoat.core.units import HAMLET_COLUMNS, HAMLET_OPTIONAL_COLUMNS, HAMLET_TERMS, fold, get_units

# The work's modules are imported inside the functions that use them: ``rasoat --help`` imports every
# command module, and loading the media code for it would slow every command (benchmarks/cli_startup.py).

TEMPLATE_PACKAGE = "rasoat.core.plugin_template"
# template file → path in the new project ({package} is the plugin's package folder)
TEMPLATE_FILES: dict[str, str] = {
    "pyproject.toml.jinja2": "pyproject.toml",
    "readme.md.jinja2": "README.md",
    "gitignore.jinja2": ".gitignore",
    "package_init.py.jinja2": "{package}/__init__.py",
    "plan.yaml.jinja2": "{package}/plan.yaml",
    "indicators.yaml.jinja2": "{package}/indicators.yaml",
    "test_plugin.py.jinja2": "tests/test_plugin.py",
}
SAMPLE_HAMLETS = 3
_NAME = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


@dataclass(frozen=True)
class NewPlugin:
    """What a new project is made from; ``context()`` is what the templates see."""

    name: str  # entry-point name and id prefix: "lang_son"
    province_code: str
    province_name: str
    commune_code: str
    commune_name: str
    term: str  # the hamlet term: thôn, xóm, bản, tổ dân phố…

    @property
    def package(self) -> str:
        return f"rasoat_{self.name}"

    @property
    def project(self) -> str:
        return "rasoat-" + self.name.replace("_", "-")

    @property
    def form_id(self) -> str:
        return f"{self.name}_checklist"

    @property
    def indicator_id(self) -> str:
        return f"{self.name}_mailbox"

    def context(self) -> dict[str, Any]:
        return {
            "name": self.name, "package": self.package, "project": self.project, "form_id": self.form_id,
            "indicator_id": self.indicator_id, "province_code": self.province_code,
            "province_name": self.province_name, "commune_code": self.commune_code,
            "commune_name": self.commune_name, "term": self.term, "year": date.today().year,
            "issuer": "UBND " + self.province_name[:1].lower() + self.province_name[1:],  # UBND tỉnh Lạng Sơn
        }  # fmt: skip


def plugin_name(text: str) -> str:
    """"Lạng Sơn" or "lang-son" → "lang_son": a Python identifier used as entry-point name and id prefix."""

    name = "_".join(fold(text).split()).replace("-", "_")
    if not _NAME.match(name):
        raise CommandError("command.bad_plugin_name", name=text)
    return name


def describe(name: str, province: str, commune: str | None = None, term: str = "thôn") -> NewPlugin:
    """Resolve the province (code or name) and the sample commune (default: the province's first)."""

    units = get_units()
    prov = units.resolve(province, level="province")
    communes = units.communes(prov.code)
    com = units.resolve(commune, level="commune", within=prov.code) if commune else communes[0]
    slug = plugin_name(name)

    if get_manager().has_plugin(slug):
        # rasoat skips a second entry point with a name already loaded: the new plugin would never run
        raise CommandError("command.plugin_exists", name=slug)
    if term not in HAMLET_TERMS:
        raise CommandError("command.unknown_hamlet_term", term=term, terms=", ".join(HAMLET_TERMS))
    return NewPlugin(slug, prov.code, prov.name, com.code, com.name, term)


def create_plugin(spec: NewPlugin, output: str | Path = ".") -> Path:
    """Write the project under ``output``; refuses a folder that already exists and is not empty."""
    root = Path(output) / spec.project
    if root.exists() and any(root.iterdir()):
        raise CommandError("command.folder_not_empty", path=root)
    template = files(TEMPLATE_PACKAGE)
    env = _environment()
    ctx = spec.context()
    written: dict[Path, bytes] = {}
    for source, target in TEMPLATE_FILES.items():
        text = env.from_string(template.joinpath(source).read_text(encoding="utf-8")).render(**ctx)
        written[root / target.format(package=spec.package)] = text.encode("utf-8")
    pkg = root / spec.package
    written[pkg / "hamlets.csv"] = _hamlets_csv(spec)
    forms = pkg / "forms"
    example = template.joinpath("example_form.xlsx").read_bytes()
    written[forms / f"{spec.form_id}.xlsx"] = _example_form(spec, example)
    written.update({forms / name: data for name, data in _location_media(spec).items()})
    for path, data in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _environment() -> Any:
    import jinja2

    # {= … =} placeholders: Python's and YAML's braces in the templates stay untouched
    return jinja2.Environment(
        variable_start_string="{=", variable_end_string="=}", block_start_string="{=%",
        block_end_string="%=}", comment_start_string="{=#", comment_end_string="#=}",
        keep_trailing_newline=True, undefined=jinja2.StrictUndefined, autoescape=False,
    )  # fmt: skip


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _hamlets_csv(spec: NewPlugin) -> bytes:
    """Sample hamlets for the commune, marked sample=1: the officer replaces them with the real list."""
    word = spec.term[:1].upper() + spec.term[1:]
    rows = [
        [f"{spec.commune_code}-{n:02d}", f"{word} mẫu {n}", spec.commune_code, "", spec.term, "1", ""]
        for n in range(1, SAMPLE_HAMLETS + 1)
    ]

    return _csv([*HAMLET_COLUMNS, *HAMLET_OPTIONAL_COLUMNS], rows)


def _location_media(spec: NewPlugin) -> dict[str, bytes]:
    """The form's provinces.csv, communes.csv (every commune of the province) and hamlets.csv: the server
    replaces them per collector, but the form builds and validates with these."""
    from rasoat.core.media import LOCATION_HEADERS

    units = get_units()
    communes = [[c.code, c.name, spec.province_code] for c in units.communes(spec.province_code)]
    word = spec.term[:1].upper() + spec.term[1:]
    hamlets = [
        [f"{spec.commune_code}-{n:02d}", f"{word} mẫu {n} (dữ liệu mẫu / sample)", spec.commune_code]
        for n in range(1, SAMPLE_HAMLETS + 1)
    ]
    return {
        "provinces.csv": _csv(LOCATION_HEADERS["province"], [[spec.province_code, spec.province_name]]),
        "communes.csv": _csv(LOCATION_HEADERS["commune"], communes),
        "hamlets.csv": _csv(LOCATION_HEADERS["hamlet"], hamlets),
    }


def _example_form(spec: NewPlugin, template: bytes) -> bytes:
    """The template XLSForm with this plugin's form id, title and a fresh version."""
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(template))
    ws = wb["settings"]
    head = [c.value for c in ws[1]]
    values = {
        "form_id": spec.form_id,
        "form_title": f"Phiếu kiểm tra {spec.term} ({spec.province_name})",
        "version": date.today().strftime("%Y%m%d") + "01",
    }
    for key, value in values.items():
        ws.cell(row=2, column=head.index(key) + 1, value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def rasoat_checkout(start: Path) -> Path | None:
    """The rasoat source checkout ``start`` lies in (rasoat installed with ``pip install -e``), else None."""
    import rasoat

    root = Path(rasoat.__file__).resolve().parent
    if not (root / "pyproject.toml").is_file():
        return None  # an installed wheel: no checkout to keep clean
    start = start.resolve()
    return root if start == root or root in start.parents else None


def default_output() -> tuple[Path, str | None]:
    """Where a new project goes without ``-o``: here, unless here is rasoat's own checkout (its tests and
    style checks would then pick the project up); then beside the checkout."""
    checkout = rasoat_checkout(Path.cwd())
    if checkout is None:
        return Path("."), None
    return checkout.parent, (
        f"Thư mục hiện tại thuộc mã nguồn rasoat; tạo dự án bên cạnh, trong {checkout.parent} (dùng -o để "
        f"chọn nơi khác) / The current folder is inside rasoat's checkout; the project goes beside it, in "
        f"{checkout.parent} (-o chooses another place)"
    )


def pip_target(root: Path) -> str:
    """A path pip cannot mistake for a package name on an index: ``./rasoat-lang-son``."""
    return str(root) if root.is_absolute() else f"./{root.as_posix()}"


def run_new(args: argparse.Namespace) -> int:
    spec = describe(args.name, args.province, args.commune, args.term)
    output, note = (Path(args.output), None) if args.output else default_output()
    if note:
        print(note)
    root = create_plugin(spec, output)
    say("plugin_new.created", path=root)
    print(f"  plugin {spec.name}, {line('label.province')} {spec.province_code} {spec.province_name}")
    print(f"  {line('label.form')} {spec.form_id}, {line('label.indicator')} {spec.indicator_id}")
    say("plugin_new.next")
    print(f"  pip install {pip_target(root)}")
    print("  rasoat plugins; rasoat forms list; rasoat indicators --definitions")
    print(f"  cd {root} && python -m pytest")
    return 0


@hookimpl
def register_commands(subparsers: Any) -> None:
    parser = subparsers.add_parser("plugin", help="tạo plugin tỉnh / make a province plugin")
    sub = parser.add_subparsers(dest="plugin_command", metavar="COMMAND")
    new = sub.add_parser(
        "new",
        help="tạo dự án plugin mới / create a new plugin project",
        description="Tạo một dự án plugin riêng (cài bằng pip) cho một tỉnh / "
        "Create a separate plugin project (installed with pip) for a province",
    )
    new.add_argument("name", help="tên plugin, ví dụ lang_son / plugin name, e.g. lang_son")
    new.add_argument(
        "--province", required=True, metavar="CODE", help="mã hoặc tên tỉnh / province code or name"
    )
    new.add_argument(
        "--commune", metavar="CODE", help="xã có danh sách thôn mẫu / commune for the sample hamlets"
    )
    new.add_argument("--term", default="thôn", help="từ chỉ thôn: thôn, xóm, bản, tổ dân phố… / hamlet term")
    new.add_argument("-o", "--output", metavar="DIR",
                     help="thư mục chứa dự án / parent folder (default: here; beside rasoat's own checkout)")
    add_settings_option(new)
    new.set_defaults(func=run_new)
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)
