"""The catalogue of forms from every plugin, and publishing a compiled form into a store.

Every plugin's ``forms`` hook returns paths to XLSForm files (core's national pack is the first
plugin). The catalogue compiles each file once per process (cached by path, size and mtime), maps
form id → (plugin, compiled form, media files), and refuses two plugins that claim one form id.

Media files sit next to the form: for ``DIR/x.xlsx`` with form id ``F``, a referenced ``name.csv``
is looked up in ``DIR/F-media/name.csv`` first (media for that form only), then ``DIR/name.csv``
(shared by every form in the folder, as the location CSVs of the national forms are).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
from rasoat.core.crypto import encrypted_form_ids, public_key
from rasoat.core.models import FormVersion
from rasoat.core.plugins import PluginConflict, get_manager, results_by_plugin
from rasoat.core.protection import form_declaration
from rasoat.core.storage.base import Store
from rasoat.core.xlsform import CompiledForm, FormVersionConflict, XLSFormError, compile_xlsform, publish_form

__all__ = [
    "CatalogueEntry",
    "FormCatalogue",
    "FormVersionConflict",
    "catalogue_form_ids",
    "compile_cached",
    "find_media",
    "publish_catalogue",
    "publish_form",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogueEntry:
    """One form of the catalogue: who provides it, the compiled form, and its media files on disk."""

    plugin: str
    form: CompiledForm
    media_paths: dict[str, Path]  # referenced name → file found next to the form
    missing_media: list[str]  # referenced names found nowhere

    @property
    def form_id(self) -> str:
        return self.form.form_id

    def media_bytes(self) -> dict[str, bytes]:
        """The media files' contents, by name (what publishing stores beside the XForm)."""
        return {name: path.read_bytes() for name, path in self.media_paths.items()}


# --- compiling once per process ------------------------------------------------------------------

_cache: dict[tuple[str, int, int, bool, str | None], CompiledForm] = {}
_cache_lock = threading.Lock()


def compile_cached(
    path: str | os.PathLike[str], validate: bool = False, public_key: str | None = None
) -> CompiledForm:
    """``compile_xlsform`` memoised on (path, size, mtime): an edited file is compiled again."""
    src = Path(path).resolve()
    try:
        st = src.stat()
    except OSError:
        return compile_xlsform(src, validate=validate, public_key=public_key)  # raises the clear error
    key = (str(src), st.st_size, st.st_mtime_ns, validate, public_key)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        return hit
    if not validate:  # a validated compile of the same file is just as good
        with _cache_lock:
            hit = _cache.get((str(src), st.st_size, st.st_mtime_ns, True, public_key))
        if hit is not None:
            return hit
    form = compile_xlsform(src, validate=validate, public_key=public_key)
    with _cache_lock:
        _cache[key] = form
    return form


def find_media(source: Path, form_id: str, names: list[str]) -> tuple[dict[str, Path], list[str]]:
    """Locate each media name: ``<dir>/<form_id>-media/<name>``, else ``<dir>/<name>``."""
    folder = Path(source).parent
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in names:
        if "/" in name or "\\" in name or name.startswith("."):
            missing.append(name)  # never let a form name a path outside its folder
            continue
        for candidate in (folder / f"{form_id}-media" / name, folder / name):
            if candidate.is_file():
                found[name] = candidate
                break
        else:
            missing.append(name)
    return found, missing


# --- the catalogue -------------------------------------------------------------------------------


