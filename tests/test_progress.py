"""Completeness: hamlets, households pledged and schools covered, checked against hand counts."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plugin_support import plugins_installed
from rasoat.core import hookimpl
from rasoat.core.cli import main as cli_main
from rasoat.core.media import sites_media
from rasoat.core.models import FormVersion, ReviewState, Submission
from rasoat.core.progress import round_progress
from rasoat.core.round_lifecycle import open_round
from rasoat.core.rounds import create_round
from rasoat.core.storage.base import Store
from rasoat.core.unit_lists import UnitListError, load, sites, units_for

PT, DH = "05563", "05569"
HAMLETS = [
    ["05563-01", "Xóm Nà Pài", PT, "120"],
    ["05563-02", "Xóm Đồng Kem", PT, "95"],
    ["05563-03", "Xóm Khuôn Câm", PT, "80"],
    ["05563-04", "Xóm Mới", PT, ""],  # household count not known yet
    ["05569-01", "Tổ dân phố Hợp Thành", DH, "210"],
    ["05569-02", "Thôn Bản Quyên", DH, "150"],
]
SCHOOLS = (
    "id,name,commune\nTH-PT,Trường Tiểu học Phượng Tiến,5563\nTHCS-PT,Trường THCS Phượng Tiến,05563\n"
    "TH-DH,Trường Tiểu học Định Hóa,05569\n"
)


class ProvincePlugin:
    def __init__(self, hamlets: Path, enterprises: list[dict]) -> None:
        self.path, self.enterprises = hamlets, enterprises

    @hookimpl
    def hamlets(self) -> list[Path]:
        return [self.path]

    @hookimpl
    def checklists(self) -> list[dict]:
        return [{"sites": "enterprises", "rows": self.enterprises}, {"id": "some-scorecard"}]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "hamlets.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["code", "name", "commune_code", "households"], *HAMLETS])
    enterprises = [
        {"id": "DN-1", "name": "Công ty Chè Phượng Tiến", "commune": PT},
        {"id": "DN-2", "name": "Xưởng gỗ Định Hóa", "commune": DH},
    ]
    from rasoat.core.storage.embedded import EmbeddedStore

    # this test's own hamlets for 05563
    with plugins_installed(test_plugin=ProvincePlugin(path, enterprises)):
        s = EmbeddedStore(tmp_path / "data")
        for form_id in ("f2_pledge", "f3_school", "f4_enterprise", "f5_hamlet"):
            publish(s, form_id)
        yield s
        s.close()


def publish(store: Store, form_id: str) -> None:
    xform = f"<h:html><!-- {form_id} --></h:html>".encode()
    md5 = hashlib.md5(xform).hexdigest()
    store.put_form(FormVersion(form_id=form_id, version="1", title=form_id, md5=md5), xform, {}, {})


def aggregate(total: int, pledged: int) -> dict[str, str]:
    """F2 in aggregate mode, with the totals the form computes."""
    return {
        "mode": "aggregate",
        "hh_total": str(total),
        "hh_pledged": str(pledged),
        "households_total": str(total),
        "households_pledged": str(pledged),
    }


def household_list(*households: tuple[str, str]) -> dict[str, Any]:
    """F2 in list mode: the ``household`` repeat as parsed (a list of row dicts)."""
    rows = [
        {"head_name": f"Chủ hộ {code}", "household_code": code, "members": "4", "pledged": pledged,
         "pledged_n": "1" if pledged == "yes" else "0"}
        for code, pledged in households
    ]  # fmt: skip
    signed = sum(1 for _, p in households if p == "yes")
    return {
        "mode": "list",
        "household": rows,
        "hh_listed": str(len(rows)),
        "hh_pledged_listed": str(signed),
        "households_total": str(len(rows)),
        "households_pledged": str(signed),
    }


class Submitter:
    def __init__(self, store: Store, round_id: str) -> None:
        self.store, self.round_id, self.n = store, round_id, 0

    def __call__(self, form_id: str, unit: str, state: ReviewState | None = None, **fields: Any) -> str:
        self.n += 1
        instance_id = f"uuid:{form_id}-{self.n}"
        location = {"commune": unit.split("-")[0]} | ({"hamlet": unit} if "-" in unit else {})
        xml = f'<data id="{form_id}"><meta><instanceID>{instance_id}</instanceID></meta></data>'.encode()
        sub = Submission(
            instance_id=instance_id,
            form_id=form_id,
            form_version="1",
            round_id=self.round_id,
            unit_code=unit,
            xml_md5=hashlib.md5(xml).hexdigest(),
            fields={**location, **fields, "meta/instanceID": instance_id},
        )
        self.store.save_submission(sub, xml, {})
        if state is not None:
            self.store.set_review(instance_id, state, "kiểm tra / checked", "officer")
        return instance_id


def test_progress_matches_hand_counts(store: Store) -> None:
    load(store, "schools", SCHOOLS.encode(), "schools.csv", actor="officer")
    rnd = create_round(
        store,
        "Cam kết và đánh giá 2026",
        "2026",
        ["f2_pledge", "f3_school", "f4_enterprise"],
        [PT, DH],
        kind="pledge",
    )
    open_round(store, rnd.id)
    send = Submitter(store, rnd.id)
    # Phượng Tiến: hamlet 01 sends its totals, then a correction (the latest row wins); 02 all signed;
    # 03 nothing; 04 in list mode over two rows (H1 in both, H3 did not sign).
    send("f2_pledge", "05563-01", **aggregate(120, 100))
    send("f2_pledge", "05563-01", **aggregate(120, 110))
    send("f2_pledge", "05563-02", **aggregate(95, 95))
    send("f2_pledge", "05563-04", **household_list(("H1", "yes"), ("H2", "yes"), ("H3", "no")))
    send("f2_pledge", "05563-04", **household_list(("h1 ", "yes")))
    # Định Hóa: hamlet 01 half signed; hamlet 02's only row was rejected, so it is not covered.
    send("f2_pledge", "05569-01", state=ReviewState.approved, **aggregate(210, 105))
    send("f2_pledge", "05569-02", state=ReviewState.rejected, **aggregate(150, 150))
    # Schools and enterprises are entered at commune level (no hamlet): one listed school meets the
    # standard, one unlisted school ("other") does not; one listed enterprise meets it.
    send("f3_school", PT, school="TH-PT", meets_standard="yes")
    send("f3_school", PT, school="other", school_name="Trường Mầm non Hoa Sen", meets_standard="no")
    send("f4_enterprise", DH, enterprise="DN-2", meets_standard="yes")

    report = round_progress(store, store.get_round(rnd.id))  # type: ignore[arg-type]
    pt, dh = report["communes"]
    assert (pt["code"], pt["name"], dh["code"]) == (PT, "Xã Phượng Tiến", DH)

    assert [
        (h["code"], h["covered"], h["households"], h["households_pledged"], h["pledged_pct"])
        for h in pt["hamlets"]
    ] == [
        ("05563-01", True, 120, 110, 91.7),
        ("05563-02", True, 95, 95, 100.0),
        ("05563-03", False, 80, 0, 0.0),
        ("05563-04", True, None, 2, None),
    ]
    assert (pt["hamlets_expected"], pt["hamlets_covered"], pt["hamlets_pct"]) == (4, 3, 75.0)
    # Households known: 120 + 95 + 80 = 295; pledged there: 110 + 95 + 0 = 205 → 69.5 %.
    assert (pt["households"], pt["households_pledged_counted"], pt["pledged_pct"]) == (295, 205, 69.5)
    assert (pt["households_pledged"], pt["hamlets_without_households"]) == (207, 1)  # 2 pledged in Xóm Mới
    assert pt["submissions"] == 7  # 5 pledge rows and 2 school audits
    assert pt["schools"] == {
        "expected": 2,
        "covered": 1,
        "pct": 50.0,
        "meeting_standard": 1,
        "meeting_pct": 50.0,
        "missing": [{"code": "THCS-PT", "name": "Trường THCS Phượng Tiến"}],
        "not_on_list": ["other: Trường Mầm non Hoa Sen"],
    }
    assert (pt["enterprises"]["expected"], pt["enterprises"]["covered"]) == (1, 0)

    assert [(h["code"], h["covered"], h["households_pledged"]) for h in dh["hamlets"]] == [
        ("05569-01", True, 105),
        ("05569-02", False, 0),
    ]
    assert (dh["hamlets_covered"], dh["households"], dh["pledged_pct"]) == (1, 360, 29.2)
    assert (dh["schools"]["covered"], dh["enterprises"]["covered"], dh["enterprises"]["pct"]) == (0, 1, 100.0)

    t = report["totals"]
    assert (t["received"], t["counted"]) == (10, 9)  # the rejected row is received, not counted
    assert (t["hamlets_expected"], t["hamlets_covered"], t["hamlets_pct"]) == (6, 4, 66.7)
    # (205 + 105) / (295 + 360) = 47.3 %
    assert (t["households"], t["pledged_pct"]) == (655, 47.3)
    assert t["schools"] == {
        "expected": 3,
        "covered": 1,
        "pct": 33.3,
        "meeting_standard": 1,
        "meeting_pct": 33.3,
    }
    assert t["enterprises"] == {
        "expected": 2,
        "covered": 1,
        "pct": 50.0,
        "meeting_standard": 1,
        "meeting_pct": 50.0,
    }

    # the web pages' coverage (their pledge figure is the indicator's): the same counts, from the counts
    # per unit and form alone, and no pledge or site figure made up without the records
    counts = round_progress(store, store.get_round(rnd.id), records=False)  # type: ignore[arg-type]

    def coverage(rep: dict) -> list:
        return [(c["code"], c["submissions"], c["hamlets_covered"],
                 [(h["code"], h["submissions"], h["by_form"], h["covered"]) for h in c["hamlets"]])
                for c in rep["communes"]]

    assert coverage(counts) == coverage(report)
    assert (counts["totals"]["received"], counts["totals"]["counted"]) == (10, 9)
    assert not {"households", "schools", "enterprises"} & {k for c in counts["communes"] for k in c}


def test_scope_of_hamlets_limits_what_is_expected(store: Store) -> None:
    rnd = create_round(store, "Rà soát xóm", "2026-Q3", ["f5_hamlet"], ["05563-01", "05563-02"])
    open_round(store, rnd.id)
    Submitter(store, rnd.id)("f5_hamlet", "05563-02", mailbox="yes")
    report = round_progress(store, store.get_round(rnd.id))  # type: ignore[arg-type]
    (pt,) = report["communes"]
    assert [h["code"] for h in pt["hamlets"]] == ["05563-01", "05563-02"]
    assert (pt["hamlets_covered"], pt["hamlets_pct"]) == (1, 50.0)
    assert "households" not in pt and "schools" not in pt  # no pledge or audit form in this round


def test_site_lists_upload_replaces_plugin_list_and_reports_bad_rows(store: Store, tmp_path: Path) -> None:
    def codes(kind: str, commune: str) -> list[str]:
        return [s["code"] for s in sites(store, kind).get(commune, [])]

    assert codes("enterprises", PT) == ["DN-1"]  # from the plugin
    load(store, "enterprises", "code,name,commune_code\nDN-7,HTX Chè,05563\nDN-8,Karaoke,05563\n".encode(),
         "dn.csv", "officer")
    assert codes("enterprises", PT) == ["DN-7", "DN-8"]
    assert codes("enterprises", DH) == ["DN-2"]  # untouched

    # The same lists go to phones as F4's enterprises.csv, cut to the collector's communes.
    def media(scope: list[str]) -> list[dict[str, str]]:
        data = sites_media(store, "enterprises", scope, units_for(store))
        assert data is not None
        return list(csv.DictReader(io.StringIO(data.decode())))

    assert [(r["name"], r["label"], r["commune"]) for r in media(["05563-01"])] == [
        ("other", "Doanh nghiệp, cơ sở khác, không có trong danh sách / Enterprises: another one, not on the "
                  "list", ""),
        ("DN-7", "HTX Chè", PT),
        ("DN-8", "Karaoke", PT),
    ]
    assert [r["name"] for r in media(["19"])] == ["other", "DN-7", "DN-8", "DN-2"]
    # no list for Kim Phượng: the form's own file
    assert sites_media(store, "schools", ["05551"], units_for(store)) is None
    with pytest.raises(UnitListError, match="row 3: duplicate code 'A', also on row 2"):
        load(store, "schools", b"id,name,commune\nA,x,05563\nA,y,05563\n", "t.csv", "officer")
    with pytest.raises(UnitListError, match="row 1: bad header; missing: Commune code, School code, School"):
        load(store, "schools", b"ma,ten\nA,x\n", "t.csv", "officer")
    with pytest.raises(UnitListError, match="unknown commune code '99999'"):
        load(store, "schools", b"id,name,commune\nA,x,99999\n", "t.csv", "officer")
    audit = [e for e in store.iter_audit() if e.action == "units.import"]
    assert [(e.target, e.details["communes"]) for e in audit] == [("enterprises", {PT: 2})]


def test_cli_progress_and_sites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "cli-data"
    from rasoat.core.storage.embedded import EmbeddedStore

    s = EmbeddedStore(data)
    publish(s, "f3_school")
    s.close()
    schools = tmp_path / "schools.csv"
    schools.write_text(SCHOOLS, encoding="utf-8")
    assert cli_main(["units", "import", "schools", str(schools), "--data", str(data)]) == 0
    assert (
        cli_main(
            [
                "rounds",
                "create",
                "Trường học 2026",
                "--period",
                "2026",
                "--forms",
                "f3_school",
                "--units",
                f"{PT},{DH}",
                "--id",
                "r-truong",
                "--data",
                str(data),
            ]
        )
        == 0
    )
    assert cli_main(["rounds", "open", "r-truong", "--data", str(data)]) == 0
    s = EmbeddedStore(data)
    Submitter(s, "r-truong")("f3_school", PT, school="THCS-PT")
    s.close()
    capsys.readouterr()
    assert cli_main(["rounds", "progress", "r-truong", "--json", "--data", str(data)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["totals"]["schools"]["expected"], report["totals"]["schools"]["covered"]) == (3, 1)
    assert [c["schools"]["covered"] for c in report["communes"]] == [1, 0]
    assert cli_main(["rounds", "progress", "r-truong", "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert "Xã Phượng Tiến" in text and "1/2 (50.0%)" in text and "Missing school: 05569 TH-DH" in text
