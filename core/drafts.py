"""Form drafts, as ODK Central keeps them: an uploaded XLSForm waits, compiled, with its own test token,
until an officer publishes it as the form's next version or discards it.

A draft is compiled once, when it is saved (``core.publish.compile_upload``: pyxform, the identifying-marks
check, ODK Validate when asked), and publishing it stores those very bytes (``core.publish.publish``),
validating the stored XForm first when the upload was not validated; only a publish that changes the
version (the Central API's ``?version=``) compiles the rewritten workbook again. One draft per form id:
a new upload replaces it (and its test submissions).

**Testing on a phone.** Each draft has a random token; the Collect ``server_url``
``{base}/v1/test/{token}/projects/{pid}/forms/{formId}/draft`` (Central's shape, ``draft_url``) lists
only the draft, serves it with its media, and takes *test submissions* (``accept_test``). Those are kept
apart from every record: in the draft's own key-value entry, never in the submissions the figures, lists
and exports read; they keep only the statistical answers (a field the form marks identifying is dropped,
and no attachment is kept, only its name and size), and they are discarded when the draft is published or
replaced. Media the draft's phone gets: the files uploaded with the draft, else the location and site
lists cut to the units of the officer who made it (an officer of the whole country: the units of the
rounds that carry the form), else the published version's file; never the census roster (names of
persons).

**Scope.** A draft belongs to the units of the officer who made it (``unit_codes``): another officer sees,
tests, publishes, discards or replaces it only when all of those lie in their own units
(``core.scope.draft_visible``); ``visible_drafts`` and ``officer_draft`` apply it, ``save_draft`` too.

Audited: ``form.draft.save``, ``form.draft.discard``; publishing writes ``form.publish`` with
``draft: true`` and how many test submissions were discarded.
"""

from __future__ import annotations

import base64
import hmac
import io
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from rasoat.core import scope
from rasoat.core.audit import record
from rasoat.core.instance import FormShape, InstanceError, parse_instance, safe_attachment_name
from rasoat.core.media import COUNTRY_MEDIA, LOCATION_MEDIA, ROSTER_MEDIA, SITE_MEDIA, collector_media
from rasoat.core.models import FormVersion, RoundState, User, utcnow
from rasoat.core.protection import identifying_fields
from rasoat.core.publish import Published, PublishError, compile_upload, publish
from rasoat.core.storage.base import Store
from rasoat.core.xlsform import CompiledForm, XLSFormError, validate_xform

__all__ = [
    "Draft",
    "DraftSubmission",
    "accept_test",
    "attach_media",
    "discard_draft",
    "draft_for_token",
    "draft_media",
    "draft_url",
    "get_draft",
    "list_drafts",
    "officer_draft",
    "visible_drafts",
    "publish_draft",
    "published_source",
    "save_draft",
    "draft_submissions",
]

NS = "form_drafts"  # form id → the draft
INDEX_NS, INDEX_KEY = "form_drafts_index", "all"  # the form ids that have a draft
TESTS_NS = "form_draft_tests"  # form id → {"token", "items": [test submissions]}
SOURCES_NS = "form_sources"  # form id → the XLSForm last published from a draft (a new draft starts from it)
MAX_TESTS = 200  # test submissions kept per draft; more are refused with a clear message
HIDDEN = "•••"  # what a test submission shows for an identifying answer


@dataclass(frozen=True)
class Draft:
    """A saved draft: the compiled form, the workbook it came from, its media and its test token."""

    compiled: CompiledForm
    xlsx: bytes
    files: dict[str, bytes]  # media uploaded with or for the draft, by name
    token: str
    created_by: str
    created_at: str  # ISO time
    unit_codes: list[str]  # the units of the officer who made it (the test phone's location lists)
    validated: bool

    @property
    def form_id(self) -> str:
        return self.compiled.form_id

    @property
    def version(self) -> str:
        return self.compiled.version

    @property
    def missing_media(self) -> list[str]:
        return [n for n in self.compiled.media if n not in self.files]

    def as_form(self) -> FormVersion:
        """The draft as a form version (not stored as one): what a form list or a manifest describes."""
        c = self.compiled
        return FormVersion(form_id=c.form_id, version=c.version, title=c.title, md5=c.md5,
                           media=list(c.media), encrypted=c.encrypted, source="draft")


@dataclass(frozen=True)
class DraftSubmission:
    """What is kept of one test submission: no identifying answer, no file."""

    instance_id: str
    received_at: str
    fields: dict[str, Any]
    files: list[dict[str, Any]] = field(default_factory=list)  # [{"name", "size"}]


