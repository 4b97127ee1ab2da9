"""Counting an officer's records reads an index, not the rows (issue 21 item 8: pages at 100,000 records).

The review queue's badge is on every officer page, and every list shows its total: with the rows'
``fields`` JSON read for each one, a province's count took most of a second at 100,000 submissions. The
``submissions_counts`` index holds unit, form, review state, ``current`` and round, so those counts are
answered from it alone (the plan, not a time: no timed tests)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from rasoat.core.models import ReviewState, Submission
from rasoat.core.review import TO_REVIEW
from rasoat.core.storage.base import PageKey, SubmissionQuery
from rasoat.core.storage.opening import open_store
from rasoat.core.storage.sql import SqlStore
from rasoat.core.storage.sql_kept import prints_statement

UNITS = [f"{c:05d}" for c in range(5560, 5590)]


def filled(store: SqlStore) -> SqlStore:
    """2,000 records in 30 communes, three forms; then the statistics a bulk load leaves behind."""
    def items():
        for n in range(2000):
            xml = f"<data id='f'><n>{n}</n></data>".encode()
            form = ("f2_pledge", "f1_person", "f3")[n % 3]
            sub = Submission(instance_id=f"uuid:count-{n:05d}", form_id=form,
                             form_version="1", unit_code=UNITS[n % len(UNITS)],
                             round_id="r-1" if n % 2 else None, xml_md5=hashlib.md5(xml).hexdigest(),
                             fields={"n": str(n), "pad": "x" * 200})
            yield sub, xml, {}

    store.put_many_submissions(items())
    if store.dialect.mark != "?":
        with store._cx() as cx:
            cx.execute("VACUUM ANALYZE submissions")  # what autovacuum does after a bulk load
    return store


@pytest.fixture
def store(tmp_path: Path, backend_url: str | None):
    store = open_store(tmp_path / "data", backend_url)
    yield filled(store)
    store.close()


def plan(
    store: SqlStore, query: SubmissionQuery, index: str = "submissions_counts", what: str = "count(*)",
    tail: str = "",
) -> str:
    """The plan of ``SELECT what … tail`` over ``query``'s rows (by default its count); on PostgreSQL with
    every other index but ``index`` set aside."""
    where, params = store._where(query)
    return plan_of(store, store._q(f"SELECT {what} FROM submissions{where}{tail}"), params, index)


def plan_of(store: SqlStore, stmt: str, params: list, index: str) -> str:
    """``plan``'s answer for a statement as written."""
    if store.dialect.mark == "?":
        with store._cx() as cx:
            return " ".join(str(r[-1]) for r in cx.execute("EXPLAIN QUERY PLAN " + stmt, params).fetchall())
    found: list[str] = []
    try:
        with store._tx() as cx:
            # 2,000 rows are a table PostgreSQL may rightly read whole, or through another index and the
            # rows; at 100,000 it takes this index alone by itself (benchmarks/README.md). Here: with the
            # other indexes set aside (the transaction is rolled back), is it answered from the index alone?
            names = [r[0] for r in cx.execute(store._q(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = 'submissions'::regclass AND NOT i.indisunique"
                " AND c.relname <> ?"), (index,)).fetchall()]
            for name in names:
                cx.execute(f'DROP INDEX "{name}"')
            cx.execute("SET LOCAL enable_seqscan = off")
            cx.execute("SET LOCAL enable_bitmapscan = off")
            found += [str(r[0]) for r in cx.execute("EXPLAIN " + stmt, params).fetchall()]
            raise RolledBack
    except RolledBack:
        pass
    return " ".join(found)


class RolledBack(Exception):
    pass


@pytest.mark.parametrize("query", [
    SubmissionQuery(unit_codes=UNITS, review_states=list(TO_REVIEW)),  # the review queue of a province
    SubmissionQuery(form_id="f2_pledge", unit_codes=UNITS[:3]),  # a list's total
    SubmissionQuery(round_id="r-1", unit_codes=UNITS[:1], review_states=[ReviewState.approved]),
])
def test_a_scoped_count_reads_only_the_counts_index(store: SqlStore, query: SubmissionQuery) -> None:
    text = plan(store, query)
    assert store.count_submissions(query) == sum(1 for _ in store.iter_submissions(query))
    if store.dialect.mark == "?":
        assert "COVERING INDEX submissions_counts" in text, text
    else:
        assert "Index Only Scan using submissions_counts" in text, text


