"""The part of ODK Central's REST API that pyodk uses (reference §1), over rasoat's own rules.

rasoat is **one project** (id ``ServerSettings.project_id``, 1 by default), the same one the OpenRosa
paths name, so a phone's server URL and a pyodk ``default_project_id`` agree; provinces are told apart by
the officers' units, not by projects. Every call runs as the officer (``central.auth.officer``) through
``core.scope``: lists are narrowed to their units, one record outside them is "not found" (its existence
is not disclosed), actions need the role's permission (403.1). Submissions go through ``core.ingest``
(the OpenRosa rules), reviews through ``core.review``, form drafts through ``core.drafts`` and publishing
through ``core.publish``.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from litestar import Request, Response, delete, get, patch, post, put
from litestar.params import FromPath
from rasoat.core import scope
from rasoat.core.audit import record_view
from rasoat.core.drafts import (
    Draft,
    attach_media,
    get_draft,
    publish_draft,
    published_source,
    save_draft,
)
from rasoat.core.instance import safe_attachment_name
from rasoat.core.models import FormVersion, Role, RoundState, Submission, User
from rasoat.core.protection import plain_attachment
from rasoat.core.storage.base import Store, SubmissionQuery
from rasoat.server.central import odata, problems
from rasoat.server.central.auth import bearer_token, iso, login, logout, officer
from rasoat.server.central.project import check_project, find_form, project_id
from rasoat.server.central.shapes import (
    FROM_CENTRAL,
    actor_id,
    comments_json,
    form_attachment_json,
    form_json,
    project_json,
    submission_json,
    user_json,
)
from rasoat.server.errors import too_large

MAX_FORM_BYTES = 50_000_000
XLSX_TYPES = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel",
    "application/octet-stream",
)
def _st(request: Request) -> Any:
    return request.app.state["rasoat"]


def _upload_room(request: Request) -> Any:
    """This process's upload budget (``server.uploads``), held while a body is read and stored, as for
    OpenRosa submissions; over it, a 503 with Retry-After."""
    from rasoat.server.uploads import upload_size

    st = _st(request)
    size = upload_size(request, st.settings.max_body_bytes)
    return st.uploads.hold(size)


def _store(request: Request) -> Store:
    return _st(request).store


def _officer(request: Request, permission: str = scope.VIEW) -> User:
    check_project(request)
    user = officer(request)
    if not scope.can(user, permission):
        raise problems.forbidden(permission)
    return user


def _is_true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


async def _body(request: Request, limit: int) -> bytes:
    """The request body, chunked or not (pyodk streams uploads without Content-Length), up to ``limit``."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> dict[str, Any]:
    import json

    raw = await _body(request, 1_000_000)
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        raise problems.unparseable("JSON") from None
    if not isinstance(data, dict):
        raise problems.unparseable("JSON object")
    return data


# --- sessions and users ------------------------------------------------------------------------------


@post("/v1/sessions", status_code=200)
async def create_session(request: Request) -> Response:
    """Log in with ``{"email": <username>, "password": …}``; answers Central's session with its token."""
    import anyio

    data = await _json(request)
    email, password = data.get("email"), data.get("password")
    if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
        raise problems.missing_params(
            ["email", "password"], {"email": email if isinstance(email, str) else None}
        )
    ip = request.client.host if request.client else ""
    _token, _user, body = await anyio.to_thread.run_sync(login, _store(request), email, password, ip)
    return Response(content=body, status_code=200)


@delete(["/v1/sessions/current", "/v1/sessions/{token:str}"], status_code=200, sync_to_thread=True)
def end_session(request: Request) -> dict[str, bool]:
    """Log out: the bearer session (``current``) or the named token ends in every server process."""
    officer(request)
    token = request.path_params.get("token") or bearer_token(request)
    if token:
        logout(_store(request), token)
    return {"success": True}


@get("/v1/users/current", sync_to_thread=True)
def current_user(request: Request) -> dict[str, Any]:
    """The logged-in officer (with rasoat's role and units beside Central's fields)."""
    return user_json(officer(request))


# --- projects -----------------------------------------------------------------------------------------


def _project(request: Request) -> dict[str, Any]:
    forms = _store(request).list_forms()
    created = min((f.published_at for f in forms), default=None)
    return project_json(project_id(request), "rasoat", iso(created), len(forms))


