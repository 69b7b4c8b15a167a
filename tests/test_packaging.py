"""The package installs from a wheel, and conda users get the same packages."""

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
# conda-forge's "redis" is the server; the Python client is "redis-py"
CONDA_NAMES = {"redis-py": "redis"}
# a name, its extras in brackets, then its version specifier
REQUIREMENT = re.compile(r"([A-Za-z0-9_.-]+)\s*(?:\[([^\]]*)\])?\s*(.*)")
# every file, in subfolders too (static/vendor: htmx)
CARRIED = sorted(
    f"livestream/{path.relative_to(ROOT).as_posix()}"
    for folder in ("templates", "static")
    for path in (ROOT / folder).rglob("*")
    if path.is_file()
)


def parse(requirement):
    """``(name, extras, specifier)`` of one requirement string."""
    name, extras, specifier = REQUIREMENT.fullmatch(requirement.strip()).groups()
    extras = [extra.strip() for extra in (extras or "").split(",") if extra.strip()]
    return name.lower(), extras, specifier.replace(" ", "")


def resolved(project, extra):
    """What installing ``project[extra]`` asks for: ``{name: specifier}``, the
    project's own extras (``livestream[tutorial,peer]``) followed down to the
    requirements they name, and the project's dependencies with them."""
    wanted, seen = {}, set()

    def add(requirements):
        for requirement in requirements:
            name, extras, specifier = parse(requirement)
            if name == project["name"]:
                for inner in extras:
                    if inner not in seen:
                        seen.add(inner)
                        add(project["optional-dependencies"][inner])
                continue
            # one package asked for twice must be asked for alike
            assert wanted.setdefault(name, specifier) == specifier, requirement

    add(project["dependencies"])
    seen.add(extra)
    add(project["optional-dependencies"][extra])
    return wanted


def test_the_test_extra_resolves_the_extras_it_names():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = resolved(project, "test")
    # flask-sse comes only through livestream[peer], gevent through [production]
    assert {"flask-sse", "gevent", "pytest"} <= wanted.keys()
    assert "livestream" not in wanted


def test_environment_yml_matches_the_test_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = resolved(project, "test")
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [dep for dep in environment["dependencies"] if isinstance(dep, str)]
    (pip,) = [
        dep["pip"] for dep in environment["dependencies"] if isinstance(dep, dict)
    ]
    assert "-e ." in pip  # the package itself, from this checkout
    listed = {}
    for requirement in conda + [dep for dep in pip if dep != "-e ."]:
        name, _, specifier = parse(requirement)
        name = CONDA_NAMES.get(name, name)
        assert name not in listed, f"{name} is listed twice"
        listed[name] = specifier
    listed.pop("pip")
    listed.pop("python")
    missing = {name: wanted[name] for name in wanted.keys() - listed.keys()}
    extra = {name: listed[name] for name in listed.keys() - wanted.keys()}
    assert (missing, extra) == ({}, {}), "environment.yml and the test extra differ"
    assert listed == wanted  # and every version floor is the same


def test_every_file_claims_the_same_python():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    claimed = project["project"]["requires-python"]
    assert claimed == ">=3.11"  # the tests use tomllib, new in 3.11
    assert project["tool"]["ruff"]["target-version"] == "py311"
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python>=3.11" in environment["dependencies"]


def test_the_license_file_is_the_license_pyproject_names():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = (ROOT / "LICENSE").read_text()
    assert project["license"] == "MIT"
    assert text.startswith("MIT License\n")
    assert "the livestream authors" in text.splitlines()[2]
    # the sentence that makes it MIT, not another permissive license
    assert "The above copyright notice and this permission notice shall" in text


def test_the_wheel_carries_the_templates_and_static_files(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, ROOT],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("livestream-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert set(CARRIED) <= set(names)
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)

    # installed, not editable, and used from another folder: the pages render
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "-t",
            target,
            wheel,
        ],
        check=True,
        timeout=300,
    )
    check = """
import livestream, sys
assert livestream.__file__.startswith(sys.argv[1]), livestream.__file__
client = livestream.create_app(STREAM_COUNT=2, STREAM_INTERVAL=0).test_client()
for path in ["/xhr", "/xhr?poll=1", "/iframe", "/static/style.css",
             "/static/readout.js", "/stream/html", "/static/vendor/htmx.min.js"]:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
print("ok")
"""
    result = subprocess.run(
        [sys.executable, "-c", check, str(target)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout == "ok\n", result.stderr
