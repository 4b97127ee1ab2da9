"""Offline bundle: a collector's blank forms and their media as a zip, for places without signal.

Layout is the one Collect's forms folder uses, so the ``forms`` folder of the zip is copied as it is
(over USB) into ``Android/data/org.odk.collect.android/files/projects/<project>/forms/``::

    forms/f1_person.xml
    forms/f1_person-media/hamlets.csv
    forms/f1_person-media/persons.csv
    cai-dat-collect.png the collector's Collect settings as a QR code: the very settings ``rasoat qr``
                        prints (core.phone_setup.phone_code), so the phone sends to the server, keeps its
                        forms matched, and deletes each record once sent (a lost phone holds no person
                        record that was sent); Collect imports it from the picture
    HUONG-DAN.txt       instructions in Vietnamese (and English)
    bundle.json         what is inside: collector, forms, versions, MD5s, the settings without the admin
                        password (for officers and tests)

Collect registers forms it finds in that folder the next time its blank-form list is opened. The
forms are the ones the server would list for the collector (``core.rounds.assigned_forms``) and the media
are the same bytes the server would send them (``core.media``), so when the phone later reaches the
server, nothing is downloaded twice.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rasoat.core.collectors import CollectorError
from rasoat.core.media import ROSTER_MEDIA, collector_media
from rasoat.core.models import User
from rasoat.core.rollforward import record_roster_download
from rasoat.core.rounds import assigned_forms
from rasoat.core.storage.base import Store
from rasoat.mobile_export.phone_setup import phone_code, place_name
from rasoat.mobile_export.qr import make_qr

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
FORMS_DIR = "forms"
SETTINGS_PNG = "cai-dat-collect.png"

INSTRUCTIONS = """\
GÓI BIỂU MẪU NGOẠI TUYẾN CHO ODK COLLECT
Người thu thập: {name} ({username})
Địa bàn: {place}
Tạo lúc: {made}

Cách cài (không cần mạng):
1. Cài ODK Collect, rồi nạp cài đặt: chép ảnh "{settings}" vào điện thoại, trong Collect chọn
   Cài đặt dự án > Cấu hình lại bằng mã QR > (⋮) Nhập mã QR, chọn ảnh đó (hoặc quét mã in trên
   thẻ của đồng chí: cùng cài đặt). Điện thoại nhớ máy chủ để gửi sau, và tự xoá mỗi bản ghi
   khi đã gửi xong, nên hồ sơ người đã gửi không còn đọc được trên máy nếu mất máy.
2. Nối điện thoại với máy tính bằng cáp USB, chọn "Truyền tệp".
3. Chép toàn bộ nội dung thư mục "forms" trong gói này vào thư mục
   Android/data/org.odk.collect.android/files/projects/<mã dự án>/forms/
   (mỗi tệp .xml cùng thư mục "-media" đi kèm của nó).
4. Mở ODK Collect, chọn "Điền biểu mẫu mới": các biểu mẫu hiện ra.
5. Điền biểu mẫu, bấm "Hoàn tất". Khi có mạng, Collect tự gửi; hoặc chép thư mục
   "instances" về máy tính để cán bộ nhập bằng lệnh: rasoat import-instances THƯ-MỤC

OFFLINE FORM BUNDLE FOR ODK COLLECT
First load the settings: copy "{settings}" to the phone, then in Collect choose Project settings >
Reconfigure with QR code > (⋮) Import QR code and pick that picture (or scan the printed card: the
same settings). The phone then knows where to send, and deletes each record once it is sent.
Copy the contents of the "forms" folder into
Android/data/org.odk.collect.android/files/projects/<project id>/forms/ on the phone, then open
"Start new form". Finished forms are sent when there is signal, or copy the phone's "instances"
folder back and run: rasoat import-instances DIR
"""


@dataclass
class BundleReport:
    path: Path
    collector_id: str
    forms: list[dict[str, Any]] = field(default_factory=list)  # form_id, version, md5, media{name: md5}
    missing_media: list[str] = field(default_factory=list)  # "form_id/name" the store does not have


collector_forms = assigned_forms  # the latest version of each form in the open rounds naming the collector


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _entry(name: str, when: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def build_bundle(
    store: Store, user: User, out: str | Path, base_url: str, now: datetime | None = None, actor: str = "",
    admin_pw: str | None = None,
) -> BundleReport:
    """Write the zip for ``user``, whose settings point at ``base_url`` (the server's address phones
    reach); refuses a revoked collector or one with no forms to carry. A roster in it is audited as
    taken by ``actor`` (the operator; default the collector) for that collector."""
    import io


    if not user.active:
        raise CollectorError("collector.revoked", username=user.username)
    forms = collector_forms(store, user)
    if not forms:
        raise CollectorError("collector.no_open_round", username=user.username)
    code = phone_code(store, user.id, base_url, admin_pw=admin_pw, actor=actor or user.username)
    png = io.BytesIO()
    make_qr(code.payload).save(png, kind="png", scale=8, border=4)
    when = (now or datetime.now(LOCAL_TZ)).astimezone(LOCAL_TZ)
    out = Path(out)
    report = BundleReport(path=out, collector_id=user.id)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w") as zf:
        for form in forms:
            xml = store.form_xml(form.form_id, form.version)
            zf.writestr(_entry(f"{FORMS_DIR}/{form.form_id}.xml", when), xml)
            media_md5: dict[str, str] = {}
            for name in form.media:
                data = collector_media(store, form, name, user.unit_codes)
                if data is None:
                    report.missing_media.append(f"{form.form_id}/{name}")
                    continue
                zf.writestr(_entry(f"{FORMS_DIR}/{form.form_id}-media/{name}", when), data)
                media_md5[name] = _md5(data)
                if name == ROSTER_MEDIA:
                    record_roster_download(store, actor or user.username, data, "bundle",
                                           form_id=form.form_id, collector=user.username)
            report.forms.append(
                {"form_id": form.form_id, "version": form.version, "title": form.title, "md5": _md5(xml),
                 "media": media_md5}
            )
        zf.writestr(_entry(SETTINGS_PNG, when), png.getvalue())
        text = INSTRUCTIONS.format(
            name=user.display_name or user.username, username=user.username,
            place=place_name(user.unit_codes), made=when.strftime("%H:%M %d/%m/%Y"), settings=SETTINGS_PNG,
        )
        zf.writestr(_entry("HUONG-DAN.txt", when), text.encode("utf-8"))
        admin = {k: v for k, v in code.settings["admin"].items() if k != "admin_pw"}
        shown = {**code.settings, "admin": admin}
        summary = {"collector": {"id": user.id, "username": user.username, "units": user.unit_codes},
                   "made_at": when.isoformat(), "forms": report.forms, "collect_settings": shown}
        zf.writestr(_entry("bundle.json", when), json.dumps(summary, ensure_ascii=False, indent=2))
    tmp.replace(out)
    return report
