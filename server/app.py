"""The litestar app: OpenRosa endpoints for ODK Collect (ODK Central's URL shapes), health, and the JSON API.

``create_app(store, settings)`` builds it. The app keeps no state between requests beyond caches of
immutable things (form shapes, generated media), so several processes can serve one store.

Endpoints (B = ``/v1/key/{token}/projects/{pid}`` for app users, ``/v1/projects/{pid}`` with Digest):
``GET B/formList``, ``GET B/forms/{formId}.xml``, ``GET B/forms/{formId}/versions/{v}.xml``,
``GET B/forms/{formId}/manifest``, ``GET B/forms/{formId}/attachments/{name}``,
``HEAD|GET B/submission`` (204), ``POST B/submission``; ``GET /health``; ``POST /api/v1/forms``; a form
draft's test code under ``/v1/test/{token}/…`` (``server.draft_test``).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

import anyio
from litestar import Litestar, Request, Response, Router, get, post, route
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream
from rasoat.core import entity_media
from rasoat.core.media import ROSTER_MEDIA
from rasoat.core.models import AuditEvent
from rasoat.core.problems import Problem
from rasoat.core.rollforward import record_roster_download
from rasoat.core.storage.base import Store
from rasoat.core.storage.embedded import EmbeddedStore
from rasoat.server import openrosa
from rasoat.server.access import MediaCache, media_bytes, visible_forms
from rasoat.server.accesslog import access_log_middleware, vn_time
from rasoat.server.api import api_handlers
from rasoat.server.api_read import read_handlers
from rasoat.server.auth import Caller, by_digest, by_token
from rasoat.server.central.auth import wants_central
from rasoat.server.central.problems import problem_response
from rasoat.server.central.rest import form_get, form_version_xml
from rasoat.server.central.routes import handlers as central_handlers
from rasoat.server.central.shapes import CentralForm, ODataServiceDocument
from rasoat.server.deps import API_DEPENDENCIES, CENTRAL_OPT, in_project
from rasoat.server.digest import nonce_secret
from rasoat.server.draft_test import handlers as draft_handlers
from rasoat.server.errors import api_response, disk_full, disk_full_problem, http_problem, openrosa_response
from rasoat.server.ingest import ShapeCache, ingest
from rasoat.server.openapi import CENTRAL_PROBLEM_RESPONSES, SUBMISSION_BODY, JsonOrXml
from rasoat.server.uploads import UploadBudget, close_parts, declared_length, read_parts
from rasoat.server.web import WebPlugin
from rasoat.server.web.base import page_problem, problem_page

log = logging.getLogger("rasoat.server")

MIN_FREE_DISK = 200 * 1024 * 1024


@dataclass
class ServerSettings:
    """How this server answers; everything else lives in the store."""

    public_url: str | None = None  # base URL phones use; default: from the request's Host
    project_id: str = "1"
    max_body_bytes: int = openrosa.ACCEPT_CONTENT_LENGTH + 10_000_000  # multipart overhead on top
    # Bytes of uploads this process holds at once (their files are in memory while being stored); one
    # upload alone is always admitted. Over it an upload waits up to upload_wait_seconds, then gets 503.
    max_upload_bytes_in_flight: int = 256 * 1024 * 1024
    upload_wait_seconds: float = 20.0
    plugin_manager: Any = None
    access_log: bool = True
    # Authenticate on the event loop instead of a worker thread (saves ~0.25 ms CPU per request). Right
    # for stores whose reads are local file lookups behind a cache (the embedded store); a store whose
    # reads wait on a network (PostgreSQL) keeps them off the loop. None: decide from the store.
    inline_reads: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _State:
    store: Store
    settings: ServerSettings
    shapes: ShapeCache
    media: MediaCache
    uploads: UploadBudget
    entity_csvs: MediaCache = field(default_factory=lambda: MediaCache(32))  # by list and hash


def _state(request: Request) -> _State:
    return request.app.state["rasoat"]


def _xml_response(body: bytes, status: int = 200, extra: dict[str, str] | None = None) -> Response:
    headers = openrosa.headers()
    if extra:
        headers.update(extra)
    return Response(content=body, status_code=status, media_type=openrosa.XML_MEDIA_TYPE, headers=headers)


# Machine endpoints keep their own error shapes (OpenRosa XML, Central and API JSON); every other
# address is the officers' web site.
MACHINE_PREFIXES = ("/v1/", "/api/", "/schema", "/health")


def is_web_path(path: str) -> bool:
    return not path.startswith(MACHINE_PREFIXES)


def _http_error(request: Request, exc: HTTPException) -> Response:
    """Litestar's own errors outside any route (404 route, 405 method) in the shape of the address: an
    API client's JSON (Central's or rasoat's), else an OpenRosa body Collect can show."""
    problem = http_problem(request, exc)
    if request.url.path.startswith("/v1/") and wants_central(request):
        return problem_response(request, problem)
    if request.url.path.startswith("/api/"):
        return api_response(request, problem)
    if is_web_path(request.url.path):  # an officer's browser: a page in their language, with the menu

        return problem_page(request, page_problem(request, exc))
    return openrosa_response(request, problem)




