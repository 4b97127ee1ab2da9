"""The part of ODK Central's REST API that pyodk uses (reference §1), over rasoat's own rules.

rasoat is **one project** (id ``ServerSettings.project_id``, 1 by default), the same one the OpenRosa
paths name, so a phone's server URL and a pyodk ``default_project_id`` agree; provinces are told apart by
the officers' units, not by projects. Every call runs as the officer (``central.auth.officer``) through
``core.scope``: lists are narrowed to their units, one record outside them is "not found" (its existence
is not disclosed), actions need the role's permission (403.1). Submissions go through ``core.ingest``
(the OpenRosa rules), reviews through ``core.review``, form drafts through ``core.drafts`` and publishing
through ``core.publish``.

The officer, the store and the role checks come from litestar (``server.deps``: the router's
dependencies and ``requires`` guards, with Central's refusals); each answer is a pydantic model of
``shapes``, so the OpenAPI schema describes it. ``form_get`` and ``form_version_xml`` are the exception:
the OpenRosa handler of the same paths calls them for API callers (``server.app.form_download``), so
they find their officer themselves (``_officer``).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
from litestar import Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Stream
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
from rasoat.core.ingest import accept, officer_open_rounds
from rasoat.core.instance import parse_instance, read_identity, safe_attachment_name
from rasoat.core.models import FormVersion, Role, RoundState, Submission, User
from rasoat.core.protection import plain_attachment
from rasoat.core.review import review_submission
from rasoat.core.storage.base import PageKey, Store, SubmissionQuery
from rasoat.server.central import odata, problems
from rasoat.server.central.auth import bearer_token, iso, login, logout, officer
from rasoat.server.central.bodies import Login, NewComment, ReviewChange
from rasoat.server.central.odata import chunks
from rasoat.server.central.project import check_project, find_form, project_id
from rasoat.server.central.shapes import (
    FROM_CENTRAL,
    CentralAppUser,
    CentralForm,
    CentralProject,
    CentralSession,
    CentralSubmission,
    CentralUser,
    Comment,
    FormAttachment,
    SubmissionAttachment,
    Success,
    actor_id,
    app_user_json,
    comments_json,
    form_attachment_json,
    form_json,
    project_json,
    submission_json,
    user_json,
)
from rasoat.server.deps import requires
from rasoat.server.errors import too_large
from rasoat.server.openapi import (
    FILE_BODY,
    XLSFORM_BODY,
    XLSFORM_TYPES,
    XML_BODY,
    JsonOrXml,
)
from rasoat.server.uploads import upload_size

MAX_FORM_BYTES = 50_000_000
SMALL_BODY = 1_000_000  # a login, a review, a comment: JSON of a few keys (413 over it)
MAY_VIEW, MAY_EDIT, MAY_REVIEW, MAY_PUBLISH = (
    requires(p) for p in (scope.VIEW, scope.EDIT, scope.REVIEW, scope.PUBLISH_FORMS)
)


def _st(request: Request) -> Any:
    return request.app.state["rasoat"]


def _upload_room(request: Request) -> Any:
    """This process's upload budget (``server.uploads``), held while a body is read and stored, as for
    OpenRosa submissions; over it, a 503 with Retry-After."""

    st = _st(request)
    size = upload_size(request, st.settings.max_body_bytes)
    return st.uploads.hold(size)


def _store(request: Request) -> Store:
    return _st(request).store


def _officer(request: Request, permission: str = scope.VIEW) -> User:
    """For the handlers the OpenRosa routes call (no guards run there)."""
    check_project(request)
    user = officer(request)
    if not scope.can(user, permission):
        raise problems.forbidden(permission)
    return user


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


# --- sessions and users ------------------------------------------------------------------------------


@post("/v1/sessions", status_code=200, request_max_body_size=SMALL_BODY)
async def create_session(
    request: Request, store: NamedDependency[Store], data: JSONBody[Login]
) -> CentralSession:
    """Log in with ``{"email": <username>, "password": …}``; answers Central's session with its token."""
    ip = request.client.host if request.client else ""
    _token, _user, body = await anyio.to_thread.run_sync(login, store, data.email, data.password, ip)
    return CentralSession.model_validate(body)