# --- keeping drafts ---------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


def _to_doc(draft: Draft) -> dict[str, Any]:
    c = draft.compiled
    return {
        "form_id": c.form_id, "version": c.version, "title": c.title, "md5": c.md5, "xml": _b64(c.xml),
        "schema": c.schema, "media": list(c.media), "languages": list(c.languages), "encrypted": c.encrypted,
        "stem": c.source.stem, "warnings": list(c.warnings), "xlsx": _b64(draft.xlsx),
        "files": {n: _b64(d) for n, d in draft.files.items()}, "token": draft.token,
        "created_by": draft.created_by, "created_at": draft.created_at, "units": list(draft.unit_codes),
        "validated": draft.validated,
    }


def _from_doc(doc: dict[str, Any]) -> Draft:
    compiled = CompiledForm(
        form_id=doc["form_id"], version=doc["version"], title=doc["title"], xml=_unb64(doc["xml"]),
        md5=doc["md5"], schema=doc["schema"], media=list(doc["media"]), languages=list(doc["languages"]),
        encrypted=bool(doc["encrypted"]), source=Path(f"{doc['stem']}.xlsx"), warnings=list(doc["warnings"]),
    )
    return Draft(
        compiled=compiled, xlsx=_unb64(doc["xlsx"]), files={n: _unb64(t) for n, t in doc["files"].items()},
        token=doc["token"], created_by=doc["created_by"], created_at=doc["created_at"],
        unit_codes=list(doc.get("units") or []), validated=bool(doc["validated"]),
    )


def _put(store: Store, draft: Draft) -> None:
    store.kv_put(NS, draft.form_id, _to_doc(draft))
    _index(store, add=draft.form_id)


def _index(store: Store, add: str | None = None, remove: str | None = None) -> list[str]:
    """The form ids with a draft, changed atomically (two officers may save drafts at once)."""
    while True:
        current = store.kv_get(INDEX_NS, INDEX_KEY)
        ids = list(current) if isinstance(current, list) else []
        new = sorted((set(ids) | ({add} if add else set())) - ({remove} if remove else set()))
        if new == sorted(ids) or store.kv_cas(INDEX_NS, INDEX_KEY, current, new):
            return new


def get_draft(store: Store, form_id: str) -> Draft | None:
    try:
        doc = store.kv_get(NS, form_id)
    except ValueError:  # a form id the store cannot use as a key
        return None
    return _from_doc(doc) if isinstance(doc, dict) else None


def list_drafts(store: Store) -> list[Draft]:
    """Every saved draft, by form id."""
    return [d for d in (get_draft(store, f) for f in _index(store)) if d is not None]


def visible_drafts(store: Store, user: User | None) -> list[Draft]:
    """The drafts ``user`` may see (their scope's), by form id."""
    return [d for d in list_drafts(store) if scope.draft_visible(user, d.unit_codes)]


def officer_draft(store: Store, user: User | None, form_id: str) -> Draft:
    """The form's draft when ``user`` may see it (``draft.not_found``; ``scope.draft_outside``)."""
    draft = _require(store, form_id)
    scope.require_draft(user, form_id, draft.unit_codes)
    return draft


def _no_draft(form_id: str) -> PublishError:
    return PublishError("draft.not_found", form=form_id)


def _require(store: Store, form_id: str) -> Draft:
    draft = get_draft(store, form_id)
    if draft is None:
        raise _no_draft(form_id)
    return draft


def save_draft(
    store: Store,
    path: str | os.PathLike[str],
    *,
    actor: str,
    media: dict[str, bytes] | None = None,
    validate: bool = True,
    unit_codes: Iterable[str] = (),
    form_id: str | None = None,
    officer: User | None = None,
) -> Draft:
    """Compile the workbook at ``path`` once and keep it as the draft of its form id, with a new test
    token; a draft the form had is replaced and its test submissions dropped. ``form_id``: the draft must
    be of this form (the Central API's ``…/forms/{id}/draft``). ``officer``: who saves it, who may not
    replace a draft outside their units (``scope.draft_outside``)."""
    compiled = compile_upload(path, validate=validate)
    if officer is not None and (kept := get_draft(store, compiled.form_id)) is not None:
        scope.require_draft(officer, compiled.form_id, kept.unit_codes)
    if form_id is not None and compiled.form_id != form_id:
        raise PublishError("draft.form_id", form=compiled.form_id, expected=form_id)
    given = dict(media or {})
    _check_media(compiled, given)
    draft = Draft(
        compiled=compiled, xlsx=Path(path).read_bytes(), files=given, token=secrets.token_urlsafe(48),
        created_by=actor, created_at=utcnow().isoformat(), unit_codes=sorted(set(unit_codes)),
        validated=validate,
    )
    store.kv_delete(TESTS_NS, compiled.form_id)
    _put(store, draft)
    record(store, actor, "form.draft.save", compiled.form_id, version=compiled.version, md5=compiled.md5,
           validated=validate)
    return draft