@get("/v1/projects", sync_to_thread=True)
def projects(request: Request) -> list[dict[str, Any]]:
    """The one project."""
    _officer(request)
    return [_project(request)]


@get("/v1/projects/{pid:str}", sync_to_thread=True)
def project(request: Request, pid: FromPath[str]) -> dict[str, Any]:
    del pid
    _officer(request)
    return _project(request)


@get("/v1/projects/{pid:str}/app-users", sync_to_thread=True)
def app_users(request: Request, pid: FromPath[str]) -> list[dict[str, Any]]:
    """Collectors in the officer's units, read-only (their tokens are never shown again)."""
    del pid
    user = _officer(request, scope.MANAGE_COLLECTORS)
    allowed = scope.allowed_units(user)
    out = []
    for u in _store(request).list_users():
        if u.role is not Role.collector or not u.active:
            continue
        if allowed is not None and not (set(u.unit_codes) & allowed):
            continue
        out.append(
            {
                "projectId": project_id(request),
                "id": actor_id(u.id),
                "type": "field_key",
                "displayName": u.display_name or u.username,
                "token": None,
                "createdAt": iso(u.created_at),
                "updatedAt": None,
                "deletedAt": None,
            }
        )
    return out


# --- forms --------------------------------------------------------------------------------------------


def _open_forms(store: Store) -> set[str]:
    return {f for r in store.list_rounds() if r.state is RoundState.open for f in r.form_ids}


def _form(request: Request, form_id: str) -> FormVersion:
    form = find_form(_store(request), form_id)
    if form is None:
        raise problems.not_found(f"form {form_id}")
    return form


@get("/v1/projects/{pid:str}/forms", sync_to_thread=True)
def forms(request: Request, pid: FromPath[str]) -> list[dict[str, Any]]:
    """Published forms, latest version of each (``open`` when an open round carries it)."""
    del pid
    _officer(request)
    store = _store(request)
    opened = _open_forms(store)
    return [
        form_json(f, project_id(request), "open" if f.form_id in opened else "closed")
        for f in store.list_forms()
    ]


def form_get(request: Request, name: str) -> Response:
    """``GET …/forms/{id}`` (JSON), ``{id}.xml``, ``{id}.svc`` for API callers; the OpenRosa handler of
    the same path hands these over when the request carries Bearer or Basic credentials."""
    if name.endswith(".svc"):
        return odata.service_document(request, name[: -len(".svc")])
    _officer(request)
    if name.endswith(".xml"):
        form = _form(request, name[: -len(".xml")])
        return Response(
            content=_store(request).form_xml(form.form_id, form.version), media_type="application/xml"
        )
    form = _form(request, name)
    state = "open" if form.form_id in _open_forms(_store(request)) else "closed"
    return Response(content=form_json(form, project_id(request), state))


def form_version_xml(request: Request, form_id: str, name: str) -> Response:
    _officer(request)
    version = name[: -len(".xml")] if name.endswith(".xml") else name
    form = find_form(_store(request), form_id, version)
    if form is None:
        raise problems.not_found(f"form {form_id} version {version}")
    if not name.endswith(".xml"):
        return Response(content=form_json(form, project_id(request)))
    return Response(content=_store(request).form_xml(form_id, version), media_type="application/xml")


@get("/v1/projects/{pid:str}/forms/{form_id:str}/versions", sync_to_thread=True)
def form_versions(request: Request, pid: FromPath[str], form_id: FromPath[str]) -> list[dict[str, Any]]:
    """Every published version of a form, newest first."""
    del pid
    _officer(request)
    _form(request, form_id)
    versions = [f for f in _store(request).list_forms(all_versions=True) if f.form_id == form_id]
    versions.sort(key=lambda f: f.published_at, reverse=True)
    return [form_json(f, project_id(request)) for f in versions]


# --- drafts: kept by core.drafts (one draft per form, compiled once), published by core.publish ------------

# Central's problem code for each refusal of the draft and publishing services (core.publish's codes)
def _stem(fallback: str | None) -> str:
    stem = unquote(fallback or "").strip()
    return stem if stem and safe_attachment_name(stem + ".xlsx") and not stem.startswith("uuid:") else "form"


