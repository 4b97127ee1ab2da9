"""Province plugins that ship with rasoat; each registers through the ``rasoat`` entry-point group.

``BUILTIN_PROVINCES`` names them, so a test (or an installation for another province) can leave them
out: ``build_manager(disabled=BUILTIN_PROVINCES)`` or ``RASOAT_DISABLE_PLUGINS=thai_nguyen,…``.
"""

BUILTIN_PROVINCES: tuple[str, ...] = ("thai_nguyen", "quang_tri", "quang_ngai", "ho_chi_minh", "hung_yen")
