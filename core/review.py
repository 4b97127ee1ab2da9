"""Reviewing submissions, and which review states a round counts in its indicators.

An officer moves a submission between received, has issues, approved, rejected and edited, with a
comment; the store keeps who, when and why in the submission's history, and the audit log gets a
line too. A round's rule (``Round.counted_states``, default everything but rejected) decides what
indicators count: ``counted_query`` is the query the indicators engine and snapshots use.

The review queue ("Cần duyệt") is what waits for an officer across forms and rounds: new records and
edits of earlier ones (``TO_REVIEW``; a record marked has issues waits for its collector, and comes back
as an edit), cut to the officer's units by ``core.scope``, oldest first, paged in the store by keyset.
"""

from __future__ import annotations

from typing import Any

from rasoat.core import scope
from rasoat.core.models import AuditEvent, ReviewState, Round, Submission, User
from rasoat.core.problems import Problem
from rasoat.core.storage.base import PageKey, Store, SubmissionQuery

# A reason is required where the collector needs to know what to fix or why it was dropped.
COMMENT_REQUIRED: frozenset[ReviewState] = frozenset({ReviewState.has_issues, ReviewState.rejected})
TO_REVIEW: tuple[ReviewState, ...] = (ReviewState.received, ReviewState.edited)


class ReviewError(Problem, ValueError):
    """A review the user asked for cannot be made; one bilingual line."""


def parse_state(value: str | ReviewState) -> ReviewState:
    try:
        return ReviewState(value)
    except ValueError as exc:
        raise ReviewError("review.bad_state", value=value, choices=', '.join(ReviewState)) from exc


def review_submission(
    store: Store, instance_id: str, state: ReviewState | str, comment: str = "", actor: str = "cli"
) -> Submission:
    """Set a submission's review state (audited). has_issues and rejected need a comment."""
    state = parse_state(state)
    comment = (comment or "").strip()
    sub = store.get_submission(instance_id)
    if sub is None:
        raise ReviewError("review.no_submission", instance_id=instance_id)
    if state in COMMENT_REQUIRED and not comment:
        raise ReviewError("review.comment_needed", state=state.value)
    before = sub.review_state
    updated = store.set_review(instance_id, state, comment, actor)
    store.append_audit(
        AuditEvent(
            actor=actor,
            action="submission.review",
            target=instance_id,
            details={
                "form_id": sub.form_id,
                "round_id": sub.round_id,
                "from": before.value,
                "to": state.value,
                "comment": comment,
            },
        )
    )
    return updated


def counts_in(rnd: Round, state: ReviewState) -> bool:
    return state in rnd.counted_states


def counted_query(rnd: Round, **filters: Any) -> SubmissionQuery:
    """Submissions of the round that count by its rule; extra ``filters`` are SubmissionQuery fields."""
    states = list(rnd.counted_states)
    narrower = filters.pop("review_states", None)
    if narrower is not None:  # a caller may narrow the rule, never widen it
        states = [s for s in states if s in set(narrower)]
    return SubmissionQuery(round_id=rnd.id, review_states=states, **filters)


# --- the review queue ----------------------------------------------------------------------------


def queue_query(user: User | None) -> SubmissionQuery:
    """Every record waiting for review that ``user`` may see, whatever its form or round."""
    return scope.narrow(SubmissionQuery(review_states=list(TO_REVIEW)), user)


def queue_page(store: Store, user: User | None, limit: int, after: PageKey | None = None) -> list[Submission]:
    """Up to ``limit`` records of the queue, oldest first, strictly after ``after`` (keyset: the cost of a
    page does not grow with how deep it is)."""
    return store.page_submissions(queue_query(user), limit=limit, after=after)


def queue_count(store: Store, user: User | None) -> int:
    return store.count_submissions(queue_query(user))


def next_in_queue(store: Store, user: User | None, after: PageKey) -> Submission | None:
    """The record to review after the one at ``after``: the next one received after it, else the oldest
    still waiting (one skipped earlier), else None (the queue is empty)."""
    for start in (after, None):
        found = queue_page(store, user, 1, start)
        if found:
            return found[0]
    return None
