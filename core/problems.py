"""Every error a user can act on, in one catalogue, as ODK Central's ``lib/util/problem.js`` keeps its own.

A ``Problem`` has a stable **code** (``form.not_found``), the HTTP **status** that code answers with, the
**Central code** where the Central API subset answers with one (``404.1``; pyodk tells errors apart by
it), and a **message** in Vietnamese and English with named parameters (``{form}``). The messages live
in gettext message catalogues, ``core/locale/{vi,en}/LC_MESSAGES/errors.po``, read with Babel; the
message id is the code, so rewording a message never changes what programs match on.

Each surface renders a Problem in one place: the CLI (``core.cli``: one "vi / en" line on stderr, exit
code 1), the OpenRosa responses (``server.openrosa``), rasoat's JSON API (``server.errors``:
``{"error": …, "code": …}``), the Central API (``server.central.problems``: ``{"message": …, "code": 404.1}``)
and the web pages (``server.web.base``: one language, the page's). ``docs/errors.md`` lists every code
(``python -m rasoat.core.problems`` writes it; ``tests/test_problems.py`` checks it has not drifted).

Domain errors that callers catch by type (``RoundError``, ``ScopeError``…) are subclasses, raised with a
code of their own (``RoundError("round.no_round", round="r1")``). A parameter that is itself a Problem (the
error that caused this one) or ``Words`` (a bilingual label) is said in the message's language.

The one path for a text rasoat does not write, ``Problem.with_text(code, text)``: a ValueError's message
from the indicator engine, Central-style request validation, a plugin's or pyxform's text. Its code's
message is ``{vi}`` / ``{en}``: the text, split into its two languages when it is "Việt / English". The
XLSForm errors, still raising their own "Việt / English" text, use their class's ``default_code`` the
same way until they get codes.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

LANGS = ("vi", "en")
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "errors"


@dataclass(frozen=True)
class Kind:
    """What a code means on the wire: its HTTP status and, where the Central API answers with it,
    Central's own code (a number ``status.n``)."""

    status: int
    central: str | None = None


