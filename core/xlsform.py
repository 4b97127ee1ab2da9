"""XLSForm (.xlsx) → XForm with pyxform, and errors that name the file, the sheet and the row.

The only module that talks to pyxform. ``compile_xlsform`` returns a ``CompiledForm``: the exact XForm
bytes served to phones and their md5, pyxform's JSON schema of the survey (exporters type cells from
it), and the media files the form references. ``validate=True`` runs ODK Validate (the jar shipped
inside pyxform) through its Python API, because the ``xls2xform`` command exits 0 on invalid forms.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rasoat.core.entities import EntityError, declared_lists
from rasoat.core.indicators.describe import fields_read
from rasoat.core.indicators.loading import collect
from rasoat.core.models import FormVersion
from rasoat.core.problems import Problem
from rasoat.core.protection import check_declaration, identifying_fields
from rasoat.core.storage.base import Conflict, Store
from rasoat.core.units import LOCATION_FIELDS

__all__ = [
    "CompiledForm",
    "FormVersionConflict",
    "XLSFormError",
    "compile_xlsform",
    "normalise_public_key",
    "publish_form",
    "validate_xform",
]


GENERIC_VI = "Lỗi XLSForm"  # the Vietnamese of a message this module has no translation for


class XLSFormError(Problem):
    """An XLSForm that does not compile or validate; ``str()`` names the file, sheet and row."""

    def __init__(
        self, file: str, message: str, *, sheet: str | None = None, row: int | None = None, vi: str = ""
    ) -> None:
        self.file = file
        self.sheet = sheet
        self.row = row
        self.detail = message  # pyxform's / ODK Validate's own words (English)
        self.vi = vi or GENERIC_VI
        where = file
        if sheet:
            where += f", sheet {sheet}"
            if row:
                where += f", row {row}"
        super().__init__("xlsform.invalid", vi=f"{where}: {self.vi} ({message})", en=f"{where}: {message}")


@dataclass(frozen=True)
class CompiledForm:
    """A compiled form: what phones download (``xml``) and what exporters and indicators read (``schema``)."""

    form_id: str
    version: str
    title: str
    xml: bytes  # the exact XForm bytes; md5 is computed over these
    md5: str
    schema: dict[str, Any]  # pyxform's JSON dict of the survey (Survey.to_json_dict())
    media: list[str]  # file names the form references (CSV lists, pulldata files, images…)
    languages: list[str]  # default language first
    encrypted: bool
    source: Path
    warnings: list[str] = field(default_factory=list)

    @property
    def default_language(self) -> str | None:
        return self.languages[0] if self.languages else None


# --- compile -----------------------------------------------------------------------------------


OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls


def _check_workbook(src: Path, shown: str) -> None:
    """A file named .xlsx/.xls that is not an Excel workbook (a renamed CSV, a web page saved by a
    browser) gets a plain message, not pyxform's complaint about its argument type."""
    suffix = src.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        import zipfile

        ok = zipfile.is_zipfile(src)
        if ok:
            with zipfile.ZipFile(src) as zf:
                ok = "[Content_Types].xml" in zf.namelist()
    elif suffix == ".xls":
        with src.open("rb") as fh:
            ok = fh.read(len(OLE_MAGIC)) == OLE_MAGIC
    else:
        return
    if not ok:
        raise XLSFormError(
            shown,
            f"not an Excel workbook, although the name ends in {suffix}: open it in Excel or LibreOffice "
            "and save it as Excel Workbook (.xlsx)",
            vi=f"Không phải tệp Excel dù tên có đuôi {suffix}: mở bằng Excel hoặc LibreOffice rồi lưu lại "
            "dạng Excel Workbook (.xlsx)",
        )