def test_a_round_coverage_counts_per_unit_and_form_from_the_counts_index(store: SqlStore) -> None:
    """The round page's coverage (core.progress): how many counted records each unit holds per form."""
    query = SubmissionQuery(round_id="r-1", review_states=[ReviewState.received, ReviewState.approved])
    text = plan(store, query, what="unit_code, form_id, count(*)", tail=" GROUP BY unit_code, form_id")
    expected: dict = {}
    for sub in store.iter_submissions(query):
        expected[sub.unit_code, sub.form_id] = expected.get((sub.unit_code, sub.form_id), 0) + 1
    assert expected and store.count_by_unit(query) == expected
    if store.dialect.mark == "?":
        assert "COVERING INDEX submissions_counts" in text and "TEMP B-TREE" not in text, text
    else:
        assert "Index Only Scan using submissions_counts" in text, text



def test_a_province_review_queue_walks_the_time_index_and_pages_the_same_records(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most of many units' records wait for review (a province's queue, oldest first): SQLite walks the
    receipt-time index instead of finding every one by unit and sorting them all (0.2-0.5 s at 100,000);
    a queue with little in it is still found by unit; either way every page holds the same records."""
    queue = SubmissionQuery(unit_codes=UNITS, review_states=list(TO_REVIEW))
    if store.dialect.pages_by_count:
        assert store._walk_by_time(queue, 50)
        assert not store._walk_by_time(queue.model_copy(update={"review_states": [ReviewState.approved]}), 50)
        assert not store._walk_by_time(queue.model_copy(update={"unit_codes": UNITS[:1]}), 50)
        where, params = store._where(queue, unit_index=False)
        text = plan_of(store, store._q(f"SELECT instance_id FROM submissions{where}"
                                       " ORDER BY received_at, instance_id LIMIT 50"), params, "")
        assert "submissions_received" in text and "TEMP B-TREE FOR ORDER BY" not in text, text
    walked: dict[bool, list[str]] = {}
    for walk in (True, False):
        monkeypatch.setattr(SqlStore, "_walk_by_time", lambda self, q, n, walk=walk: walk)
        seen: list[str] = []
        after = None
        while page := store.page_submissions(queue, limit=300, after=after):
            seen += [s.instance_id for s in page]
            after = PageKey(received_at=page[-1].received_at, instance_id=page[-1].instance_id)
        walked[walk] = seen
    assert len(walked[True]) == 2000 and walked[True] == walked[False]


def test_a_form_list_pages_and_counts_from_the_page_index(store: SqlStore) -> None:
    """The administrator's list of one form (no unit to seek): its total counts the current records in
    the index, and its newest page walks the index in order, reading only the rows it shows (issue 21:
    90,000 pledges were read whole for ``current`` to count them)."""
    query = SubmissionQuery(form_id="f2_pledge")
    newest = f" ORDER BY received_at DESC, instance_id{store.dialect.binary} DESC LIMIT 50"  # as the store
    count = plan(store, query, "submissions_page")
    page = plan(store, query, "submissions_page", "instance_id, fields", newest)
    assert store.count_submissions(query) == sum(1 for _ in store.iter_submissions(query))
    if store.dialect.mark == "?":
        assert "COVERING INDEX submissions_page" in count, count
        assert "USING INDEX submissions_page" in page and "TEMP B-TREE" not in page, page
    else:
        assert "Index Only Scan using submissions_page" in count, count
        assert "Index Scan Backward using submissions_page" in page and "Sort" not in page, page
    # a unit's total still seeks the unit in the counts index
    assert "submissions_counts" in plan(store, SubmissionQuery(form_id="f2_pledge", unit_codes=UNITS[:1]))


def test_the_kept_totals_fingerprints_read_only_their_index(store: SqlStore) -> None:
    """Whether a province's kept indicator totals are still good (``sql_kept``) is read per commune from
    the ``submissions_touched`` index alone, on every indicator page."""
    query = SubmissionQuery(form_id="f2_pledge", unit_codes=UNITS)
    text = plan_of(store, *prints_statement(store, query), "submissions_touched")
    if store.dialect.mark == "?":
        assert "COVERING INDEX submissions_touched" in text and "TEMP B-TREE" not in text, text
    else:
        assert "Index Only Scan using submissions_touched" in text, text