@delete(["/v1/sessions/current", "/v1/sessions/{token:str}"], status_code=200, sync_to_thread=True)
def end_session(request: Request, store: NamedDependency[Store], user: NamedDependency[User]) -> Success:
    """Log out: the bearer session (``current``) or the named token ends in every server process."""
    del user  # any signed-in officer
    token = request.path_params.get("token") or bearer_token(request)
    if token:
        logout(store, token)
    return Success(success=True)


@get("/v1/users/current", sync_to_thread=False)
def current_user(user: NamedDependency[User]) -> CentralUser:
    """The logged-in officer (with rasoat's role and units beside Central's fields)."""
    return user_json(user)


# --- projects -----------------------------------------------------------------------------------------


def _project(request: Request, store: Store) -> CentralProject:
    forms = store.list_forms()
    created = min((f.published_at for f in forms), default=None)
    return project_json(project_id(request), "rasoat", iso(created), len(forms))


@get("/v1/projects", guards=[MAY_VIEW], sync_to_thread=True)
def projects(request: Request, store: NamedDependency[Store]) -> list[CentralProject]:
    """The one project."""
    return [_project(request, store)]


@get("/v1/projects/{pid:str}", guards=[MAY_VIEW], sync_to_thread=True)
def project(request: Request, store: NamedDependency[Store], pid: FromPath[str]) -> CentralProject:
    del pid
    return _project(request, store)


@get("/v1/projects/{pid:str}/app-users", guards=[requires(scope.MANAGE_COLLECTORS)], sync_to_thread=True)
def app_users(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str]
) -> list[CentralAppUser]:
    """Collectors in the officer's units, read-only (their tokens are never shown again)."""
    del pid
    allowed = scope.allowed_units(user)
    return [
        app_user_json(u, project_id(request)) for u in store.list_users()
        if u.role is Role.collector and u.active and (allowed is None or set(u.unit_codes) & allowed)
    ]


# --- forms --------------------------------------------------------------------------------------------


def _open_forms(store: Store) -> set[str]:
    return {f for r in store.list_rounds() if r.state is RoundState.open for f in r.form_ids}


def _form(request: Request, form_id: str) -> FormVersion:
    form = find_form(_store(request), form_id)
    if form is None:
        raise problems.not_found(f"form {form_id}")
    return form


@get("/v1/projects/{pid:str}/forms", guards=[MAY_VIEW], sync_to_thread=True)
def forms(request: Request, store: NamedDependency[Store], pid: FromPath[str]) -> list[CentralForm]:
    """Published forms, latest version of each (``open`` when an open round carries it)."""
    del pid
    opened = _open_forms(store)
    return [
        form_json(f, project_id(request), "open" if f.form_id in opened else "closed")
        for f in store.list_forms()
    ]


def form_get(request: Request, name: str) -> Response:
    """``GET …/forms/{id}`` (JSON), ``{id}.xml``, ``{id}.svc`` for API callers; the OpenRosa handler of
    the same path hands these over when the request carries Bearer or Basic credentials."""
    user = _officer(request)
    if name.endswith(".svc"):
        fmt = request.query_params.get("$format")  # the OpenRosa route of this path declares no OData options
        return odata.service_document(request, user, name[: -len(".svc")], fmt)
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


@get("/v1/projects/{pid:str}/forms/{form_id:str}/versions", guards=[MAY_VIEW], sync_to_thread=True)
def form_versions(
    request: Request, store: NamedDependency[Store], pid: FromPath[str], form_id: FromPath[str]
) -> list[CentralForm]:
    """Every published version of a form, newest first."""
    del pid
    _form(request, form_id)
    versions = [f for f in store.list_forms(all_versions=True) if f.form_id == form_id]
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
        raise problems.Problem("draft.xlsform_only")
    if content_type and content_type not in XLSFORM_TYPES:
        raise problems.unsupported_media(content_type)
    data = await _body(request, MAX_FORM_BYTES)
    if not data:
        raise problems.unparseable("empty form definition")
    return data


