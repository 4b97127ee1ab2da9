"""Unit levels, names and ancestor chains for the engine, cached: it asks the same few thousand codes
millions of times. Codes missing from the registry still roll up by their shape ("05563-07" → "05563")."""

from __future__ import annotations

from rasoat.core.indicators.models import Level
from rasoat.core.units import UnitRegistry


def level_from_code(code: str) -> Level | None:
    """The level a code's shape says: "19" province, "05563" commune, "05563-01" hamlet."""
    if "-" in code:
        return Level.hamlet
    if code.isdigit():
        return {2: Level.province, 5: Level.commune}.get(len(code))
    return None


class UnitIndex:
    def __init__(self, registry: UnitRegistry | None) -> None:
        self.registry = registry
        self._chain: dict[str, tuple[str, ...]] = {}
        self._level: dict[str, Level | None] = {}
        self._below: dict[tuple[str, Level], int | None] = {}

    def level(self, code: str) -> Level | None:
        if code not in self._level:
            unit = self.registry.get(code) if self.registry is not None else None
            self._level[code] = Level(unit.level) if unit is not None else level_from_code(code)
        return self._level[code]

    def chain(self, code: str) -> tuple[str, ...]:
        """The code and every unit above it, lowest first: hamlet → (hamlet, commune, province)."""
        found = self._chain.get(code)
        if found is not None:
            return found
        reg = self.registry
        if reg is not None and code in reg:
            found = (code, *(u.code for u in reg.ancestors(code)))
        elif "-" in code:  # a hamlet the registry does not list still belongs to its commune
            found = (code, *self.chain(code.split("-", 1)[0]))
        else:
            found = (code,)
        self._chain[code] = found
        return found

    def at_level(self, code: str, level: Level) -> str | None:
        for c in self.chain(code):
            if self.level(c) is level:
                return c
        return None

    def name(self, code: str) -> str:
        unit = self.registry.get(code) if self.registry is not None else None
        return unit.name if unit is not None else code

    def count_at(self, code: str, level: Level) -> int | None:
        """How many units of ``level`` the unit holds (itself included); None if the registry lacks it."""
        key = (code, level)
        if key not in self._below:
            reg = self.registry
            if reg is None or code not in reg:
                self._below[key] = None
            else:
                own = 1 if self.level(code) is level else 0
                self._below[key] = own + sum(1 for u in reg.descendants(code) if u.level == level.value)
        return self._below[key]

    def below(self, code: str, level: Level) -> list[str]:
        """Codes of ``level`` inside the unit (registry order); the unit itself if it is of that level."""
        if self.level(code) is level:
            return [code]
        reg = self.registry
        if reg is None or code not in reg:
            return []
        return [u.code for u in reg.descendants(code) if u.level == level.value]