def _save(store: Store, data: bytes, stem: str, user: User, form_id: str | None = None) -> Draft:
    """Keep the workbook as the form's draft (ODK Validate runs when it is published)."""
    with tempfile.TemporaryDirectory(prefix="rasoat-draft-") as tmp:
        path = Path(tmp) / f"{stem}.xlsx"
        path.write_bytes(data)
        return save_draft(store, path, actor=user.username, validate=False, unit_codes=user.unit_codes,
                          form_id=form_id, officer=user)  # PublishError: its code's Central code


async def _draft_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/xml", "text/xml"):
        raise problems.unsupported_media(
            "rasoat đăng biểu mẫu từ XLSForm (.xlsx); hãy gửi tệp XLSForm / rasoat publishes forms from "
            "XLSForms (.xlsx); send the XLSForm"
        )
    if content_type and content_type not in XLSX_TYPES:
        raise problems.unsupported_media(content_type)
    data = await _body(request, MAX_FORM_BYTES)
    if not data:
        raise problems.unparseable("empty form definition")
    return data


def _draft_form(request: Request, draft: Draft) -> dict[str, Any]:
    out = form_json(draft.as_form(), project_id(request))
    out.update({"publishedAt": None, "state": "open", "draftToken": draft.token})
    return out


@post("/v1/projects/{pid:str}/forms", status_code=200)
async def create_form(request: Request, pid: FromPath[str]) -> Response:
    """A new form's draft from an XLSForm (``?publish=true`` publishes it at once)."""
    import anyio

    del pid
    user = await anyio.to_thread.run_sync(_officer, request, scope.PUBLISH_FORMS)
    data = await _draft_body(request)
    stem = _stem(request.headers.get("x-xlsform-formid-fallback"))
    store = _store(request)
    draft = await anyio.to_thread.run_sync(_save, store, data, stem, user)
    if _is_true(request.query_params.get("publish")):
        await anyio.to_thread.run_sync(_publish, store, draft.form_id, user, None)
        return Response(content=form_json(_form(request, draft.form_id), project_id(request)))
    return Response(content=_draft_form(request, draft))


@post("/v1/projects/{pid:str}/forms/{form_id:str}/draft", status_code=200)
async def create_draft(request: Request, pid: FromPath[str], form_id: FromPath[str]) -> dict[str, bool]:
    """A new draft of an existing form from an XLSForm (its form id must be this one)."""
    import anyio

    del pid
    user = await anyio.to_thread.run_sync(_officer, request, scope.PUBLISH_FORMS)
    if not request.headers.get("content-type") and request.headers.get("content-length") in (None, "0"):
        await anyio.to_thread.run_sync(_copy_published, _store(request), form_id, user)
        return {"success": True}
    data = await _draft_body(request)
    stem = _stem(request.headers.get("x-xlsform-formid-fallback") or form_id)
    await anyio.to_thread.run_sync(_save, _store(request), data, stem, user, form_id)
    return {"success": True}


def _copy_published(store: Store, form_id: str, user: User) -> None:
    """A draft that starts as the published version (Central's draft without a definition): the XLSForm
    last published from a draft of the form, with the published version's media."""
    form = find_form(store, form_id)
    kept = published_source(store, form_id) if form is not None else None
    if form is None or kept is None:
        raise problems.not_implemented(
            "501.1",
            "bản nháp không kèm định nghĩa cho biểu mẫu không đăng qua API này; hãy gửi tệp XLSForm / "
            "a draft without a definition of a form not published through this API (send the XLSForm)",
        )
    data, stem = kept
    draft = _save(store, data, stem, user, form_id)
    for name in form.media:
        medium = store.form_media(form.form_id, form.version, name)
        if medium is not None and name in draft.compiled.media:
            attach_media(store, form_id, name, medium)


def _draft(store: Store, form_id: str, user: User) -> Draft:
    draft = get_draft(store, form_id)
    if draft is None:
        raise problems.not_found(f"draft of {form_id}")
    scope.require_draft(user, form_id, draft.unit_codes)  # another province's draft: 403
    return draft


@get("/v1/projects/{pid:str}/forms/{form_id:str}/draft", sync_to_thread=True)
def get_draft_form(request: Request, pid: FromPath[str], form_id: FromPath[str]) -> dict[str, Any]:
    del pid
    user = _officer(request, scope.PUBLISH_FORMS)
    return _draft_form(request, _draft(_store(request), form_id, user))


