"""Collect project QR codes: decoded with a real QR decoder, checked against what Collect accepts
(openrosa reference §6.2), and used against the real server as a phone would."""

from __future__ import annotations

import base64
import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from rasoat.core.cli import main as cli_main
from rasoat.core.collectors import create_collector, find_by_token, revoke_collector
from rasoat.core.models import Round, RoundState
from rasoat.core.storage.opening import open_store
from rasoat.mobile_export.phone_setup import phone_code, rotate_token
from rasoat.mobile_export.qr import save_qr
from server_support import COMMUNE, OTHER_COMMUNE, CollectClient, instance_xml

# --- Collect's settings schema, as the reference (§6.2) lists it; kept here on purpose, apart from
# --- mobile_export's own table, so a slip in one is caught by the other.
GENERAL_ENUMS = {
    "protocol": {"odk_default", "google_sheets"},
    "appTheme": {"system", "light_theme", "dark_theme"},
    "font_size": {"13", "17", "21", "25", "29"},
    "navigation": {"swipe", "buttons", "swipe_buttons"},
    "form_update_mode": {"manual", "previously_downloaded", "match_exactly"},
    "periodic_form_updates_check": {
        "every_fifteen_minutes", "every_one_hour", "every_six_hours", "every_24_hours",
    },
    "autosend": {"off", "wifi_only", "cellular_only", "wifi_and_cellular"},
    "constraint_behavior": {"on_swipe", "on_finalize"},
    "image_size": {"original_image_size", "small", "very_small", "medium", "large"},
    "guidance_hint": {"no", "yes", "yes_collapsed"},
    "basemap_source": {"google", "mapbox", "osm", "usgs", "stamen", "carto"},
    "usgs_map_style": {"topographic", "hybrid", "satellite"},
    "carto_map_style": {"positron", "dark_matter"},
}
GENERAL_STRINGS = {
    "server_url", "username", "password", "selected_google_account", "google_sheets_url", "app_language",
    "google_map_style", "mapbox_map_style", "reference_layer", "metadata_username", "metadata_phonenumber",
    "metadata_email",
}
GENERAL_BOOLEANS = {
    "automatic_update", "hide_old_form_versions", "delete_send", "default_completed", "high_resolution",
    "external_app_recording", "instance_sync", "analytics", "background_location", "background_recording",
}
_ADMIN_NAMES = (  # the reference's list, as it reads there
    "edit_saved send_finalized view_sent get_blank delete_saved change_server change_project_display "
    "change_app_theme change_app_language change_font_size change_navigation maps form_update_mode "
    "periodic_form_updates_check automatic_update hide_old_form_versions change_autosend delete_after_send "
    "change_constraint_behavior high_resolution image_size guidance_hint external_app_recording "
    "instance_form_sync change_form_metadata analytics moving_backwards access_settings change_language "
    "jump_to save_mid save_as_draft finalize_in_form_entry bulk_finalize mark_as_finalized finalize"
)
ADMIN_BOOLEANS = set(_ADMIN_NAMES.split())


def collect_rejections(settings: Any) -> list[str]:
    """Everything Collect would reject or skip in these settings (an empty list: all accepted)."""
    out = []
    if not isinstance(settings, dict):
        return ["not an object"]
    for section in ("general", "admin"):
        if not isinstance(settings.get(section), dict):
            out.append(f"{section} missing")
    for key, value in settings.get("general", {}).items():
        if key in GENERAL_ENUMS:
            ok = value in GENERAL_ENUMS[key]
        elif key in GENERAL_STRINGS:
            ok = isinstance(value, str)
        elif key in GENERAL_BOOLEANS:
            ok = isinstance(value, bool)
        else:
            ok = False
        if not ok:
            out.append(f"general.{key}={value!r}")
    if settings.get("general", {}).get("protocol") == "google_sheets":
        out.append("google_sheets")
    for key, value in settings.get("admin", {}).items():
        if key == "admin_pw":
            ok = isinstance(value, str)
        else:
            ok = key in ADMIN_BOOLEANS and isinstance(value, bool)
        if not ok:
            out.append(f"admin.{key}={value!r}")
    for key, value in settings.get("project", {}).items():
        if key not in ("name", "icon", "color") or not isinstance(value, str):
            out.append(f"project.{key}={value!r}")
    color = settings.get("project", {}).get("color")
    if color is not None and not re.fullmatch(r"#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3}", color):
        out.append(f"project.color={color!r}")
    return out


