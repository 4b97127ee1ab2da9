"""OpenRosa for a form draft's test code: ODK Collect set up with the draft's QR code lists, downloads and
submits to ``B = /v1/test/{token}/projects/{pid}/forms/{formId}/draft`` (ODK Central's shape).

``GET B/formList`` (the draft alone), ``GET B.xml`` (the draft's XForm), ``GET B/manifest``,
``GET B/attachments/{name}``, ``HEAD|GET B/submission`` (204), ``POST B/submission`` (a test submission,
kept apart by ``core.drafts.accept_test``: never a record, never counted or exported). The token is the
only credential; a token of a draft that was published, replaced or discarded gets 403 with a message
telling the tester to scan the new code, so Collect does not ask for a password.
"""

from __future__ import annotations

from urllib.parse import quote

import anyio
from litestar import Request, Response, get, post, route
from litestar.params import FromQuery
from rasoat.core.drafts import Draft, accept_test, draft_for_token, draft_media
from rasoat.core.problems import Problem
from rasoat.server import openrosa
from rasoat.server.ingest import split_parts
from rasoat.server.openapi import SUBMISSION_BODY
from rasoat.server.uploads import close_parts, declared_length, read_parts

PREFIX = "/v1/test/{token:str}/projects/{pid:str}/forms/{form_id:str}/draft"

RECEIVED = "Đã nhận bản ghi thử (không tính vào số liệu) / Test submission received (not counted)"


def _draft(request: Request) -> Draft:
    st = request.app.state["rasoat"]
    params = request.path_params
    if params["pid"] != st.settings.project_id:
        raise Problem("project.not_found", project=params["pid"])
    return draft_for_token(st.store, params["form_id"], params["token"])  # draft.test_code_invalid: 403


def _base(request: Request) -> str:
    """This draft's URL prefix as the phone uses it (the configured public URL, else the request's)."""
    st = request.app.state["rasoat"]
    base = (st.settings.public_url or str(request.base_url)).rstrip("/")
    p = request.path_params
    return (f"{base}/v1/test/{quote(p['token'], safe='')}/projects/{quote(p['pid'], safe='')}"
            f"/forms/{quote(p['form_id'], safe='')}/draft")


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(content=body, status_code=status, media_type=openrosa.XML_MEDIA_TYPE,
                    headers={**openrosa.headers(), "Cache-Control": "no-store"})


@get(PREFIX + "/formList", sync_to_thread=True)
def draft_form_list(request: Request, verbose: FromQuery[str | None] = None) -> Response:
    draft = _draft(request)
    base = _base(request)
    entry = openrosa.FormEntry(
        form_id=draft.form_id, name=f"[Nháp] {draft.compiled.title}", version=draft.version,
        md5=draft.compiled.md5, download_url=f"{base}.xml",
        manifest_url=f"{base}/manifest" if draft.compiled.media else None,
    )
    return _xml(openrosa.form_list_xml([entry], verbose=verbose == "true"))


@get(PREFIX + ".xml", sync_to_thread=True)
def draft_xform(request: Request) -> Response:
    draft = _draft(request)
    return Response(content=draft.compiled.xml, media_type=openrosa.XML_MEDIA_TYPE,
                    headers={"X-OpenRosa-Version": openrosa.OPENROSA_VERSION, "Cache-Control": "no-store",
                             "ETag": f'"{draft.compiled.md5}"'})


@get(PREFIX + "/manifest", sync_to_thread=True)
def draft_manifest(request: Request) -> Response:
    st = request.app.state["rasoat"]
    draft = _draft(request)
    base = _base(request)
    entries = []
    for name in draft.compiled.media:
        data = draft_media(st.store, draft, name)
        if data is not None:
            entries.append(openrosa.MediaEntry(filename=name, md5=openrosa.md5_hex(data),
                                               download_url=f"{base}/attachments/{quote(name, safe='')}"))
    return _xml(openrosa.manifest_xml(entries))


@get(PREFIX + "/attachments/{name:str}", sync_to_thread=True)
def draft_attachment_file(request: Request) -> Response:
    st = request.app.state["rasoat"]
    draft = _draft(request)
    name = request.path_params["name"]
    data = draft_media(st.store, draft, name)
    if data is None:
        raise Problem("draft.no_file", name=name)
    media_type = "text/csv" if name.lower().endswith(".csv") else "application/octet-stream"
    return Response(content=data, media_type=media_type,
                    headers={"X-OpenRosa-Version": openrosa.OPENROSA_VERSION, "Cache-Control": "no-store"})


@route(PREFIX + "/submission", http_method=["HEAD", "GET"])
async def draft_submission_preflight(request: Request) -> Response:
    await anyio.to_thread.run_sync(_draft, request)
    return Response(content=b"", status_code=204, headers=openrosa.headers())


@post(PREFIX + "/submission", operation_class=SUBMISSION_BODY)
async def draft_submission(request: Request) -> Response:
    st = request.app.state["rasoat"]
    await anyio.to_thread.run_sync(_draft, request)  # a stale code is told before the body is read
    length = declared_length(request, st.settings.max_body_bytes)
    async with st.uploads.hold(length if length is not None else st.settings.max_body_bytes):
        parts = await read_parts(request, st.settings.max_body_bytes)
        try:
            def keep() -> None:
                xml, files, _incomplete = split_parts(parts)
                p = request.path_params
                accept_test(st.store, p["form_id"], p["token"], xml, files)  # PublishError: 400/403

            await anyio.to_thread.run_sync(keep)
        finally:
            close_parts(parts)
    return _xml(openrosa.response_xml(RECEIVED), 201)


handlers = [draft_form_list, draft_xform, draft_manifest, draft_attachment_file, draft_submission_preflight,
            draft_submission]