@post("/v1/projects/{pid:str}/forms/{form_id:str}/draft/attachments/{name:str}", status_code=200)
async def draft_attachment(
    request: Request, pid: FromPath[str], form_id: FromPath[str], name: FromPath[str]
) -> dict[str, Any]:
    """A media file the draft references (CSV list, image…)."""
    import anyio

    del pid
    user = await anyio.to_thread.run_sync(_officer, request, scope.PUBLISH_FORMS)
    store = _store(request)
    draft = await anyio.to_thread.run_sync(_draft, store, form_id, user)
    if name not in draft.compiled.media:
        raise problems.not_found(f"{name} is not referenced by the draft of {form_id}")
    async with _upload_room(request):  # the upload budget, as for OpenRosa
        data = await _body(request, _st(request).settings.max_body_bytes)
        await anyio.to_thread.run_sync(attach_media, store, form_id, name, data)  # PublishError
        return form_attachment_json(name, data)


def _publish(store: Store, form_id: str, user: User, version: str | None) -> FormVersion:
    draft = _draft(store, form_id, user)
    if version and version != draft.version and find_form(store, form_id, version) is not None:
        raise problems.Problem("form.version_taken", version=version, form=form_id)
    return publish_draft(store, form_id, actor=user.username, version=version, via="central").form


@post("/v1/projects/{pid:str}/forms/{form_id:str}/draft/publish", status_code=200, sync_to_thread=True)
def publish_draft_form(request: Request, pid: FromPath[str], form_id: FromPath[str]) -> dict[str, bool]:
    """Publish the draft as ``rasoat forms publish`` does (core.publish; ODK Validate on the stored XForm)."""
    del pid
    user = _officer(request, scope.PUBLISH_FORMS)
    _publish(_store(request), form_id, user, request.query_params.get("version"))
    return {"success": True}


# --- submissions --------------------------------------------------------------------------------------


def _submission(request: Request, user: User, form_id: str, instance_id: str) -> Submission:
    try:
        sub = _store(request).get_submission(instance_id)
    except ValueError:
        sub = None
    if sub is None or sub.form_id != form_id:
        raise problems.not_found(f"submission {instance_id}")
    try:
        scope.require_submission(user, sub)
    except scope.ScopeError:  # as for an unknown id: existence is not disclosed
        raise problems.not_found(f"submission {instance_id}") from None
    return sub


@get("/v1/projects/{pid:str}/forms/{form_id:str}/submissions")
async def list_submissions(request: Request, pid: FromPath[str], form_id: FromPath[str]) -> Response:
    """Every current submission of the form in the officer's units (metadata only), newest first."""
    import anyio

    del pid
    user = await anyio.to_thread.run_sync(_officer, request)
    await anyio.to_thread.run_sync(_form, request, form_id)
    store = _store(request)
    query = scope.narrow(SubmissionQuery(form_id=form_id), user)

    def body() -> Any:
        import json

        from rasoat.core.storage.base import PageKey

        yield b"["
        first, after = True, None
        while True:
            page = store.page_submissions(query, limit=1000, after=after, descending=True)
            for sub in page:
                yield (b"" if first else b",") + json.dumps(submission_json(sub)).encode()
                first = False
            if len(page) < 1000:
                break
            after = PageKey(page[-1].received_at, page[-1].instance_id)
        yield b"]"

    from litestar.response import Stream
    from rasoat.server.central.odata import chunks

    return Stream(chunks(body()), media_type="application/json")


@get("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}")
async def get_submission(
    request: Request, pid: FromPath[str], form_id: FromPath[str], iid: FromPath[str]
) -> Response:
    """One submission's metadata, or its XML (``{instanceId}.xml``; audited)."""
    import anyio

    del pid
    return await anyio.to_thread.run_sync(_one_submission, request, form_id, iid)


def _one_submission(request: Request, form_id: str, iid: str) -> Response:
    if iid.endswith(".xml"):
        user = _officer(request, scope.VIEW_PERSONAL)
        sub = _submission(request, user, form_id, iid[: -len(".xml")])
        record_view(
            _store(request),
            user.username,
            "view.submission",
            via="central",
            count=1,
            filters={"form_id": form_id, "instance_id": sub.instance_id},
        )
        xml = _store(request).submission_xml(sub.instance_id) or b""
        xml = plain_attachment(_store(request), sub.instance_id, "submission.xml", xml)  # opened in memory
        return Response(content=xml, media_type="application/xml")
    user = _officer(request)
    return Response(content=submission_json(_submission(request, user, form_id, iid)))


