"""Publishing an XLSForm: the one service the CLI, the web pages, rasoat's JSON API and the Central API call.

``compile_upload`` compiles a workbook once (pyxform, the identifying-marks check of ``core.protection``,
ODK Validate when asked) and turns every failure into a ``PublishError``; ``publish`` stores a compiled
form as a version of its form id (``core.xlsform.publish_form``: an identical resend is the stored
version, another content under the same version is refused), adds it to a round when asked
(``core.rounds.add_form``, which writes ``round.add_form``) and writes ``form.publish`` to the audit log.
``publish_file`` does both for a file on disk, with the media found next to it (``core.formreg.find_media``).

Every refusal is a ``PublishError``: a stable ``code``, the message in Vietnamese and English, and for
an XLSForm problem the file, sheet and row (``rows``, one per problem). Each surface turns it into its own
answer in one place (an exit status and a "vi / en" line, an HTTP status and JSON, a table on a page).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rasoat.core.audit import record
from rasoat.core.formreg import find_media
from rasoat.core.models import FormVersion, Round, RoundState
from rasoat.core.problems import Problem
from rasoat.core.rounds import RoundError, add_form
from rasoat.core.storage.base import Store
from rasoat.core.xlsform import (
    GENERIC_VI,
    CompiledForm,
    FormVersionConflict,
    XLSFormError,
    compile_xlsform,
    publish_form,
)

__all__ = ["PublishError", "Published", "compile_upload", "publish", "publish_file"]


@dataclass(frozen=True)
class ErrorRow:
    """One problem of a workbook, where the author finds it."""

    file: str
    sheet: str
    row: int | None
    vi: str
    en: str


class PublishError(Problem):
    """A form that is not published. ``code`` is one of:

    ``form.invalid`` (the workbook does not compile or validate; ``rows`` say where),
    ``form.version_conflict`` (this form id and version are published with other content),
    ``form.unused_media`` (files the form does not reference), ``round.not_found``,
    ``round.closed`` (a closed or archived round takes no new form), ``draft.not_found``,
    ``draft.form_id`` (a draft of one form from a workbook of another), ``draft.test_refused``
    (a test submission the draft does not take).
    """

    def __init__(
        self, code: str, vi: str = "", en: str = "", rows: list[ErrorRow] | None = None, **params: Any
    ) -> None:
        if vi or en:
            params.update(vi=vi, en=en)
        super().__init__(code, **params)
        self.rows = list(rows or [])

    @property
    def vi(self) -> str:
        return self.text("vi")

    @property
    def en(self) -> str:
        return self.text("en")

    @classmethod
    def from_xlsform(cls, exc: XLSFormError) -> PublishError:
        row = ErrorRow(exc.file, exc.sheet or "", exc.row, _vi_detail(exc), exc.detail)
        vi = f"{_where(exc, 'trang', 'dòng')}: {row.vi}"
        return cls("form.invalid", vi, f"{_where(exc, 'sheet', 'row')}: {exc.detail}", [row])


def _vi_detail(exc: XLSFormError) -> str:
    """The Vietnamese text with what the author must find: the names pyxform quotes ('texxt', a list), or
    pyxform's / ODK Validate's own words when there is no Vietnamese for the message."""
    if exc.vi == GENERIC_VI:
        return f"{exc.vi} (pyxform / ODK Validate): {exc.detail}"
    quoted = list(dict.fromkeys(re.findall(r"'([^'\n]{1,80})'", exc.detail)))[:3]
    return f"{exc.vi}: " + ", ".join(f"'{q}'" for q in quoted) if quoted else exc.vi


def _where(exc: XLSFormError, sheet: str, row: str) -> str:
    where = exc.file
    if exc.sheet:
        where += f", {sheet} {exc.sheet}" + (f", {row} {exc.row}" if exc.row else "")
    return where


@dataclass(frozen=True)
class Published:
    """What publishing did: the stored version, the compiled form, the round it joined."""

    form: FormVersion
    compiled: CompiledForm
    missing_media: list[str]
    round_id: str | None
    already: bool  # the same form id, version and content was published before: nothing changed
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The JSON API's answer (``POST /api/v1/forms``, ``rasoat forms publish --json``)."""
        return {
            "form_id": self.form.form_id, "version": self.form.version, "md5": self.form.md5,
            "title": self.form.title, "media": self.form.media, "missing_media": self.missing_media,
            "round": self.round_id, "warnings": self.warnings,
        }