class FormCatalogue:
    """Every form of every loaded plugin, by form id (core's national forms included)."""

    def __init__(self, pm: pluggy.PluginManager | None = None, validate: bool = False) -> None:
        if pm is None:
            pm = get_manager()
        self._entries: dict[str, CatalogueEntry] = {}
        files = self.form_files(pm)
        # ODK Validate is a JVM per form: run two at a time when validating.
        with ThreadPoolExecutor(max_workers=2 if validate else 1) as pool:
            compiled = list(pool.map(lambda item: _compile_for(item[0], item[1], validate), files))
        for (plugin, path), form in zip(files, compiled, strict=True):
            other = self._entries.get(form.form_id)
            if other is not None:
                code = "plugin.form_twice_in" if other.plugin == plugin else "plugin.form_twice"
                raise PluginConflict(code, form=form.form_id, first=other.plugin, plugin=plugin,
                                     source=other.form.source, path=path)
            media, missing = find_media(path, form.form_id, form.media)
            self._entries[form.form_id] = CatalogueEntry(plugin, form, media, missing)
        self._entries = dict(sorted(self._entries.items(), key=lambda kv: _natural(kv[0])))

    @staticmethod
    def form_files(pm: pluggy.PluginManager) -> list[tuple[str, Path]]:
        """(plugin name, XLSForm path) for every path a plugin's ``forms`` hook returned."""
        out: list[tuple[str, Path]] = []
        for plugin, paths in results_by_plugin(pm, "forms"):  # validated: list[Path]
            out.extend((plugin, path) for path in paths)
        return out

    def __iter__(self) -> Iterator[CatalogueEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, form_id: object) -> bool:
        return form_id in self._entries

    def __getitem__(self, form_id: str) -> CatalogueEntry:
        return self._entries[form_id]

    def get(self, form_id: str) -> CatalogueEntry | None:
        return self._entries.get(form_id)

    def ids(self) -> list[str]:
        return list(self._entries)

    def describe(self) -> list[dict[str, Any]]:
        """One plain dict per form, for ``rasoat forms list --json`` and ``rasoat forms show``: with the
        identifying fields the form declares (sealed at rest, core.protection) and its ID-number field."""

        return [
            {
                "form_id": e.form.form_id,
                "version": e.form.version,
                "title": e.form.title,
                "plugin": e.plugin,
                "source": str(e.form.source),
                "md5": e.form.md5,
                "media": e.form.media,
                "missing_media": e.missing_media,
                "languages": e.form.languages,
                "encrypted": e.form.encrypted,
                "identifying": sorted(declared.identifying),
                "id_field": declared.id_field,
            }
            for e in self
            for declared in [form_declaration(e.form)]
        ]


def _compile_for(plugin: str, path: Path, validate: bool) -> CompiledForm:
    try:
        return compile_cached(path, validate=validate)
    except XLSFormError as exc:
        raise XLSFormError(
            exc.file, exc.detail, sheet=exc.sheet, row=exc.row, vi=f"{exc.vi} (plugin '{plugin}')"
        ) from None


def _natural(text: str) -> list[Any]:
    """f2 before f10: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


# --- the catalogue and the store ----------------------------------------------------------------


def catalogue_form_ids(pm: pluggy.PluginManager | None = None) -> list[str]:
    """The ids of every form the loaded plugins provide."""
    return FormCatalogue(pm).ids()


def publish_catalogue(store: Store, catalogue: FormCatalogue | None = None) -> list[FormVersion]:
    """Publish each catalogue form whose version the store lacks (with its media); returns those published.

    A catalogue form whose version is already stored with other bytes is logged and skipped, so a
    server still starts; ``rasoat forms publish`` reports the same conflict as an error.

    Forms named by ``core.crypto.encrypted_form_ids`` (default: none) are published with the project's
    public key; while the project has no key they are not published at all (logged), so person records
    are never collected in plaintext by accident.
    """

    catalogue = catalogue if catalogue is not None else FormCatalogue()
    published = []
    encrypted = set(encrypted_form_ids(store))
    key = public_key(store) if encrypted else None
    for entry in catalogue:
        form = entry.form
        if form.form_id in encrypted:
            if key is None:
                log.warning("form %s not published: it is to be encrypted and the project has no key "
                            "(rasoat keys init)", form.form_id)
                continue
            form = compile_cached(form.source, public_key=key)
        stored = store.get_form(form.form_id, form.version)
        if stored is not None:
            if stored.md5 != form.md5:
                log.warning("%s", FormVersionConflict.for_form(form))
            continue
        if entry.missing_media:
            log.warning("form %s: missing media %s", form.form_id, ", ".join(entry.missing_media))
        published.append(publish_form(store, form, entry.media_bytes(), entry.plugin))
    return published