def _draft_form(request: Request, draft: Draft) -> CentralForm:
    return form_json(draft.as_form(), project_id(request)).model_copy(
        update={"publishedAt": None, "state": "open", "draftToken": draft.token}
    )


@post("/v1/projects/{pid:str}/forms", guards=[MAY_PUBLISH], status_code=200, operation_class=XLSFORM_BODY)
async def create_form(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str],
    publish: FromQuery[bool] = False,
) -> CentralForm:
    """A new form's draft from an XLSForm (``?publish=true`` publishes it at once)."""
    del pid
    data = await _draft_body(request)
    stem = _stem(request.headers.get("x-xlsform-formid-fallback"))
    draft = await anyio.to_thread.run_sync(_save, store, data, stem, user)
    if publish:
        await anyio.to_thread.run_sync(_publish, store, draft.form_id, user, None)
        return form_json(_form(request, draft.form_id), project_id(request))
    return _draft_form(request, draft)


@post("/v1/projects/{pid:str}/forms/{form_id:str}/draft", guards=[MAY_PUBLISH], status_code=200,
      operation_class=XLSFORM_BODY)
async def create_draft(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str],
    form_id: FromPath[str],
) -> Success:
    """A new draft of an existing form from an XLSForm (its form id must be this one); with no body at all,
    a copy of the published version (Central's draft without a definition; the schema names the XLSForm)."""
    del pid
    if not request.headers.get("content-type") and request.headers.get("content-length") in (None, "0"):
        await anyio.to_thread.run_sync(_copy_published, store, form_id, user)
        return Success(success=True)
    data = await _draft_body(request)
    stem = _stem(request.headers.get("x-xlsform-formid-fallback") or form_id)
    await anyio.to_thread.run_sync(_save, store, data, stem, user, form_id)
    return Success(success=True)


def _copy_published(store: Store, form_id: str, user: User) -> None:
    """A draft that starts as the published version (Central's draft without a definition): the XLSForm
    last published from a draft of the form, with the published version's media."""
    form = find_form(store, form_id)
    if form is None:
        raise problems.not_found(f"form {form_id}")
    kept = published_source(store, form_id)
    if kept is None:
        raise problems.Problem("draft.needs_definition", form=form_id)
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


@get("/v1/projects/{pid:str}/forms/{form_id:str}/draft", guards=[MAY_PUBLISH], sync_to_thread=True)
def get_draft_form(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str],
    form_id: FromPath[str],
) -> CentralForm:
    del pid
    return _draft_form(request, _draft(store, form_id, user))


@post("/v1/projects/{pid:str}/forms/{form_id:str}/draft/attachments/{name:str}", guards=[MAY_PUBLISH],
      status_code=200, operation_class=FILE_BODY)
async def draft_attachment(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str],
    form_id: FromPath[str], name: FromPath[str],
) -> FormAttachment:
    """A media file the draft references (CSV list, image…)."""
    del pid
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


@post("/v1/projects/{pid:str}/forms/{form_id:str}/draft/publish", guards=[MAY_PUBLISH], status_code=200,
      sync_to_thread=True)
def publish_draft_form(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], form_id: FromPath[str],
    version: FromQuery[str | None] = None,
) -> Success:
    """Publish the draft as ``rasoat forms publish`` does (core.publish; ODK Validate on the stored XForm)."""
    del pid
    _publish(store, form_id, user, version)
    return Success(success=True)


# --- submissions --------------------------------------------------------------------------------------


def _submission(store: Store, user: User, form_id: str, instance_id: str) -> Submission:
    try:
        sub = store.get_submission(instance_id)
    except ValueError:
        sub = None
    if sub is None or sub.form_id != form_id:
        raise problems.not_found(f"submission {instance_id}")
    try:
        scope.require_submission(user, sub)
    except scope.ScopeError:  # as for an unknown id: existence is not disclosed
        raise problems.not_found(f"submission {instance_id}") from None
    return sub


