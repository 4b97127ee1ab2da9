"""The storage interface every backend implements, and the rules every backend keeps.

Rules (tests/storage_contract.py checks each against every backend):
- a write that returned has survived a crash; nothing is ever half-written;
- submissions stream: ``iter_submissions`` never loads them all into memory;
- duplicates follow ODK Central: same instanceID and same XML → a duplicate (missing attachments are
  added); same instanceID with different XML → Conflict; a resend of a version an edit has since
  replaced → Conflict, identical XML or not (openrosa.md §4.6); a ``deprecated_id`` edit must name the
  current version, else Conflict. These decisions are atomic across processes. An accepted edit
  leaves the old version ``current=False``; the new one's review state becomes ``edited`` (as in
  Central) unless the caller set another state than ``received``;
- an attachment already stored under a name is kept (a resend cannot replace it); client names with
  path syntax (``/``, ``\\``, ``..``, NUL, empty) raise ValueError and nothing is stored;
- a form version is immutable: publishing the same form id and version with other XForm bytes is a
  Conflict (identical bytes are a harmless re-publish); ``xml_md5``/``md5`` must be the md5 of the bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel
from rasoat.core import entities as en
from rasoat.core.models import AuditEvent, FormVersion, ReviewState, Round, Submission, User
from rasoat.core.problems import Problem


class Conflict(Problem):
    """The write contradicts what is stored (a different XML for a known instanceID, a stale edit)."""


class SaveOutcome(StrEnum):
    created = "created"
    duplicate = "duplicate"  # identical resend: attachments it carried were added if missing


class SubmissionQuery(BaseModel):
    """Filters for listing submissions; ``unit_codes`` is already expanded to descendants by the caller."""

    form_id: str | None = None
    form_version: str | None = None
    round_id: str | None = None
    unit_codes: list[str] | None = None
    collector_id: str | None = None
    review_states: list[ReviewState] | None = None
    received_from: datetime | None = None  # inclusive
    received_to: datetime | None = None  # exclusive
    current_only: bool = True
    touched_above: int | None = None  # only records written after this mark (``Store.records_added``)


class PageKey(NamedTuple):
    """Where a page of ``page_submissions`` ended: the last row's receipt time and instanceID."""

    received_at: datetime
    instance_id: str


class Fact(NamedTuple):
    """What the indicator engine reads of a submission: no model, only the fields it asked for."""

    instance_id: str
    round_id: str | None  # each round says which review states count
    unit_code: str | None
    received_at: datetime
    review_state: str  # a ReviewState value
    fields: dict[str, Any]  # only the requested top-level field paths that the submission has


class Condition(NamedTuple):
    """A test on one answer that ``Store.aggregate`` makes itself: ``op`` "eq", a text answer equal to one of
    ``values``; "answered", not absent, null, "" or []; "word", a text answer holding ``values[0]`` among
    its words separated by spaces (a select_multiple's choices); "absent", no such answer at all.
    ``negate`` turns it round (an absent answer is then taken)."""

    field: str
    op: Literal["eq", "answered", "word", "absent"]
    values: tuple[str, ...] = ()
    negate: bool = False

    def holds(self, fields: dict[str, Any]) -> bool:
        """The same test made in Python on a record's answers (where the store cannot total them)."""
        value = fields.get(self.field)
        if self.op == "eq":
            found = isinstance(value, str) and value in self.values
        elif self.op == "word":
            found = isinstance(value, str) and self.values[0] in value.split(" ")
        elif self.op == "answered":
            found = value is not None and value != "" and value != []
        else:
            found = self.field not in fields
        return found is not self.negate


class Latest(NamedTuple):
    """Tallies take only each key's latest readable record (a register of persons or sites, each record a
    state): among the records of one commune (a unit code up to its first "-": a commune's and its hamlets')
    with the same text answer to ``field`` (blank or absent: the record is its own key), the one received
    last, ties broken by the larger instanceID. Spans still count every record."""

    field: str


class Span(NamedTuple):
    """Which records a total takes: those whose text answer ``date_field`` begins (its first ten characters)
    in [low_day, high_day); when that answer is blank or not text, or with no ``date_field``, those received
    in [low_utc, high_utc) (None: no bound)."""

    date_field: str | None
    low_day: str
    high_day: str
    low_utc: datetime | None
    high_utc: datetime | None


class Tally(NamedTuple):
    """One total per group: of the records of ``spans[span]`` that pass every condition and are not sealed,
    how many (``field`` None) or the sum of their numeric answers to ``field``."""

    span: int
    where: tuple[Condition, ...]
    field: str | None = None