def compile_xlsform(
    path: str | os.PathLike[str],
    validate: bool = False,
    public_key: str | None = None,
    submission_url: str | None = None,
) -> CompiledForm:
    """Compile one XLSForm; with ``validate`` also run ODK Validate on the exact bytes returned.

    ``public_key`` (base64 DER or PEM of an RSA public key) makes the form encrypted, as the settings
    sheet's ``public_key`` column would; ``submission_url`` sets the submission target likewise.
    Every failure raises ``XLSFormError``.
    """
    # pyxform is imported on first compile, not with this module: it takes 0.3 s that every ``rasoat``
    # start (the forms commands are a default plugin) would otherwise pay
    from pyxform.builder import create_survey_element_from_dict
    from pyxform.errors import PyXFormError
    from pyxform.xls2json import workbook_to_json
    from pyxform.xls2json_backends import get_xlsform

    src = Path(path)
    shown = _display(src)
    if not src.is_file():
        raise XLSFormError(shown, "file not found", vi="Không tìm thấy tệp")
    _check_workbook(src, shown)
    warnings: list[str] = []
    try:
        workbook = get_xlsform(xlsform=str(src))
        data = workbook_to_json(
            workbook_dict=workbook,
            form_name=None,
            fallback_form_name=workbook.fallback_form_name,
            default_language=None,
            warnings=warnings,
        )
        if public_key:
            data["public_key"] = normalise_public_key(public_key)
        if submission_url:
            data["submission_url"] = submission_url
        survey = create_survey_element_from_dict(data)
        text = survey.to_xml(validate=False, pretty_print=False, warnings=warnings)
        schema = survey.to_json_dict()
    except PyXFormError as exc:
        raise _error(src, str(exc)) from None
    except XLSFormError:
        raise
    except Exception as exc:  # unreadable workbook, bad zip, …: still one clear line
        raise _error(src, f"{type(exc).__name__}: {exc}") from None

    xml = text.encode("utf-8")
    version = str(schema.get("version") or "").strip()
    if not version:
        raise XLSFormError(
            shown,
            "the settings sheet has no 'version'; add one (e.g. 2026112601) and raise it on every change",
            sheet="settings",
            vi="Trang settings thiếu cột 'version'",
        )
    form = CompiledForm(
        form_id=str(schema["id_string"]),
        version=version,
        title=str(schema.get("title") or schema["id_string"]),
        xml=xml,
        md5=hashlib.md5(xml).hexdigest(),
        schema=schema,
        media=referenced_media(text),
        languages=_languages(text, schema.get("default_language")),
        encrypted="base64RsaPublicKey=" in text,
        source=src,
        warnings=warnings,
    )
    _check_identifying(src, form)
    _check_entities(shown, form)
    if validate:
        form.warnings.extend(validate_xform(form.xml, src))
    return form


def _check_entities(shown: str, form: CompiledForm) -> None:
    """Refuse an entity declaration rasoat cannot process (``core.entities``: an entities-version it does
    not know, a bad list name, two fields saving one property) before anything is stored."""

    try:
        declared_lists(form.xml, identifying_fields(form.schema))
    except EntityError as exc:  # named on the entities sheet, as any other XLSForm problem
        raise XLSFormError(shown, exc.text("en"), sheet="entities", vi=exc.text("vi")) from None


def _check_identifying(src: Path, form: CompiledForm) -> None:
    """Refuse ``rasoat:identifying`` marks that cannot hold (core.protection), naming the sheet and row:
    a field the unit placement or a loaded indicator reads must stay in clear."""

    if not identifying_fields(form.schema):
        return

    read = {name: ("việc xếp đơn vị", "the unit placement") for name in LOCATION_FIELDS}
    for ind in collect():
        for path in fields_read([ind]).get(form.form_id, ()):
            read.setdefault(path, (f"chỉ tiêu {ind.id}", f"indicator {ind.id}"))
    problems = check_declaration(form.schema, read)
    if problems:
        name, vi, en = problems[0]
        row = next((n for n, _type, row_name in _survey_rows(src) if row_name == name), None)
        raise XLSFormError(_display(src), en, sheet="survey", row=row, vi=vi)


