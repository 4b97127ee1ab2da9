"""rasoat's records in the JSON shapes Central sends and pyodk's models require (reference §1).

Identifiers Central keeps as integers are derived from rasoat's: an account's actor id is a stable number
made from its id (``actor_id``), a form's project is ``ServerSettings.project_id``. Review states map
``received`` → ``null``, ``has_issues`` → ``hasIssues``, the others by name.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rasoat.core import scope
from rasoat.core.models import FormVersion, ReviewState, Submission, User
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


def user_json(user: User) -> dict[str, Any]:
    created = iso(user.created_at)
    return {
        "id": actor_id(user.id),
        "type": "user",
        "displayName": user.display_name or user.username,
        "email": user.username,
        "createdAt": created,
        "updatedAt": None,
        "deletedAt": None,
        "rasoat": {"role": user.role.value, "units": user.unit_codes,
                   "permissions": sorted(p for p in scope.ALL_PERMISSIONS if scope.can(user, p))},
    }


def project_json(project_id: int, name: str, created: str | None, forms: int) -> dict[str, Any]:
    return {
        "id": project_id,
        "name": name,
        "description": None,
        "archived": False,
        "keyId": None,
        "createdAt": created,
        "updatedAt": None,
        "deletedAt": None,
        "forms": forms,
        "appUsers": None,
        "lastSubmission": None,
    }


def form_json(form: FormVersion, project_id: int, state: str = "open") -> dict[str, Any]:
    published = iso(form.published_at)
    return {
        "projectId": project_id,
        "xmlFormId": form.form_id,
        "name": form.title,
        "version": form.version,
        "hash": form.md5,
        "state": state,
        "keyId": 1 if form.encrypted else None,
        "enketoId": None,
        "enketoOnceId": None,
        "createdAt": published,
        "updatedAt": None,
        "publishedAt": published,
        "webformsEnabled": False,
        "draftToken": None,
    }


def last_change(sub: Submission) -> str | None:
    """``updatedAt``: the time of the last review (Central: of the last review or edit)."""
    times = [str(h["at"]) for h in sub.review_history if h.get("at")]
    return iso(_parse(max(times))) if times else None


def _parse(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


def submission_json(sub: Submission) -> dict[str, Any]:
    return {
        "instanceId": sub.instance_id,
        "submitterId": actor_id(sub.collector_id),
        "deviceId": None,
        "createdAt": iso(sub.received_at),
        "updatedAt": last_change(sub),
        "deletedAt": None,
        "reviewState": TO_CENTRAL[sub.review_state],
        "userAgent": None,
        "instanceName": sub.fields.get("meta/instanceName") or None,
        "currentVersion": {
            "instanceId": sub.instance_id,
            "instanceName": None,
            "submitterId": actor_id(sub.collector_id),
            "deviceId": None,
            "createdAt": iso(sub.received_at),
            "current": sub.current,
            "deprecatedId": sub.deprecated_id,
        },
    }


def comments_json(sub: Submission, actors: dict[str, int]) -> list[dict[str, Any]]:
    """Comments are the review history entries that carry one (newest first, as Central lists them)."""
    out = []
    for entry in sub.review_history:
        text = str(entry.get("comment") or "").strip()
        if text:
            actor = str(entry.get("actor") or "")
            out.append(
                {
                    "body": text,
                    "actorId": actors.get(actor, actor_id(actor)),
                    "createdAt": iso(_parse(entry["at"])) if entry.get("at") else None,
                }
            )
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


def form_attachment_json(name: str, data: bytes) -> dict[str, Any]:
    from rasoat.core.models import utcnow

    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return {
        "name": name,
        "type": ATTACHMENT_TYPES.get(ext, "file"),
        "hash": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "exists": True,
        "blobExists": True,
        "datasetExists": False,
        "updatedAt": iso(utcnow()),
    }