class Group(NamedTuple):
    """``Store.aggregate``'s answer for one (unit, round, review state): per span, its records and how many
    of them are sealed (hold the sealed key: their answers cannot be read); per tally, its total."""

    unit_code: str | None
    round_id: str | None
    review_state: str
    records: tuple[int, ...]
    sealed: tuple[int, ...]
    totals: tuple[float, ...]


class FormStore(ABC):
    """Forms (XForm, schema, media), rounds and the snapshots of closed rounds."""

    @abstractmethod
    def put_form(
        self, form: FormVersion, xml: bytes, schema: dict[str, Any], media: dict[str, bytes]
    ) -> None:
        """Store a form version with its XForm bytes, pyxform JSON schema and media files."""

    @abstractmethod
    def get_form(self, form_id: str, version: str | None = None) -> FormVersion | None:
        """A version of a form; with no version, the latest published."""

    @abstractmethod
    def list_forms(self, all_versions: bool = False) -> list[FormVersion]:
        """The latest version of each form (every version with ``all_versions``)."""

    @abstractmethod
    def form_xml(self, form_id: str, version: str) -> bytes: ...

    @abstractmethod
    def form_schema(self, form_id: str, version: str) -> dict[str, Any]: ...

    @abstractmethod
    def form_media(self, form_id: str, version: str, name: str) -> bytes | None: ...

    # --- rounds --------------------------------------------------------------------------
    @abstractmethod
    def put_round(self, rnd: Round) -> None: ...

    @abstractmethod
    def get_round(self, round_id: str) -> Round | None: ...

    @abstractmethod
    def list_rounds(self) -> list[Round]: ...

    @abstractmethod
    def put_snapshot(self, round_id: str, data: dict[str, Any]) -> None:
        """Freeze the counts of a closed round (indicators compare years against these)."""

    @abstractmethod
    def get_snapshot(self, round_id: str) -> dict[str, Any] | None: ...


class PeopleStore(ABC):
    """Users: accounts, roles, units, token hashes."""

    @abstractmethod
    def put_user(self, user: User) -> None: ...

    @abstractmethod
    def get_user(self, user_id: str) -> User | None: ...

    @abstractmethod
    def get_user_by_name(self, username: str) -> User | None: ...

    @abstractmethod
    def get_user_by_token_hash(self, token_hash: str) -> User | None: ...

    @abstractmethod
    def list_users(self) -> list[User]: ...


