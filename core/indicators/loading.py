"""Read indicator definitions from what plugins give (models, dicts, packs, YAML/JSON files) and merge them.

A plugin's ``indicators`` hook may return, in a list: ``Indicator`` objects, dicts, a pack dict
``{"source": {...}, "indicators": [...]}``, or a path to a ``.yaml``/``.yml``/``.json`` file holding
either. Two plugins declaring the same id is a conflict naming both; replacing a definition must be
explicit: ``{"overrides": "nat_services_reach", "target": {...}}`` takes the original and replaces the
keys it gives (so a province can change only a threshold).
"""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pluggy
import yaml
from pydantic import ValidationError
from rasoat.core.indicators.models import Indicator
from rasoat.core.plans import plans
from rasoat.core.plugins import PluginConflict, get_manager, results_by_plugin, unique_by_key
from rasoat.core.problems import Problem, Words

WHAT: Words = ("Chỉ tiêu", "Indicator")
WHAT_OVERRIDES: Words = ("Chỉ tiêu (ghi đè)", "Indicator (overrides)")


# libyaml's safe loader parses the definition files several times faster than the pure-Python one, and
# every indicator page reads them (collect); the pure-Python loader where libyaml is missing
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class IndicatorError(Problem, ValueError):
    """A definition that does not load (bad file, bad field), named by plugin and id."""


# (path, size, mtime) → the parsed file, pickled: each caller gets its own copy to change
_parsed: dict[tuple[str, int, int], bytes] = {}
_parsed_lock = threading.Lock()


def parse_data_file(path: Path) -> Any:
    """A YAML or JSON data file of a plugin, parsed once per version of the file: the indicator, overview
    and plugin pages read every plugin's definitions on each visit (about 0.3 s of YAML each time)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _parsed_lock:
        kept = _parsed.get(key)
    if kept is None:
        text = path.read_text(encoding="utf-8")
        value = json.loads(text) if path.suffix.lower() == ".json" else yaml.load(text, Loader=YAML_LOADER)
        kept = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        with _parsed_lock:
            _parsed[key] = kept
    return pickle.loads(kept)  # noqa: S301 - bytes this process pickled itself


def read_file(path: str | Path) -> Any:
    """Parse a YAML or JSON definition file."""
    p = Path(path)
    try:
        return parse_data_file(p)
    except OSError as exc:
        raise IndicatorError("indicator.unreadable", path=p, detail=exc) from exc
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise IndicatorError("indicator.bad_file", path=p, detail=exc) from exc


def raw_definitions(item: Any, source: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Flatten one hook answer into indicator dicts (not yet validated, so overrides can merge)."""
    if item is None:
        return []
    if isinstance(item, Indicator):
        return [item.model_dump(exclude_defaults=True)]
    if isinstance(item, str | Path):
        return raw_definitions(read_file(item), source)
    if isinstance(item, list | tuple):
        return [d for sub in item for d in raw_definitions(sub, source)]
    if isinstance(item, dict):
        if "indicators" in item and "id" not in item:  # a pack: shared source, then the list
            pack_source = {**(source or {}), **(item.get("source") or {})}
            return raw_definitions(item["indicators"], pack_source or None)
        d = dict(item)
        if source and "source" not in d and not d.get("overrides"):
            d["source"] = dict(source)
        return [d]
    raise IndicatorError("indicator.not_a_definition", type=type(item).__name__)


def build(d: dict[str, Any], plugin: str = "") -> Indicator:
    """Validate one dict; the error names the plugin and the indicator id."""
    try:
        return Indicator.model_validate(d)
    except ValidationError as exc:
        where = f"{plugin}: " if plugin else ""
        errors = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise IndicatorError("indicator.invalid", where=where, id=d.get("id", "?"), errors=errors) from exc


def load(items: Any) -> list[Indicator]:
    """Definitions from one source (a file, a pack, a list), as a single plugin would give them."""
    return merge([("", d) for d in raw_definitions(items)])


def merge(pairs: Iterable[tuple[str, dict[str, Any]]]) -> list[Indicator]:
    """Apply the id rules across plugins: duplicates conflict, ``overrides`` replaces explicitly."""
    plain: list[tuple[str, dict[str, Any]]] = []
    overriding: list[tuple[str, dict[str, Any]]] = []
    for plugin, d in pairs:
        (overriding if d.get("overrides") else plain).append((plugin, d))
    _no_repeats_within(plain, "id")
    base = unique_by_key(plain, "id", WHAT)
    _no_repeats_within(overriding, "overrides")
    replacing = unique_by_key(overriding, "overrides", WHAT_OVERRIDES)
    merged: dict[str, tuple[str, dict[str, Any]]] = dict(base)
    for target, (plugin, d) in replacing.items():
        if target not in base:
            raise IndicatorError("indicator.unknown_override", plugin=plugin, target=target)
        new = {**base[target][1], **d}
        new["id"] = d.get("id", target)
        if new["id"] != target and new["id"] in merged:
            other = merged[new["id"]][0]
            raise PluginConflict(
                "plugin.defined_twice", plugin=plugin, what=WHAT, value=new["id"], first=other
            )
        # keep the replaced indicator's place, so reports keep their order
        merged = {(new["id"] if k == target else k): ((plugin, new) if k == target else v)
                  for k, v in merged.items()}
    built = [build(d, plugin) for plugin, d in merged.values()]
    return sorted(built, key=lambda i: i.order)  # stable: declaration order within the same ``order``


def _no_repeats_within(pairs: list[tuple[str, dict[str, Any]]], key: str) -> None:
    seen: set[tuple[str, Any]] = set()
    for plugin, d in pairs:
        k = (plugin, d.get(key))
        if k in seen:
            raise PluginConflict("plugin.declared_twice_in", plugin=plugin, what=WHAT, value=d.get(key))
        seen.add(k)


def collect(pm: pluggy.PluginManager | None = None) -> list[Indicator]:
    """Every indicator the loaded plugins declare, after overrides (the national pack comes from core)."""
    if pm is None:
        pm = get_manager()

    province_plans = plans(pm)
    pairs = [
        (plugin, _scoped(d, province_plans.get(plugin)))
        for plugin, answer in results_by_plugin(pm, "indicators")
        for d in raw_definitions(answer)
    ]
    return merge(pairs)


def _scoped(d: dict[str, Any], plan: Any) -> dict[str, Any]:
    """A province plugin's indicator belongs to its plan's province (unless it names one itself), so it is
    computed and shown only for units there; core's pack (no plan) applies everywhere."""
    if plan is None or d.get("overrides"):
        return d
    target = d.get("target")
    if isinstance(target, dict) and target.get("deadline") and "start" not in target and plan.period_from:
        d = {**d, "target": {**target, "start": plan.period_from}}  # reach-by: counted from the plan's start
    return {"province": plan.province, "plan": plan.label, **d}