def _ingest(request: Request, user: User, form_id: str, xml: bytes) -> Submission:
    from rasoat.core.ingest import accept, officer_open_rounds
    from rasoat.core.instance import read_identity

    got, _version = read_identity(xml)  # InstanceError: 400.2
    if got != form_id:
        raise problems.form_id_mismatch(form_id, got)
    st = _st(request)
    pm = st.settings.plugin_manager
    hook = pm.hook.check_submission if pm is not None else None
    result = accept(st.store, user, xml, {}, st.shapes, hook, via="central", rounds_of=officer_open_rounds)
    sub = st.store.get_submission(result.instance_id)
    assert sub is not None
    return sub


@post("/v1/projects/{pid:str}/forms/{form_id:str}/submissions", status_code=200)
async def create_submission(request: Request, pid: FromPath[str], form_id: FromPath[str]) -> dict[str, Any]:
    """A submission from its XML, as the officer (the form must be in an open round over their units)."""
    import anyio

    del pid
    user = await anyio.to_thread.run_sync(_officer, request, scope.EDIT)
    async with _upload_room(request):  # the upload budget, as for OpenRosa
        xml = await _body(request, _st(request).settings.max_body_bytes)

        def run() -> dict[str, Any]:
            from rasoat.core.instance import parse_instance

            sub_id = None
            with contextlib.suppress(ValueError):  # a broken XML is refused with its reason by the ingest
                sub_id = parse_instance(xml).instance_id
            exists = False
            with contextlib.suppress(ValueError):
                exists = sub_id is not None and _store(request).get_submission(sub_id) is not None
            if exists:
                raise problems.conflict_instance()
            return submission_json(_ingest(request, user, form_id, xml))

        return await anyio.to_thread.run_sync(run)


@put("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}", status_code=200)
async def edit_submission(
    request: Request, pid: FromPath[str], form_id: FromPath[str], iid: FromPath[str]
) -> dict[str, Any]:
    """An edit: XML whose ``meta/deprecatedID`` is this submission's current instanceID."""
    import anyio

    del pid
    user = await anyio.to_thread.run_sync(_officer, request, scope.EDIT)
    async with _upload_room(request):  # the upload budget, as for OpenRosa
        xml = await _body(request, _st(request).settings.max_body_bytes)

        def run() -> dict[str, Any]:
            from rasoat.core.instance import parse_instance

            old = _submission(request, user, form_id, iid)
            parsed = parse_instance(xml)  # InstanceError: 400.2
            if not parsed.deprecated_id:
                raise problems.deprecated_id_missing()
            if parsed.deprecated_id != old.instance_id or not old.current:
                raise problems.stale_edit()
            try:
                return submission_json(_ingest(request, user, form_id, xml))
            except problems.Problem as exc:
                if problems.central_code(exc) == "409.3":
                    raise problems.stale_edit() from None
                raise

        return await anyio.to_thread.run_sync(run)


@patch("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}", status_code=200)
async def review(
    request: Request, pid: FromPath[str], form_id: FromPath[str], iid: FromPath[str]
) -> dict[str, Any]:
    """``{"reviewState": "approved" | "hasIssues" | "rejected" | "edited" | null}``, optionally with
    ``"comment"`` (rasoat asks a reason for hasIssues and rejected)."""
    import anyio

    del pid
    user = await anyio.to_thread.run_sync(_officer, request, scope.REVIEW)
    data = await _json(request)
    if "reviewState" not in data:
        raise problems.missing_params(["reviewState"], {})
    value = data["reviewState"]
    if value not in FROM_CENTRAL:
        raise problems.invalid_value("reviewState", str(value))
    comment = str(data["comment"]) if isinstance(data.get("comment"), str) else ""

    def run() -> dict[str, Any]:
        from rasoat.core.review import review_submission

        sub = _submission(request, user, form_id, iid)
        updated = review_submission(  # ReviewError: 400.11
            _store(request), sub.instance_id, FROM_CENTRAL[value], comment, actor=user.username
        )
        return submission_json(updated)

    return await anyio.to_thread.run_sync(run)