def _check_media(compiled: CompiledForm, media: dict[str, bytes]) -> None:
    unused = sorted(set(media) - set(compiled.media))
    bad = sorted(n for n in media if not safe_attachment_name(n))
    if unused or bad:
        names = ", ".join(unused or bad)
        raise PublishError("form.unused_media", files=names)


def attach_media(store: Store, form_id: str, name: str, data: bytes) -> Draft:
    """Add one media file the draft references (the Central API's draft attachments)."""
    draft = _require(store, form_id)
    _check_media(draft.compiled, {name: data})
    draft.files[name] = data
    _put(store, draft)
    return draft


def published_source(store: Store, form_id: str) -> tuple[bytes, str] | None:
    """The workbook (bytes, file stem) last published from a draft of this form, if any."""
    kept = store.kv_get(SOURCES_NS, form_id)
    if not isinstance(kept, dict):
        return None
    return _unb64(kept["xlsx"]), str(kept["stem"])


def discard_draft(store: Store, form_id: str, *, actor: str) -> int:
    """Drop the draft and its test submissions; returns how many test submissions went with it."""
    _require(store, form_id)
    dropped = len(_tests_doc(store, form_id)["items"])
    _drop(store, form_id)
    record(store, actor, "form.draft.discard", form_id, draft_submissions=dropped)
    return dropped


def _drop(store: Store, form_id: str) -> None:
    store.kv_delete(TESTS_NS, form_id)
    store.kv_delete(NS, form_id)
    _index(store, remove=form_id)


# --- publishing -------------------------------------------------------------------------------------


def publish_draft(
    store: Store,
    form_id: str,
    *,
    actor: str,
    round_id: str | None = None,
    version: str | None = None,
    via: str = "",
) -> Published:
    """Publish the draft as the form's next version and discard its test submissions.

    The stored XForm is published as it was compiled (ODK Validate runs on it first if the upload skipped
    it). ``version`` rewrites the settings sheet's version (then the workbook is compiled again). The
    version rule is publishing's: an existing version with other content is refused, nothing changes.
    """
    draft = _require(store, form_id)
    compiled, xlsx = draft.compiled, draft.xlsx
    if version and version != draft.version:
        xlsx = with_version(draft.xlsx, version)
        import tempfile

        with tempfile.TemporaryDirectory(prefix="rasoat-draft-") as tmp:
            path = Path(tmp) / compiled.source.name
            path.write_bytes(xlsx)
            compiled = compile_upload(path, validate=True)
    elif not draft.validated:
        try:
            compiled.warnings.extend(validate_xform(compiled.xml, compiled.source))
        except XLSFormError as exc:
            raise PublishError.from_xlsform(exc) from None
    tests = len(_tests_doc(store, form_id)["items"])
    published = publish(store, compiled, draft.files, actor=actor, round_id=round_id, via=via,
                        audit={"draft": True, "test_submissions_discarded": tests})
    store.kv_put(SOURCES_NS, form_id, {"xlsx": _b64(xlsx), "stem": compiled.source.stem})
    _drop(store, form_id)
    return published


