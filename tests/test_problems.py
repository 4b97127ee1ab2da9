"""The error catalogue (core/problems.py): every code has a status and both messages with the same
parameters, docs/errors.md is the catalogue as it is, and each surface renders a Problem in one place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from rasoat.core.problems import CATALOGUE, LANGS, Problem, markdown, messages, placeholders

ROOT = Path(__file__).resolve().parent.parent
FREE_TEXT = {"vi": {"vi"}, "en": {"en"}}


def test_every_code_has_a_status_and_a_message_in_both_languages() -> None:
    for lang in LANGS:
        assert set(messages(lang)) == set(CATALOGUE), lang  # no code without a message, no stray message
    for code, kind in CATALOGUE.items():
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", code), code
        assert 400 <= kind.status <= 599, code
        if kind.central is not None:
            assert re.fullmatch(r"[1-5]\d\d\.\d+", kind.central), code
        vi, en = messages("vi")[code], messages("en")[code]
        assert vi.strip() and en.strip(), code
        free = placeholders(vi) == {"vi"}
        if free:  # the text given where the error is raised, one half each
            assert placeholders(en) == {"en"}, code
        else:
            assert placeholders(vi) == placeholders(en), code


def test_a_problem_renders_its_parameters_in_each_language() -> None:
    exc = Problem("form.not_found", form="F1")
    assert (exc.status, exc.text("vi"), exc.text("en")) == (404, "Không có biểu mẫu 'F1'", "No form 'F1'")
    assert str(exc) == exc.message == "Không có biểu mẫu 'F1' / No form 'F1'"
    assert Problem("form.not_found").text("en") == "No form '{form}'"  # a missing parameter never crashes


def test_a_text_made_outside_the_catalogue_takes_its_class_code() -> None:
    """A message rasoat does not write (a ValueError's, a plugin's, pyxform's) keeps its class's code and
    status; a "Việt / English" text is said in one language each."""
    from rasoat.core.excel.from_store import ExportError
    from rasoat.core.rounds import RoundError
    from rasoat.core.scope import ScopeError

    exc = ExportError.with_text("export.refused", "Sai / Wrong")
    assert (exc.code, exc.status, exc.text("vi"), exc.text("en")) == ("export.refused", 404, "Sai", "Wrong")
    assert isinstance(exc, ExportError) and isinstance(exc, LookupError)
    closed = RoundError("round.no_round", round="r1")
    assert isinstance(closed, ValueError) and closed.text("en") == "No round 'r1'"  # callers catch ValueError
    denied = ScopeError("scope.round_outside", round="r1", who="lan", units="01")
    assert denied.status == 403 and isinstance(denied, PermissionError)


def test_docs_list_every_code_as_the_catalogue_says() -> None:
    """docs/errors.md is written by ``python -m rasoat.core.problems``; rerun it after changing codes."""
    assert (ROOT / "docs" / "errors.md").read_text(encoding="utf-8") == markdown()


# Where a surface turns a Problem into its answer; nothing else may translate exceptions.
RENDERERS = {
    "cli": ("core/cli.py", "except Problem as exc:"),
    "openrosa": ("server/errors.py", "def openrosa_response(request: Request, exc: Problem)"),
    "api": ("server/errors.py", "def api_response(_request: Request, exc: Problem)"),
    "central": ("server/central/problems.py", "def problem_response(request: Request, exc: Problem)"),
    "web": ("server/web/base.py", "def problem_page(request: Request, exc: Problem)"),
}
SOURCES = ["core", "server", "mobile_export", "plugins"]
# Not a surface's translation: none left (a refusal caused by another error carries it as a parameter,
# IngestError.because); kept so that a justified exception is written down here, not hidden.
REFINEMENTS: set[tuple[str, str]] = set()


@pytest.mark.parametrize("surface", sorted(RENDERERS))
def test_each_surface_renders_problems_in_one_place(surface: str) -> None:
    path, signature = RENDERERS[surface]
    assert (ROOT / path).read_text(encoding="utf-8").count(signature) == 1


def _problem_classes() -> set[str]:
    """The names of every Problem subclass in the package (every module imported)."""
    import importlib
    import pkgutil

    import rasoat

    for info in pkgutil.walk_packages(rasoat.__path__, "rasoat."):
        if ".tests" not in info.name and not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    names, todo = {"Problem"}, [Problem]
    while todo:
        for sub in todo.pop().__subclasses__():
            names.add(sub.__name__)
            todo.append(sub)
    return names


def _names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, ast.Tuple):
        return set().union(*(_names(e) for e in node.elts))
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return {node.id} if isinstance(node, ast.Name) else set()


def _uses_text(call: ast.expr, name: str) -> bool:
    """Does the raised call pass on the caught error's text (``str(exc)``, ``exc.message``)?"""
    for node in ast.walk(call):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str"
                and any(isinstance(a, ast.Name) and a.id == name for a in node.args)):
            return True
        if (isinstance(node, ast.Attribute) and node.attr == "message" and isinstance(node.value, ast.Name)
                and node.value.id == name):
            return True
    return False


def test_no_exception_translation_tables() -> None:
    """A Problem caught only to be raised again as another error with its text is a translation table:
    each surface renders every Problem itself, so none is needed (a foreign error may be wrapped)."""
    problems = _problem_classes()
    found = []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for handler in ast.walk(tree):
                if not isinstance(handler, ast.ExceptHandler) or not handler.name:
                    continue
                if not _names(handler.type) & problems:
                    continue
                for node in ast.walk(handler):
                    raised = node.exc if isinstance(node, ast.Raise) else None
                    if raised is not None and _uses_text(raised, handler.name):
                        where, text = str(path.relative_to(ROOT)), ast.unparse(raised)
                        if not any(where == f and text.startswith(t) for f, t in REFINEMENTS):
                            found.append(f"{where}:{node.lineno}: {text}")
    assert found == [], "\n".join(found)



def test_every_code_raised_is_in_the_catalogue() -> None:
    """A code written where an error is raised (``RoundError("round.no_round", …)``) must exist: a typo
    would otherwise reach the user as the class's fallback with the code for its text."""
    problems, unknown = _problem_classes(), []
    for folder in SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in problems and name != "with_text":
                    continue
                for arg in node.args[:2]:  # IngestError(reason, code) and InstanceError(reason, code)
                    if (isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                            and re.fullmatch(r"[a-z_]+\.[a-z_]+", arg.value) and arg.value not in CATALOGUE):
                        unknown.append(f"{path.relative_to(ROOT)}:{node.lineno}: {arg.value}")
    assert unknown == []
