"""The records rasoat keeps, shared by every room: forms, rounds, users, submissions, audit events."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from rasoat.core.problems import Words


def utcnow() -> datetime:
    """Times are stored in UTC and shown in Asia/Ho_Chi_Minh."""
    return datetime.now(UTC)


class ReviewState(StrEnum):
    received = "received"
    has_issues = "has_issues"
    approved = "approved"
    rejected = "rejected"
    edited = "edited"


REVIEW_LABELS: dict[ReviewState, Words] = {
    ReviewState.received: ("Đã nhận", "Received"),
    ReviewState.has_issues: ("Có vấn đề", "Has issues"),
    ReviewState.approved: ("Đã duyệt", "Approved"),
    ReviewState.rejected: ("Bị từ chối", "Rejected"),
    ReviewState.edited: ("Đã sửa", "Edited"),
}

DEFAULT_COUNTED_STATES: tuple[ReviewState, ...] = tuple(
    s for s in ReviewState if s is not ReviewState.rejected
)


class RoundState(StrEnum):
    draft = "draft"
    open = "open"
    closed = "closed"
    archived = "archived"


class Role(StrEnum):
    admin = "admin"
    province_manager = "province_manager"
    commune_officer = "commune_officer"
    viewer = "viewer"
    collector = "collector"


OFFICER_ROLES = (Role.admin, Role.province_manager, Role.commune_officer, Role.viewer)  # the web logins


class FormVersion(BaseModel):
    """One published version of a form; the XForm bytes, schema and media are stored beside it."""

    form_id: str
    version: str
    title: str
    md5: str  # hex md5 of the exact XForm bytes served to phones
    media: list[str] = Field(default_factory=list)  # file names the form references
    encrypted: bool = False
    source: str = "upload"  # plugin name, or "upload"
    published_at: datetime = Field(default_factory=utcnow)


# Kinds of round: id → (Vietnamese, English) and the national form each kind usually carries.
ROUND_KINDS: dict[str, Words] = {
    "census": ("Tổng rà soát người liên quan đến ma túy", "Census of persons"),
    "pledge": ("Ký cam kết hộ gia đình", "Household pledges"),
    "school_audit": ("Đánh giá trường học không ma túy", "School audit"),
    "enterprise_audit": ("Đánh giá doanh nghiệp, cơ sở không ma túy", "Enterprise audit"),
    "hamlet_checklist": ("Rà soát xóm, thôn", "Hamlet checklist"),
    "hotspot": ("Rà soát điểm, tụ điểm", "Hotspot register"),
    "cultivation": ("Phát hiện trồng cây có chứa chất ma túy", "Cultivation detection"),
    "activity": ("Hoạt động tuyên truyền, phòng ngừa", "Prevention activities"),
    "cases": ("Vụ việc, vụ án về ma túy", "Drug cases"),
    "summary": ("Báo cáo định kỳ của xã", "Periodic summary"),
}


class Round(BaseModel):
    """A survey round (campaign): its forms, scope, collectors and lifecycle state."""

    id: str
    name: str
    kind: str = "census"
    period: str
    form_ids: list[str] = Field(default_factory=list)
    unit_codes: list[str] = Field(default_factory=list)
    collector_ids: list[str] = Field(default_factory=list)
    state: RoundState = RoundState.draft
    counted_states: list[ReviewState] = Field(default_factory=lambda: list(DEFAULT_COUNTED_STATES))
    created_at: datetime = Field(default_factory=utcnow)
    history: list[dict[str, Any]] = Field(default_factory=list)


class User(BaseModel):
    """An officer (password) or a collector (app user with a token); scoped to administrative units."""

    id: str
    username: str
    display_name: str = ""
    role: Role
    unit_codes: list[str] = Field(default_factory=list)
    password_hash: str | None = None
    token_hash: str | None = None  # collectors: sha256 of the token in their Collect URL
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    # Web sessions begun before this moment (epoch seconds) have ended: set when the password is set or
    # reset and when the account is disabled, so every browser signed in as this officer must log in again
    sessions_ended_at: float | None = None


class Submission(BaseModel):
    """A received instance. The raw XML and attachments are the source of truth; fields are parsed from it."""

    instance_id: str
    form_id: str
    form_version: str
    round_id: str | None = None
    unit_code: str | None = None  # the most precise unit the submission names (hamlet, else commune)
    collector_id: str | None = None
    received_at: datetime = Field(default_factory=utcnow)
    xml_md5: str
    fields: dict[str, Any] = Field(default_factory=dict)
    attachments: list[str] = Field(default_factory=list)  # names received so far
    expected_attachments: list[str] = Field(default_factory=list)
    review_state: ReviewState = ReviewState.received
    review_history: list[dict[str, Any]] = Field(default_factory=list)
    deprecated_id: str | None = None
    current: bool = True  # False once an edit (deprecatedID) replaced it
    encrypted: bool = False


# An ODK-encrypted record whose statistical fields the server has not derived yet (no passphrase so far)
# keeps Collect's wrapped key at the top of its fields; deriving them (core.derive) moves the envelope
# under ENVELOPE_FIELD beside the derived fields. The engine and the reports ask by field, not by flag.
UNREAD_FIELD = "base64EncryptedKey"
ENVELOPE_FIELD = "odk_envelope"


def unread(sub: Submission) -> bool:
    """Whether the server cannot read this record's fields: ODK-encrypted and not derived yet."""
    return sub.encrypted and UNREAD_FIELD in sub.fields


class AuditEvent(BaseModel):
    """One line of the append-only audit log."""

    at: datetime = Field(default_factory=utcnow)
    actor: str
    action: str
    target: str = ""
    details: dict[str, Any] = Field(default_factory=dict)