class SubmissionStore(ABC):
    """Submissions, their XML and attachments, review states; the only part holding person records."""

    @abstractmethod
    def save_submission(
        self, sub: Submission, xml: bytes, attachments: dict[str, bytes],
        entities: en.EntityWork | None = None,
    ) -> SaveOutcome:
        """Store a submission durably, applying the duplicate/edit rules above (raises Conflict). Its
        ``entities`` blocks (``core.entities.read_blocks``) are applied in the same transaction, by
        ``core.storage.entity_rules``, only when the submission is new (created, or an edit): a crash
        leaves both or neither."""

    @abstractmethod
    def add_attachment(self, instance_id: str, name: str, data: bytes) -> None: ...

    @abstractmethod
    def get_submission(self, instance_id: str) -> Submission | None: ...

    @abstractmethod
    def submission_xml(self, instance_id: str) -> bytes | None: ...

    @abstractmethod
    def attachment(self, instance_id: str, name: str) -> bytes | None: ...

    @abstractmethod
    def iter_submissions(self, query: SubmissionQuery | None = None) -> Iterator[Submission]:
        """Stream matching submissions in received order, without loading all into memory."""

    @abstractmethod
    def count_submissions(self, query: SubmissionQuery | None = None) -> int: ...

    def count_by_unit(self, query: SubmissionQuery | None = None) -> dict[tuple[str | None, str], int]:
        """How many matching submissions each (unit code, form id) holds (a round's coverage); engines
        count them in an index, reading no record."""
        out: dict[tuple[str | None, str], int] = {}
        for sub in self.iter_submissions(query):
            out[sub.unit_code, sub.form_id] = out.get((sub.unit_code, sub.form_id), 0) + 1
        return out

    def filed_unit_codes(self) -> set[str]:
        """Every unit code some record is filed under (current or not): hamlets a registry may not list."""
        every = SubmissionQuery(current_only=False)
        return {s.unit_code for s in self.iter_submissions(every) if s.unit_code}

    def records_print(self, query: SubmissionQuery) -> str | None:
        """A text that changes whenever a record of ``query``'s form in its units is added, changed or
        removed, whatever else the query asks: what a figure kept for the query was computed at (the
        indicator engine's kept scans). None when the store cannot tell."""
        return None

    def records_added(self, query: SubmissionQuery, since: str) -> int | None:
        """When the records of ``query``'s form in its units are those printed ``since``
        (``records_print``) untouched, plus new ones only: the mark that reads the new ones alone
        (``SubmissionQuery.touched_above``). None on any other change (an update, a review, a delete)."""
        return None

    def page_submissions(
        self,
        query: SubmissionQuery | None = None,
        *,
        limit: int,
        after: PageKey | None = None,
        descending: bool = False,
    ) -> list[Submission]:
        """One page of keyset paging: at most ``limit`` matching submissions in the order of
        ``(received_at, instance_id)`` (ascending, or descending), starting strictly after ``after`` in
        that order. Ties on ``received_at`` are broken by ``instance_id`` compared as code points (as
        Python compares strings). The cost of a page must not grow with how deep it is (APIs and the web
        list page a million rows through this), so backends resume from ``after``, never skip rows."""
        raise NotImplementedError(f"{type(self).__name__} has no page_submissions")

    @abstractmethod
    def set_review(self, instance_id: str, state: ReviewState, comment: str, actor: str) -> Submission:
        """Change a submission's review state, keeping who, when and why in its history. Becoming
        ``approved`` creates, in the same transaction, the entities its blocks held for approval."""

    def set_derived_fields(self, instance_id: str, fields: dict[str, Any], unit_code: str | None) -> None:
        """Keep the statistical fields derived from an ODK-encrypted record (``core.derive``) as its fields,
        filed under the unit its answers name; its stored XML and files stay exactly as they came. Only an
        encrypted record takes them (KeyError for any other)."""
        raise NotImplementedError(f"{type(self).__name__} cannot keep derived fields")


    def iter_facts(self, query: SubmissionQuery | None, field_paths: Sequence[str]) -> Iterator[Fact]:
        """Stream matching submissions as light ``Fact`` tuples holding only ``field_paths`` (top-level
        keys of ``Submission.fields``; a repeat's key yields its whole list of rows). Indicators scan
        millions of these: backends should override this to skip building models."""
        paths = tuple(field_paths)
        for sub in self.iter_submissions(query):
            f = sub.fields
            yield Fact(sub.instance_id, sub.round_id, sub.unit_code, sub.received_at, sub.review_state.value,
                       {p: f[p] for p in paths if p in f})

    def aggregate(
        self, query: SubmissionQuery, spans: Sequence[Span], tallies: Sequence[Tally], sealed_key: str,
        latest: Latest | None = None,
    ) -> list[Group] | None:
        """The matching records counted and summed per (unit, round, review state) by the store itself,
        ``Tally`` by ``Tally`` (only each key's latest record, with ``latest``): the indicator engine's and
        the QĐ 28 registers' counts and sums without reading each record. A
        number is what ``core.indicators.matching.number`` reads: a JSON number, or text written as a plain
        decimal ("12", "-3.5", ".5"). None when the store cannot give the exact totals (any other non-blank
        answer to a summed field, true or false included; a field name it cannot address; no grouping in
        this backend): the caller then reads the facts."""
        return None

    def rewrite_payload(self, sub: Submission, xml: bytes, attachments: dict[str, bytes]) -> None:
        """Replace a stored version's content in place, in one transaction: its fields, unit, encrypted
        flag, XML (``sub.xml_md5`` its md5) and its whole set of attachments; bytes no record names any
        more are removed (record protection: sealing existing records, a key rotation). Review state and
        history, round, collector and times stay as stored."""
        raise NotImplementedError(f"{type(self).__name__} cannot rewrite a submission")

    def purge_freed(self) -> None:  # noqa: B027 - a backend that keeps no freed bytes needs nothing
        """Make the engine drop the bytes of rows replaced by ``rewrite_payload`` (free pages, old row
        versions), so they cannot be read from the files afterwards."""

    def put_many_submissions(self, items: Iterable[tuple[Submission, bytes, dict[str, bytes]]]) -> int:
        """Bulk load (imports, benchmarks, migrations); backends may batch. Returns how many were new.
        Entity blocks are not processed here."""
        created = 0
        for sub, xml, atts in items:
            if self.save_submission(sub, xml, atts) is SaveOutcome.created:
                created += 1
        return created


