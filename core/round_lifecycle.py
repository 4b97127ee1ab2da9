"""A round's lifecycle: draft → open → closed → archived, and reopening a closed round.

Opening checks the hamlet lists and rolls a census's persons forward (``core.rollforward``); closing
freezes the snapshot of counts that indicators compare year on year, and is refused while records of the
round cannot be read (ODK-encrypted, statistical fields not derived: ``core.derive``) unless the officer
acknowledges that the frozen figures will say "unknown". Every move is recorded in the round's history
and the audit log; reopening needs a reason. Above ``core.rounds`` and the census register, which
both stay free of these steps (no import cycle between them).
"""

from __future__ import annotations

from typing import Any

from rasoat.core.crypto import encrypted_counts
from rasoat.core.indicators.engine import freeze_snapshot
from rasoat.core.models import Round, RoundState, utcnow
from rasoat.core.review import counted_query
from rasoat.core.rollforward import census_counts, prepare_rollforward, roster_to_entities, round_communes
from rasoat.core.rounds import TRANSITIONS, RoundError, get_round, record, scopes_overlap
from rasoat.core.storage.base import Store
from rasoat.core.unit_lists import list_status, units_for


def _refuse(rnd: Round, target: RoundState) -> RoundError:
    return RoundError("round.bad_transition", state=rnd.state.value, target=target.value)


def _transition(
    store: Store, round_id: str, target: RoundState, action: str, actor: str, **details: Any
) -> Round:
    rnd = get_round(store, round_id)
    allowed = TRANSITIONS.get((rnd.state, target))
    if allowed is None:
        raise _refuse(rnd, target)
    if allowed != action:
        if allowed == "reopen":
            raise RoundError("round.closed_reopen_first", round=rnd.id)
        raise _refuse(rnd, target)
    before = rnd.state
    if target is RoundState.open:
        _check_no_clash(store, rnd)
    rnd.state = target
    record(store, rnd, action, actor, **{"from": before.value, "to": target.value, **details})
    store.put_round(rnd)
    return rnd


def _check_no_clash(store: Store, rnd: Round) -> None:
    """Two open rounds must not share a form over the same units, or submissions would be ambiguous."""
    for other in store.list_rounds():
        if other.id == rnd.id or other.state is not RoundState.open:
            continue
        shared = sorted(set(other.form_ids) & set(rnd.form_ids))
        if shared and scopes_overlap(other.unit_codes, rnd.unit_codes):
            raise RoundError("round.open_elsewhere", other=other.id, shared=', '.join(shared))


def open_round(
    store: Store, round_id: str, actor: str = "cli", allow_missing_hamlets: bool = False
) -> Round:
    """Open a draft round: its forms appear on its collectors' phones. A census rolls last year forward.

    A round with a form whose hamlet question is required, over a commune with no hamlet list, is refused
    unless ``allow_missing_hamlets`` (the phones would offer only "whole commune" there). The unit lists
    the round opens with are recorded in its history: per register and commune, the loaded version (or the
    plugin's list, or none) and how many rows (``core.unit_lists.list_status``)."""
    rnd = get_round(store, round_id)
    lists = hamlet_lists(store, rnd) if rnd.state is RoundState.draft else {}
    missing = sorted(c for c, (n, _) in lists.items() if n == 0)
    if missing and not allow_missing_hamlets and hamlet_required(store, rnd):
        names = ", ".join(f"{c} {units_for(store).require(c).name}" for c in missing[:10])
        more = f" (+{len(missing) - 10})" if len(missing) > 10 else ""
        raise RoundError("round.hamlets_missing", count=len(missing), names=names, more=more)
    used = list_status(store, round_communes(rnd)) if rnd.state is RoundState.draft else {}
    rnd = _transition(store, round_id, RoundState.open, "open", actor, unit_lists=used)
    return _roll_forward(store, rnd, actor)


def hamlet_lists(store: Store, rnd: Round) -> dict[str, tuple[int, str]]:
    """Per commune of the round: how many hamlets the unit registry lists, and where they come from."""
    units = units_for(store)
    out: dict[str, tuple[int, str]] = {}
    for commune in round_communes(rnd):
        hamlets = units.hamlets(commune)
        sources = sorted({h.source for h in hamlets if h.source})
        out[commune] = (len(hamlets), ", ".join(sources) or "—")
    return out


def hamlet_required(store: Store, rnd: Round) -> bool:
    """Whether one of the round's forms requires a hamlet answer (its latest published version)."""
    for form_id in rnd.form_ids:
        form = store.get_form(form_id)
        if form is None:
            continue
        schema = store.form_schema(form_id, form.version)
        hamlet = next((c for c in schema.get("children", []) if c.get("name") == "hamlet"), None)
        required = (hamlet or {}).get("bind", {}).get("required")
        if required not in (None, "", "no", "false()"):
            return True
    return False