# The catalogue: code → status (and Central's code). Messages: core/locale/*/LC_MESSAGES/errors.po.
CATALOGUE: dict[str, Kind] = {
    # the request itself
    "request.unparseable": Kind(400, "400.1"),
    "request.missing_params": Kind(400, "400.3"),
    "request.invalid_value": Kind(400, "400.11"),
    "request.not_multipart": Kind(400, "400.1"),
    "request.bad_multipart": Kind(400, "400.1"),
    "request.bad_form": Kind(400, "400.1"),
    "request.length_required": Kind(411),
    "request.too_large": Kind(413, "413.1"),
    "request.not_acceptable": Kind(406, "406.1"),
    "request.unsupported_media": Kind(415, "415.1"),
    "request.csrf": Kind(403, "403.1"),
    "resource.not_found": Kind(404, "404.1"),
    "request.no_route": Kind(404, "404.1"),
    "request.method_not_allowed": Kind(405, "405.1"),
    "request.invalid": Kind(400, "400.1"),
    "request.unexpected_keys": Kind(400, "400.31"),
    "project.not_found": Kind(404, "404.1"),
    "feature.not_implemented": Kind(501, "501.1"),
    # who is asking
    "auth.required": Kind(401, "401.2"),
    "auth.failed": Kind(401, "401.2"),
    "auth.https_only": Kind(401, "401.3"),
    "auth.token_revoked": Kind(403, "403.1"),
    "auth.forbidden": Kind(403, "403.1"),
    "auth.throttled": Kind(429, "429.1"),
    "auth.refused": Kind(401, "401.2"),
    "auth.disabled": Kind(403, "403.1"),
    "auth.token_refused": Kind(403, "403.1"),
    "auth.https_only_refused": Kind(403, "403.1"),
    "scope.round_not_yours": Kind(403, "403.1"),
    "scope.not_own_account": Kind(403, "403.1"),
    "scope.not_own_disable": Kind(403, "403.1"),
    "scope.collector_outside": Kind(403, "403.1"),
    "scope.no_units": Kind(403, "403.1"),
    "scope.review_unreadable": Kind(403, "403.1"),
    "scope.collectors_outside": Kind(403, "403.1"),
    "scope.province_signoff_only": Kind(403, "403.1"),
    "scope.may_not_propose": Kind(403, "403.1"),
    "scope.may_not_set_fact": Kind(403, "403.1"),
    "scope.no_view": Kind(403, "403.1"),
    "scope.no_view_personal": Kind(403, "403.1"),
    "scope.no_review": Kind(403, "403.1"),
    "scope.no_edit": Kind(403, "403.1"),
    "scope.no_export": Kind(403, "403.1"),
    "scope.no_decrypt": Kind(403, "403.1"),
    "scope.no_manage_rounds": Kind(403, "403.1"),
    "scope.no_manage_collectors": Kind(403, "403.1"),
    "scope.no_publish_forms": Kind(403, "403.1"),
    "scope.no_manage_users": Kind(403, "403.1"),
    "scope.no_manage_keys": Kind(403, "403.1"),
    "scope.no_view_audit": Kind(403, "403.1"),
    "scope.no_manage_officers": Kind(403, "403.1"),
    "scope.no_manage_unit_lists": Kind(403, "403.1"),
    "scope.unit_outside": Kind(403, "403.1"),
    "scope.submission_outside": Kind(403, "403.1"),
    "scope.entity_outside": Kind(403, "403.1"),
    "scope.round_outside": Kind(403, "403.1"),
    "scope.province_outside": Kind(403, "403.1"),
    "scope.draft_outside": Kind(403, "403.1"),
    "scope.no_identities": Kind(403, "403.1"),
    "scope.choose_unit": Kind(403, "403.1"),
    "scope.may_not_manage": Kind(403, "403.1"),
    "scope.unknown_unit": Kind(400, "400.11"),
    # forms
    "form.not_found": Kind(404, "404.1"),
    "form.version_unknown": Kind(404, "404.6"),
    "form.not_available": Kind(404, "404.1"),
    "form.no_file": Kind(404, "404.1"),
    "entity_list.not_available": Kind(404, "404.1"),
    "form.version_exists": Kind(409, "409.6"),
    "form.version_taken": Kind(409, "409.6"),
    "form.id_mismatch": Kind(400, "400.8"),
    "xlsform.invalid": Kind(422, "400.15"),
    "entity.version_unsupported": Kind(422, "400.15"),
    "entity.bad_list_name": Kind(422, "400.15"),
    "entity.no_create_update": Kind(422, "400.15"),
    "entity.property_twice": Kind(422, "400.15"),
    "entity.unknown_property": Kind(400, "400.28"),
    "entity.property_from_forms": Kind(400, "400.28"),
    "entity.label_blank": Kind(400, "400.8"),
    "entity.version_conflict": Kind(409, "409.15"),
    "entity.no_conflict": Kind(400, "400.32"),
    "entity.no_list": Kind(409, "409.3"),
    "entity.missing": Kind(409, "409.3"),
    "entity.no_base_version": Kind(409, "409.3"),
    "entity.base_unknown": Kind(409, "409.3"),
    "entity.trunk_unknown": Kind(409, "409.3"),
    "entity.deleted": Kind(409, "409.3"),
    "entity.id_taken": Kind(409, "409.3"),
    "entity.other_list": Kind(409, "409.3"),
    "entity.outside_units": Kind(409, "409.3"),
    "entity.create_no_label": Kind(409, "409.3"),
    "entity.unit_unknown": Kind(400, "400.11"),
    "form.unused_media": Kind(422, "404.1"),
    "form.invalid": Kind(422, "400.15"),
    "form.version_conflict": Kind(409, "409.6"),
    "round.closed": Kind(409, "409.2"),
    "draft.not_found": Kind(404, "404.1"),
    "draft.test_code_invalid": Kind(403, "403.1"),
    "draft.no_file": Kind(404, "404.1"),
    "draft.form_id": Kind(400, "400.8"),
    "draft.test_refused": Kind(400, "400.15"),
    "draft.test_bad_attachment": Kind(400, "400.15"),
    "draft.test_wrong_form": Kind(400, "400.15"),
    "draft.test_full": Kind(400, "400.15"),
    "draft.xlsform_only": Kind(415, "415.1"),
    "draft.needs_definition": Kind(501, "501.1"),
    "draft.version_unwritable": Kind(422, "400.15"),
    "draft.no_version_column": Kind(422, "400.15"),
    "form.file_missing": Kind(400, "400.3"),
    "request.bad_file_name": Kind(400, "400.11"),
    # submissions
    "submission.not_found": Kind(404, "404.1"),
    "submission.invalid": Kind(400, "400.2"),
    "submission.must_encrypt": Kind(400, "400.2"),
    "submission.not_encrypted_form": Kind(400, "400.2"),
    "submission.envelope_incomplete": Kind(400, "400.2"),
    "submission.bad_attachment": Kind(400, "400.2"),
    "submission.bad_value": Kind(400, "400.2"),
    "submission.forbidden": Kind(403, "403.1"),
    "submission.places_contradict": Kind(403, "403.1"),
    "submission.no_unit_matches": Kind(403, "403.1"),
    "submission.form_not_assigned": Kind(403, "403.1"),
    "submission.unit_unknown": Kind(403, "403.1"),
    "submission.edited_other_form": Kind(403, "403.1"),
    "submission.edited_outside": Kind(403, "403.1"),
    "submission.unit_outside": Kind(403, "403.1"),
    "submission.unit_outside_round": Kind(403, "403.1"),
    "submission.version_not_found": Kind(404, "404.6"),
    "submission.no_form": Kind(404, "404.6"),
    "submission.edited_missing": Kind(404, "404.6"),
    "submission.conflict": Kind(409, "409.3"),
    "submission.unavailable": Kind(503, "503.1"),
    "submission.exists": Kind(409, "409.3"),
    "submission.stale_edit": Kind(409, "409.9"),
    "submission.deprecated_id_missing": Kind(400, "400.19"),
    "submission.no_xml_part": Kind(400, "400.1"),
    "submission.bad_attachment_name": Kind(400, "400.1"),
    "instance.no_form_id": Kind(400, "400.2"),
    "instance.no_instance_id": Kind(400, "400.2"),
    "instance.bad_id": Kind(400, "400.2"),
    "instance.too_large": Kind(400, "400.2"),
    "instance.empty": Kind(400, "400.2"),
    "instance.envelope_no_id": Kind(400, "400.2"),
    "instance.bad_attachment": Kind(400, "400.2"),
    "instance.dtd": Kind(400, "400.2"),
    "instance.malformed": Kind(400, "400.2"),
    "instance.too_deep": Kind(400, "400.2"),
    # OData
    "odata.filter": Kind(400, "400.18"),
    "odata.filter_sealed": Kind(400, "400.18"),
    "odata.select_unknown": Kind(400, "400.23"),
    "odata.skiptoken_invalid": Kind(400, "400.35"),
    "odata.skiptoken_gone": Kind(400, "400.34"),
    "odata.unsupported": Kind(501, "501.5"),
    "odata.expand_unsupported": Kind(501, "501.6"),
    "odata.select_expand_unsupported": Kind(501, "501.11"),
    # rounds, units, exports
    "round.not_found": Kind(404, "404.1"),
    "round.no_units_chosen": Kind(400, "400.11"),
    "round.unknown_forms": Kind(400, "400.11"),
    "round.no_round": Kind(400, "400.11"),
    "round.name_empty": Kind(400, "400.11"),
    "round.no_forms": Kind(400, "400.11"),
    "round.no_units": Kind(400, "400.11"),
    "round.bad_kind": Kind(400, "400.11"),
    "round.exists": Kind(400, "400.11"),
    "round.closed_to_collectors": Kind(400, "400.11"),
    "round.closed_to_forms": Kind(400, "400.11"),
    "round.no_states": Kind(400, "400.11"),
    "round.bad_period": Kind(400, "400.11"),
    "round.unknown_user": Kind(400, "400.11"),
    "round.bad_review_state": Kind(400, "400.11"),
    "round.bad_transition": Kind(400, "400.11"),
    "round.hamlets_missing": Kind(400, "400.11"),
    "round.encrypted_uncounted": Kind(400, "400.11"),
    "round.reopen_reason": Kind(400, "400.11"),
    "round.closed_reopen_first": Kind(400, "400.11"),
    "round.open_elsewhere": Kind(400, "400.11"),
    "round.no_collectors_ticked": Kind(400, "400.11"),
    "review.no_submission": Kind(400, "400.11"),
    "review.comment_needed": Kind(400, "400.11"),
    "review.bad_state": Kind(400, "400.11"),
    "unit.not_found": Kind(404, "404.1"),
    "unit.unknown_codes": Kind(400, "400.11"),
    "unit.ambiguous": Kind(400),
    "unit.no_exact_match": Kind(400),
    "unit.hamlet_list": Kind(400),
    "unit.hamlet_row": Kind(400),
    "unit.hamlet_header": Kind(400),
    "unit.hamlet_encoding": Kind(400),
    "unit.hamlet_unreadable": Kind(400),
    "unit.hamlet_twice": Kind(400),
    "unit.hamlet_taken": Kind(400),
    "unit.hamlet_extra_cells": Kind(400),
    "unit.hamlet_no_commune": Kind(400),
    "unit.hamlet_unknown_commune": Kind(400),
    "unit.hamlet_province_code": Kind(400),
    "unit.hamlet_bad_code": Kind(400),
    "unit.hamlet_wrong_commune": Kind(400),
    "unit.hamlet_no_name": Kind(400),
    "unit.hamlet_households": Kind(400),
    "unit.hamlet_sample": Kind(400),
    "unit.hamlet_legacy_code": Kind(400),
    "unit_list.refused": Kind(400),
    "unit_list.row": Kind(400),
    "unit_list.no_file": Kind(400),
    "unit_list.unknown_kind": Kind(400),
    "unit_list.unreadable_excel": Kind(400),
    "unit_list.old_xls": Kind(400),
    "unit_list.encoding": Kind(400),
    "unit_list.bad_header": Kind(400),
    "unit_list.empty_file": Kind(400),
    "unit_list.too_many_rows": Kind(400),
    "unit_list.no_rows": Kind(400),
    "unit_list.duplicate_code": Kind(400),
    "unit_list.code_taken": Kind(400),
    "unit_list.no_commune": Kind(400),
    "unit_list.unknown_commune": Kind(400),
    "unit_list.province_code": Kind(400),
    "unit_list.outside_units": Kind(400),
    "unit_list.no_name": Kind(400),
    "unit_list.no_code": Kind(400),
    "unit_list.bad_code": Kind(400),
    "unit_list.households": Kind(400),
    "unit_list.bad_zone": Kind(400),
    "unit_list.bad_zone_type": Kind(400),
    "unit_list.bad_hamlet_code": Kind(400),
    "unit_list.hamlet_wrong_commune": Kind(400),
    "unit_list.changed_since": Kind(409),
    "unit_list.changed_meanwhile": Kind(409),
    "collector.name_empty": Kind(400),
    "collector.no_units": Kind(400),
    "collector.round_closed": Kind(400),
    "collector.outside_round": Kind(400),
    "collector.no_server_url": Kind(400),
    "collector.bad_server_url": Kind(400),
    "collector.revoked": Kind(400),
    "collector.token_not_current": Kind(400),
    "collector.token_not_kept": Kind(400),
    "collector.no_open_round": Kind(400),
    "collector.not_active": Kind(400),
    "collector.unit_or_round": Kind(400),
    "collector.not_found": Kind(404, "404.1"),
    "user.password_short": Kind(400),
    "user.password_long": Kind(400),
    "user.collector_role": Kind(400),
    "user.no_units": Kind(400),
    "user.bad_username": Kind(400),
    "user.username_taken": Kind(400),
    "user.no_officer": Kind(400),
    "user.account_disabled": Kind(400),
    "user.bad_role": Kind(400),
    "user.password_mismatch": Kind(400),
    "user.wrong_password": Kind(400),
    "user.reset_link_gone": Kind(410),
    "export.refused": Kind(404, "404.1"),
    "export.no_form": Kind(404, "404.1"),
    "export.bad_format": Kind(404, "404.1"),
    "export.no_unit": Kind(404, "404.1"),
    "export.encrypted_form": Kind(409),
    "export.bad_labels": Kind(400),
    "indicator.refused": Kind(400),
    "indicator.not_a_definition": Kind(400),
    "indicator.unreadable": Kind(400),
    "indicator.bad_file": Kind(400),
    "indicator.unknown_override": Kind(400),
    "indicator.invalid": Kind(400),
    "assessment.yes_or_no": Kind(400),
    "assessment.population_positive": Kind(400),
    "assessment.unknown_figure": Kind(400),
    "assessment.source_required": Kind(400),
    "assessment.fact_concurrent": Kind(400),
    "assessment.csv_columns": Kind(400),
    "assessment.population_whole": Kind(400),
    "assessment.bad_date": Kind(400),
    "assessment.csv_unit_outside": Kind(400),
    "assessment.csv_line": Kind(400),
    "assessment.signoff_concurrent": Kind(400),
    "assessment.not_commune": Kind(400),
    "assessment.list_locked": Kind(400),
    "assessment.comment_required": Kind(400),
    "assessment.cannot_classify": Kind(400),
    "assessment.return_reason": Kind(400),
    "assessment.communes_waiting": Kind(400),
    "assessment.reopen_reason": Kind(400),
    "assessment.cannot_propose": Kind(400),
    "assessment.cannot_accept": Kind(400),
    "assessment.cannot_send_back": Kind(400),
    "assessment.already_approved": Kind(400),
    "assessment.not_approved": Kind(400),
    # keys, protection, storage, the server
    "crypto.passphrase_short": Kind(400),
    "crypto.unsupported_kdf": Kind(400),
    "crypto.key_not_rsa": Kind(400),
    "crypto.key_exists": Kind(400),
    "crypto.wrong_passphrase": Kind(400),
    "crypto.no_project_key": Kind(400),
    "crypto.envelope_incomplete": Kind(400),
    "crypto.no_key_opens": Kind(400),
    "crypto.signature_mismatch": Kind(400),
    "crypto.bad_encrypted_key": Kind(400),
    "crypto.part_missing": Kind(400),
    "crypto.part_undecryptable": Kind(400),
    "crypto.inner_id_differs": Kind(400),
    "derive.personal_answers": Kind(400),
    "protection.bad_kek": Kind(503, "503.1"),
    "protection.kek_missing": Kind(503, "503.1"),
    "protection.store_kek_missing": Kind(503, "503.1"),
    "protection.not_sealed": Kind(503, "503.1"),
    "protection.kek_in_data_dir": Kind(503, "503.1"),
    "protection.kek_mismatch": Kind(503, "503.1"),
    "protection.no_key": Kind(503, "503.1"),
    "protection.keyring_gone": Kind(503, "503.1"),
    "protection.kek_rotated": Kind(503, "503.1"),
    "protection.kek_not_this_store": Kind(503, "503.1"),
    "protection.sealed_damaged": Kind(503, "503.1"),
    "protection.identifiers_damaged": Kind(503, "503.1"),
    "protection.kek_command_failed": Kind(503, "503.1"),
    "protection.kek_opens_nothing": Kind(503, "503.1"),
    "protection.inner_id_differs": Kind(503, "503.1"),
    "protection.record_gone": Kind(503, "503.1"),
    "protection.read_back_differs": Kind(503, "503.1"),
    "protection.key_changed": Kind(503, "503.1"),
    "protection.xml_missing": Kind(503, "503.1"),
    "settings.invalid": Kind(400),
    "settings.not_an_object": Kind(400),
    "settings.qr_suffix": Kind(400),
    "backup.not_embedded": Kind(400),
    "backup.inside_data_dir": Kind(400),
    "backup.tool_failed": Kind(400),
    "backup.newer": Kind(400),
    "backup.files_differ": Kind(400),
    "backup.target_not_empty": Kind(400),
    "backup.count_differs": Kind(400),
    "backup.tool_missing": Kind(400),
    "backup.unreadable": Kind(400),
    "backup.unsafe_name": Kind(400),
    "backup.not_a_file": Kind(400),
    "backup.not_a_backup": Kind(400),
    "backup.embedded_not_postgres": Kind(400),
    "backup.unknown_kind": Kind(400),
    "backup.database_needed": Kind(400),
    "datadir.missing": Kind(400),
    "datadir.no_store": Kind(400),
    "datadir.is_a_file": Kind(400),
    "datadir.not_empty": Kind(400),
    "storage.different_content": Kind(409, "409.3"),
    "storage.replaced": Kind(409, "409.3"),
    "storage.edit_of_unknown": Kind(409, "409.3"),
    "storage.edit_of_replaced": Kind(409, "409.3"),
    "storage.edit_id_taken": Kind(409, "409.3"),
    "storage.no_submission": Kind(409, "409.3"),
    "storage.form_version_taken": Kind(409, "409.3"),
    "storage.username_taken": Kind(409, "409.3"),
    "storage.token_taken": Kind(409, "409.3"),
    "storage.destination_differs": Kind(400),
    "storage.destination_record_differs": Kind(400),
    "storage.conversion_differs": Kind(500),
    "storage.conversion_failed": Kind(500),
    "storage.schema_newer": Kind(503),
    "storage.postgres_refused": Kind(503),
    "storage.postgres_timeout": Kind(503),
    "server.disk_full": Kind(503),
    "server.busy": Kind(503, "503.1"),
    "server.error": Kind(500, "500.1"),
    # the web pages
    "page.not_found": Kind(404, "404.1"),
    "page.forbidden": Kind(403, "403.1"),
    "page.method_not_allowed": Kind(405, "405.1"),
    "web.choose_province": Kind(400),
    "web.bad_year": Kind(400),
    "web.choose_unit_or_round": Kind(400),
    "web.choose_form": Kind(400),
    "web.choose_commune": Kind(400),
    "web.bad_date": Kind(400),
    "web.bad_month": Kind(400),
    "web.no_person_conflict": Kind(400),
    "web.bad_version": Kind(400),
    "web.no_version": Kind(400),
    "web.no_form": Kind(400),
    "web.unknown_unit": Kind(400),
    "web.choose_list": Kind(400),
    "web.preview_expired": Kind(400),
    "web.no_indicator": Kind(404, "404.1"),
    "web.no_unit": Kind(404, "404.1"),
    "web.no_persons_list": Kind(404, "404.1"),
    "web.no_person": Kind(404, "404.1"),
    "web.no_file": Kind(404, "404.1"),
    "web.no_template": Kind(404, "404.1"),
    "audit.bad_day": Kind(400),
    "export.encrypted_on_server": Kind(409),
    # plugins and commands
    "plugin.declared_twice": Kind(400),
    "plugin.defined_twice": Kind(400),
    "plugin.declared_twice_in": Kind(400),
    "plugin.form_twice_in": Kind(400),
    "plugin.form_twice": Kind(400),
    "plan.other_province": Kind(403, "403.1"),
    "plugin.wrong_value": Kind(400),
    "request.unprocessable": Kind(422, "422.1"),
    "command.refused": Kind(400),
    "command.no_active_account": Kind(400),
    "command.province_or_commune": Kind(400),
    "command.bad_time": Kind(400),
    "command.xlsx_only": Kind(400),
    "command.tar_gz_only": Kind(400),
    "command.file_exists": Kind(400),
    "command.no_data": Kind(400),
    "command.no_file": Kind(400),
    "command.negative_days": Kind(400),
    "command.no_entity_list": Kind(400),
    "command.passphrase_needed": Kind(400),
    "command.unknown_state": Kind(400),
    "command.no_form": Kind(400),
    "command.no_indicator": Kind(400),
    "command.bad_date": Kind(400),
    "command.no_account": Kind(400),
    "command.destination_needed": Kind(400),
    "command.same_store": Kind(400),
    "command.verification_failed": Kind(400),
    "command.files_dir_needed": Kind(400),
    "command.store_refused": Kind(400),
    "command.bad_plugin_name": Kind(400),
    "command.plugin_exists": Kind(400),
    "command.unknown_hamlet_term": Kind(400),
    "command.plugin_refused": Kind(400),
    "command.folder_not_empty": Kind(400),
    "command.nothing_matches": Kind(400),
    "command.entries_differ": Kind(400),
    "command.confirm_with_yes": Kind(400),
    "command.port_busy": Kind(400),
    "command.bad_suffix": Kind(400),
    "command.no_folder": Kind(400),
    "command.empty_file": Kind(400),
    "command.collector_and_output": Kind(400),
    "command.no_active_collectors": Kind(400),
    "command.cannot_read": Kind(400),
}