class EntityQuery(BaseModel):
    """Which entities of one list: ``unit_codes`` already expanded to descendants by the caller (None:
    every unit), like ``SubmissionQuery``; an entity matches by its unit or that unit's commune."""

    list_name: str
    unit_codes: list[str] | None = None
    include_deleted: bool = False
    conflict_only: bool = False
    #: ``iter_entities``' order: (column, descending) over ``ENTITY_ORDER``, then uuid; [] = by uuid
    order_by: list[tuple[str, bool]] = []


ENTITY_ORDER = ("uuid", "created_at", "updated_at", "version")


class EntityStore(ABC):  # noqa: B024 - a read-only view (core.crypto) need not hold entities
    """ODK Entities (issue 23): lists, entities, their versions and the backlog (``core.entities`` holds
    the types; ``core.storage.entity_rules`` the processing). Lists are created when a form declaring
    them is stored (``put_form``); entities change through submissions (``save_submission(entities=)``,
    ``set_review``) or the methods below. Property values are as stored: an identifying property's value
    is a sealed ``{"#sealed": ...}`` object (``core.protection.open_entity_values`` opens them)."""

    def get_entity_list(self, name: str) -> en.EntityList | None:
        """A list by name (None: no published form declares it)."""
        raise NotImplementedError

    def list_entity_lists(self) -> list[en.EntityList]:
        """Every list, by name (none in a store that keeps no entities, e.g. the legacy format)."""
        return []

    def set_entity_list(self, name: str, *, approval_required: bool) -> en.EntityList:
        """Change a list's flag (KeyError for an unknown list). Turning approval off leaves creates
        already waiting for approval waiting (they are created when approved)."""
        raise NotImplementedError

    def get_entity(self, uuid: str) -> en.Entity | None:
        """An entity by id (deleted ones too)."""
        raise NotImplementedError

    def page_entities(self, query: EntityQuery, *, limit: int, after: str | None = None) -> list[en.Entity]:
        """Keyset paging by uuid (code point order): at most ``limit`` entities after ``after``."""
        raise NotImplementedError

    def iter_entities(self, query: EntityQuery) -> Iterator[en.Entity]:
        """Every matching entity, in ``query.order_by`` (by uuid), streamed in flat memory."""
        raise NotImplementedError

    def count_entities(self, query: EntityQuery) -> int:
        raise NotImplementedError

    def entity_versions(self, uuid: str) -> list[en.EntityVersion]:
        """An entity's history, version 1 first."""
        raise NotImplementedError

    def entity_list_state(self, query: EntityQuery) -> str:
        """A short token that changes whenever the matching entities (and the list's properties) change:
        the content key of the served CSV and of its manifest hash. Cheap: no entity is read."""
        raise NotImplementedError

    def entity_deleted(
        self, list_name: str, uuids: Sequence[str], unit_codes: list[str] | None
    ) -> dict[str, bool]:
        """The integrity answer: for each known id of the list, whether it is deleted for a phone of
        ``unit_codes`` (an entity outside those units counts as deleted); unknown ids are left out."""
        raise NotImplementedError

    def entity_backlog(self, list_name: str | None = None) -> list[en.HeldEntity]:
        """Blocks waiting (an offline update for its predecessor, a create for approval), oldest first."""
        return []

    def write_entity(
        self, list_name: str, uuid: str, *, label: str | None, data: dict[str, en.Value], actor: str,
        base_version: int | None = None, unit_code: str | None = None,
    ) -> en.Entity:
        """Create (``base_version`` None) or update an entity outside a submission (the API, an officer),
        by the same rules as a submission's block (a stale ``base_version`` gives a conflict, not a
        refusal). Identifying values in ``data`` must already be sealed. Raises ValueError when the
        rules refuse it (unknown list or entity, deleted, id taken)."""
        raise NotImplementedError

    def write_entities(
        self, blocks: Sequence[en.EntityBlock], *, actor: str, unit_code: str | None = None,
        scope: tuple[str, ...] | None = None, exact_base: bool = False, audit: AuditEvent | None = None,
    ) -> None:
        """Creates and updates outside a submission (the Central API), in one transaction with ``audit``,
        all or none, by ``entity_rules.write``: new entities filed under ``unit_code``, updates only of
        entities inside ``scope`` (None: no limit), a stale ``base_version`` refused with ``exact_base``
        (``entity_rules.StaleVersion``). Identifying values must already be sealed. Raises
        ``entity_rules.EntityFailure`` (a ValueError) when the rules refuse a block."""
        raise NotImplementedError

    def delete_entity(self, uuid: str, actor: str, deleted: bool = True, audit: AuditEvent | None = None
                      ) -> en.Entity:
        """Soft-delete (or restore, ``deleted=False``) an entity, with ``audit`` in the same transaction;
        phones drop it at their next update and the integrity endpoint reports it. KeyError for an
        unknown id."""
        raise NotImplementedError

    def resolve_entity_conflict(self, uuid: str, actor: str) -> en.Entity:
        """Mark an entity's conflict resolved (``conflict`` None); ValueError when it has none."""
        raise NotImplementedError

    def rewrite_entity_seals(self, rewrap: Callable[[bytes], bytes]) -> int:
        """Pass every sealed value and label (entities, versions, held blocks) through ``rewrap`` (a KEK
        rotation re-wraps their data keys; the ciphertext is unchanged) and store what changed; returns how
        many rows changed. The served lists' hashes do not change (their content does not)."""
        raise NotImplementedError

    def entity_seal_keys(self) -> dict[str, int]:
        """How many sealed entity values (current and past versions) each KEK id wraps."""
        raise NotImplementedError

    def import_entity(self, entity: en.Entity, versions: Sequence[en.EntityVersion]) -> bool:
        """Store an entity and its versions exactly as given (``migrate-store``); False when its id is
        already stored (a rerun), then nothing changes."""
        raise NotImplementedError

    def import_held(self, held: en.HeldEntity) -> bool:
        """Store a held block exactly as given (``migrate-store``); False when it is already stored."""
        raise NotImplementedError

    def force_entity_backlog(self, older_than: datetime) -> int:
        """Apply the offline updates held since before ``older_than`` (Central: 5 days) without waiting
        for their predecessors (entity_rules.force); returns how many were applied."""
        raise NotImplementedError