def validate_xform(xml: bytes, source: str | os.PathLike[str]) -> list[str]:
    """Run ODK Validate on XForm bytes; returns its warnings, raises XLSFormError when invalid."""
    from pyxform.validators import odk_validate  # start-up cost, as in compile_xlsform

    src = Path(source)
    fd, tmp = tempfile.mkstemp(suffix=".xml", prefix="rasoat-validate-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(xml)
        try:
            warnings = odk_validate.check_xform(tmp)
        except odk_validate.ODKValidateError as exc:
            raise _error(src, _clean_validate(str(exc)), validator=True) from None
        except OSError as exc:  # java missing
            raise XLSFormError(
                _display(src), str(exc), vi="Không chạy được ODK Validate (cần Java)"
            ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    if any("took to long" in w or "Bad return code" in w for w in warnings):
        raise XLSFormError(_display(src), "; ".join(warnings), vi="ODK Validate không kiểm tra xong biểu mẫu")
    return warnings


def normalise_public_key(key: str) -> str:
    """The base64 of the DER SubjectPublicKeyInfo, no PEM header, no line breaks (what Collect loads)."""
    body = "".join(line.strip() for line in key.strip().splitlines() if not line.startswith("-----"))
    try:
        base64.b64decode(body, validate=True)
    except ValueError:
        raise ValueError("public key is not base64 / PEM") from None
    return body


class FormVersionConflict(Conflict):
    """The same form id and version is already published with different XForm bytes."""

    @classmethod
    def for_form(cls, compiled: CompiledForm) -> FormVersionConflict:
        return cls("form.version_exists", form=compiled.form_id, version=compiled.version)


# --- publishing into a store ---------------------------------------------------------------------


def publish_form(store: Store, compiled: CompiledForm, media: dict[str, bytes], source: str) -> FormVersion:
    """Store a compiled form as a version of its form id and return the stored record.

    Publishing the same (form id, version) again with identical XForm bytes returns the stored version
    unchanged; with different bytes it is refused (``FormVersionConflict``): phones cache forms by
    version, so changed content needs a new version in the settings sheet.
    """
    existing = store.get_form(compiled.form_id, compiled.version)
    if existing is not None:
        if existing.md5 == compiled.md5:
            return existing
        raise FormVersionConflict.for_form(compiled)
    unknown = sorted(set(media) - set(compiled.media))
    if unknown:
        raise ValueError(
            "Tệp media không được biểu mẫu sử dụng / media files the form does not reference: "
            + ", ".join(unknown)
        )
    version = FormVersion(
        form_id=compiled.form_id,
        version=compiled.version,
        title=compiled.title,
        md5=compiled.md5,
        media=list(compiled.media),
        encrypted=compiled.encrypted,
        source=source,
    )
    store.put_form(version, compiled.xml, compiled.schema, dict(media))
    return version


# --- media ---------------------------------------------------------------------------------------

_MEDIA_RE = re.compile(r"jr://(?:file|file-csv|images|big-image|audio|video)/([^\"'<>\s)]+)")
_SEARCH_RE = re.compile(r"search\(\s*'([^']+)'")


def referenced_media(xform: str) -> list[str]:
    """File names the XForm asks the phone for: secondary instances (CSV), pulldata files, label media."""
    names = {m.group(1) for m in _MEDIA_RE.finditer(xform)}
    # The old appearance "search('name')" reads name.csv without declaring an instance.
    names.update(f"{m.group(1)}.csv" for m in _SEARCH_RE.finditer(xform))
    return sorted(names)


def _languages(xform: str, default: str | None) -> list[str]:
    langs = re.findall(r'<translation\b[^>]*\blang="([^"]+)"', xform)
    if default and default in langs:
        langs.remove(default)
        langs.insert(0, default)
    return langs


# --- errors with file, sheet and row -------------------------------------------------------------

# Vietnamese for pyxform's and ODK Validate's most common messages (the English original follows it).
_VI_MESSAGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"Unknown question type", re.I), "Loại câu hỏi không hợp lệ"),
    (re.compile(r"List name not in choices sheet", re.I), "Danh sách lựa chọn không có trong trang choices"),
    (
        re.compile(r"no survey element with this name|Could not find the name", re.I),
        "Tham chiếu ${…} tới một câu hỏi không tồn tại",
    ),
    (re.compile(r"Unmatched '(begin|end)", re.I), "Cặp begin/end của nhóm hoặc lặp không khớp"),
    (re.compile(r"duplicate", re.I), "Trùng tên"),
    (re.compile(r"display condition|relevan", re.I), "Điều kiện hiển thị (relevant) không hợp lệ"),
    (re.compile(r"constraint", re.I), "Ràng buộc (constraint) không hợp lệ"),
    (re.compile(r"calculat", re.I), "Công thức (calculation) không hợp lệ"),
]