# Codes whose message is the "Việt / English" text given where the error is raised: {vi} and {en}.
FREE_TEXT = ("vi", "en")


def read_catalogue(locale_dir: Path, domain: str, lang: str) -> dict[str, str]:
    """One gettext catalogue, ``<locale_dir>/<lang>/LC_MESSAGES/<domain>.po``, as message id → text
    (the error messages here; the web pages' labels, ``server.web.i18n``, are read the same way)."""
    from babel.messages.pofile import read_po  # loaded when a catalogue is first read, not at start-up

    with (locale_dir / lang / "LC_MESSAGES" / f"{domain}.po").open("rb") as f:
        catalog = read_po(f, locale=lang, domain=domain)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string}


@functools.cache
def messages(lang: str) -> dict[str, str]:
    """The message templates of one language, by code (read once from its .po file)."""
    return read_catalogue(LOCALE_DIR, DOMAIN, lang)


def placeholders(template: str) -> set[str]:
    """The named parameters of one message template."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def split_bilingual(text: str) -> tuple[str, str]:
    """"Việt / English" → (Việt, English); a text without exactly one " / " is the same in both."""
    vi, sep, en = text.partition(" / ")
    if not sep or " / " in en:
        return text, text
    return vi, en


# A word or phrase in both languages, (Vietnamese, English): a state's label, a kind of thing, a flag. Core
# keeps its labels so; a message given one as a parameter, or a web page, takes its own language's half,
# the CLI and Excel say both (``both``).
Words = tuple[str, str]


def said(words: Words | list[str] | str, lang: str) -> str:
    """``Words`` in one language (``en``: English, else Vietnamese); a pair read back from JSON is a list;
    a plain text (a name, a code) is said as it is."""
    if isinstance(words, str):
        return words
    return words[1] if lang == "en" else words[0]


def both(words: Words | list[str]) -> str:
    """``Words`` as the CLI and Excel say them, one line "Việt / English" (once when they are the same)."""
    vi, en = words
    return vi if vi == en else f"{vi} / {en}"


def _said(value: Any, lang: str) -> Any:
    """A parameter as the message in ``lang`` shows it: a Problem given as a parameter (the error that
    caused this one) and ``Words`` are said in that language."""
    if isinstance(value, Problem):
        return value.text(lang)
    if isinstance(value, list):  # several problems (a file's bad rows), one a line
        return "\n".join(str(_said(v, lang)) for v in value)
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0] if lang == "vi" else value[1]
    return value


class _Kept(dict[str, Any]):
    """A missing parameter is shown as its name, never a crash while reporting an error."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, params: Mapping[str, Any], lang: str) -> str:
    """A message template of ``lang`` with its named parameters, each said in that language (a Problem,
    ``Words``); a missing one is left as ``{name}``. Errors and the CLI's own lines (``core.cli_lines``)."""
    return template.format_map(_Kept({k: _said(v, lang) for k, v in params.items()}))


