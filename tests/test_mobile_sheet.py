"""The printable QR sheet: the right collectors, rendered by headless chromium into A4 pages whose
QR codes a real decoder reads back, with fonts that carry Vietnamese letters."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from rasoat.core.cli import main as cli_main
from rasoat.core.collectors import create_collector, find_by_token, revoke_collector
from rasoat.core.models import Round, RoundState
from rasoat.core.storage.opening import open_store
from server_support import COMMUNE, OTHER_COMMUNE
from test_mobile_qr import collect_rejections, inflate

pytestmark = pytest.mark.slow  # chromium renders the sheets

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
VIETNAMESE = "ạờừĐđ"  # letters that come out as boxes when a font lacks them


def chromium(*args: str, profile: Path) -> None:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not installed (apt-get install chromium fonts-dejavu-core)")
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--hide-scrollbars", *args],
        check=True, capture_output=True, timeout=120,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    store = open_store(data)
    try:
        store.put_round(Round(id="r1", name="Tổng rà soát năm 2026", period="2026", form_ids=["f1_person"],
                              unit_codes=[COMMUNE, OTHER_COMMUNE], state=RoundState.open))
        for name in ("Vũ Thị Lan", "Nguyễn Đức Hùng", "Trần Văn Ơn", "Lê Thị Ánh", "Đặng Quốc Việt"):
            create_collector(store, name, [COMMUNE], ["r1"])
        create_collector(store, "Phạm Văn Xa", [OTHER_COMMUNE], ["r1"])  # another commune
        create_collector(store, "Chưa giao đợt", [COMMUNE])  # in the commune, not in the round
        gone, _ = create_collector(store, "Đã nghỉ việc", [COMMUNE], ["r1"])
        revoke_collector(store, gone.id)
    finally:
        store.close()
    return data


def test_sheet_cards_render_on_a4_and_their_codes_scan(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "the-phuong-tien.html"
    code = cli_main(["qr-sheet", "--unit", COMMUNE, "--round", "r1", "-o", str(out),
                     "--url", "http://192.0.2.7:8000", "--data", str(data_dir), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    names = sorted(c["name"] for c in report["cards"])
    assert names == sorted(["Vũ Thị Lan", "Nguyễn Đức Hùng", "Trần Văn Ơn", "Lê Thị Ánh", "Đặng Quốc Việt"])

    html = out.read_text(encoding="utf-8")
    assert html.count('class="card"') == 5
    assert "size: A4" in html and "Cài ứng dụng" in html and "Xã Phượng Tiến" in html
    assert "Phạm Văn Xa" not in html and "Đã nghỉ việc" not in html and "Chưa giao đợt" not in html

    # A font with Vietnamese letters is installed (otherwise chromium draws boxes).
    fonts = subprocess.run(["fc-list", ":charset=" + " ".join(f"{ord(c):x}" for c in VIETNAMESE), "family"],
                           capture_output=True, text=True).stdout
    assert fonts.strip(), "no installed font has Vietnamese letters: apt-get install fonts-dejavu-core"

    # Printed: five cards, four to a page → two A4 pages.
    pdf = tmp_path / "sheet.pdf"
    chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", out.as_uri(), profile=tmp_path / "p1")
    data = pdf.read_bytes()
    assert len(re.findall(rb"/Type\s*/Page(?![s\w])", data)) == 2
    boxes = re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert boxes and all(abs(float(w) - 595.3) < 1.5 and abs(float(h) - 841.9) < 1.5 for w, h in boxes)

    # On screen: every QR code on the first page decodes to settings for one of these collectors,
    # carrying that collector's current token.
    shot = tmp_path / "sheet.png"
    chromium("--force-device-scale-factor=2", "--window-size=900,1200", f"--screenshot={shot}", out.as_uri(),
             profile=tmp_path / "p2")
    codes = zxingcpp.read_barcodes(Image.open(shot).convert("L"))
    assert len(codes) >= 4  # the cards the window shows: at least the first page's four
    store = open_store(data_dir)
    try:
        seen = set()
        for qr in codes:
            settings = inflate(qr.text)
            assert collect_rejections(settings) == []
            token = settings["general"]["server_url"].split("/v1/key/")[1].split("/")[0]
            user = find_by_token(store, token)
            assert user is not None and user.display_name == settings["general"]["metadata_username"]
            assert f'data-collector="{user.id}"' in html
            seen.add(user.display_name)
        assert len(seen) == len(codes) and seen <= set(names)  # each card its own collector
    finally:
        store.close()


def test_sheet_needs_a_unit_or_round_and_someone_on_it(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s.html"
    base = ["-o", str(out), "--url", "http://h:1", "--data", str(data_dir)]
    assert cli_main(["qr-sheet", *base]) == 1
    assert "--unit or --round" in capsys.readouterr().err
    assert cli_main(["qr-sheet", "--round", "nope", *base]) == 1
    assert "No round 'nope'" in capsys.readouterr().err
    assert cli_main(["qr-sheet", "--unit", "01849", *base]) == 1  # nobody in Xã Phong Quang
    assert "No active collectors" in capsys.readouterr().err
    assert not out.exists()
    # A unit alone: every active collector working there, whatever their round.
    assert cli_main(["qr-sheet", "--unit", OTHER_COMMUNE, *base, "--json"]) == 0
    assert [c["name"] for c in json.loads(capsys.readouterr().out)["cards"]] == ["Phạm Văn Xa"]
