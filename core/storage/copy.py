"""Copy everything from one store to another, then prove the copy is whole: the engine of ``rasoat
migrate-store`` and of converting an earlier-format data directory (``storage.legacy``).

Copies the durable settings, forms (XML, schema, media), rounds and their snapshots, users and collectors,
submissions (XML, attachments, review history, edit chains) and the audit log; short-lived kv entries stay
behind. Re-running resumes. A destination holding anything the source does not is refused (``CopyError``)
before anything is written. Verification compares counts, every record and setting, and the md5 of every
form, media file, submission XML and attachment.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from rasoat.core import audit_actions
from rasoat.core.models import Submission
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Conflict, EntityQuery, Store, SubmissionQuery
from tqdm import tqdm


class CopyError(Problem, ValueError):
    """The destination cannot take the copy (it holds other data); nothing, or nothing more, was written."""


ALL = SubmissionQuery(current_only=False)
KINDS = ("settings", "forms", "form_media", "rounds", "snapshots", "users", "submissions", "attachments",
         "audit", "entities", "entity_versions", "entities_held")
MAX_PROBLEMS_SHOWN = 50
VERIFY_THREADS = 4  # reads wait on the database and the disk, not the CPU
VERIFY_CHUNK = 500


def _md5(data: bytes | None) -> str | None:
    return None if data is None else hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass
class Report:
    """What was copied or checked: per kind, source and destination counts, and every problem found."""

    source: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    dest: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.source == self.dest

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "source": self.source, "destination": self.dest, "problems": self.problems}


def _bar(total: int | None, desc: str, quiet: bool) -> tqdm:
    return tqdm(total=total, desc=desc, unit=" rec", file=sys.stderr, disable=quiet or None, leave=False)


# --- copy ------------------------------------------------------------------------------------


def copy_store(src: Store, dst: Store, quiet: bool = False) -> list[str]:
    """Copy every record from ``src`` to ``dst``; returns problems met on the way (missing files)."""
    problems: list[str] = []
    refused = destination_conflicts(src, dst)
    if refused:
        shown = "; ".join(refused[:5]) + (f"; … {len(refused) - 5} more" if len(refused) > 5 else "")
        raise CopyError("storage.destination_differs", shown=shown)
    for namespace, key, value in src.iter_durable_kv():
        dst.kv_put(namespace, key, value)
    _copy_forms(src, dst)
    for rnd in src.list_rounds():
        dst.put_round(rnd)
        snapshot = src.get_snapshot(rnd.id)
        if snapshot is not None:
            dst.put_snapshot(rnd.id, snapshot)
    for user in src.list_users():
        dst.put_user(user)
    _copy_submissions(src, dst, problems, quiet)
    _copy_entities(src, dst)
    _copy_audit(src, dst, problems, quiet)
    return problems


def _all_entities(store: Store) -> Iterator[Any]:
    for lst in store.list_entity_lists():
        yield from store.iter_entities(EntityQuery(list_name=lst.name, include_deleted=True))


def _copy_entities(src: Store, dst: Store) -> None:
    """Entity lists (made again by the forms copied before; their approval flag here), every entity with
    its versions as stored (sealed values stay sealed: the same key opens them), and the backlog."""
    for lst in src.list_entity_lists():
        dst.set_entity_list(lst.name, approval_required=lst.approval_required)
    for entity in list(_all_entities(src)):
        dst.import_entity(entity, src.entity_versions(entity.uuid))
    for held in src.entity_backlog():
        dst.import_held(held)


def destination_conflicts(src: Store, dst: Store) -> list[str]:
    """What the destination holds that the source does not hold identically. Empty for an empty
    destination and for a rerun after an interruption (what is there came from this source)."""
    found: list[str] = []
    src_kv = {(ns, key): value for ns, key, value in src.iter_durable_kv()}
    found += [f"setting {ns}/{key}" for ns, key, value in dst.iter_durable_kv()
              if src_kv.get((ns, key)) != value]
    src_rounds = {r.id: r for r in src.list_rounds()}
    found += [f"round {r.id}" for r in dst.list_rounds() if src_rounds.get(r.id) != r]
    src_users = {u.id: u for u in src.list_users()}
    found += [f"user {u.username}" for u in dst.list_users() if src_users.get(u.id) != u]
    src_forms = {(f.form_id, f.version): f for f in src.list_forms(all_versions=True)}
    found += [f"form {f.form_id}@{f.version}" for f in dst.list_forms(all_versions=True)
              if src_forms.get((f.form_id, f.version)) != f]
    return found


def _copy_forms(src: Store, dst: Store) -> None:
    for form in src.list_forms(all_versions=True):
        media: dict[str, bytes] = {}
        for name in form.media:  # a form may name media not uploaded yet: nothing to copy then
            data = src.form_media(form.form_id, form.version, name)
            if data is not None:
                media[name] = data
        dst.put_form(
            form, src.form_xml(form.form_id, form.version), src.form_schema(form.form_id, form.version), media
        )


def _copy_submissions(src: Store, dst: Store, problems: list[str], quiet: bool) -> None:
    """Stream submissions in received order; an edit whose replaced version comes later waits for it."""
    deferred: list[Submission] = []
    bar = _bar(src.count_submissions(ALL), "submissions", quiet)
    resuming = dst.count_submissions(ALL) > 0  # a rerun: what is there was written whole, skip it

    def item(sub: Submission) -> tuple[Submission, bytes, dict[str, bytes]]:
        xml = src.submission_xml(sub.instance_id)
        if xml is None:
            problems.append(f"submission {sub.instance_id}: XML missing in source")
            xml = b""
        atts: dict[str, bytes] = {}
        for name in sub.attachments:
            data = src.attachment(sub.instance_id, name)
            if data is None:
                problems.append(f"submission {sub.instance_id}: attachment '{name}' missing in source")
            else:
                atts[name] = data
        bar.update(1)
        # stored as current; the edit that replaced it (copied later) marks it replaced again
        return sub.model_copy(update={"current": True}), xml, atts

    def first_pass() -> Iterator[tuple[Submission, bytes, dict[str, bytes]]]:
        replaced: set[str] = set()  # versions already sent that an edit replaced (edits are rare)
        for sub in src.iter_submissions(ALL):
            if resuming and dst.get_submission(sub.instance_id) is not None:
                bar.update(1)
                continue
            if sub.deprecated_id and sub.deprecated_id not in replaced:
                deferred.append(sub)
                continue
            if not sub.current:
                replaced.add(sub.instance_id)
            yield item(sub)

    try:
        dst.put_many_submissions(first_pass())
        while deferred:
            waiting, deferred[:] = list(deferred), []
            done = {s.instance_id for s in waiting}
            ready = [s for s in waiting if s.deprecated_id not in done]
            if not ready:
                problems.extend(f"submission {s.instance_id}: edit chain has a cycle" for s in waiting)
                break
            deferred.extend(s for s in waiting if s.deprecated_id in done)
            dst.put_many_submissions(item(s) for s in ready)
    except Conflict as exc:
        raise CopyError("storage.destination_record_differs", detail=exc) from exc
    finally:
        bar.close()


def _copy_audit(src: Store, dst: Store, problems: list[str], quiet: bool) -> None:
    """Append the audit log; lines the destination already holds (a resumed run) must match, then skip."""
    events = src.iter_audit()
    for n, have in enumerate(dst.iter_audit(), start=1):  # read to the end before appending
        if next(events, None) != have:
            problems.append(f"audit line {n}: destination already holds a different line; nothing appended")
            return
    bar = _bar(None, "audit", quiet)
    try:
        with audit_actions.copying():  # old lines keep their actions, labelled or not
            for event in events:
                dst.append_audit(event)
                bar.update(1)
    finally:
        bar.close()


# --- verify ----------------------------------------------------------------------------------


def verify_stores(src: Store, dst: Store, quiet: bool = False) -> Report:
    """Compare every record and the md5 of every stored byte; counts per kind and a list of problems."""
    r = Report()
    _verify_settings(src, dst, r)
    _verify_forms(src, dst, r)
    _verify_rounds_users(src, dst, r)
    _verify_submissions(src, dst, r, quiet)
    _verify_entities(src, dst, r)
    _verify_audit(src, dst, r)
    return r


def _verify_entities(src: Store, dst: Store, r: Report) -> None:
    a = {e.uuid: e for e in _all_entities(src)}
    b = {e.uuid: e for e in _all_entities(dst)}
    r.source["entities"], r.dest["entities"] = len(a), len(b)
    for uuid in sorted(a.keys() | b.keys()):
        if uuid not in b or uuid not in a:
            side = "missing in destination" if uuid not in b else "only in destination"
            r.problems.append(f"entity {uuid}: {side}")
            continue
        va, vb = src.entity_versions(uuid), dst.entity_versions(uuid)
        r.source["entity_versions"] += len(va)
        r.dest["entity_versions"] += len(vb)
        if a[uuid] != b[uuid] or va != vb:
            r.problems.append(f"entity {uuid}: differs")
    ha = [(h.reason, h.instance_id, h.uuid, h.block) for h in src.entity_backlog()]
    hb = [(h.reason, h.instance_id, h.uuid, h.block) for h in dst.entity_backlog()]
    r.source["entities_held"], r.dest["entities_held"] = len(ha), len(hb)
    if ha != hb:
        r.problems.append("entity backlog: differs")


def _verify_settings(src: Store, dst: Store, r: Report) -> None:
    a = {(ns, key): value for ns, key, value in src.iter_durable_kv()}
    b = {(ns, key): value for ns, key, value in dst.iter_durable_kv()}
    r.source["settings"], r.dest["settings"] = len(a), len(b)
    for ns, key in sorted(a.keys() | b.keys()):
        if a.get((ns, key)) != b.get((ns, key)):
            side = "missing in destination" if (ns, key) not in b else (
                "only in destination" if (ns, key) not in a else "differs")
            r.problems.append(f"setting {ns}/{key}: {side}")


def _verify_forms(src: Store, dst: Store, r: Report) -> None:
    dst_forms = {(f.form_id, f.version): f for f in dst.list_forms(all_versions=True)}
    r.dest["forms"] = len(dst_forms)
    for form in src.list_forms(all_versions=True):
        r.source["forms"] += 1
        key = (form.form_id, form.version)
        label = f"form {form.form_id}@{form.version}"
        other = dst_forms.get(key)
        if other is None:
            r.problems.append(f"{label}: missing in destination")
            continue
        if other != form:
            r.problems.append(f"{label}: metadata differs")
        if _md5(src.form_xml(*key)) != _md5(dst.form_xml(*key)):
            r.problems.append(f"{label}: XML differs")
        if src.form_schema(*key) != dst.form_schema(*key):
            r.problems.append(f"{label}: schema differs")
        for name in form.media:
            a, b = src.form_media(*key, name), dst.form_media(*key, name)
            r.source["form_media"] += a is not None
            r.dest["form_media"] += b is not None
            if _md5(a) != _md5(b):
                r.problems.append(f"{label}: media '{name}' differs")


def _verify_rounds_users(src: Store, dst: Store, r: Report) -> None:
    dst_rounds = {x.id: x for x in dst.list_rounds()}
    r.dest["rounds"] = len(dst_rounds)
    for rnd in src.list_rounds():
        r.source["rounds"] += 1
        if dst_rounds.get(rnd.id) != rnd:
            r.problems.append(f"round {rnd.id}: missing or different in destination")
        snap, other = src.get_snapshot(rnd.id), dst.get_snapshot(rnd.id)
        r.source["snapshots"] += snap is not None
        r.dest["snapshots"] += other is not None
        if snap != other:
            r.problems.append(f"round {rnd.id}: snapshot differs")
    dst_users = {u.id: u for u in dst.list_users()}
    r.dest["users"] = len(dst_users)
    for user in src.list_users():
        r.source["users"] += 1
        if dst_users.get(user.id) != user:
            r.problems.append(f"user {user.username}: missing or different in destination")


def _comparable(sub: Submission) -> Submission:
    return sub.model_copy(update={"attachments": sorted(sub.attachments)})


def _check_submission(src: Store, dst: Store, sub: Submission) -> tuple[int, int, list[str]]:
    """(source attachments, destination attachments, problems) for one submission."""
    iid = sub.instance_id
    other = dst.get_submission(iid)
    if other is None:
        return len(sub.attachments), 0, [f"submission {iid}: missing in destination"]
    problems = []
    if _comparable(other) != _comparable(sub):
        problems.append(f"submission {iid}: record differs")
    if _md5(src.submission_xml(iid)) != _md5(dst.submission_xml(iid)):
        problems.append(f"submission {iid}: XML md5 differs")
    for name in sorted(set(sub.attachments) | set(other.attachments)):
        a, b = _md5(src.attachment(iid, name)), _md5(dst.attachment(iid, name))
        if a != b:
            problems.append(f"submission {iid}: attachment '{name}' md5 {a} ≠ {b}")
    return len(sub.attachments), len(other.attachments), problems


def _verify_submissions(src: Store, dst: Store, r: Report, quiet: bool) -> None:
    """Each submission is checked by point reads on both sides; a few threads overlap the waits."""
    r.dest["submissions"] = dst.count_submissions(ALL)
    bar = _bar(src.count_submissions(ALL), "verify", quiet)
    try:
        with ThreadPoolExecutor(max_workers=VERIFY_THREADS) as pool:
            for chunk in _chunks(src.iter_submissions(ALL), VERIFY_CHUNK):  # bounded memory
                for n_src, n_dst, problems in pool.map(lambda s: _check_submission(src, dst, s), chunk):
                    r.source["submissions"] += 1
                    r.source["attachments"] += n_src
                    r.dest["attachments"] += n_dst
                    r.problems.extend(problems)
                bar.update(len(chunk))
    finally:
        bar.close()


def _chunks(items: Iterator[Submission], size: int) -> Iterator[list[Submission]]:
    chunk: list[Submission] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _verify_audit(src: Store, dst: Store, r: Report) -> None:
    for n, (a, b) in enumerate(zip_longest(src.iter_audit(), dst.iter_audit()), start=1):
        r.source["audit"] += a is not None
        r.dest["audit"] += b is not None
        if a is not None and b is not None and a != b:
            r.problems.append(f"audit line {n}: differs")


# --- command ---------------------------------------------------------------------------------