@get("/v1/projects/{pid:str}/forms/{form_id:str}/submissions", guards=[MAY_VIEW],
     responses={200: ResponseSpec(list[CentralSubmission], description="Những bản nộp / The submissions",
                                  generate_examples=False)})
async def list_submissions(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str],
    form_id: FromPath[str],
) -> Stream:
    """Every current submission of the form in the officer's units (metadata only), newest first, written
    as it is read."""
    del pid
    await anyio.to_thread.run_sync(_form, request, form_id)
    query = scope.narrow(SubmissionQuery(form_id=form_id), user)

    def body() -> Iterator[bytes]:
        yield b"["
        first, after = True, None
        while True:
            page = store.page_submissions(query, limit=1000, after=after, descending=True)
            for sub in page:
                yield (b"" if first else b",") + submission_json(sub).model_dump_json().encode()
                first = False
            if len(page) < 1000:
                break
            after = PageKey(page[-1].received_at, page[-1].instance_id)
        yield b"]"

    return Stream(chunks(body()), media_type="application/json")


@get("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}", guards=[MAY_VIEW],
     sync_to_thread=True, operation_class=JsonOrXml, responses={200: ResponseSpec(
         CentralSubmission, description="Bản nộp (hoặc XML của nó) / The submission (or its XML)",
         generate_examples=False)})
def get_submission(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], form_id: FromPath[str],
    iid: FromPath[str],
) -> Response[Any]:
    """One submission's metadata, or its XML (``{instanceId}.xml``; audited)."""
    del pid
    if iid.endswith(".xml"):
        scope.require(user, scope.VIEW_PERSONAL)
        sub = _submission(store, user, form_id, iid[: -len(".xml")])
        record_view(
            store,
            user.username,
            "view.submission",
            via="central",
            count=1,
            filters={"form_id": form_id, "instance_id": sub.instance_id},
        )
        xml = store.submission_xml(sub.instance_id) or b""
        xml = plain_attachment(store, sub.instance_id, "submission.xml", xml)  # opened in memory
        return Response(content=xml, media_type="application/xml")
    return Response(content=submission_json(_submission(store, user, form_id, iid)))


def _ingest(request: Request, user: User, form_id: str, xml: bytes) -> Submission:
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


@post("/v1/projects/{pid:str}/forms/{form_id:str}/submissions", guards=[MAY_EDIT], status_code=200,
      operation_class=XML_BODY)
async def create_submission(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str],
    form_id: FromPath[str],
) -> CentralSubmission:
    """A submission from its XML, as the officer (the form must be in an open round over their units)."""
    del pid
    async with _upload_room(request):  # the upload budget, as for OpenRosa
        xml = await _body(request, _st(request).settings.max_body_bytes)

        def run() -> CentralSubmission:
            sub_id = None
            with contextlib.suppress(ValueError):  # a broken XML is refused with its reason by the ingest
                sub_id = parse_instance(xml).instance_id
            exists = False
            with contextlib.suppress(ValueError):
                exists = sub_id is not None and store.get_submission(sub_id) is not None
            if exists:
                raise problems.conflict_instance()
            return submission_json(_ingest(request, user, form_id, xml))

        return await anyio.to_thread.run_sync(run)


@put("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}", guards=[MAY_EDIT], status_code=200,
     operation_class=XML_BODY)
async def edit_submission(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str],
    form_id: FromPath[str], iid: FromPath[str],
) -> CentralSubmission:
    """An edit: XML whose ``meta/deprecatedID`` is this submission's current instanceID."""
    del pid
    async with _upload_room(request):  # the upload budget, as for OpenRosa
        xml = await _body(request, _st(request).settings.max_body_bytes)

        def run() -> CentralSubmission:
            old = _submission(store, user, form_id, iid)
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


@patch("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}", guards=[MAY_REVIEW],
       status_code=200, request_max_body_size=SMALL_BODY)