def _central_http_error(request: Request, exc: HTTPException) -> Response:
    """Litestar's own errors inside a Central API route (a body over the limit, a bad parameter): Central's
    shape whatever credentials came."""
    return problem_response(request, http_problem(request, exc))


def _server_error(request: Request, exc: Exception) -> Response:
    if disk_full(exc):
        log.error("disk full on %s %s: %s", request.method, request.url.path, exc)
        return openrosa_response(request, disk_full_problem())
    log.exception("unhandled error on %s", request.method)
    return openrosa_response(request, Problem("server.error"))


def _base_url(request: Request, settings: ServerSettings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


def _authenticate(request: Request, st: _State) -> Caller:
    """Token in the path, else Digest; the project id must be ours."""
    params = request.path_params
    pid = params.get("pid", "")
    if pid != st.settings.project_id:
        raise Problem("project.not_found", project=pid)
    token = params.get("token")
    if token is not None:
        return by_token(st.store, token, pid)
    return by_digest(
        st.store,
        request.method,
        request.url.path,
        request.url.query or "",
        request.headers.get("authorization"),
        pid,
        ip=request.client.host if request.client else None,
    )


async def _caller(request: Request) -> tuple[_State, Caller]:
    st = _state(request)
    if st.settings.inline_reads:
        return st, _authenticate(request, st)
    return st, await anyio.to_thread.run_sync(_authenticate, request, st)


def _keyed(paths: list[str]) -> list[str]:
    return [f"/v1/key/{{token:str}}/projects/{{pid:str}}{p}" for p in paths]


def _plain(paths: list[str]) -> list[str]:
    return [f"/v1/projects/{{pid:str}}{p}" for p in paths]


def _prefixed(paths: list[str]) -> list[str]:
    return _keyed(paths) + _plain(paths)


# --- form list, forms, media ------------------------------------------------------------------


def _form_list(request: Request, st: _State, caller: Caller, only: str | None, verbose: bool) -> bytes:
    base = _base_url(request, st.settings) + caller.prefix
    entries = []
    for form in visible_forms(st.store, caller.user):
        if only and form.form_id != only:
            continue
        fid = quote(form.form_id, safe="")
        entries.append(
            openrosa.FormEntry(
                form_id=form.form_id,
                name=form.title,
                version=form.version,
                md5=form.md5,
                download_url=f"{base}/forms/{fid}.xml",
                manifest_url=f"{base}/forms/{fid}/manifest" if form.media else None,
            )
        )
    return openrosa.form_list_xml(entries, verbose=verbose)


@get(_prefixed(["/formList"]))
async def form_list(
    request: Request, only: Annotated[str | None, QueryParameter(name="formID")] = None,
    verbose: FromQuery[str | None] = None,
) -> Response:
    st, caller = await _caller(request)
    body = await anyio.to_thread.run_sync(_form_list, request, st, caller, only, verbose == "true")
    return _xml_response(body, extra={"Cache-Control": "no-store"})


def _visible(st: _State, caller: Caller, form_id: str, version: str | None = None):
    for form in visible_forms(st.store, caller.user):
        if form.form_id == form_id:
            if version is None or version == form.version:
                return form
            other = st.store.get_form(form_id, version)
            if other is not None:
                return other
            break
    raise Problem("form.not_available", form=form_id)


def _etag_response(request: Request, data: bytes, media_type: str, md5: str | None = None) -> Response:
    etag = f'"{md5 or openrosa.md5_hex(data)}"'
    headers = {"ETag": etag, "X-OpenRosa-Version": openrosa.OPENROSA_VERSION, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=data, media_type=media_type, headers=headers)


CENTRAL_TAG = "ODK Central"  # the Central API's operations in the OpenAPI schema
FORM_PATHS = ["/forms/{name:str}", "/forms/{form_id:str}/versions/{name:str}"]


async def form_download(request: Request) -> Response:
    """A form's XForm for Collect; without a key in the path, also the Central API's form (JSON), its XML
    and its OData service document (``{id}.svc``)."""
    params = request.path_params
    name: str = params["name"]
    if "token" not in params and (wants_central(request) or not name.endswith(".xml")):
        try:  # the Central API's form paths, answering in its shape
            return await anyio.to_thread.run_sync(_central_form, request)
        except Problem as exc:
            return problem_response(request, exc)
    st, caller = await _caller(request)
    if not name.endswith(".xml"):
        raise Problem("request.no_route")
    if "form_id" in params:
        form_id, version = params["form_id"], name.removesuffix(".xml")
    else:
        form_id, version = name.removesuffix(".xml"), None

    def load() -> tuple[bytes, str]:
        form = _visible(st, caller, form_id, version)
        return st.store.form_xml(form.form_id, form.version), form.md5

    data, md5 = await anyio.to_thread.run_sync(load)
    return _etag_response(request, data, openrosa.XML_MEDIA_TYPE, md5)


collect_form = get(_keyed(FORM_PATHS))(form_download)
central_form = get(  # the paths Central's clients share with Collect's Digest login: described as Central's
    _plain(FORM_PATHS), tags=[CENTRAL_TAG],
    operation_class=JsonOrXml, responses={**CENTRAL_PROBLEM_RESPONSES, 200: ResponseSpec(
        CentralForm | ODataServiceDocument, generate_examples=False,
        description="Biểu mẫu (JSON), XForm của nó (….xml) hoặc tài liệu dịch vụ OData (….svc) / "
                    "The form (JSON), its XForm (….xml) or its OData service document (….svc)")},
)(form_download)


def _central_form(request: Request) -> Response:
    params = request.path_params
    if "form_id" in params:
        return form_version_xml(request, params["form_id"], params["name"])
    return form_get(request, params["name"])


@get(_prefixed(["/forms/{form_id:str}/manifest"]))
async def manifest(request: Request) -> Response:
    st, caller = await _caller(request)
    form_id = request.path_params["form_id"]

    def build() -> bytes:
        form = _visible(st, caller, form_id)
        base = _base_url(request, st.settings) + caller.prefix + f"/forms/{quote(form.form_id, safe='')}"
        entries = []
        for name in form.media:
            lst = entity_media.linked_list(st.store, form, name)
            if lst is not None:  # an entity list, cut to the caller's units
                q = entity_media.list_query(lst.name, caller.user)
                entries.append(openrosa.MediaEntry(
                    filename=name, md5=entity_media.list_hash(st.store, q),
                    download_url=f"{base}/attachments/{quote(name, safe='')}",
                    type="approvalEntityList" if lst.approval_required else "entityList",
                    integrity_url=_base_url(request, st.settings) + caller.prefix
                    + f"/datasets/{quote(lst.name, safe='')}/integrity"))
                continue
            data = media_bytes(st.store, form, name, caller.user, st.media)
            if data is None:  # list only files we have
                continue
            entries.append(
                openrosa.MediaEntry(
                    filename=name,
                    md5=openrosa.md5_hex(data),
                    download_url=f"{base}/attachments/{quote(name, safe='')}",
                )
            )
        return openrosa.manifest_xml(entries)

    body = await anyio.to_thread.run_sync(build)
    return _xml_response(body, extra={"Cache-Control": "no-store"})


@get(_prefixed(["/forms/{form_id:str}/attachments/{name:str}"]))
async def attachment(request: Request) -> Response:
    st, caller = await _caller(request)
    form_id, name = request.path_params["form_id"], request.path_params["name"]

    entity_list = await anyio.to_thread.run_sync(
        _entity_list_response, request, st, caller, form_id, name)
    if entity_list is not None:
        return entity_list

    def load() -> bytes:
        form = _visible(st, caller, form_id)
        data = media_bytes(st.store, form, name, caller.user, st.media)
        if data is None:
            raise Problem("form.no_file", form=form_id, name=name)
        if name == ROSTER_MEDIA:  # names of persons leave the server: who took which communes' rows
            record_roster_download(st.store, caller.user.username, data, "collect", form_id=form_id)
        return data

    data = await anyio.to_thread.run_sync(load)
    media_type = "text/csv" if name.lower().endswith(".csv") else "application/octet-stream"
    return _etag_response(request, data, media_type)


def _entity_list_response(request: Request, st: _State, caller: Caller, form_id: str, name: str
                          ) -> Response | Stream | None:
    """An entity list medium (None when ``name`` is another file): the CSV of the caller's units,
    ``ETag`` = the manifest hash; whole from the cache when that hash was served before, else streamed
    from the store (and kept when small). Audited: identities leave the server."""
    form = _visible(st, caller, form_id)
    lst = entity_media.linked_list(st.store, form, name)
    if lst is None:
        return None
    q = entity_media.list_query(lst.name, caller.user)
    digest = entity_media.list_hash(st.store, q)
    headers = {"ETag": f'"{digest}"', "X-OpenRosa-Version": openrosa.OPENROSA_VERSION,
               "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(content=b"", status_code=304, headers=headers)
    st.store.append_audit(AuditEvent(actor=caller.user.username, action="entities.download", target=lst.name,
                                     details={"form_id": form_id, "units": q.unit_codes, "hash": digest}))
    key = ("entity-list", lst.name, digest)
    cached = st.entity_csvs.peek(key)
    if cached is not None:
        return Response(content=cached, media_type="text/csv", headers=headers)

    def chunks() -> Any:
        kept: list[bytes] | None = []
        size = 0
        for chunk in entity_media.iter_list_csv(st.store, lst, q):
            if kept is not None:
                kept.append(chunk)
                size += len(chunk)
                if size > ENTITY_CSV_CACHE_BYTES:
                    kept = None
            yield chunk
        if kept is not None:
            st.entity_csvs.put(key, b"".join(kept))

    return Stream(chunks(), media_type="text/csv", headers=headers)


ENTITY_CSV_CACHE_BYTES = 8 * 1024 * 1024  # one commune's list is far smaller; a province's is streamed


@get(_prefixed(["/datasets/{name:str}/integrity"]))
async def entity_integrity(
    request: Request, ids: Annotated[list[str] | None, QueryParameter(name="id")] = None
) -> Response:
    """Which of the entity ids a phone asks about it must drop: deleted, or outside the caller's units
    (entities.md §2.5). Only for a caller with a form that uses the list."""
    st, caller = await _caller(request)
    name = request.path_params["name"]
    wanted = [i for part in ids or [] for i in part.split(",") if i.strip()]

    def answer() -> bytes:
        forms = visible_forms(st.store, caller.user)
        if not any(entity_media.linked_list(st.store, f, f"{name}.csv") for f in forms):
            raise Problem("entity_list.not_available", name=name)
        scope = entity_media.entity_scope(caller.user)
        return openrosa.integrity_xml(st.store.entity_deleted(name, wanted[:10_000], scope))

    body = await anyio.to_thread.run_sync(answer)
    return _xml_response(body, extra={"Cache-Control": "no-store"})


# --- submissions ------------------------------------------------------------------------------


@route(_prefixed(["/submission"]), http_method=["HEAD", "GET"])
async def submission_preflight(request: Request) -> Response:
    await _caller(request)
    return Response(content=b"", status_code=204, headers=openrosa.headers())


@post(_prefixed(["/submission"]), operation_class=SUBMISSION_BODY)
async def submission(request: Request) -> Response:
    st, caller = await _caller(request)
    length = declared_length(request, st.settings.max_body_bytes)
    # a chunked body (no length) may grow to the limit: it holds that much of the budget
    async with st.uploads.hold(length if length is not None else st.settings.max_body_bytes):
        parts = await read_parts(request, st.settings.max_body_bytes)
        try:
            pm = st.settings.plugin_manager
            hook = pm.hook.check_submission if pm is not None else None
            result = await anyio.to_thread.run_sync(ingest, st.store, caller, parts, st.shapes, hook)
        finally:
            close_parts(parts)
    return _xml_response(openrosa.response_xml(result.message), 201)


# --- operations -------------------------------------------------------------------------------


@get("/health", sync_to_thread=True)
def health(request: Request) -> Response:
    st = _state(request)
    out: dict[str, Any] = {"time": vn_time()}
    ok = True
    try:
        st.store.kv_get("health", "ping")
        st.store.get_form("__health__")
        out["store"] = "ok"
    except Exception as exc:  # report, do not crash
        out["store"] = f"error: {type(exc).__name__}"
        ok = False
    data_dir = st.settings.extra.get("data_dir")
    if data_dir:
        free = shutil.disk_usage(data_dir).free
        out["free_disk_bytes"] = free
        if free < MIN_FREE_DISK:
            out["disk"] = "low"
            ok = False
        else:
            out["disk"] = "ok"
    out["status"] = "ok" if ok else "error"
    return Response(content=out, status_code=200 if ok else 503)


def create_app(store: Store, settings: ServerSettings | None = None) -> Litestar:
    """The app for ``store``. Route handlers only read the store through the ``Store`` interface."""
    settings = settings or ServerSettings()
    if settings.inline_reads is None:
        settings.inline_reads = isinstance(store, EmbeddedStore)
    from litestar.openapi import OpenAPIConfig
    from litestar.openapi.plugins import YamlRenderPlugin

    # Each surface answers a Problem in its own shape: OpenRosa XML (the app's default, for Collect),
    # rasoat's JSON API, the Central API, and the web pages (server.web's router).
    api = Router("/", route_handlers=[*api_handlers, *read_handlers], dependencies=API_DEPENDENCIES,
                 exception_handlers={Problem: api_response})
    central = Router("/", route_handlers=central_handlers(), dependencies=API_DEPENDENCIES,
                     guards=[in_project], opt=CENTRAL_OPT, tags=[CENTRAL_TAG],
                     exception_handlers={Problem: problem_response, HTTPException: _central_http_error})
    app = Litestar(
        route_handlers=[
            form_list, collect_form, central_form, manifest, attachment, entity_integrity,
            submission_preflight, submission, health,
            *draft_handlers, api, central,
        ],
        exception_handlers={
            Problem: openrosa_response,
            HTTPException: _http_error,
            Exception: _server_error,
        },
        middleware=[access_log_middleware] if settings.access_log else [],
        plugins=[WebPlugin()],
        request_max_body_size=settings.max_body_bytes,  # every body, streamed or parsed (413 over it)
        logging_config=None,
        openapi_config=OpenAPIConfig(  # /schema/openapi.json (and .yaml): no pages that load scripts
            title="rasoat API", version="1", path="/schema", render_plugins=[YamlRenderPlugin()]
        ),
        debug=False,
    )
    budget = UploadBudget(settings.max_upload_bytes_in_flight, settings.upload_wait_seconds)
    app.state["rasoat"] = _State(store=store, settings=settings, shapes=ShapeCache(), media=MediaCache(),
                                 uploads=budget)

    nonce_secret(store)  # made (once per store) or read now, so no request ever has to write it
    return app


def store_of(app: Litestar) -> Store:
    return app.state["rasoat"].store
