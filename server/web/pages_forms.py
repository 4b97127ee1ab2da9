"""Forms: the published forms, and XLSForm drafts (``core.drafts``) uploaded, tested on a phone, published.

``/forms`` lists the published forms and the drafts, and takes an upload (an XLSForm and its media): a
workbook that does not compile comes back as a table of its problems by file, sheet and row; one that
does becomes the form's draft. ``/forms/{id}/draft`` shows the draft with its test QR code (Collect
settings from ``core.collect_settings.draft_settings``), its test submissions (kept apart, never counted),
and the buttons to publish it as the form's next version (into a round, if chosen) or to discard it.
Drafts are for officers who may publish forms; a round chosen must lie wholly inside their units.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import segno
from litestar import Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath
from rasoat.core import scope
from rasoat.core.collect_settings import draft_settings, encode_settings
from rasoat.core.drafts import (
    Draft,
    attach_media,
    discard_draft,
    draft_submissions,
    draft_url,
    officer_draft,
    publish_draft,
    save_draft,
    visible_drafts,
)
from rasoat.core.instance import safe_attachment_name
from rasoat.core.models import RoundState
from rasoat.core.problems import Problem
from rasoat.core.publish import PublishError
from rasoat.server.web import scoped
from rasoat.server.web.base import Ctx, allowed, page, redirect
from rasoat.server.web.pages_collectors import base_url

MAX_FORM_UPLOAD = 50_000_000

def error_rows(exc: PublishError) -> list[dict[str, Any]]:
    """One table row per problem: file, sheet, row, Vietnamese and English text (the page shows one)."""
    if exc.rows:
        return [{"file": Path(r.file).name, "sheet": r.sheet, "row": r.row or "", "vi": r.vi, "en": r.en}
                for r in exc.rows]
    return [{"file": "", "sheet": "", "row": "", "vi": exc.vi, "en": exc.en}]


def _rounds(ctx: Ctx) -> list[Any]:
    """Rounds a form may join from this officer: not closed, and wholly inside their units."""
    allowed = scope.allowed_units(ctx.user)
    return [r for r in scoped.rounds(ctx) if r.state in (RoundState.draft, RoundState.open)
            and (allowed is None or all(scope.unit_allowed(ctx.user, u) for u in r.unit_codes))]


def _forms_page(ctx: Ctx, status: int = 200, **extra: Any) -> Response:
    can_publish = ctx.can(scope.PUBLISH_FORMS)
    drafts = visible_drafts(ctx.store, ctx.user) if can_publish else []
    values: dict[str, Any] = {
        "forms": sorted(ctx.store.list_forms(), key=lambda f: f.title),
        "drafts": drafts,
        "tests": {d.form_id: len(draft_submissions(ctx.store, d.form_id)) for d in drafts},
        "can_publish": can_publish,
        "form_errors": None,
    }
    values.update(extra)
    return page(ctx, "forms.html", status=status, **values)


@get("/forms", sync_to_thread=True)
def forms_list(ctx: NamedDependency[Ctx]) -> Response:
    return _forms_page(ctx)


PUBLISH = [allowed(scope.PUBLISH_FORMS)]  # every draft handler's guard
UPLOAD = {"max_form": MAX_FORM_UPLOAD}  # the posted form's size limit (base.provide_posted)


@post("/forms", guards=PUBLISH, opt=UPLOAD)
async def form_upload(ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict]) -> Response:
    """An XLSForm (and its media) becomes the draft of its form; its problems come back as a table."""
    upload = posted.get("file")
    if upload is None or not hasattr(upload, "read") or not upload.filename:
        no_file = [{"file": "", "sheet": "", "row": "", "vi": "Chưa chọn tệp", "en": "No file chosen"}]
        return await anyio.to_thread.run_sync(lambda: _forms_page(ctx, 400, form_errors=no_file))
    data = await upload.read()
    filename = Path(upload.filename or "form.xlsx").name
    if not safe_attachment_name(filename) or not filename.lower().endswith((".xlsx", ".xls")):
        filename = "form.xlsx"
    media: dict[str, bytes] = {}
    for part in posted.getall("media", []):
        if hasattr(part, "read") and part.filename:
            name = Path(part.filename).name
            if not safe_attachment_name(name):
                raise Problem("request.bad_file_name", name=repr(name))
            media[name] = await part.read()
    validate = str(posted.get("validate") or "") == "1"

    def run() -> Response:
        with tempfile.TemporaryDirectory(prefix="rasoat-web-form-") as tmp:
            path = Path(tmp) / filename
            path.write_bytes(data)
            try:
                draft = save_draft(ctx.store, path, actor=ctx.actor, media=media, validate=validate,
                                   unit_codes=ctx.user.unit_codes, officer=ctx.user)
            except PublishError as exc:
                return _forms_page(ctx, exc.status, form_errors=error_rows(exc))
        return redirect(ctx, f"/forms/{quote(draft.form_id, safe='')}/draft", "forms.draft_saved")

    return await anyio.to_thread.run_sync(run)


def _draft_page(ctx: Ctx, draft: Draft, status: int = 200, error: PublishError | None = None) -> Response:
    url = draft_url(base_url(ctx), draft, ctx.settings.project_id)
    payload = encode_settings(draft_settings(url, draft.compiled.title))
    svg = segno.make(payload, error="q", micro=False).svg_inline(  # Q, as Central's draft codes
        scale=1, border=4, omitsize=True, title="ODK Collect QR"
    )
    published = ctx.store.get_form(draft.form_id)
    taken = ctx.store.get_form(draft.form_id, draft.version)
    return page(
        ctx, "form_draft.html", status=status, draft=draft, qr_svg=svg, draft_url=url, published=published,
        version_taken=taken is not None and taken.md5 != draft.compiled.md5,
        tests=draft_submissions(ctx.store, draft.form_id), rounds=_rounds(ctx),
        error=error, error_rows=error_rows(error) if error is not None else [],
    )


@get("/forms/{form_id:str}/draft", guards=PUBLISH, sync_to_thread=True)
def draft_page(ctx: NamedDependency[Ctx], form_id: FromPath[str]) -> Response:
    return _draft_page(ctx, officer_draft(ctx.store, ctx.user, form_id))


@post("/forms/{form_id:str}/draft/publish", guards=PUBLISH, sync_to_thread=True)
def draft_publish(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], form_id: FromPath[str]
) -> Response:
    round_id = str(posted.get("round") or "").strip() or None
    version = str(posted.get("version") or "").strip()[:100] or None
    draft = officer_draft(ctx.store, ctx.user, form_id)
    if round_id and round_id not in {r.id for r in _rounds(ctx)}:
        rnd = scoped.get_round(ctx, round_id)  # a round outside the officer's units: 403/404 as anywhere
        for code in rnd.unit_codes:
            scope.require_unit(ctx.user, code)
    try:
        done = publish_draft(ctx.store, form_id, actor=ctx.actor, round_id=round_id, version=version,
                             via="web")
    except PublishError as exc:
        return _draft_page(ctx, draft, exc.status, exc)
    return redirect(ctx, f"/forms?published={quote(done.form.form_id, safe='')}", "forms.published")


@post("/forms/{form_id:str}/draft/media", guards=PUBLISH, opt=UPLOAD)
async def draft_media_upload(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], form_id: FromPath[str]
) -> Response:
    """Media files the draft references, added after it was uploaded (the ones its page lists missing)."""
    files: list[tuple[str, bytes]] = []
    for part in posted.getall("media", []):
        if hasattr(part, "read") and part.filename:
            files.append((Path(part.filename).name, await part.read()))

    def run() -> Response:
        draft = officer_draft(ctx.store, ctx.user, form_id)
        try:
            for name, data in files:
                draft = attach_media(ctx.store, form_id, name, data)
        except PublishError as exc:
            return _draft_page(ctx, draft, exc.status, exc)
        return redirect(ctx, f"/forms/{quote(form_id, safe='')}/draft", "forms.media_added")

    return await anyio.to_thread.run_sync(run)


@post("/forms/{form_id:str}/draft/discard", guards=PUBLISH, sync_to_thread=True)
def draft_discard(
    ctx: NamedDependency[Ctx], posted: NamedDependency[FormMultiDict], form_id: FromPath[str]
) -> Response:
    officer_draft(ctx.store, ctx.user, form_id)
    discard_draft(ctx.store, form_id, actor=ctx.actor)
    return redirect(ctx, "/forms", "forms.draft_discarded")


handlers = [forms_list, form_upload, draft_page, draft_publish, draft_media_upload, draft_discard]