def close_round(
    store: Store, round_id: str, actor: str = "cli", acknowledge_encrypted: bool = False
) -> Round:
    """Close an open round and freeze its snapshot; its forms leave the phones.

    Refused while counted records of the round cannot be read (``unread_records``), unless
    ``acknowledge_encrypted``: the count is then recorded in the round's history and the snapshot."""
    rnd = get_round(store, round_id)
    if rnd.state is not RoundState.open:
        raise _refuse(rnd, RoundState.closed)
    missed = unread_records(store, rnd)
    if missed and not acknowledge_encrypted:
        raise RoundError("round.encrypted_uncounted", round=rnd.id, missed=missed)
    snapshot = freeze(store, rnd)
    extra: dict[str, Any] = {}
    if missed:
        snapshot["lifecycle"]["encrypted_uncounted_acknowledged"] = missed
        extra["encrypted_uncounted_acknowledged"] = missed
    store.put_snapshot(rnd.id, snapshot)
    return _transition(store, round_id, RoundState.closed, "close", actor, snapshot_at=snapshot["frozen_at"],
                       **extra)


def unread_records(store: Store, rnd: Round) -> int:
    """Counted records of the round the server cannot read (ODK-encrypted, not derived)."""

    return sum(encrypted_counts(store, counted_query(rnd)).values())


def archive_round(store: Store, round_id: str, actor: str = "cli") -> Round:
    return _transition(store, round_id, RoundState.archived, "archive", actor)


def reopen_round(store: Store, round_id: str, reason: str, actor: str = "cli") -> Round:
    """Reopen a closed round; the reason goes to the history and the audit log."""
    if not (reason or "").strip():
        raise RoundError("round.reopen_reason")
    rnd = _transition(store, round_id, RoundState.open, "reopen", actor, reason=reason.strip())
    return _roll_forward(store, rnd, actor)


def _roll_forward(store: Store, rnd: Round, actor: str) -> Round:
    """A census round that opens gets last year's persons as its roster media; the count is recorded."""
    if rnd.kind != "census":
        return rnd
    persons = prepare_rollforward(store, rnd)
    entities = roster_to_entities(store, rnd)  # next year's F1 reads the persons list, not the roster
    record(store, rnd, "rollforward", actor, persons=persons, entities=entities)
    store.put_round(rnd)
    return rnd


def set_state(
    store: Store,
    round_id: str,
    target: RoundState | str,
    actor: str = "cli",
    reason: str = "",
    allow_missing_hamlets: bool = False,
    acknowledge_encrypted: bool = False,
) -> Round:
    """One entry point by target state (closed → open still needs a reason)."""
    rnd = get_round(store, round_id)
    if target not in set(RoundState):  # a state no round has: the same refusal as a move not allowed
        raise RoundError("round.bad_transition", state=rnd.state.value, target=str(target))
    target = RoundState(target)
    if target is RoundState.open and rnd.state is RoundState.closed:
        return reopen_round(store, round_id, reason, actor)
    if target is RoundState.open:
        return open_round(store, round_id, actor, allow_missing_hamlets)
    if target is RoundState.closed:
        return close_round(store, round_id, actor, acknowledge_encrypted)
    if target is RoundState.archived:
        return archive_round(store, round_id, actor)
    raise _refuse(rnd, target)


# --- snapshot ---------------------------------------------------------------------------------


def freeze(store: Store, rnd: Round) -> dict[str, Any]:
    """The snapshot stored when a round closes.

    Shape: the indicators engine's ``freeze_snapshot(store, round)`` at the top level, plus
    ``lifecycle``: counted submissions per form, per unit and per commune, and for a census the person
    counts with the previous census's frozen counts beside them.
    """
    frozen_at = utcnow().isoformat()
    forms: dict[str, Any] = {}
    for form_id in rnd.form_ids:
        by_unit: dict[str, int] = {}
        by_commune: dict[str, int] = {}
        total = 0
        for sub in store.iter_submissions(counted_query(rnd, form_id=form_id)):
            total += 1
            unit = sub.unit_code or ""
            by_unit[unit] = by_unit.get(unit, 0) + 1
            commune = unit.split("-", 1)[0]
            by_commune[commune] = by_commune.get(commune, 0) + 1
        forms[form_id] = {"total": total, "by_unit": by_unit, "by_commune": by_commune}
    lifecycle: dict[str, Any] = {
        "round_id": rnd.id,
        "name": rnd.name,
        "kind": rnd.kind,
        "period": rnd.period,
        "units": rnd.unit_codes,
        "counted_states": [s.value for s in rnd.counted_states],
        "frozen_at": frozen_at,
        "forms": forms,
    }
    if rnd.kind == "census":
        lifecycle["persons"] = census_counts(store, rnd)
    snapshot = freeze_snapshot(store, rnd)
    snapshot["lifecycle"] = lifecycle
    snapshot.setdefault("round_id", rnd.id)
    snapshot.setdefault("frozen_at", frozen_at)
    return snapshot