def decode_png(path: Path) -> str:
    """The text of the single QR code in a PNG, read by zxing-cpp."""
    codes = zxingcpp.read_barcodes(Image.open(path).convert("L"))
    assert len(codes) == 1, f"expected one QR code in {path}, found {len(codes)}"
    assert codes[0].format == zxingcpp.BarcodeFormat.QRCode
    return codes[0].text


def inflate(text: str) -> dict[str, Any]:
    """As Collect reads a code: standard base64, then a zlib stream with its header, then UTF-8 JSON."""
    assert text.startswith("eJ"), "zlib header (0x78 0x9c) base64-encoded"
    raw = base64.b64decode(text, validate=True)
    assert raw[0] == 0x78
    return json.loads(zlib.decompress(raw).decode("utf-8"))


# --- the code a phone scans, against the real server -----------------------------------------------


def test_qr_png_holds_settings_collect_accepts_and_works_for_that_collector_only(
    live_server, tmp_path: Path
) -> None:
    store = live_server.store
    user, first_token = create_collector(store, "Hoàng Thị Mai", [COMMUNE], ["r-open"])
    _, other_token = create_collector(store, "Đỗ Văn Nam", [OTHER_COMMUNE], ["r-open"])

    code = phone_code(store, user.id, live_server.url, admin_pw="24681357")
    png = save_qr(code.payload, tmp_path / "mai.png")
    text = decode_png(png)
    assert text == code.payload
    settings = inflate(text)

    assert collect_rejections(settings) == []
    general, admin, project = settings["general"], settings["admin"], settings["project"]
    assert general["form_update_mode"] == "match_exactly"
    assert general["periodic_form_updates_check"] in GENERAL_ENUMS["periodic_form_updates_check"]
    assert general["autosend"] == "wifi_and_cellular"
    # a sent record leaves the phone (issue 18), and field staff cannot turn that off
    assert general["delete_send"] is True and admin["delete_after_send"] is False
    assert general.get("username", "") == "" and general.get("password", "") == ""  # the token is the key
    assert admin["admin_pw"] == "24681357"
    assert admin["change_server"] is False and admin["change_autosend"] is False
    assert admin["form_update_mode"] is False and admin["change_project_display"] is False
    assert "Xã Phượng Tiến" in project["name"]
    assert len(project["icon"]) == 1
    url = general["server_url"]
    assert re.fullmatch(re.escape(live_server.url) + r"/v1/key/[A-Za-z0-9_-]{64}/projects/1", url)

    phone = CollectClient(url)
    listed = phone.get("/formList")
    assert listed.status_code == 200 and b"<formID>tform</formID>" in listed.content
    iid, xml = instance_xml(name="Người do Mai nhập")
    assert phone.submit(xml).status_code == 201
    assert store.get_submission(iid).collector_id == user.id  # the URL is this collector's, nobody else's

    # Printing the code kept the token `collectors add` made (problem 7): the same URL, still working;
    # only a rotation replaces it, and then the printed card stops working.
    assert first_token in url
    again = phone_code(store, user.id, live_server.url)
    assert again.server_url == url and not again.rotated
    new_token = rotate_token(store, user, actor="test")
    stale = CollectClient(url)
    assert stale.get("/formList").status_code == 403
    stale.close()
    phone.close()
    phone = CollectClient(phone_code(store, user.id, live_server.url).server_url)
    assert new_token in phone.base and phone.get("/formList").status_code == 200
    # Another collector's code carries another URL, and that collector cannot send for this commune.
    other = CollectClient(f"{live_server.url}/v1/key/{other_token}/projects/1")
    _, xml2 = instance_xml(name="Ngoài địa bàn", commune=COMMUNE)
    assert other.submit(xml2).status_code == 403
    other.close()

    # Revoking the collector makes the printed code useless at once.
    revoke_collector(store, user.id)
    assert phone.get("/formList").status_code == 403
    _, xml3 = instance_xml(name="Sau khi thu hồi")
    assert phone.submit(xml3).status_code == 403
    phone.close()