_ROW_RE = re.compile(r"\[row\s*:\s*(\d+)\]")
_SHEET_RE = re.compile(r"On the '(\w+)' sheet")
_TYPE_RE = re.compile(r"Unknown question type '([^']+)'")
_NODE_RE = re.compile(r"node \[\s*\$\{([^}]+)\}")
_REF_RE = re.compile(r"\$\{([^}]+)\}")
_PATH_RE = re.compile(r"/[A-Za-z_][\w.-]*/((?:[A-Za-z_][\w.-]*/)*[A-Za-z_][\w.-]*)")
_NAME_RE = re.compile(r"(?:name|named) '([^']+)'")


def _error(src: Path, message: str, validator: bool = False) -> XLSFormError:
    """Turn a pyxform / ODK Validate message into an XLSFormError with the sheet and row found."""
    message = message.strip()
    sheet: str | None = None
    row: int | None = None
    m = _ROW_RE.search(message)
    if m:
        row = int(m.group(1))
        s = _SHEET_RE.search(message)
        sheet = s.group(1) if s else "survey"
        message = _ROW_RE.sub("", message, count=1).strip()
    else:
        found = _locate(src, message)
        if found:
            sheet, row = found
    vi = next((text for pattern, text in _VI_MESSAGES if pattern.search(message)), "")
    if validator:
        vi = f"ODK Validate: biểu mẫu không hợp lệ{' – ' + vi.lower() if vi else ''}"
    return XLSFormError(_display(src), message, sheet=sheet, row=row, vi=vi)


def _locate(src: Path, message: str) -> tuple[str, int] | None:
    """Find the survey row a message is about when pyxform / ODK Validate did not give one."""
    types = _TYPE_RE.findall(message)
    names = _NODE_RE.findall(message) + _REF_RE.findall(message) + _NAME_RE.findall(message)
    names += [p.rsplit("/", 1)[-1] for p in _PATH_RE.findall(message)]
    if not (types or names):
        return None
    rows = _survey_rows(src)
    for wanted_type in types:
        for number, type_, _name in rows:
            if type_ == wanted_type or type_.split(" ", 1)[0] == wanted_type:
                return "survey", number
    for wanted in names:
        for number, _type, name in rows:
            if name == wanted:
                return "survey", number
    return None


def _survey_rows(src: Path) -> list[tuple[int, str, str]]:
    """(Excel row number, type, name) of each row of the survey sheet; empty if it cannot be read."""
    if src.suffix.lower() not in (".xlsx", ".xlsm"):
        return []
    try:
        import openpyxl

        wb = openpyxl.load_workbook(src, read_only=True, data_only=True)
    except Exception:
        return []
    try:
        sheet = next((wb[n] for n in wb.sheetnames if n.strip().lower() == "survey"), None)
        if sheet is None:
            return []
        rows = sheet.iter_rows(values_only=True)
        header = [str(c).strip().lower() if c is not None else "" for c in next(rows, ())]
        if "type" not in header or "name" not in header:
            return []
        ti, ni = header.index("type"), header.index("name")
        out = []
        for number, values in enumerate(rows, start=2):
            out.append((number, " ".join(_cell(values, ti).split()), _cell(values, ni)))
        return out
    finally:
        wb.close()


def _cell(values: tuple[Any, ...], index: int) -> str:
    return str(values[index]).strip() if index < len(values) and values[index] is not None else ""


def _clean_validate(message: str) -> str:
    """Keep ODK Validate's problem lines; drop the temp-file list and the banner."""
    keep = []
    for line in message.splitlines():
        line = line.strip()
        if not line or line.startswith(("ODK Validate Errors", ">> XForm is invalid", "Result:")):
            continue
        if line.startswith("The following files failed validation"):
            break
        keep.append(line.lstrip(": ").strip())
    text = " ".join(keep) or message
    return re.sub(r",?\s*Bad node: org\.javarosa\S+", "", text).strip()


def _display(path: Path) -> str:
    """The path as the user typed it, relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
