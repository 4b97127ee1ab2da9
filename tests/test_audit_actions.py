"""Every audit action has a label in Vietnamese and English (core/audit_actions.py), shown by the audit
page, its Excel export and the round history. The test suite runs with RASOAT_STRICT_AUDIT=1 (conftest),
so any test whose code writes an action without a label fails where it is written: the table covers what
the code base writes without a grep. Here: the table itself, and the refusal, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasoat.core import audit_actions
from rasoat.core.audit import HEADERS, event_row
from rasoat.core.models import AuditEvent
from rasoat.core.rounds import TRANSITIONS
from rasoat.core.storage.opening import open_store


def test_every_action_has_a_label_in_each_language() -> None:
    for code, (vi, en) in audit_actions.ACTIONS.items():
        assert code == code.strip().lower() and " " not in code, code
        assert vi.strip() and en.strip() and vi != en, code
        assert not vi.isascii(), f"{code}: '{vi}' has no Vietnamese letter"  # written with its diacritics
        assert "/" not in vi and "/" not in en, code  # one language per label
    assert len({vi for vi, _ in audit_actions.ACTIONS.values()}) == len(audit_actions.ACTIONS)


def test_each_round_step_is_labelled() -> None:
    """Round actions are written as ``round.<step>``: every state change a round can make has a label."""
    for step in TRANSITIONS.values():
        assert f"round.{step}" in audit_actions.ACTIONS


def test_labels_in_the_page_language_and_both_in_files() -> None:
    assert audit_actions.label("round.open", "vi") == "Mở đợt"
    assert audit_actions.label("round.open", "en") == "Round opened"
    assert audit_actions.label("old.retired_action", "vi") == "old.retired_action"  # an older line
    row = dict(zip(HEADERS, event_row(AuditEvent(actor="lan", action="key.unlock")), strict=True))
    assert row["Hành động / Action"] == "Mở khoá của dự án / Project key unlocked"
    assert row["Mã hành động / Action code"] == "key.unlock"


def test_an_unlabelled_action_is_refused_under_the_test_suite(tmp_path: Path, backend_url: str | None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(tmp_path / "data", backend_url)
    try:
        with pytest.raises(audit_actions.UnlabelledAction, match="chưa có nhãn.*has no label"):
            store.append_audit(AuditEvent(actor="lan", action="round.teleport"))
        assert list(store.iter_audit()) == []
        monkeypatch.delenv(audit_actions.STRICT_ENV)  # a running server: written, with a warning
        store.append_audit(AuditEvent(actor="lan", action="round.teleport"))
        assert [e.action for e in store.iter_audit()] == ["round.teleport"]
    finally:
        store.close()


def test_lines_copied_from_another_store_keep_their_actions(tmp_path: Path, backend_url: str | None) -> None:
    """A migration copies the log as it was written, by an older rasoat too (core.storage.copy)."""
    from rasoat.core.storage.copy import copy_store

    src = open_store(tmp_path / "old", None)
    dst = open_store(tmp_path / "new", backend_url)
    try:
        with audit_actions.copying():
            src.append_audit(AuditEvent(actor="lan", action="act0"))  # as an older rasoat wrote it
        copy_store(src, dst, quiet=True)
        assert [e.action for e in dst.iter_audit()] == ["act0"]
        with pytest.raises(audit_actions.UnlabelledAction):  # copying ended: new lines are checked again
            dst.append_audit(AuditEvent(actor="lan", action="act1"))
    finally:
        src.close()
        dst.close()
