"""core.followup on both backends (issue 23): who under management was not visited in a month, from the
versions of the persons entity list the national forms write, and what each version changed."""

from __future__ import annotations

import hashlib
from datetime import date

from assessment_support import opened
from indicators_support import C1, C2, H11
from rasoat.core.followup import data_at, history, monthly_visits, overdue
from rasoat.core.models import FormVersion
from rasoat.core.storage.base import EntityQuery
from rasoat.core.units import get_units
from rasoat.core.xlsform import compile_xlsform


def test_the_months_visits_from_the_entity_versions(tmp_path, backend_url) -> None:
    with opened(tmp_path, backend_url) as store:
        for form_id in ("f1_person", "f12_visit"):  # publishing them makes the persons list
            c = compile_xlsform(f"forms/{form_id}.xlsx")
            store.put_form(FormVersion(form_id=c.form_id, version=c.version, title=c.title,
                                       md5=hashlib.md5(c.xml).hexdigest(), media=list(c.media), source="t"),
                           c.xml, c.schema, {})
        made: dict[str, int] = {}

        def person(key: str, unit: str = H11, **data: str) -> None:
            store.write_entity("persons", key, label=f"Người {key}", data=data, actor="test", unit_code=unit)
            made[key] = 1

        def visit(key: str, day: str, result: str = "present") -> None:
            store.write_entity("persons", key, label=None, data={"last_visit": day, "last_check": result},
                               actor="test", base_version=made[key])
            made[key] += 1

        ids = {k: f"00000000-0000-4000-8000-00000000000{n}" for n, k in enumerate("abcdef", 1)}
        person(ids["a"], mgmt_status="active", term_end="2027-01-15")
        visit(ids["a"], "2026-11-05")
        visit(ids["a"], "2026-12-03", "absent")
        person(ids["b"], mgmt_status="active", term_end="2027-03-01")
        visit(ids["b"], "2026-11-20")
        person(ids["c"], mgmt_status="active", term_end="2026-10-31")  # the term ended before November
        person(ids["d"], mgmt_status="ended", term_end="2027-05-01")  # no longer under management
        person(ids["e"], mgmt_status="active")  # never visited
        person(ids["f"], unit=C2, mgmt_status="active")  # another commune
        units = sorted(get_units().expand([C1]))

        december = monthly_visits(store, units, "2026-12")
        assert [(f.entity.uuid, f.visited, f.last_visit) for f in december] == [
            (ids["b"], False, "2026-11-20"), (ids["e"], False, ""), (ids["a"], True, "2026-12-03")]
        november = {f.entity.uuid: (f.visited, f.last_visit) for f in monthly_visits(store, units, "2026-11")}
        assert november == {ids["a"]: (True, "2026-11-05"), ids["b"]: (True, "2026-11-20"),
                            ids["e"]: (False, "")}
        assert [f.entity.uuid for f in overdue(store, None, "2026-12")] == [
            ids["b"], ids["e"], ids["f"]]  # every unit: the other commune's person too

        steps = history(store.entity_versions(ids["a"]))
        assert [s.version for s in steps] == [1, 2, 3]
        assert steps[0].changes == {"mgmt_status": (None, "active"), "term_end": (None, "2027-01-15"),
                                    "label": (None, f"Người {ids['a']}")}
        assert steps[2].changes == {"last_visit": ("2026-11-05", "2026-12-03"),
                                    "last_check": ("present", "absent")}
        assert data_at(steps, 2)["last_check"] == "present" and steps[2].at.date() <= date.today()