async def review(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], form_id: FromPath[str],
    iid: FromPath[str], data: JSONBody[ReviewChange],
) -> CentralSubmission:
    """A new review state, optionally with a comment (rasoat asks a reason for hasIssues and rejected)."""
    del pid

    def run() -> CentralSubmission:
        sub = _submission(store, user, form_id, iid)
        updated = review_submission(  # ReviewError: 400.11
            store, sub.instance_id, FROM_CENTRAL[data.reviewState], data.comment or "", actor=user.username
        )
        return submission_json(updated)

    return await anyio.to_thread.run_sync(run)


def _actors(store: Store) -> dict[str, int]:
    return {u.username: actor_id(u.id) for u in store.list_users()}


@get("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}/comments", guards=[MAY_VIEW],
     sync_to_thread=True)
def list_comments(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], form_id: FromPath[str],
    iid: FromPath[str],
) -> list[Comment]:
    del pid
    return comments_json(_submission(store, user, form_id, iid), _actors(store))


@post("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}/comments", guards=[MAY_REVIEW],
      status_code=200, request_max_body_size=SMALL_BODY)
async def add_comment(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], form_id: FromPath[str],
    iid: FromPath[str], data: JSONBody[NewComment],
) -> Comment:
    """A comment is a review-history entry that keeps the current state."""
    del pid
    text = data.body.strip()
    if not text:
        raise problems.missing_params(["body"], {})

    def run() -> Comment:
        sub = _submission(store, user, form_id, iid)
        updated = review_submission(store, sub.instance_id, sub.review_state, text, actor=user.username)
        return comments_json(updated, _actors(store))[0]

    return await anyio.to_thread.run_sync(run)


# --- submission attachments --------------------------------------------------------------------------


@get("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}/attachments", guards=[MAY_VIEW],
     sync_to_thread=True)
def list_attachments(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], form_id: FromPath[str],
    iid: FromPath[str],
) -> list[SubmissionAttachment]:
    del pid
    sub = _submission(store, user, form_id, iid)
    names = list(dict.fromkeys([*sub.expected_attachments, *sub.attachments]))
    return [SubmissionAttachment(name=n, exists=n in sub.attachments) for n in names]


@get("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}/attachments/{filename:str}",
     guards=[requires(scope.VIEW_PERSONAL)], media_type="application/octet-stream", sync_to_thread=True)
def get_attachment(
    store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str], form_id: FromPath[str],
    iid: FromPath[str], filename: FromPath[str],
) -> Response[bytes]:
    """One attachment's bytes (audited)."""
    del pid
    sub = _submission(store, user, form_id, iid)
    data = store.attachment(sub.instance_id, filename) if filename in sub.attachments else None
    if data is None:
        raise problems.not_found(f"attachment {filename}")
    data = plain_attachment(store, sub.instance_id, filename, data)  # opened in memory
    record_view(store, user.username, "view.attachment", via="central", count=1,
                filters={"form_id": form_id, "instance_id": sub.instance_id, "name": filename})
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"},
    )


@post("/v1/projects/{pid:str}/forms/{form_id:str}/submissions/{iid:str}/attachments/{filename:str}",
      guards=[MAY_EDIT], status_code=200, operation_class=FILE_BODY)
async def upload_attachment(
    request: Request, store: NamedDependency[Store], user: NamedDependency[User], pid: FromPath[str],
    form_id: FromPath[str], iid: FromPath[str], filename: FromPath[str],
) -> Success:
    """A file the submission's XML names; a name already stored keeps its first bytes (as on resend)."""
    del pid
    name = filename
    async with _upload_room(request):  # the upload budget, as for OpenRosa
        data = await _body(request, _st(request).settings.max_body_bytes)

        def run() -> None:
            sub = _submission(store, user, form_id, iid)
            if name not in sub.expected_attachments:
                raise problems.not_found(f"{name} is not named by submission {iid}")
            try:
                store.add_attachment(sub.instance_id, name, data)
            except ValueError as exc:
                raise problems.invalid_value("name", str(exc)) from None

        await anyio.to_thread.run_sync(run)
        return Success(success=True)


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
