"""rasoat's records in the JSON shapes Central sends and pyodk's models require (reference §1): one
pydantic model per object, so the OpenAPI schema (/schema/openapi.json) describes each answer.

Identifiers Central keeps as integers are derived from rasoat's: an account's actor id is a stable number
made from its id (``actor_id``), a form's project is ``ServerSettings.project_id``. Review states map
``received`` → ``null``, ``has_issues`` → ``hasIssues``, the others by name.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from pydantic import BaseModel
from rasoat.core import scope
from rasoat.core.models import FormVersion, ReviewState, Submission, User, utcnow
from rasoat.server.central.auth import iso

TO_CENTRAL: dict[ReviewState, str | None] = {
    ReviewState.received: None,
    ReviewState.has_issues: "hasIssues",
    ReviewState.approved: "approved",
    ReviewState.rejected: "rejected",
    ReviewState.edited: "edited",
}
FROM_CENTRAL: dict[str | None, ReviewState] = {v: k for k, v in TO_CENTRAL.items()}


def actor_id(user_id: str | None) -> int:
    """A stable positive integer for an account id (48 bits of its SHA-256: exact in JSON and JavaScript);
    0 for none."""
    if not user_id:
        return 0
    return int(hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:12], 16)


class CentralModel(BaseModel):
    """Central's JSON objects: the keys are Central's (camelCase) and every one is sent, ``null`` included
    (pyodk's models require most keys even when their value may be null)."""


class UserScope(BaseModel):
    """rasoat's addition to Central's user: what the officer's role allows, over which units."""

    role: str
    units: list[str]
    permissions: list[str]


class CentralUser(CentralModel):
    """``GET /v1/users/current``: the officer as a Central user."""

    id: int
    type: str
    displayName: str
    email: str
    createdAt: str | None
    updatedAt: str | None
    deletedAt: str | None
    rasoat: UserScope


class CentralSession(CentralModel):
    """``POST /v1/sessions``: the bearer token and its lifetime."""

    createdAt: str
    expiresAt: str
    token: str
    csrf: str


class Success(CentralModel):
    """Central's answer to an action with nothing else to say."""

    success: bool


class CentralProject(CentralModel):
    """rasoat's one project."""

    id: int
    name: str
    description: str | None
    archived: bool
    keyId: int | None
    createdAt: str | None
    updatedAt: str | None
    deletedAt: str | None
    forms: int
    appUsers: int | None
    lastSubmission: str | None


class CentralAppUser(CentralModel):
    """A collector, as Central's app user (its token is never shown again: ``null``)."""

    projectId: int
    id: int
    type: str
    displayName: str
    token: str | None
    createdAt: str | None
    updatedAt: str | None
    deletedAt: str | None


class CentralForm(CentralModel):
    """A form version (published, or the draft: ``publishedAt`` null, ``draftToken`` set)."""

    projectId: int
    xmlFormId: str
    name: str | None
    version: str
    hash: str
    state: str
    keyId: int | None
    enketoId: str | None
    enketoOnceId: str | None
    createdAt: str | None
    updatedAt: str | None
    publishedAt: str | None
    webformsEnabled: bool
    draftToken: str | None


class FormAttachment(CentralModel):
    """A media file of a form draft."""

    name: str
    type: str
    hash: str
    exists: bool
    blobExists: bool
    datasetExists: bool
    updatedAt: str | None


class SubmissionVersion(CentralModel):
    instanceId: str
    instanceName: str | None
    submitterId: int
    deviceId: str | None
    createdAt: str | None
    current: bool
    deprecatedId: str | None


class CentralSubmission(CentralModel):
    """A submission's metadata (its fields are read through OData)."""

    instanceId: str
    submitterId: int
    deviceId: str | None
    createdAt: str | None
    updatedAt: str | None
    deletedAt: str | None
    reviewState: str | None
    userAgent: str | None
    instanceName: str | None
    currentVersion: SubmissionVersion


class Comment(CentralModel):
    body: str
    actorId: int
    createdAt: str | None


class SubmissionAttachment(CentralModel):
    """A file a submission names, and whether it has arrived."""

    name: str
    exists: bool


# OData documents: their keys are not Python names ("@odata.context"), which a TypedDict keeps as they are
# in the schema; a row's fields are the form's own, so a row is an open object.


class EntitySet(TypedDict):
    name: str
    kind: str
    url: str


ODataServiceDocument = TypedDict("ODataServiceDocument", {"@odata.context": str, "value": list[EntitySet]})
ODataPage = TypedDict("ODataPage", {
    "@odata.context": str,
    "value": list[dict[str, Any]],
    "@odata.count": NotRequired[int],
    "@odata.nextLink": NotRequired[str],
})


def user_json(user: User) -> CentralUser:
    return CentralUser(
        id=actor_id(user.id),
        type="user",
        displayName=user.display_name or user.username,
        email=user.username,
        createdAt=iso(user.created_at),
        updatedAt=None,
        deletedAt=None,
        rasoat=UserScope(role=user.role.value, units=user.unit_codes,
                         permissions=sorted(p for p in scope.ALL_PERMISSIONS if scope.can(user, p))),
    )


def project_json(project_id: int, name: str, created: str | None, forms: int) -> CentralProject:
    return CentralProject(id=project_id, name=name, description=None, archived=False, keyId=None,
                          createdAt=created, updatedAt=None, deletedAt=None, forms=forms, appUsers=None,
                          lastSubmission=None)


def app_user_json(user: User, project_id: int) -> CentralAppUser:
    return CentralAppUser(projectId=project_id, id=actor_id(user.id), type="field_key",
                          displayName=user.display_name or user.username, token=None,
                          createdAt=iso(user.created_at), updatedAt=None, deletedAt=None)


def form_json(form: FormVersion, project_id: int, state: str = "open") -> CentralForm:
    published = iso(form.published_at)
    return CentralForm(
        projectId=project_id,
        xmlFormId=form.form_id,
        name=form.title,
        version=form.version,
        hash=form.md5,
        state=state,
        keyId=1 if form.encrypted else None,
        enketoId=None,
        enketoOnceId=None,
        createdAt=published,
        updatedAt=None,
        publishedAt=published,
        webformsEnabled=False,
        draftToken=None,
    )


def last_change(sub: Submission) -> str | None:
    """``updatedAt``: the time of the last review (Central: of the last review or edit)."""
    times = [str(h["at"]) for h in sub.review_history if h.get("at")]
    return iso(_parse(max(times))) if times else None


def _parse(text: str) -> Any:
    return datetime.fromisoformat(text)


def submission_json(sub: Submission) -> CentralSubmission:
    return CentralSubmission(
        instanceId=sub.instance_id,
        submitterId=actor_id(sub.collector_id),
        deviceId=None,
        createdAt=iso(sub.received_at),
        updatedAt=last_change(sub),
        deletedAt=None,
        reviewState=TO_CENTRAL[sub.review_state],
        userAgent=None,
        instanceName=sub.fields.get("meta/instanceName") or None,
        currentVersion=SubmissionVersion(
            instanceId=sub.instance_id,
            instanceName=None,
            submitterId=actor_id(sub.collector_id),
            deviceId=None,
            createdAt=iso(sub.received_at),
            current=sub.current,
            deprecatedId=sub.deprecated_id,
        ),
    )


def comments_json(sub: Submission, actors: dict[str, int]) -> list[Comment]:
    """Comments are the review history entries that carry one (newest first, as Central lists them)."""
    out = []
    for entry in sub.review_history:
        text = str(entry.get("comment") or "").strip()
        if text:
            actor = str(entry.get("actor") or "")
            out.append(Comment(body=text, actorId=actors.get(actor, actor_id(actor)),
                               createdAt=iso(_parse(entry["at"])) if entry.get("at") else None))
    return out[::-1]


ATTACHMENT_TYPES = {
    "jpg": "image",
    "jpeg": "image",
    "png": "image",
    "gif": "image",
    "mp3": "audio",
    "m4a": "audio",
    "wav": "audio",
    "ogg": "audio",
    "amr": "audio",
    "mp4": "video",
    "3gp": "video",
    "webm": "video",
}


def form_attachment_json(name: str, data: bytes) -> FormAttachment:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return FormAttachment(name=name, type=ATTACHMENT_TYPES.get(ext, "file"),
                          hash=hashlib.md5(data, usedforsecurity=False).hexdigest(), exists=True,
                          blobExists=True, datasetExists=False, updatedAt=iso(utcnow()))
