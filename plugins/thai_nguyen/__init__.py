"""Thái Nguyên (province 19): the Phượng Tiến plan for Đề án 03/ĐA-TU and NQ 04-NQ/TU, 2026–2030.

Adds the xóm checklist with the Thái Nguyên drug-free criteria (form ``tn_xom_checklist``; items in
``checklist.yaml``), the plan's targets as indicators (``indicators.yaml``: 100 % of households pledged,
100 % of persons recorded, > 90 % supported, 100 % legal aid, 100 % of xóm with mailbox and hotline,
Phượng Tiến drug-free in 2027), a sample xóm list for Xã Phượng Tiến (05563), and a check that a
Thái Nguyên F1 record fills in the service and legal-aid answers the plan measures.
Source: ../shared/seeds/004_b07414d5fa91eee2.txt. Registered through the ``rasoat`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rasoat import hookimpl
from rasoat.core.plugin_folder import PluginFolder

__version__ = "1.0.0"

HERE = Path(__file__).resolve().parent
_folder = PluginFolder(HERE)
PROVINCE = "19"

plan_info, forms, indicators, hamlets = _folder.hooks()


@hookimpl
def checklists() -> list[dict[str, Any]]:
    return [_folder.read("checklist.yaml")]


@hookimpl
def check_submission(form_id: str, fields: dict[str, Any]) -> list[str] | None:
    """Thái Nguyên measures support (> 90 %) and legal aid (100 %) on every person present: ask for both."""
    if form_id != "f1_person" or fields.get("province") != PROVINCE or fields.get("present") != "yes":
        return None
    problems = []
    if not fields.get("services"):
        problems.append(
            "Thái Nguyên: chưa ghi dịch vụ tư vấn, hỗ trợ đã nhận trong kỳ (chọn 'không' nếu chưa có) / "
            "services received in the period are not filled in (choose 'none' if there were none)"
        )
    if fields.get("legal_aid_requested") == "yes" and not fields.get("legal_aid_provided"):
        problems.append(
            "Thái Nguyên: có yêu cầu trợ giúp pháp lý nhưng chưa ghi đã được trợ giúp hay chưa / "
            "legal aid was requested but whether it was given is not filled in"
        )
    return problems or None
