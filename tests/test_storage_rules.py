"""The duplicate, conflict and edit rules are decided once (core.storage.rules) above both engines: the same
sequence of writes sent to SQLite and to PostgreSQL gets the same answer, with the same message, at
every step, and the state left behind is the same."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from pg_support import fresh_schema
from rasoat.core.models import FormVersion, ReviewState, Role, User
from rasoat.core.problems import Problem
from rasoat.core.storage.base import Conflict, Store, SubmissionQuery
from rasoat.core.storage.embedded import EmbeddedStore
from rasoat.core.storage.postgres import PostgresStore
from rasoat.core.storage.rules import Messages
from storage_contract import T0, make_sub

Step = tuple[str, Callable[[Store], Any]]


def _save(iid: str, atts: dict[str, bytes] | None = None, **kw: Any) -> Callable[[Store], Any]:
    def run(store: Store) -> Any:
        sub, xml = make_sub(iid, **kw)
        return store.save_submission(sub, xml, atts or {}).value
    return run


def _form(xml: bytes) -> Callable[[Store], Any]:
    form = FormVersion(form_id="f2_pledge", version="1", title="Cam kết", md5=hashlib.md5(xml).hexdigest(),
                       published_at=T0)
    return lambda store: store.put_form(form, xml, {"name": "data"}, {})


def _user(uid: str, name: str, token: str) -> Callable[[Store], Any]:
    return lambda store: store.put_user(User(id=uid, username=name, role=Role.collector, token_hash=token))


SEQUENCE: list[Step] = [
    ("new", _save("uuid:a", {"1.jpg": b"one"})),
    ("identical resend, a new file", _save("uuid:a", {"1.jpg": b"other bytes", "2.jpg": b"two"})),
    ("same id, other XML", _save("uuid:a", body="<x/>")),
    ("edit of an unknown version", _save("uuid:b", deprecated_id="uuid:nothing")),
    ("edit", _save("uuid:a2", {"3.jpg": b"three"}, body="<v2/>", deprecated_id="uuid:a",
                   received_at=T0 + timedelta(minutes=1))),
    ("resend of the replaced version", _save("uuid:a")),
    ("resend of the edit", _save("uuid:a2", {"4.jpg": b"four"}, body="<v2/>", deprecated_id="uuid:a",
                                 received_at=T0 + timedelta(minutes=1))),
    ("second edit of the replaced version", _save("uuid:a3", body="<v3/>", deprecated_id="uuid:a")),
    ("edit whose instanceID is taken", _save("uuid:a", deprecated_id="uuid:a2")),
    ("edit of the edit", _save("uuid:a3", body="<v3/>", deprecated_id="uuid:a2",
                               received_at=T0 + timedelta(minutes=2))),
    ("resend of the first edit after it was edited", _save("uuid:a2", body="<v2/>", deprecated_id="uuid:a",
                                                           received_at=T0 + timedelta(minutes=1))),
    ("late file for an unknown submission", lambda s: s.add_attachment("uuid:none", "x.jpg", b"x")),
    ("late file", lambda s: s.add_attachment("uuid:a3", "late.jpg", b"late")),
    ("late file under a stored name", lambda s: s.add_attachment("uuid:a3", "late.jpg", b"changed")),
    ("unsafe file name", _save("uuid:c", {"../x.jpg": b"x"})),
    ("review of an unknown submission", lambda s: s.set_review("uuid:none", ReviewState.approved, "", "lan")),
    ("form", _form(b"<h:html>1</h:html>")),
    ("same form again", _form(b"<h:html>1</h:html>")),
    ("same version, other XForm", _form(b"<h:html>2</h:html>")),
    ("user", _user("u1", "lan", "ab" * 32)),
    ("name taken", _user("u2", "lan", "cd" * 32)),
    ("token taken", _user("u3", "minh", "ab" * 32)),
]


def _refused(code: str, **params: str) -> tuple[str, str]:
    """A refusal with ``code`` as ``_answers`` records it: the Conflict and its message."""
    return "Conflict", Conflict(code, **params).message


def _answers(store: Store) -> list[tuple[str, str, str]]:
    out = []
    for label, step in SEQUENCE:
        try:
            out.append((label, "ok", str(step(store))))
        except (Conflict, KeyError, ValueError) as exc:
            text = exc.message if isinstance(exc, Problem) else str(exc.args[0] if exc.args else exc)
            out.append((label, type(exc).__name__, text))
    return out


def _state(store: Store) -> list[tuple]:
    subs = store.iter_submissions(SubmissionQuery(current_only=False))
    return [(s.instance_id, s.current, s.review_state.value, s.deprecated_id, sorted(s.attachments),
             {a: store.attachment(s.instance_id, a) for a in s.attachments}) for s in subs]


def test_both_engines_give_every_answer_and_message_alike(tmp_path: Path) -> None:
    sqlite = EmbeddedStore(tmp_path / "embedded")
    with fresh_schema() as (url, _schema):
        pg = PostgresStore(url, tmp_path / "pgfiles")
        try:
            on_sqlite, on_pg = _answers(sqlite), _answers(pg)
            assert on_sqlite == on_pg
            assert _state(sqlite) == _state(pg)
        finally:
            pg.close()
            sqlite.close()
    got = {label: (kind, text) for label, kind, text in on_sqlite}
    assert got["new"] == ("ok", "created")
    assert got["identical resend, a new file"] == ("ok", "duplicate")
    assert got["same id, other XML"] == _refused("storage.different_content", instance_id="uuid:a")
    assert got["edit of an unknown version"] == _refused(
        "storage.edit_of_unknown", instance_id="uuid:nothing"
    )
    assert got["edit"] == ("ok", "created")
    assert got["resend of the replaced version"] == _refused("storage.replaced", instance_id="uuid:a")
    assert got["resend of the edit"] == ("ok", "duplicate")
    assert got["second edit of the replaced version"] == _refused(
        "storage.edit_of_replaced", instance_id="uuid:a"
    )
    assert got["edit whose instanceID is taken"] == _refused("storage.edit_id_taken", instance_id="uuid:a")
    assert got["edit of the edit"] == ("ok", "created")
    assert got["resend of the first edit after it was edited"] == _refused(
        "storage.replaced", instance_id="uuid:a2"
    )
    assert got["late file for an unknown submission"] == ("KeyError", Messages.no_submission("uuid:none"))
    assert got["late file"] == got["late file under a stored name"] == ("ok", "None")
    assert got["unsafe file name"][0] == "ValueError"
    assert got["same form again"] == ("ok", "None")
    assert got["same version, other XForm"] == _refused(
        "storage.form_version_taken", form="f2_pledge", version="1"
    )
    assert got["name taken"] == _refused("storage.username_taken", username="lan")
    assert got["token taken"] == _refused("storage.token_taken")
    # every refusal a collector can meet reads Vietnamese first, then English
    for _label, kind, text in on_sqlite:
        if kind == "Conflict":
            vi, _, en = text.partition(" / ")
            assert vi and en and vi != en, text
    with EmbeddedStore(tmp_path / "embedded") as again:
        state = {row[0]: row for row in _state(again)}
    assert state["uuid:a"][1:4] == (False, "received", None)
    assert state["uuid:a"][5] == {"1.jpg": b"one", "2.jpg": b"two"}  # a stored name keeps its bytes
    assert state["uuid:a2"][1:5] == (False, "edited", "uuid:a", ["3.jpg", "4.jpg"])
    assert state["uuid:a3"][1:3] == (True, "edited") and state["uuid:a3"][5] == {"late.jpg": b"late"}