def compile_upload(path: str | os.PathLike[str], *, validate: bool = True) -> CompiledForm:
    """Compile one workbook (once); ``PublishError('form.invalid')`` with the sheet and row on failure."""
    try:
        return compile_xlsform(path, validate=validate)
    except XLSFormError as exc:
        raise PublishError.from_xlsform(exc) from None


def target_round(store: Store, round_id: str | None) -> Round | None:
    """The round a form is to join, checked before anything is stored: it exists and is not closed."""
    if not round_id:
        return None
    rnd = store.get_round(round_id)
    if rnd is None:
        raise PublishError("round.not_found", round=round_id)
    if rnd.state in (RoundState.closed, RoundState.archived):
        raise PublishError("round.closed", round=round_id, state=rnd.state.value)
    return rnd


def publish(
    store: Store,
    compiled: CompiledForm,
    media: dict[str, bytes] | None = None,
    *,
    actor: str,
    round_id: str | None = None,
    source: str = "upload",
    via: str = "",
    audit: dict[str, Any] | None = None,
) -> Published:
    """Store ``compiled`` as a version of its form id with its media, add it to ``round_id``; audited
    (``audit``: more details for the ``form.publish`` event).

    A new version replaces the old one on phones; submissions keep the version they were made with.
    """
    rnd = target_round(store, round_id)
    given = dict(media or {})
    unused = sorted(set(given) - set(compiled.media))
    if unused:
        names = ", ".join(unused)
        raise PublishError("form.unused_media", files=names)
    already = store.get_form(compiled.form_id, compiled.version) is not None
    try:
        form = publish_form(store, compiled, given, source)
    except FormVersionConflict:
        raise PublishError("form.version_conflict", form=compiled.form_id, version=compiled.version) from None
    details: dict[str, Any] = {"version": form.version, "md5": form.md5, "round": round_id}
    if already:
        details["unchanged"] = True
    if via:
        details["via"] = via
    details.update(audit or {})
    record(store, actor, "form.publish", form.form_id, **details)
    if rnd is not None:
        try:
            add_form(store, rnd.id, form.form_id, actor=actor)
        except RoundError as exc:  # closed between the check and now
            state = exc.params.get("state", "closed")
            raise PublishError("round.closed", round=rnd.id, state=state) from None
    return Published(
        form=form,
        compiled=compiled,
        missing_media=[n for n in compiled.media if n not in given],
        round_id=round_id,
        already=already,
        warnings=list(compiled.warnings),
    )


def publish_file(
    store: Store,
    path: str | os.PathLike[str],
    media: dict[str, bytes] | None = None,
    *,
    actor: str,
    round_id: str | None = None,
    validate: bool = True,
    source: str = "upload",
    via: str = "",
) -> Published:
    """Compile the workbook at ``path`` once and publish it. Media the form references are taken from
    ``media``, else from next to the file (``<dir>/<form_id>-media/<name>``, then ``<dir>/<name>``)."""
    target_round(store, round_id)  # a wrong round is said before the seconds a compile takes
    compiled = compile_upload(path, validate=validate)
    given = dict(media or {})
    found, _missing = find_media(Path(path), compiled.form_id, [n for n in compiled.media if n not in given])
    for name, media_path in found.items():
        given[name] = media_path.read_bytes()
    return publish(store, compiled, given, actor=actor, round_id=round_id, source=source, via=via)