class Problem(Exception):
    """An error a user can act on: ``Problem("form.not_found", form="F1")``.

    ``headers`` go with an HTTP answer (``Retry-After``); ``details`` is the Central API's ``details``
    object. A subclass's ``default_code`` renders a "Việt / English" text given instead of a code (the
    modules not yet given codes; see the module docstring).
    """

    default_code: ClassVar[str] = "command.refused"

    def __init__(
        self,
        code: str,
        /,
        *,
        headers: Mapping[str, str] | None = None,
        details: dict[str, Any] | None = None,
        **params: Any,
    ) -> None:
        if code not in CATALOGUE:  # a message written where it is raised, not yet given a code
            vi, en = split_bilingual(code)
            code, params = self.default_code, {**params, "vi": vi, "en": en}
        self.code = code
        self.params = params
        self.headers = dict(headers or {})
        self.details = details
        super().__init__(code)

    @classmethod
    def with_text(cls, code: str, text: str, **kwargs: Any) -> Problem:
        """A problem of a free-text ``code`` whose message is a "Việt / English" text made elsewhere."""
        vi, en = split_bilingual(text)
        return cls(code, vi=vi, en=en, **kwargs)

    @property
    def kind(self) -> Kind:
        return CATALOGUE[self.code]

    @property
    def status(self) -> int:
        return self.kind.status

    def text(self, lang: str) -> str:
        """The message in one language (``vi`` or ``en``; anything else is Vietnamese)."""
        return fill(messages(lang if lang in LANGS else "vi").get(self.code, self.code), self.params, lang)

    @property
    def message(self) -> str:
        """Both languages, Vietnamese first: "Việt / English" (one when they are the same)."""
        vi, en = self.text("vi"), self.text("en")
        return vi if vi == en else f"{vi} / {en}"

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.params!r})"


