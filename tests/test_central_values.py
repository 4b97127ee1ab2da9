"""OData values, row ids, schema shape and $filter as Central makes them (reference §2.3–2.6), without a
server: the pure parts of server/central."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from pyxform.xls2xform import convert
from rasoat.core.models import ReviewState, Submission
from rasoat.core.problems import Problem
from rasoat.server.central.odata_edmx import edmx
from rasoat.server.central.odata_filter import compile_filter
from rasoat.server.central.odata_rows import RowOptions, repeat_rows, submission_row, typed
from rasoat.server.central.problems import central_code
from rasoat.server.central.schema import parse_xform, sanitize

NESTED_MD = """
| survey |
| | type | name | label |
| | integer | age | Tuổi |
| | decimal | income | Thu nhập |
| | geopoint | place | Vị trí |
| | begin_group | children | Con |
| | begin_repeat | child | Một con |
| | text | name | Tên |
| | begin_repeat | toy | Đồ chơi |
| | text | toy_name | Tên đồ chơi |
| | end_repeat | | |
| | end_repeat | | |
| | end_group | | |
| settings |
| | form_id | version |
| | two-repeats | 1 |
"""


def schema():
    xform = convert(xlsform=NESTED_MD, file_type=".md", form_name="data").xform.encode()
    return parse_xform("two-repeats", "1", xform)


def sub(iid: str = "two", **fields) -> Submission:
    return Submission(
        instance_id=iid,
        form_id="two-repeats",
        form_version="1",
        xml_md5="0" * 32,
        received_at=datetime(2026, 5, 1, 10, tzinfo=UTC),
        fields=fields,
    )


def test_values_are_typed_as_central_types_them() -> None:
    assert typed("int", "42") == 42 and typed("decimal", "2.50") == 2.5 and typed("int", "") is None
    assert typed("geopoint", "-1.2864 36.8172 1650 4.5") == {
        "type": "Point",
        "coordinates": [36.8172, -1.2864, 1650],
        "properties": {"accuracy": 4.5},
    }
    assert typed("geopoint", "-1.2864 36.8172 1650 4.5", wkt=True) == "POINT (36.8172 -1.2864 1650)"
    assert typed("geotrace", "1 2 0 0;3 4 0 0") == {
        "type": "LineString",
        "coordinates": [[2, 1, 0], [4, 3, 0]],
        "properties": {"accuracies": [0, 0]},
    }
    assert typed("geoshape", "1 2;3 4;1 2", wkt=True) == "POLYGON ((2 1,4 3,2 1))"
    assert typed("dateTime", "2026-05-01T10:00:00.000+07") == "2026-05-01T10:00:00.000+07:00"
    assert typed("string", "a b") == "a b" and typed("boolean", "true") == "true"
    assert typed("int", "not a number") == "not a number"  # never lose what was sent


def test_names_are_sanitised_as_central_does() -> None:
    assert sanitize("a-b c") == "a_b_c" and sanitize("1st") == "_1st" and sanitize("ok_1") == "ok_1"


def test_tables_groups_repeats_and_row_ids() -> None:
    s = schema()
    assert list(s.tables) == ["Submissions", "Submissions.children.child", "Submissions.children.child.toy"]
    assert s.tables["Submissions.children.child.toy"].parent_key == "__Submissions-children-child-id"
    record = sub(
        age="38",
        income="1.5",
        place="",
        **{
            "children/child": [{"name": "Alice", "toy": [{"toy_name": "ball"}]}, {"name": "Bob"}],
            "meta/instanceID": "two",
        },
    )
    row = submission_row(record, s, RowOptions(expand=True))
    assert (row["age"], row["income"], row["place"]) == (38, 1.5, None)
    assert row["meta"] == {"instanceID": "two"}
    child_id = hashlib.sha1(b"Submissions#two%%children#%%child#0").hexdigest()
    assert child_id == "cf9a1b5cc83c6d6270c1eb98860d294eac5d526d"  # Central's own test value
    kids = row["children"]["child"]
    assert [k["__id"] for k in kids][0] == child_id and [k["name"] for k in kids] == ["Alice", "Bob"]
    assert row["children"]["child@odata.navigationLink"] == "Submissions('two')/children/child"
    toys = list(repeat_rows(record, s, s.tables["Submissions.children.child.toy"], RowOptions()))
    assert toys == [
        {
            "__id": hashlib.sha1(b"Submissions#two%%children#%%child#0%%toy#0").hexdigest(),
            "toy_name": "ball",
            "__Submissions-children-child-id": child_id,
        }
    ]
    plain = submission_row(record, s, RowOptions())
    assert "child" not in plain["children"]
    hidden = submission_row(record, s, RowOptions(hidden=frozenset({"age"})))
    assert hidden["age"] is None and hidden["income"] == 1.5
    sealed = submission_row(record.model_copy(update={"encrypted": True}), s, RowOptions())
    assert set(sealed) == {"__id", "__system"} and sealed["__system"]["status"] == "notDecrypted"


def test_metadata_declares_every_table_type_and_navigation() -> None:
    text = edmx(schema()).decode()
    ns = "org.opendatakit.user.two_repeats"
    for part in (
        '<EntityType Name="Submissions.children.child.toy">',
        '<ComplexType Name="children">',
        f'<NavigationProperty Name="child" Type="Collection({ns}.Submissions.children.child)"/>',
        '<Property Name="place" Type="Edm.GeographyPoint"/>',
        '<Property Name="age" Type="Edm.Int64"/>',
        f'<EntitySet Name="Submissions.children.child" EntityType="{ns}.Submissions.children.child">',
    ):
        assert part in text


def test_filter_runs_in_the_store_where_it_can() -> None:
    when = datetime(2026, 5, 1, tzinfo=UTC)
    users = {7: "u-seven"}.get
    pushed = compile_filter(
        "__system/submissionDate ge 2026-05-01 and __system/reviewState eq 'approved' "
        "and __system/submitterId eq 7",
        users,
    )
    assert pushed.predicate is None
    assert pushed.query == {
        "received_from": when,
        "review_states": [ReviewState.approved],
        "collector_id": "u-seven",
    }
    assert compile_filter("__system/submissionDate lt 2026-05-01T00:00:00Z", users).query == {
        "received_to": when
    }
    assert compile_filter("__system/submissionDate le 2026-05-01T00:00:00Z", users).query == {
        "received_to": when + timedelta(microseconds=1)
    }
    assert compile_filter("__system/reviewState eq null", users).query == {
        "review_states": [ReviewState.received]
    }
    assert compile_filter("__system/submitterId eq 8", users).query == {"review_states": []}  # nobody

    rest = compile_filter(
        "__system/reviewState eq 'rejected' or not (year(__system/submissionDate) le 2025)", users
    )
    assert rest.query == {} and rest.predicate is not None
    assert rest.predicate(sub()) is True
    assert rest.predicate(sub().model_copy(update={"received_at": datetime(2025, 1, 1, tzinfo=UTC)})) is False


@pytest.mark.parametrize(
    "text,code",
    [
        ("name eq 'x'", "501.5"),
        ("__system/reviewState eq", "400.18"),
        ("__system/submissionDate gt 2026-13-45", "400.18"),
        ("(", "400.18"),
    ],
)
def test_filters_central_refuses(text: str, code: str) -> None:
    with pytest.raises(Problem) as refused:
        compile_filter(text, lambda _n: None)
    assert central_code(refused.value) == code  # Central's code of the catalogue entry
