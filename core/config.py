"""Where the data lives and which plugins are off: environment first, then ``DATA/rasoat.toml``."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_DIR = "rasoat-data"
CONFIG_FILE = "rasoat.toml"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    disabled_plugins: frozenset[str] = field(default_factory=frozenset)


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``--data`` if given, else ``RASOAT_DATA``, else ``./rasoat-data``."""
    return Path(explicit or os.environ.get("RASOAT_DATA") or DEFAULT_DATA_DIR).resolve()


def load_settings(explicit_data: str | os.PathLike[str] | None = None) -> Settings:
    """Read settings; ``RASOAT_DISABLE_PLUGINS=a,b`` adds to ``disabled_plugins`` in rasoat.toml."""
    root = data_dir(explicit_data)
    file_conf: dict = {}
    conf_path = root / CONFIG_FILE
    if conf_path.is_file():
        with conf_path.open("rb") as fh:
            file_conf = tomllib.load(fh)
    disabled = set(file_conf.get("disabled_plugins", []))
    disabled |= {p.strip() for p in os.environ.get("RASOAT_DISABLE_PLUGINS", "").split(",") if p.strip()}
    return Settings(
        data_dir=root,
        database_url=os.environ.get("RASOAT_DATABASE_URL") or file_conf.get("database_url"),
        disabled_plugins=frozenset(disabled),
    )


PUBLIC_URL_FILE = "public-url.txt"


def stored_public_url(root: Path) -> str | None:
    """The address phones reach, as the last ``rasoat serve`` on this data directory announced it."""
    try:
        url = (root / PUBLIC_URL_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return url or None


def store_public_url(root: Path, url: str) -> None:
    """Record the server's public address so commands that print URLs and QR codes use it."""
    root.mkdir(parents=True, exist_ok=True)  # with PostgreSQL the folder may hold nothing else yet
    tmp = root / (PUBLIC_URL_FILE + ".part")
    tmp.write_text(url.rstrip("/") + "\n", encoding="utf-8")
    tmp.replace(root / PUBLIC_URL_FILE)