def test_a_census_that_opens_puts_last_years_persons_on_the_list(tmp_path, backend_url) -> None:
    """Next year's census starts from the persons entity list: when it opens, the persons of the roster
    not yet on the list are put there (names sealed, F1's names-free label, filed under their hamlet), so
    F1's persons.csv (the list) holds them; opening again adds nobody twice."""
    import uuid

    from indicators_support import add
    from rasoat.core.protection import keyring, open_entity_values
    from rasoat.core.round_lifecycle import close_round, open_round, reopen_round
    from rasoat.core.rounds import create_round

    with opened(tmp_path, backend_url) as store:
        c = compile_xlsform("forms/f1_person.xlsx")
        store.put_form(FormVersion(form_id=c.form_id, version=c.version, title=c.title,
                                   md5=hashlib.md5(c.xml).hexdigest(), media=list(c.media), source="t"),
                       c.xml, c.schema, {})
        r25 = create_round(store, "Rà soát 2025", "2025", ["f1_person"], [C1], kind="census")
        open_round(store, r25.id, allow_missing_hamlets=True)
        an, binh = str(uuid.uuid4()), str(uuid.uuid4())
        for key, name, born, category in ((an, "Nguyễn Văn An", "1990", "addict"),
                                          (binh, "Trần Văn Bình", "1985", "user"),
                                          ("p-cu", "Khoá cũ", "1970", "user")):  # an old key: not a UUID
            add(store, "f1_person", H11, {"entry_type": "new", "person_key": key, "person_name": name,
                                          "full_name": name, "birth_date": f"{born}-03-15",
                                          "category": category, "present": "yes"}, round_id=r25.id)
        close_round(store, r25.id)
        r26 = create_round(store, "Rà soát 2026", "2026", ["f1_person"], [C1], kind="census")
        opened26 = open_round(store, r26.id, allow_missing_hamlets=True)
        assert opened26.history[-1]["action"] == "rollforward" and opened26.history[-1]["entities"] == 2
        entity = store.get_entity(an)
        assert entity is not None and entity.label == f"Người {an[:8]} (1990)" and entity.unit_code == H11
        assert entity.properties["category"] == "addict" and entity.properties["birth_year"] == "1990"
        assert isinstance(entity.properties["full_name"], dict)  # sealed at rest
        opened_values = open_entity_values(keyring(store), an, entity.properties)
        assert opened_values["full_name"] == "Nguyễn Văn An" and opened_values["display"].startswith(
            "Nguyễn Văn An (1990)")
        assert store.get_entity(binh) is not None
        assert store.count_entities(EntityQuery(list_name="persons")) == 2  # not the old non-UUID key
        close_round(store, r26.id)
        again = reopen_round(store, r26.id, "sửa sai sót")
        assert again.history[-1]["entities"] == 0


def test_an_offline_bundle_carries_the_entity_list_of_the_collectors_units(tmp_path, backend_url) -> None:
    """core.media gives a medium named like an entity list as Collect gets it over the air: the persons of
    the collector's units only, their sealed names opened for that phone."""
    import csv
    import io

    from rasoat.core.entity_media import iter_list_csv
    from rasoat.core.media import collector_media
    from rasoat.core.protection import keyring, seal_entity_values

    with opened(tmp_path, backend_url) as store:
        c = compile_xlsform("forms/f1_person.xlsx")
        form = FormVersion(form_id=c.form_id, version=c.version, title=c.title,
                           md5=hashlib.md5(c.xml).hexdigest(), media=list(c.media), source="t")
        store.put_form(form, c.xml, c.schema, {})
        lst = store.get_entity_list("persons")
        assert lst is not None and {"display", "full_name", "other_name"} <= lst.identifying
        for n, (name, unit) in enumerate((("Nguyễn Văn An", H11), ("Trần Văn Khác", f"{C2}-01")), 1):
            uuid = f"00000000-0000-4000-8000-00000000001{n}"
            data = seal_entity_values(keyring(store), uuid, {"full_name": name, "commune": unit[:5]},
                                      lst.identifying)
            store.write_entity("persons", uuid, label=f"Người {uuid[:8]}", data=data, actor="t",
                               unit_code=unit)
        data = collector_media(store, form, "persons.csv", [H11])
        assert data is not None
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
        assert [(r["full_name"], r["commune"]) for r in rows] == [("Nguyễn Văn An", C1)]
        air = b"".join(iter_list_csv(store, lst, EntityQuery(list_name="persons", unit_codes=[H11])))
        assert data == air  # the same bytes as over the air
        assert collector_media(store, form, "persons.csv", []) == air.split(b"\n", 1)[0] + b"\n"
