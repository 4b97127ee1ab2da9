"""ODK's rules for storing a submission, decided once for every engine, and the messages a sender sees.

An engine (SQLite, PostgreSQL) only stores and queries: it offers the few primitives of ``Engine`` and
``Tx`` below, each atomic across threads and processes, and :func:`save` decides with them:

- a new instanceID is created (``Engine.claim``: insert unless the instanceID exists, in one step);
- the same instanceID with byte-identical XML is a duplicate; attachments it carries that are not
  stored yet are added, a name already stored keeps its first bytes. A protected record
  (``core.protection``) is stored sealed under a fresh key each time, so its identity is the keyed
  digest of its plaintext XML kept in ``fields[PROTECTED]``: plaintext is never compared;
- the same instanceID with other XML is a Conflict (HTTP 409 to the phone);
- a resend of a version an edit has since replaced is a Conflict, identical XML or not (openrosa.md
  §4.6: Central answers so; accepting it would revive a replaced version);
- an edit (``deprecatedID``) must name the current version of a stored submission: the old version
  becomes ``current=False`` and the new one's review state ``edited`` (unless the caller chose another
  state than ``received``); an edit of an unknown or already replaced version is a Conflict, except a
  resend of the very edit that replaced it (a phone retrying), which is a duplicate as above.

Every refusal a collector or an operator can meet here is a ``Conflict`` with its own catalogue code.
"""

from __future__ import annotations

import hashlib
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from rasoat.core.entities import EntityWork
from rasoat.core.models import ReviewState, Submission
from rasoat.core.storage.base import Conflict, SaveOutcome

MAX_NAME_BYTES = 200  # the limit of the embedded format's file names; kept so every copy fits anywhere
# the key of a protected record's sealed envelope in ``fields``; '#' cannot start an XML element name
PROTECTED = "#protected"


