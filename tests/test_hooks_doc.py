"""docs/hooks.md documents every hook spec with its exact signature, and every hook has a test."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from unibackup import hookspecs
from unibackup.markers import PROJECT_NAME

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "hooks.md"
TESTS = Path(__file__).resolve().parent


def hook_specs() -> dict[str, ast.FunctionDef]:
    """Every function of the hookspecs module marked as a hook spec, with its source node."""
    marker = f"{PROJECT_NAME}_spec"
    names = {name for name, value in vars(hookspecs).items() if callable(value) and hasattr(value, marker)}
    tree = ast.parse(inspect.getsource(hookspecs))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names}


def signature(node: ast.FunctionDef) -> str:
    """``def name(args) -> returns:`` exactly as the spec writes it."""
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"def {node.name}({ast.unparse(node.args)}){returns}:"


def all_test_names() -> set[str]:
    """The names of every test function in the test suite."""
    names = set()
    for path in TESTS.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                names.add(node.name)
    return names


SPECS = hook_specs()


def test_there_are_hook_specs() -> None:
    assert len(SPECS) >= 7 and all(name.startswith(f"{PROJECT_NAME}_") for name in SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_documented_with_its_exact_signature(name: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    assert re.search(rf"^#+ {re.escape(name)}\s*$", doc, re.MULTILINE), f"docs/hooks.md has no heading for {name}"
    assert signature(SPECS[name]) in doc, f"docs/hooks.md does not show {signature(SPECS[name])}"
    spec = getattr(hookspecs, name)
    if getattr(spec, f"{PROJECT_NAME}_spec").get("firstresult"):
        section = doc.split(signature(SPECS[name]), 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        assert "first non-None" in section, f"{name} is firstresult; its section must say it stops at the first non-None result"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_has_a_test_of_its_own(name: str) -> None:
    assert any(name in test for test in all_test_names()), f"no test function's name contains {name}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_spec_has_a_docstring(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert doc.splitlines() and doc.splitlines()[0].strip(), f"{name} has no summary line"
    for parameter in SPECS[name].args.args:
        assert f":param {parameter.arg}:" in doc, f"{name} does not document {parameter.arg}"


def test_no_stale_hooks_in_the_doc() -> None:
    documented = set(re.findall(rf"^#+ ({PROJECT_NAME}_\w+)\s*$", DOC.read_text(encoding="utf-8"), re.MULTILINE))
    assert documented == set(SPECS), f"documented but not a hook spec: {sorted(documented - set(SPECS))}"
