"""Offline bundles and per-collector media: Collect's forms-folder layout, lists cut to the collector's
units (no other commune's persons, ever), last year's roster as persons.csv, and the same bytes the
server sends to that phone."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from plugin_support import HamletPlugin, plugins_installed
from rasoat.core.cli import main as cli_main
from rasoat.core.collectors import create_collector, revoke_collector
from rasoat.core.media import cut_csv
from rasoat.core.models import FormVersion, Round, RoundState, Submission
from rasoat.core.storage.opening import open_store
from rasoat.mobile_export.bundle import build_bundle
from server_support import COMMUNE, OTHER_COMMUNE, CollectClient, compile_test_form

MEDIA = ["provinces.csv", "communes.csv", "hamlets.csv", "persons.csv", "schools.csv", "logo.png"]
PERSONS = (
    "name,label,commune,hamlet,full_name,category\n"
    f"p-a1,Nguyễn Văn Một,{COMMUNE},{COMMUNE}-01,Nguyễn Văn Một,user\n"
    f"p-a2,Trần Thị Hai,{COMMUNE},{COMMUNE}-02,Trần Thị Hai,user\n"
    f"p-a3,Lò Văn Ba,{COMMUNE},,Lò Văn Ba,addict\n"
    f"p-b1,Hà Thị Bốn,{OTHER_COMMUNE},{OTHER_COMMUNE}-01,Hà Thị Bốn,user\n"
)
SCHOOLS = (
    f"name,label,commune\ns-a,Trường THCS Phượng Tiến,{COMMUNE}\ns-b,Trường THCS Tân Cương,{OTHER_COMMUNE}\n"
)
LOGO = b"\x89PNG not really"
BASE = "http://192.0.2.10:8000"  # the server's address phones reach


@pytest.fixture
def hamlets(tmp_path: Path):
    """Hamlets of both communes, from a plugin (the national list has none)."""
    path = tmp_path / "hamlets-src.csv"
    path.write_text(
        "code,name,commune_code\n"
        f"{COMMUNE}-01,Xóm Nà Pài,{COMMUNE}\n{COMMUNE}-02,Xóm Đồng Kem,{COMMUNE}\n"
        f"{OTHER_COMMUNE}-01,Xóm Soi Mít,{OTHER_COMMUNE}\n",
        encoding="utf-8",
    )
    with plugins_installed(test_hamlets=HamletPlugin(path)):  # this test's own hamlets for 05563
        yield


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


@pytest.fixture
def store(tmp_path: Path, hamlets):
    store = _filled(open_store(tmp_path / "data"))
    yield store
    store.close()


@pytest.fixture
def any_store(tmp_path: Path, hamlets, backend_url: str | None):
    """``store`` on either backend."""
    store = _filled(open_store(tmp_path / "data", backend_url))
    yield store
    store.close()


def _filled(store):
    xml, schema = compile_test_form("tform", "1", "Biểu thử")
    store.put_form(
        FormVersion(form_id="tform", version="1", title="Biểu thử", md5=hashlib.md5(xml).hexdigest(),
                    media=MEDIA, source="test"),
        xml, schema,
        {"persons.csv": PERSONS.encode(), "schools.csv": SCHOOLS.encode(), "logo.png": LOGO},
    )
    old_xml, old_schema = compile_test_form("told", "1", "Biểu đợt cũ")
    store.put_form(FormVersion(form_id="told", version="1", title="Biểu đợt cũ",
                               md5=hashlib.md5(old_xml).hexdigest(), source="test"), old_xml, old_schema, {})
    store.put_round(Round(id="r1", name="Đợt 2026", period="2026", form_ids=["tform"],
                          unit_codes=[COMMUNE, OTHER_COMMUNE], state=RoundState.open))
    store.put_round(Round(id="r0", name="Đợt cũ", period="2025", form_ids=["told"],
                          unit_codes=[COMMUNE], state=RoundState.closed))
    return store


def collector(store, name: str, units: list[str], rounds=("r1", "r0")):
    user, _ = create_collector(store, name, units, [])
    for rid in rounds:  # assign directly: r0 is closed, and closed rounds take no new collectors
        rnd = store.get_round(rid)
        store.put_round(rnd.model_copy(update={"collector_ids": [*rnd.collector_ids, user.id]}))
    return store.get_user(user.id)


def test_bundle_has_collects_layout_and_lists_cut_to_the_commune(store, tmp_path: Path) -> None:
    a = collector(store, "Vũ Thị Lan", [COMMUNE])
    b = collector(store, "Phạm Văn Xa", [OTHER_COMMUNE])
    out = tmp_path / "lan.zip"
    report = build_bundle(store, a, out, BASE)
    assert report.missing_media == []

    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        names = set(zf.namelist())
        assert names == {"forms/tform.xml", "HUONG-DAN.txt", "bundle.json", "cai-dat-collect.png",
                         *(f"forms/tform-media/{m}" for m in MEDIA)}  # not the closed round's form
        form_xml = zf.read("forms/tform.xml")
        media = {m: zf.read(f"forms/tform-media/{m}") for m in MEDIA}
        guide = zf.read("HUONG-DAN.txt").decode("utf-8")
        summary = json.loads(zf.read("bundle.json"))
    assert hashlib.md5(form_xml).hexdigest() == store.get_form("tform").md5  # the exact published bytes
    assert ET.fromstring(form_xml).tag.endswith("html")
    assert "Android/data/org.odk.collect.android/files/projects" in guide and "Vũ Thị Lan" in guide
    assert summary["forms"][0]["media"]["persons.csv"] == hashlib.md5(media["persons.csv"]).hexdigest()

    assert rows(media["provinces.csv"]) == [{"name": "19", "label": "Tỉnh Thái Nguyên"}]
    assert [r["name"] for r in rows(media["communes.csv"])] == [COMMUNE]
    assert [(r["name"], r["commune"]) for r in rows(media["hamlets.csv"])] == [
        (f"{COMMUNE}-01", COMMUNE), (f"{COMMUNE}-02", COMMUNE)]
    assert [r["name"] for r in rows(media["persons.csv"])] == ["p-a1", "p-a2", "p-a3"]
    assert [r["name"] for r in rows(media["schools.csv"])] == ["s-a"]
    assert media["logo.png"] == LOGO
    assert "Hà Thị Bốn" not in media["persons.csv"].decode()

    build_bundle(store, b, tmp_path / "xa.zip", BASE)
    with zipfile.ZipFile(tmp_path / "xa.zip") as zf:
        assert [r["name"] for r in rows(zf.read("forms/tform-media/persons.csv"))] == ["p-b1"]
        assert [r["name"] for r in rows(zf.read("forms/tform-media/hamlets.csv"))] == [f"{OTHER_COMMUNE}-01"]


def test_hamlet_collector_gets_their_hamlet_and_the_communes_shared_rows(store) -> None:
    from rasoat.core.media import collector_media

    form = store.get_form("tform")
    persons = rows(collector_media(store, form, "persons.csv", [f"{COMMUNE}-01"]))
    assert [r["name"] for r in persons] == ["p-a1", "p-a3"]  # not the other hamlet's p-a2
    schools = rows(collector_media(store, form, "schools.csv", [f"{COMMUNE}-01"]))
    assert [r["name"] for r in schools] == ["s-a"]
    hamlet_rows = rows(collector_media(store, form, "hamlets.csv", [f"{COMMUNE}-01"]))
    assert [r["name"] for r in hamlet_rows] == [f"{COMMUNE}-01"]
    # A province-wide collector gets both communes; nobody with no units gets anyone.
    assert len(rows(collector_media(store, form, "persons.csv", ["19"]))) == 4
    assert rows(cut_csv(PERSONS.encode(), [])) == []
    assert collector_media(store, form, "missing.csv", [COMMUNE]) is None


def test_persons_csv_is_last_years_roster_of_the_commune(store) -> None:
    """With a census round open, persons.csv is the roll-forward of the earlier closed census."""
    store.put_round(Round(id="c2025", name="Tổng rà soát 2025", kind="census", period="2025",
                          form_ids=["tform"], unit_codes=[COMMUNE, OTHER_COMMUNE], state=RoundState.closed))
    r1 = store.get_round("r1")
    store.put_round(r1.model_copy(update={"kind": "census"}))
    people = [("k-1", "Nguyễn Văn Một", COMMUNE), ("k-2", "Hoàng Thị Năm", COMMUNE),
              ("k-3", "Hà Thị Bốn", OTHER_COMMUNE)]
    for key, name, commune in people:
        xml = f"<data id='tform' version='1'><k>{key}</k></data>".encode()
        store.save_submission(
            Submission(instance_id=f"uuid:{key}", form_id="tform", form_version="1", round_id="c2025",
                       unit_code=commune, xml_md5=hashlib.md5(xml).hexdigest(),
                       fields={"person_key": key, "full_name": name, "commune": commune}),
            xml, {},
        )
    from rasoat.core.media import collector_media

    roster = rows(collector_media(store, store.get_form("tform"), "persons.csv", [COMMUNE]))
    assert sorted(r["name"] for r in roster) == ["k-1", "k-2"]
    assert {r["commune"] for r in roster} == {COMMUNE}
    other = rows(collector_media(store, store.get_form("tform"), "persons.csv", [OTHER_COMMUNE]))
    assert [r["full_name"] for r in other] == ["Hà Thị Bốn"]


def test_bundle_refusals_and_command(store, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rasoat.core.collectors import CollectorError

    idle = collector(store, "Chưa giao", [COMMUNE], rounds=())
    with pytest.raises(CollectorError, match="not assigned to any open round"):
        build_bundle(store, idle, tmp_path / "idle.zip", BASE)
    gone = collector(store, "Đã nghỉ", [COMMUNE])
    revoke_collector(store, gone.id)
    with pytest.raises(CollectorError, match="revoked"):
        build_bundle(store, store.get_user(gone.id), tmp_path / "gone.zip", BASE)
    assert not (tmp_path / "idle.zip").exists() and not (tmp_path / "gone.zip").exists()

    lan = collector(store, "Vũ Thị Lan", [COMMUNE])
    data = tmp_path / "data"
    store.close()
    out = tmp_path / "lan.zip"
    args = ["bundle", "--collector", lan.username, "--data", str(data), "--url", BASE]
    assert cli_main([*args, "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [f["form_id"] for f in report["forms"]] == ["tform"] and out.is_file()
    assert cli_main([*args, "-o", str(tmp_path / "x.tar")]) == 1
    assert ".zip" in capsys.readouterr().err


def test_bundle_bytes_are_what_the_server_sends_that_phone(live_server, tmp_path: Path) -> None:
    """Copied over USB or downloaded later: same MD5s, so Collect finds nothing to fetch again."""
    store = live_server.store
    user, token = create_collector(store, "Đinh Văn Sáu", [COMMUNE], ["r-open"])
    report = build_bundle(store, user, tmp_path / "sau.zip", live_server.url)
    phone = CollectClient(f"{live_server.url}/v1/key/{token}/projects/1")
    try:
        listing = ET.fromstring(phone.get("/formList").content)
        ns = "{http://openrosa.org/xforms/xformsList}"
        served = {x.findtext(f"{ns}formID"): x for x in listing.findall(f"{ns}xform")}
        assert set(served) == {f["form_id"] for f in report.forms}
        for form in report.forms:
            entry = served[form["form_id"]]
            assert entry.findtext(f"{ns}hash") == "md5:" + form["md5"]
            manifest_url = entry.findtext(f"{ns}manifestUrl")
            if manifest_url is None:  # a form without media (another module's, on this shared server)
                assert form["media"] == {}, form["form_id"]
                continue
            manifest = ET.fromstring(phone.get(manifest_url).content)
            mf = "{http://openrosa.org/xforms/xformsManifest}"
            hashes = {m.findtext(f"{mf}filename"): m.findtext(f"{mf}hash") for m in manifest}
            assert hashes == {name: "md5:" + md5 for name, md5 in form["media"].items()}
    finally:
        phone.close()


def test_bundle_carries_the_collect_settings_the_qr_code_does(any_store, tmp_path: Path) -> None:
    """A phone set up from the bundle alone sends to the server and deletes each record once sent (person
    records do not stay readable on a lost phone): the bundle's QR picture holds exactly the settings
    ``rasoat qr`` prints for that collector, decoded here by a real QR reader."""
    import zxingcpp
    from PIL import Image
    from rasoat.core.collect_settings import decode_settings
    from rasoat.core.phone_setup import phone_code
    from test_mobile_qr import collect_rejections

    store = any_store
    lan = collector(store, "Vũ Thị Lan", [COMMUNE])
    build_bundle(store, lan, tmp_path / "lan.zip", BASE, admin_pw="13572468")
    with zipfile.ZipFile(tmp_path / "lan.zip") as zf:
        (tmp_path / "qr.png").write_bytes(zf.read("cai-dat-collect.png"))
        guide = zf.read("HUONG-DAN.txt").decode("utf-8")
        summary = json.loads(zf.read("bundle.json"))
    printed = phone_code(store, lan.id, BASE, admin_pw="13572468")  # what `rasoat qr` draws
    found = zxingcpp.read_barcodes(Image.open(tmp_path / "qr.png").convert("L"))
    # zxing now and then reports the one code twice (it depends on the random token): one text, one code
    assert {(c.format, c.text) for c in found} == {(zxingcpp.BarcodeFormat.QRCode, printed.payload)}
    text = printed.payload
    settings = decode_settings(text)
    assert collect_rejections(settings) == []
    assert settings["general"]["delete_send"] is True  # sent records leave the phone …
    assert settings["admin"]["delete_after_send"] is False  # … and the collector cannot turn that off
    assert settings["general"]["server_url"].startswith(f"{BASE}/v1/key/")
    assert settings["general"]["autosend"] == "wifi_and_cellular"
    assert summary["collect_settings"]["general"] == settings["general"]
    assert "admin_pw" not in summary["collect_settings"]["admin"]  # the officers' summary keeps no password
    assert "cai-dat-collect.png" in guide and "Nhập mã QR" in guide and "Import QR code" in guide
