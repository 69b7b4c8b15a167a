"""The package installs from a wheel, and conda users get the same packages."""

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
CONDA_NAMES = {"redis-py": "redis"}
CARRIED = sorted(
    f"livestream/{folder}/{path.name}"
    for folder in ("templates", "static")
    for path in (ROOT / folder).iterdir()
)


def requirement_names(requirements):
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = requirement_names(
        project["dependencies"] + extras["tutorial"] + extras["production"]
    ) | requirement_names(extras["test"])
    wanted.discard("livestream")
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [dep for dep in environment["dependencies"] if isinstance(dep, str)]
    # conda-forge's "redis" is the server; the Python client is "redis-py"
    conda_names = {CONDA_NAMES.get(name, name) for name in requirement_names(conda)}
    assert conda_names - {"python", "pip"} == wanted
    assert {"pip": ["-e ."]} in environment["dependencies"]


def test_every_file_claims_the_same_python():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    claimed = project["project"]["requires-python"]
    assert claimed == ">=3.11"  # the tests use tomllib, new in 3.11
    assert project["tool"]["ruff"]["target-version"] == "py311"
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python>=3.11" in environment["dependencies"]


def test_the_wheel_carries_the_templates_and_static_files(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path, ROOT],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("livestream-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert set(CARRIED) <= set(names)

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
             "/static/readout.js", "/stream/html"]:
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