class AuditStore(ABC):
    """The append-only audit log."""

    @abstractmethod
    def append_audit(self, event: AuditEvent) -> None: ...

    @abstractmethod
    def iter_audit(self, since: datetime | None = None, actor: str | None = None) -> Iterator[AuditEvent]: ...

    def page_audit(
        self, *, limit: int, actor: str | None = None, since: datetime | None = None,
        until: datetime | None = None, before: int | None = None, after: int | None = None,
    ) -> list[tuple[int, AuditEvent]]:
        """Up to ``limit`` entries (at ``since`` or later, before ``until``), each with its place in the log
        (a key that grows with every entry): the newest before ``before`` (or the newest of all), newest
        first; or, given ``after``, the oldest after it, oldest first. A page of the log, not the log.
        This default reads the whole log; a backend with an index on the place answers from it."""
        found = [(n, e) for n, e in enumerate(self.iter_audit(since=since, actor=actor), start=1)
                 if (until is None or e.at < until) and (before is None or n < before)
                 and (after is None or n > after)]
        return found[:limit] if after is not None else found[::-1][:limit]


class KeyValueStore(ABC):
    """Small shared state with expiry (sessions, throttles), so server processes keep none."""

    @abstractmethod
    def kv_get(self, namespace: str, key: str) -> Any | None: ...

    def kv_get_many(self, namespace: str, keys: Sequence[str]) -> dict[str, Any]:
        """The live values of ``keys`` (absent or expired ones left out), in one read where the engine can."""
        out = {}
        for key in keys:
            value = self.kv_get(namespace, key)
            if value is not None:
                out[key] = value
        return out

    @abstractmethod
    def kv_put(self, namespace: str, key: str, value: Any, ttl_seconds: int | None = None) -> None: ...

    @abstractmethod
    def kv_delete(self, namespace: str, key: str) -> None: ...

    def kv_cas(
        self, namespace: str, key: str, expected: Any | None, new: Any, ttl_seconds: int | None = None
    ) -> bool:
        """Compare-and-set, atomic across threads and processes: store ``new`` (with ``ttl_seconds``)
        only if the live value is ``expected`` (None: absent or expired); False when it was not. For
        counters no two processes may both advance (e.g. a Digest nonce's ``nc``)."""
        raise NotImplementedError(f"{type(self).__name__} has no atomic kv_cas")

    def iter_durable_kv(self) -> Iterator[tuple[str, str, Any]]:
        """Every kv entry stored without an expiry time, as ``(namespace, key, value)``: the project key,
        its settings, Digest credentials, site lists. Short-lived entries (sessions, nonces, throttles)
        are left out. ``migrate-store`` copies and compares exactly these."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its kv entries")


class Store(FormStore, PeopleStore, SubmissionStore, EntityStore, AuditStore, KeyValueStore):
    """Where everything lives, one interface per concern. Backends: ``embedded`` (SQLite) and
    ``postgres``, one set of rules above both (``core.storage.rules``)."""

    def close(self) -> None:  # noqa: B027 - backends without resources need nothing
        """Release files and connections."""

