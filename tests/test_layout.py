"""The rooms keep to their jobs: a unit test runs without Playwright, no test
module imports another, and the core package stays below its tools wing."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
SUITES = ("tests", "e2e")
TOOLS = "livestream.tools."


def imported(path):
    """Every module that ``path`` imports, anywhere in it, by its full name.

    ``from package import name`` counts ``package.name`` too, since the name
    may be a module."""
    package = path.relative_to(ROOT).parent.parts
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            # ``from .x`` is relative to the file's package, ``from ..x`` to
            # its parent's
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = ".".join(
                base + (tuple(node.module.split(".")) if node.module else ())
            )
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def forbidden(path):
    """What ``path`` imports that the suites' layout does not allow."""
    suite = path.relative_to(ROOT).parts[0] if path.parent != ROOT else None
    for name in imported(path):
        parts = name.split(".")
        if parts[0] not in SUITES:
            continue
        if any(part.startswith("test_") for part in parts):
            yield name  # a test module is for pytest to run, not to import
        elif parts[0] != suite:
            yield name  # neither suite leans on the other, nor the root on either


def test_the_root_conftest_imports_without_playwright():
    # a process of its own: this one has pytest-playwright loaded already
    check = (
        "import sys, conftest; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'playwright'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_no_test_module_imports_another():
    modules = [ROOT / "conftest.py", ROOT / "testing_support.py"] + [
        path for suite in SUITES for path in (ROOT / suite).glob("*.py")
    ]
    found = {
        str(path.relative_to(ROOT)): names
        for path in modules
        if (names := sorted(set(forbidden(path))))
    }
    assert found == {}


def test_every_e2e_test_is_marked_browser():
    # the mark comes from e2e/conftest.py, not from each module
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-m",
            "not browser",
            "e2e",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # every test deselected: "no tests collected (136 deselected) in 4.17s"
    no_tests = pytest.ExitCode.NO_TESTS_COLLECTED
    assert result.returncode == no_tests, result.stdout[-2000:] + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("no tests collected (") and "deselected" in summary


def test_the_core_package_does_not_import_its_tools():
    found = {}
    for path in (ROOT / "livestream").rglob("*.py"):
        if "tools" in path.relative_to(ROOT / "livestream").parts:
            continue
        # lazily or not: an import inside a function counts too
        names = {name for name in imported(path) if f"{name}.".startswith(TOOLS)}
        if names:
            found[str(path.relative_to(ROOT))] = sorted(names)
    assert found == {}