def markdown() -> str:
    """docs/errors.md: every code with its status, Central's code and both messages."""
    vi, en = messages("vi"), messages("en")
    lines = [
        "# Errors / Lỗi",
        "",
        "Every error rasoat reports has a stable code, an HTTP status and a message in Vietnamese and",
        "English (see `core/problems.py`). This page is written by `python -m rasoat.core.problems` from",
        "the catalogue and its message files (`core/locale/{vi,en}/LC_MESSAGES/errors.po`);",
        "`tests/test_problems.py` fails when it is out of date.",
        "",
        "## How each surface shows an error",
        "",
        "- **CLI**: one line on stderr, `Lỗi / Error: <Việt> / <English>`, exit code 1 (`--debug` adds the"
        " traceback).",
        "- **ODK Collect (OpenRosa)**: the HTTP status and an `<OpenRosaResponse>` whose message is"
        " \"Việt / English\"; Collect shows it to the collector.",
        "- **rasoat's JSON API** (`/api/v1`): the HTTP status and `{\"error\": \"Việt / English\","
        " \"code\": \"form.not_found\"}`.",
        "- **Central API** (`/v1`): Central's shape, `{\"message\": …, \"code\": 404.1}` (a JSON number,"
        " the column *Central* below; `details` where Central gives them); `$metadata` answers XML.",
        "- **Web pages**: an error page (or the message on the form) in the page's language only.",
        "",
        "## Why gettext catalogues read with Babel",
        "",
        "The messages are gettext `.po` files, one per language, read at run time with Babel",
        "(`babel.messages.pofile`). `.po` is the format every translation tool (Poedit, Weblate, Lokalize)",
        "and translator knows, it keeps a comment and a `python-brace-format` flag beside each message,",
        "and Babel is the maintained Python library for it (Sphinx and Flask-Babel use it). The message id",
        "is the error's code rather than an English sentence, so correcting either language never breaks",
        "a program that matches on the code, and no compiled `.mo` file has to be built or committed.",
        "The CLI's own lines (what a command did, a warning) are read the same way from `cli.po`",
        "(`core/cli_lines.py`), the web pages' labels from `server/web/locale/*/LC_MESSAGES/pages.po`.",
        "",
        "Codes marked *(text)* take their message from where they are raised (`{vi}` / `{en}`): a text",
        "rasoat does not write (a ValueError from the indicator engine, a plugin's or pyxform's message,",
        "raised with `Problem.with_text`), or a module not yet given codes (XLSForm).",
        "Give a message of rasoat's own a code (a line in",
        "`CATALOGUE`, one in each `.po` file) when you touch it.",
        "",
        "## The catalogue",
        "",
        "| code | status | Central | Tiếng Việt | English |",
        "|---|---|---|---|---|",
    ]
    for code, kind in CATALOGUE.items():
        free = placeholders(vi.get(code, "")) == {"vi"}
        name = f"`{code}`" + (" *(text)*" if free else "")
        lines.append(
            f"| {name} | {kind.status} | {kind.central or ''} | {_cell(vi.get(code, ''))} "
            f"| {_cell(en.get(code, ''))} |"
        )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


if __name__ == "__main__":
    print(markdown(), end="")