def _actors(store: Store) -> dict[str, int]:
    return {u.username: actor_id(u.id) for u in store.list_users()}


@get("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}/comments", sync_to_thread=True)
def list_comments(
    request: Request, pid: FromPath[str], form_id: FromPath[str], iid: FromPath[str]
) -> list[dict[str, Any]]:
    del pid
    user = _officer(request)
    return comments_json(_submission(request, user, form_id, iid), _actors(_store(request)))


@post("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}/comments", status_code=200)
async def add_comment(
    request: Request, pid: FromPath[str], form_id: FromPath[str], iid: FromPath[str]
) -> dict[str, Any]:
    """A comment is a review-history entry that keeps the current state."""
    import anyio

    del pid
    user = await anyio.to_thread.run_sync(_officer, request, scope.REVIEW)
    data = await _json(request)
    text = data.get("body")
    if not isinstance(text, str) or not text.strip():
        raise problems.missing_params(["body"], {})

    def run() -> dict[str, Any]:
        from rasoat.core.review import review_submission

        sub = _submission(request, user, form_id, iid)
        updated = review_submission(
            _store(request), sub.instance_id, sub.review_state, text.strip(), actor=user.username
        )
        return comments_json(updated, _actors(_store(request)))[0]

    return await anyio.to_thread.run_sync(run)


# --- submission attachments --------------------------------------------------------------------------


@get("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}/attachments", sync_to_thread=True)
def list_attachments(
    request: Request, pid: FromPath[str], form_id: FromPath[str], iid: FromPath[str]
) -> list[dict[str, Any]]:
    del pid
    user = _officer(request)
    sub = _submission(request, user, form_id, iid)
    names = list(dict.fromkeys([*sub.expected_attachments, *sub.attachments]))
    return [{"name": n, "exists": n in sub.attachments} for n in names]


@get("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}/attachments/{filename:str}")
async def get_attachment(
    request: Request, pid: FromPath[str], form_id: FromPath[str], iid: FromPath[str], filename: FromPath[str]
) -> Response:
    """One attachment's bytes (audited)."""
    import anyio

    del pid

    def load() -> bytes:
        user = _officer(request, scope.VIEW_PERSONAL)
        sub = _submission(request, user, form_id, iid)
        data = _store(request).attachment(sub.instance_id, filename) if filename in sub.attachments else None
        if data is None:
            raise problems.not_found(f"attachment {filename}")
        data = plain_attachment(_store(request), sub.instance_id, filename, data)  # opened in memory
        record_view(
            _store(request),
            user.username,
            "view.attachment",
            via="central",
            count=1,
            filters={"form_id": form_id, "instance_id": sub.instance_id, "name": filename},
        )
        return data

    data = await anyio.to_thread.run_sync(load)
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"},
    )


@post(
    "/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}/attachments/{filename:str}",
    status_code=200,
)
async def upload_attachment(
    request: Request, pid: FromPath[str], form_id: FromPath[str], iid: FromPath[str], filename: FromPath[str]
) -> dict[str, bool]:
    """A file the submission's XML names; a name already stored keeps its first bytes (as on resend)."""
    import anyio

    del pid
    name = filename
    user = await anyio.to_thread.run_sync(_officer, request, scope.EDIT)
    async with _upload_room(request):  # the upload budget, as for OpenRosa
        data = await _body(request, _st(request).settings.max_body_bytes)

        def run() -> None:
            sub = _submission(request, user, form_id, iid)
            if name not in sub.expected_attachments:
                raise problems.not_found(f"{name} is not named by submission {iid}")
            try:
                _store(request).add_attachment(sub.instance_id, name, data)
            except ValueError as exc:
                raise problems.invalid_value("name", str(exc)) from None

        await anyio.to_thread.run_sync(run)
        return {"success": True}


rest_handlers = [
    create_session,
    end_session,
    current_user,
    projects,
    project,
    app_users,
    forms,
    form_versions,
    create_form,
    create_draft,
    get_draft_form,
    draft_attachment,
    publish_draft_form,
    list_submissions,
    get_submission,
    create_submission,
    edit_submission,
    review,
    list_comments,
    add_comment,
    list_attachments,
    get_attachment,
    upload_attachment,
]