# --- the command -----------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    store = open_store(data)
    try:
        store.put_round(Round(id="r1", name="Rà soát 2026", period="2026", form_ids=["f1_person"],
                              unit_codes=[COMMUNE], state=RoundState.open))
        create_collector(store, "Vũ Thị Lan", [COMMUNE], ["r1"], username="lan")
        gone, _ = create_collector(store, "Người đã nghỉ", [COMMUNE], ["r1"], username="nghi")
        revoke_collector(store, gone.id)
    finally:
        store.close()
    return data


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_qr_command_writes_png_and_svg_and_printing_never_rotates(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RASOAT_PUBLIC_URL", raising=False)
    png, svg = tmp_path / "lan.png", tmp_path / "lan.svg"
    code, out, err = run(capsys, "qr", "lan", "-o", str(png), "--url", "http://192.0.2.7:8000/",
                         "--data", str(data_dir), "--json")
    assert code == 0, err
    first = json.loads(out)
    assert first["rotated"] is False and first["file"] == str(png)
    settings = inflate(decode_png(png))
    assert settings["general"]["server_url"] == first["server_url"]
    assert settings["general"]["server_url"].startswith("http://192.0.2.7:8000/v1/key/")
    assert collect_rejections(settings) == []

    code, out, err = run(capsys, "qr", "lan", "-o", str(svg), "--url", "http://192.0.2.7:8000",
                         "--data", str(data_dir))
    assert code == 0, err
    assert svg.read_text().lstrip().startswith(("<?xml", "<svg")) and "<path" in svg.read_text()
    first_token = first["server_url"].split("/v1/key/")[1].split("/")[0]
    store = open_store(data_dir)
    try:
        assert find_by_token(store, first_token).username == "lan"  # both prints: the same working card
        assert "collector.token_rotate" not in [e.action for e in store.iter_audit()]
    finally:
        store.close()

    # Rotation is its own command; without a terminal it needs --yes.
    code, _, err = run(capsys, "collectors", "rotate", "lan", "--data", str(data_dir))
    assert code == 1 and "--yes" in err
    code, out, err = run(capsys, "collectors", "rotate", "lan", "--yes", "--url", "http://192.0.2.7:8000",
                         "--data", str(data_dir))
    assert code == 0, err
    new_token = out.split("/v1/key/")[1].split("/")[0]
    code, out, _ = run(capsys, "qr", "lan", "-o", str(png), "--url", "http://192.0.2.7:8000",
                       "--data", str(data_dir), "--json")
    assert new_token in json.loads(out)["server_url"]
    store = open_store(data_dir)
    try:
        assert find_by_token(store, first_token) is None and find_by_token(store, new_token).username == "lan"
        assert [e.action for e in store.iter_audit()].count("collector.token_rotate") == 1
    finally:
        store.close()
    code, out, _ = run(capsys, "qr", "--show-admin-pw", "--data", str(data_dir))
    assert code == 0 and out.strip() == settings["admin"]["admin_pw"]


def test_qr_uses_the_address_serve_recorded_and_an_admin_password_file(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Problem 6: no --url needed once serve has recorded where it is; no secret on the command line."""
    from rasoat.core.config import store_public_url

    monkeypatch.delenv("RASOAT_PUBLIC_URL", raising=False)
    monkeypatch.delenv("RASOAT_COLLECT_ADMIN_PW", raising=False)
    store_public_url(data_dir, "http://192.0.2.44:8123")
    secret = tmp_path / "admin-pw.txt"
    secret.write_text("97531086\n")
    png = tmp_path / "lan.png"
    code, out, err = run(capsys, "qr", "lan", "-o", str(png), "--admin-pw-file", str(secret),
                         "--data", str(data_dir), "--json")
    assert code == 0, err
    settings = inflate(decode_png(png))
    assert settings["general"]["server_url"].startswith("http://192.0.2.44:8123/v1/key/")
    assert settings["admin"]["admin_pw"] == "97531086"
    out_html = tmp_path / "cards.html"
    monkeypatch.setenv("RASOAT_COLLECT_ADMIN_PW", "11223344")
    code, _, err = run(capsys, "qr-sheet", "--unit", COMMUNE, "-o", str(out_html), "--data", str(data_dir))
    assert code == 0, err


def test_a_collector_made_before_tokens_were_kept_is_told_to_rotate(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(data_dir)
    try:
        lan = store.get_user_by_name("lan")
        store.kv_delete("collector_token", lan.id)  # as in a store made before this rule
    finally:
        store.close()
    code, _, err = run(capsys, "qr", "lan", "-o", str(tmp_path / "x.png"), "--url", "http://h:1",
                       "--data", str(data_dir))
    assert code == 1 and "rasoat collectors rotate lan" in err and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["qr", "nghi", "-o", "{tmp}/x.png", "--url", "http://h:1"], "revoked"),
        (["qr", "nobody", "-o", "{tmp}/x.png", "--url", "http://h:1"], "No collector 'nobody'"),
        (["qr", "lan", "-o", "{tmp}/x.jpg", "--url", "http://h:1"], "must end in .png, .svg"),
        (["qr", "lan", "-o", "{tmp}/x.png"], "RASOAT_PUBLIC_URL"),
        (["qr", "lan", "-o", "{tmp}/x.png", "--url", "http://h:1/?a=b"], "Invalid server address"),
    ],
)
def test_qr_command_refusals_are_one_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    args: list[str], message: str,
) -> None:
    monkeypatch.delenv("RASOAT_PUBLIC_URL", raising=False)
    code, out, err = run(capsys, *[a.format(tmp=tmp_path) for a in args], "--data", str(data_dir))
    assert code == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_terminal_qr_for_rasoat_serve_decodes_to_minimal_settings() -> None:
    """``rasoat serve`` prints this for the demo collector; redraw its half blocks and scan them."""
    from rasoat.mobile_export.qr import terminal_qr

    url = "http://192.0.2.7:8000/v1/key/" + "A1b2" * 16 + "/projects/1"
    text = terminal_qr(url)
    halves = {" ": (0, 0), "▀": (1, 0), "▄": (0, 1), "█": (1, 1)}  # (top, bottom) drawn in ink
    lines = [line for line in text.splitlines() if line]
    width = max(len(line) for line in lines)
    scale = 6
    img = Image.new("L", (width * scale, len(lines) * 2 * scale), 255)
    for y, line in enumerate(lines):
        for x, ch in enumerate(line):
            for half, ink in enumerate(halves[ch]):
                if ink:
                    top = (2 * y + half) * scale
                    img.paste(0, (x * scale, top, (x + 1) * scale, top + scale))
    codes = zxingcpp.read_barcodes(img)  # terminals show light modules inked: zxing tries both
    assert len(codes) == 1
    settings = inflate(codes[0].text)
    assert collect_rejections(settings) == []
    assert settings["general"]["server_url"] == url and settings["admin"] == {}
    assert settings["general"]["delete_send"] is True  # sent records do not stay on the phone
