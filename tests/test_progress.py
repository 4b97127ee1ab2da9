"""Completeness: hamlets, households pledged and schools covered, checked against hand counts."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import hookimpl
from core.cli import main as cli_main
from core.models import FormVersion, ReviewState, Submission
from core.plugins import build_manager, set_manager
from core.progress import SitesError, expected_sites, import_sites, round_progress
from core.rounds import create_round, open_round
from core.storage.base import Store
from core.units import reset_units

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
    pm = build_manager()
    pm.register(ProvincePlugin(path, enterprises), name="test_plugin")
    set_manager(pm)
    reset_units()
    from core.storage.embedded import EmbeddedStore

    s = EmbeddedStore(tmp_path / "data")
    for form_id in ("f2_pledge", "f3_school", "f4_enterprise", "f5_hamlet"):
        publish(s, form_id)
    yield s
    s.close()
    set_manager(None)
    reset_units()


def publish(store: Store, form_id: str) -> None:
    xform = f"<h:html><!-- {form_id} --></h:html>".encode()
    md5 = hashlib.md5(xform).hexdigest()
    store.put_form(FormVersion(form_id=form_id, version="1", title=form_id, md5=md5), xform, {}, {})


class Submitter:
    def __init__(self, store: Store, round_id: str) -> None:
        self.store, self.round_id, self.n = store, round_id, 0

    def __call__(self, form_id: str, unit: str, state: ReviewState | None = None, **fields: str) -> str:
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
    import_sites(store, "schools", SCHOOLS.encode(), actor="officer", source="schools.csv")
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
    # Phượng Tiến: hamlet 01 sends a total, then a correction (the latest row wins); 02 all signed;
    # 03 nothing; 04 in household-list mode (H1 twice, H3 did not sign).
    send("f2_pledge", "05563-01", hh_total="120", hh_signed="100")
    send("f2_pledge", "05563-01", hh_total="120", hh_signed="110")
    send("f2_pledge", "05563-02", hh_total="95", hh_signed="95")
    send("f2_pledge", "05563-04", household_code="H1", signed="yes")
    send("f2_pledge", "05563-04", household_code="H2", signed="yes")
    send("f2_pledge", "05563-04", household_code="H3", signed="no")
    send("f2_pledge", "05563-04", household_code="H1", signed="yes")
    # Định Hóa: hamlet 01 half signed; hamlet 02's only row was rejected, so it is not covered.
    send("f2_pledge", "05569-01", hh_total="210", hh_signed="105", state=ReviewState.approved)
    send("f2_pledge", "05569-02", hh_total="150", hh_signed="150", state=ReviewState.rejected)
    # Schools and enterprises are reported at commune level (no hamlet): one listed, one not on the list.
    send("f3_school", PT, school_id="TH-PT", meets_standard="yes")
    send("f3_school", PT, school_id="MN-X", meets_standard="pending")
    send("f4_enterprise", DH, ent_id="DN-2")

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
    assert (pt["households"], pt["households_pledged"], pt["pledged_pct"]) == (295, 207, 69.5)
    assert pt["submissions"] == 9
    assert pt["schools"] == {
        "expected": 2,
        "covered": 1,
        "pct": 50.0,
        "missing": [{"id": "THCS-PT", "name": "Trường THCS Phượng Tiến", "hamlet": ""}],
        "not_on_list": ["MN-X"],
    }
    assert (pt["enterprises"]["expected"], pt["enterprises"]["covered"]) == (1, 0)

    assert [(h["code"], h["covered"], h["households_pledged"]) for h in dh["hamlets"]] == [
        ("05569-01", True, 105),
        ("05569-02", False, 0),
    ]
    assert (dh["hamlets_covered"], dh["households"], dh["pledged_pct"]) == (1, 360, 29.2)
    assert (dh["schools"]["covered"], dh["enterprises"]["covered"], dh["enterprises"]["pct"]) == (0, 1, 100.0)

    t = report["totals"]
    assert (t["received"], t["counted"]) == (12, 11)
    assert (t["hamlets_expected"], t["hamlets_covered"], t["hamlets_pct"]) == (6, 4, 66.7)
    # (205 + 105) / (295 + 360) = 47.3 %
    assert (t["households"], t["pledged_pct"]) == (655, 47.3)
    assert t["schools"] == {"expected": 3, "covered": 1, "pct": 33.3}
    assert t["enterprises"] == {"expected": 2, "covered": 1, "pct": 50.0}


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
    assert [s["id"] for s in expected_sites(store, "enterprises", PT)] == ["DN-1"]  # from the plugin
    import_sites(
        store, "enterprises", "code,name,commune_code\nDN-7,HTX Chè,05563\nDN-8,Karaoke,05563\n".encode()
    )
    assert [s["id"] for s in expected_sites(store, "enterprises", PT)] == ["DN-7", "DN-8"]
    assert [s["id"] for s in expected_sites(store, "enterprises", DH)] == ["DN-2"]  # untouched
    with pytest.raises(SitesError, match="row 3.*duplicate id 'A'"):
        import_sites(store, "schools", b"id,name,commune\nA,x,05563\nA,y,05563\n")
    with pytest.raises(SitesError, match="needs columns id,name,commune"):
        import_sites(store, "schools", b"ma,ten\nA,x\n")
    with pytest.raises(SitesError, match="Unknown commune code.*99999"):
        import_sites(store, "schools", b"id,name,commune\nA,x,99999\n")
    audit = [e for e in store.iter_audit() if e.action == "sites.import"]
    assert [e.details["communes"] for e in audit] == [{PT: 2}]


def test_cli_progress_and_sites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("core.storage.embedded")
    data = tmp_path / "cli-data"
    from core.storage.embedded import EmbeddedStore

    s = EmbeddedStore(data)
    publish(s, "f3_school")
    s.close()
    schools = tmp_path / "schools.csv"
    schools.write_text(SCHOOLS, encoding="utf-8")
    assert cli_main(["rounds", "sites", "schools", str(schools), "--data", str(data)]) == 0
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
    Submitter(s, "r-truong")("f3_school", PT, school_id="THCS-PT")
    s.close()
    capsys.readouterr()
    assert cli_main(["rounds", "progress", "r-truong", "--json", "--data", str(data)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["schools"] == {"expected": 3, "covered": 1, "pct": 33.3}
    assert [c["schools"]["covered"] for c in report["communes"]] == [1, 0]
    assert cli_main(["rounds", "progress", "r-truong", "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert "Xã Phượng Tiến" in text and "1/2 (50.0%)" in text and "Missing school: 05569 TH-DH" in text
