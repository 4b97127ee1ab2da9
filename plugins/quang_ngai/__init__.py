"""Quảng Ngãi (province 51; former Kon Tum): plan 3959/KH-UBND, 2021–2025.

Adds the cross-border and courier tip register (form ``qn_tip``), the plan's indicators
(``indicators.yaml``: 100 % of such tips verified, > 90 % of drug cases resolved, the two watch-list areas
— Phường Kon Tum ← Thống Nhất and Xã Bờ Y — not complex again), and sample hamlet lists for Phường Kon Tum
(23293) and Xã Bờ Y (23377). Source: ../shared/seeds/002_fc385e1f452f2e11.txt.
Registered through the ``rasoat`` entry-point group.
"""

from __future__ import annotations

from pathlib import Path

from rasoat.core.plugin_folder import PluginFolder

__version__ = "1.0.0"

HERE = Path(__file__).resolve().parent
_folder = PluginFolder(HERE)
PROVINCE = "51"

plan_info, forms, indicators, hamlets = _folder.hooks()