def with_version(xlsx: bytes, version: str) -> bytes:
    """The workbook with ``version`` in its settings sheet (a publish that names the next version)."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(xlsx))
    except Exception as exc:  # not a workbook openpyxl can write back (an old .xls)
        raise PublishError("draft.version_unwritable", detail=str(exc)) from None
    sheet = next((ws for ws in book.worksheets if ws.title.strip().lower() == "settings"), None)
    header = [str(c.value or "").strip().lower() for c in sheet[1]] if sheet is not None else []
    if sheet is None or "version" not in header:
        raise PublishError("draft.no_version_column")
    sheet.cell(row=2, column=header.index("version") + 1, value=version)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# --- testing on a phone -----------------------------------------------------------------------------


def draft_url(base_url: str, draft: Draft, project_id: str = "1") -> str:
    """The Collect ``server_url`` of the draft's test code (ODK Central's shape)."""
    return (f"{base_url.rstrip('/')}/v1/test/{quote(draft.token, safe='')}/projects/"
            f"{quote(project_id, safe='')}/forms/{quote(draft.form_id, safe='')}/draft")


def draft_for_token(store: Store, form_id: str, token: str) -> Draft:
    """The draft this test token opens; a token of a published, replaced or discarded draft opens none."""
    draft = get_draft(store, form_id)
    if draft is None or not hmac.compare_digest(draft.token.encode(), token.encode()):
        raise PublishError("draft.test_code_invalid")  # 403: Collect says why, never asks a password
    return draft


def draft_media(store: Store, draft: Draft, name: str) -> bytes | None:
    """One medium of the draft as its test phone gets it, or None."""

    if name not in draft.compiled.media:
        return None
    if name in draft.files:
        return draft.files[name]
    if name in LOCATION_MEDIA or name in SITE_MEDIA or name in COUNTRY_MEDIA:
        data = collector_media(store, draft.as_form(), name, _test_units(store, draft))
        if data is not None:
            return data
    published = store.get_form(draft.form_id)
    if published is None or name not in published.media or name == ROSTER_MEDIA:
        return None  # the roster holds names of persons: never on a test phone
    return store.form_media(published.form_id, published.version, name)


def _test_units(store: Store, draft: Draft) -> list[str]:
    """The units a test phone's lists are cut to: the officer's, or for an officer of the whole country
    the units of the rounds (not closed) that carry the form, so a national form can be tested too."""
    if draft.unit_codes:
        return draft.unit_codes

    live = (RoundState.draft, RoundState.open)
    return sorted({u for r in store.list_rounds() if r.state in live and draft.form_id in r.form_ids
                   for u in r.unit_codes})


def _tests_doc(store: Store, form_id: str) -> dict[str, Any]:
    doc = store.kv_get(TESTS_NS, form_id)
    return doc if isinstance(doc, dict) else {"items": []}


def draft_submissions(store: Store, form_id: str) -> list[DraftSubmission]:
    """The draft's test submissions, newest first."""
    items = _tests_doc(store, form_id)["items"]
    return [DraftSubmission(**item) for item in reversed(items)]


def accept_test(
    store: Store, form_id: str, token: str, xml: bytes, files: dict[str, bytes]
) -> DraftSubmission:
    """Keep one test submission of the draft the token opens (its form id and version must be the
    draft's). An identical instanceID sent again replaces the earlier one (Collect resending)."""
    draft = draft_for_token(store, form_id, token)
    bad = sorted(n for n in files if not safe_attachment_name(n))
    if bad:
        raise PublishError("draft.test_bad_attachment", name=repr(bad[0]))
    try:
        parsed = parse_instance(xml, FormShape.from_xform(draft.compiled.xml))
    except InstanceError as exc:
        raise PublishError("draft.test_refused", problem=exc) from None
    if parsed.form_id != draft.form_id or parsed.version != draft.version:
        raise PublishError(
            "draft.test_wrong_form", form=parsed.form_id, version=parsed.version,
            draft_form=draft.form_id, draft_version=draft.version,
        )
    hidden = identifying_fields(draft.compiled.schema)
    item: dict[str, Any] = {
        "instance_id": parsed.instance_id,
        "received_at": utcnow().isoformat(),
        "fields": {} if parsed.encrypted else _without(parsed.fields, hidden, ""),
        "files": [{"name": n, "size": len(d)} for n, d in sorted(files.items())],
    }
    while True:
        current = store.kv_get(TESTS_NS, form_id)
        doc = dict(current) if isinstance(current, dict) else {"items": []}
        items = [i for i in doc["items"] if i["instance_id"] != parsed.instance_id]
        if len(items) >= MAX_TESTS:
            raise PublishError("draft.test_full", max=MAX_TESTS)
        if store.kv_cas(TESTS_NS, form_id, current, {"items": [*items, item]}):
            return DraftSubmission(**item)


def _without(fields: dict[str, Any], hidden: frozenset[str], prefix: str) -> dict[str, Any]:
    """The answers with every identifying one (and everything under an identifying group) shown as
    ``HIDDEN``; repeats are lists of such dicts."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        path = f"{prefix}{key}"
        if path in hidden or any(path.startswith(h + "/") for h in hidden):
            out[key] = HIDDEN
        elif isinstance(value, dict):
            out[key] = _without(value, hidden, f"{path}/")
        elif isinstance(value, list):
            out[key] = [_without(v, hidden, f"{path}/") if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return out
