"""Who may enter an assessment figure (population, key route) is core's rule, ``signoff.set_fact``: a
commune's officer for their commune, the province's officers for the province and its communes, no one
else. The web page and ``rasoat assessment population|route set --as`` both go through it; each figure
stored is audited once."""

from __future__ import annotations

from pathlib import Path

import pytest
from assessment_support import ITS_COMMUNE, LAI_CHAU, YEAR, opened
from rasoat.core.assessment import signoff
from rasoat.core.assessment.facts import get_facts
from rasoat.core.cli import main as cli_main
from rasoat.core.scope import ScopeError
from rasoat.core.units import get_units
from rasoat.core.users import create_user

SOURCE, AS_OF = "CSDL quốc gia về dân cư", "2026-11-30"


def test_who_may_enter_a_figure(tmp_path: Path, backend_url: str | None) -> None:
    neighbour = next(u.code for u in get_units().communes(LAI_CHAU) if u.code != ITS_COMMUNE)
    with opened(tmp_path, backend_url) as store:
        xa = create_user(store, "xa", "mật-khẩu-xã-1", "commune_officer", [ITS_COMMUNE])
        tinh = create_user(store, "tinh", "mật-khẩu-tỉnh-1", "province_manager", [LAI_CHAU])
        khac = create_user(store, "khac", "mật-khẩu-khác-1", "province_manager", ["19"])
        xem = create_user(store, "xem", "mật-khẩu-xem-1", "viewer", [ITS_COMMUNE])

        signoff.set_fact(store, xa, YEAR, ITS_COMMUNE, "population", "9 500", SOURCE, AS_OF)
        signoff.set_fact(store, tinh, YEAR, neighbour, "population", 8000, SOURCE, AS_OF)
        signoff.set_fact(store, tinh, YEAR, LAI_CHAU, "on_route", "có", "QĐ 12/QĐ-UBND", AS_OF)
        for user, unit in [(xa, neighbour), (xa, LAI_CHAU), (khac, ITS_COMMUNE), (xem, ITS_COMMUNE)]:
            with pytest.raises(ScopeError) as refused:
                signoff.set_fact(store, user, YEAR, unit, "on_route", "no", SOURCE, AS_OF)
            assert (refused.value.code, refused.value.status) == ("scope.may_not_set_fact", 403)
            assert "on_route" not in get_facts(store, YEAR, unit) or unit == LAI_CHAU

        assert get_facts(store, YEAR, ITS_COMMUNE)["population"]["value"] == 9500
        assert get_facts(store, YEAR, neighbour)["population"]["by"] == "tinh"
        assert get_facts(store, YEAR, LAI_CHAU)["on_route"]["value"] == 1
        entered = [(e.actor, e.target) for e in store.iter_audit() if e.action == "assessment.fact"]
        assert entered == [("xa", ITS_COMMUNE), ("tinh", neighbour), ("tinh", LAI_CHAU)]


def test_the_cli_enters_a_figure_as_an_officer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert cli_main(["init", str(data)]) == 0
    with opened(tmp_path, None) as store:
        create_user(store, "xa", "mật-khẩu-xã-1", "commune_officer", [ITS_COMMUNE])
    base = ["--data", str(data), "--year", str(YEAR), "--source", SOURCE, "--as-of", AS_OF]
    assert cli_main(["assessment", "population", "set", ITS_COMMUNE, "12000", *base, "--as", "xa"]) == 0
    assert cli_main(["assessment", "route", "set", LAI_CHAU, "yes", *base, "--as", "xa"]) == 1
    assert "xa (commune_officer) không được nhập số liệu của 12" in capsys.readouterr().err
    with opened(tmp_path, None) as store:
        assert get_facts(store, YEAR, ITS_COMMUNE)["population"]["by"] == "xa"
        assert get_facts(store, YEAR, LAI_CHAU) == {}
