"""TP Hồ Chí Minh (province 79; former Bà Rịa – Vũng Tàu): plan 208/KH-UBND for "Dự án 3", 2022–2025.

Adds the conditional-business venues register (form ``hcm_venue``: karaoke, bars, massage, lodging,
pawnshops — one record per check, keyed by the security-conditions certificate number), the plan's
indicators (``indicators.yaml``: no venue used for drugs, every violating venue dealt with, every
psychotic user under management), and a sample khu phố list for Phường Vũng Tàu (26506).
Source: ../shared/seeds/001_ac66488a0c2c4e20.txt (truncated). Registered through the ``rasoat``
entry-point group.
"""

from __future__ import annotations

from pathlib import Path

from rasoat.core.plugin_folder import PluginFolder

__version__ = "1.0.0"

HERE = Path(__file__).resolve().parent
_folder = PluginFolder(HERE)
PROVINCE = "79"

plan_info, forms, indicators, hamlets = _folder.hooks()