class Messages:
    """The texts of the internal errors (``KeyError``, ``ValueError``) the storage rules raise; a refusal a
    user meets is a ``Conflict`` with its catalogue code (``storage.different_content``…)."""

    @staticmethod
    def no_submission(iid: str) -> str:
        return f"Không có bản ghi / No submission {iid!r}"

    @staticmethod
    def bad_md5(what: str, given: str, actual: str) -> str:
        return f"md5 không khớp / {what} md5 {given!r} is not the md5 of the bytes ({actual})"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def safe_name(name: str, what: str = "name") -> str:
    """``name`` if it may name a stored thing (instanceID, attachment, media file); ValueError for path
    syntax, NUL, empty or oversized names. A client's name is a label only, never a path, but every
    engine refuses the same names so that stores stay interchangeable."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"Tên không hợp lệ / Invalid {what}: empty")
    if "\x00" in name:
        raise ValueError(f"Tên không hợp lệ / Invalid {what} {name!r}: contains NUL")
    if "/" in name or "\\" in name:
        raise ValueError(f"Tên không hợp lệ / Invalid {what} {name!r}: must not contain '/' or '\\'")
    if name in (".", ".."):
        raise ValueError(f"Tên không hợp lệ / Invalid {what} {name!r}: not a file name")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"Tên quá dài / Invalid {what}: longer than {MAX_NAME_BYTES} bytes")
    return name


# an attachment as an engine records it: (name, blob key, size, md5)
BlobRow = tuple[str, str, int, str]


@dataclass(frozen=True)
class Stored:
    """What the rules need to know of a stored version (read under the engine's lock)."""

    current: bool
    xml: bytes
    deprecated_id: str | None
    attachments: frozenset[str]
    digest: str | None = None  # a protected record's keyed digest of its plaintext XML


def digest_of(fields: dict) -> str | None:
    """The keyed content digest a protected record carries (None for a plain record)."""
    envelope = fields.get(PROTECTED)
    return str(envelope.get("digest")) if isinstance(envelope, dict) else None


class Tx(Protocol):
    """One engine transaction; rows read with ``locked`` stay locked until it ends."""

    def locked(self, instance_id: str) -> Stored | None: ...

    def insert(self, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> bool:
        """Insert a new version; False (and nothing written) when the instanceID exists."""

    def retire(self, instance_id: str) -> None:
        """Mark a version replaced (``current=False``)."""

    def add_attachments(self, instance_id: str, have: frozenset[str], blobs: list[BlobRow]) -> None:
        """Record attachments not stored yet (``blobs`` holds only those)."""

    def apply_entities(self, sub: Submission, work: EntityWork) -> None:
        """Apply a just-inserted submission's entity blocks in this transaction (entity_rules)."""


class Engine(Protocol):
    def claim(self, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> bool:
        """Insert a new submission unless its instanceID exists, atomically; whether it was inserted."""

    def transaction(self) -> AbstractContextManager[Tx]: ...


def prepare(sub: Submission, xml: bytes) -> Submission:
    """Check a submission before anything is written, and give an edit its review state."""
    actual = md5_hex(xml)
    if sub.xml_md5 != actual:
        raise ValueError(Messages.bad_md5("xml_md5", sub.xml_md5, actual))
    safe_name(sub.instance_id, "instanceID")
    if sub.deprecated_id is not None:
        safe_name(sub.deprecated_id, "deprecatedID")
        if sub.review_state is ReviewState.received:
            sub = sub.model_copy(update={"review_state": ReviewState.edited})
    return sub


def save(
    engine: Engine, sub: Submission, xml: bytes, blobs: list[BlobRow], entities: EntityWork | None = None
) -> SaveOutcome:
    """Apply the rules above (``sub`` went through :func:`prepare`; its attachments are in ``blobs``).
    ``entities`` are applied in the transaction that inserts the submission, never for a duplicate."""
    blobs = sorted(blobs)
    if sub.deprecated_id is None:
        if entities:
            with engine.transaction() as tx:
                if tx.insert(sub, xml, blobs):
                    tx.apply_entities(sub, entities)
                    return SaveOutcome.created
                _resend(tx, sub, xml, blobs)
            return SaveOutcome.duplicate
        if engine.claim(sub, xml, blobs):
            return SaveOutcome.created
        with engine.transaction() as tx:
            _resend(tx, sub, xml, blobs)
        return SaveOutcome.duplicate
    with engine.transaction() as tx:
        old = tx.locked(sub.deprecated_id)
        if old is None:
            raise Conflict("storage.edit_of_unknown", instance_id=sub.deprecated_id)
        if not old.current:  # already replaced: only a resend of the edit that replaced it is accepted
            new = tx.locked(sub.instance_id)
            if new is None or new.deprecated_id != sub.deprecated_id:
                raise Conflict("storage.edit_of_replaced", instance_id=sub.deprecated_id)
            _resend(tx, sub, xml, blobs)
            return SaveOutcome.duplicate
        if not tx.insert(sub, xml, blobs):
            raise Conflict("storage.edit_id_taken", instance_id=sub.instance_id)
        tx.retire(sub.deprecated_id)
        if entities:
            tx.apply_entities(sub, entities)
    return SaveOutcome.created


def _resend(tx: Tx, sub: Submission, xml: bytes, blobs: list[BlobRow]) -> None:
    instance_id = sub.instance_id
    stored = tx.locked(instance_id)
    if stored is None:  # cannot happen after a failed claim, unless rows are deleted by hand
        raise Conflict("storage.no_submission", instance_id=instance_id)
    digest = digest_of(sub.fields)
    same = stored.digest == digest if stored.digest or digest else stored.xml == xml
    if not same:
        raise Conflict("storage.different_content", instance_id=instance_id)
    if not stored.current:
        raise Conflict("storage.replaced", instance_id=instance_id)
    _add_missing(tx, instance_id, stored, blobs)


def add_attachment(engine: Engine, instance_id: str, blobs: list[BlobRow]) -> None:
    """A late attachment (a split upload): added unless a file of that name is already stored."""
    with engine.transaction() as tx:
        stored = tx.locked(instance_id)
        if stored is None:
            raise KeyError(Messages.no_submission(instance_id))
        _add_missing(tx, instance_id, stored, blobs)


def _add_missing(tx: Tx, instance_id: str, stored: Stored, blobs: list[BlobRow]) -> None:
    missing = [b for b in blobs if b[0] not in stored.attachments]
    if missing:
        tx.add_attachments(instance_id, stored.attachments, missing)


def review_entry(at: str, actor: str, old: str, new: ReviewState, comment: str) -> dict[str, str]:
    """One line of a submission's review history (who, when, from which state to which, why)."""
    return {"at": at, "actor": actor, "from": old, "to": ReviewState(new).value, "comment": comment}
