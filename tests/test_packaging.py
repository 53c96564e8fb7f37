"""The built wheel holds every package folder on disk under its symbiote.* name.

A folder with an ``__init__.py`` that is missing from ``[tool.setuptools] packages`` works
in an editable install and silently vanishes from the wheel; this test builds the real
wheel (from a copy of the source, offline: no build isolation) and compares.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> installed package name (pyproject.toml's package-dir mapping)
PACKAGE_ROOTS = {"symbiote": "symbiote", "frontend": "symbiote.frontend", "ir": "symbiote.ir", "passes": "symbiote.passes",
                 "backends": "symbiote.backends", "search": "symbiote.search"}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


def packages_on_disk() -> dict[str, Path]:
    """``symbiote.x.y`` -> folder, for every folder holding an ``__init__.py`` under the package roots."""
    found: dict[str, Path] = {}
    for folder, pkg in PACKAGE_ROOTS.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(ROOT / folder)
            found[".".join([pkg, *rel.parts])] = init.parent
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    for folder in PACKAGE_ROOTS:
        shutil.copytree(ROOT / folder, src / folder, ignore=_IGNORE)
    out = tmp_path_factory.mktemp("dist")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(out), str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob("symbiote-*.whl")
    return zipfile.ZipFile(whl)


def test_every_package_folder_is_in_the_wheel(wheel):
    names = set(wheel.namelist())
    on_disk = packages_on_disk()
    assert {"symbiote", "symbiote.frontend", "symbiote.ir", "symbiote.passes", "symbiote.backends", "symbiote.search"} <= set(on_disk)
    missing = [pkg for pkg in on_disk if pkg.replace(".", "/") + "/__init__.py" not in names]
    assert not missing, f"package folders missing from the wheel (add them to pyproject.toml packages): {missing}"
    for pkg, folder in on_disk.items():  # and every module inside them
        for py in folder.glob("*.py"):
            assert f"{pkg.replace('.', '/')}/{py.name}" in names, py


def test_wheel_installs_no_generic_top_level_names(wheel):
    tops = {n.split("/")[0] for n in wheel.namelist() if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"symbiote"}
    entry = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    assert "symbiote = symbiote.cli:main" in wheel.read(entry).decode()


def test_wheel_ships_the_recorded_tables(wheel):
    """Package data read at import (``[tool.setuptools.package-data]``): every JSON file under
    backends/data is in the wheel under symbiote/backends/data."""
    names = set(wheel.namelist())
    data = sorted((ROOT / "backends" / "data").glob("*.json"))
    assert data, "backends/data holds no table"
    for f in data:
        assert f"symbiote/backends/data/{f.name}" in names, f


def _readme_command(which: str) -> str:
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_command", ROOT / ".ci" / "readme_command.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.command((ROOT / "README.md").read_text(), which)


def test_ci_runs_exactly_the_readme_test_command_first():
    """In a fresh venv, the README's test command runs before anything else is installed,
    and the README's main command runs too (taken from the README, not copied)."""
    test_cmd = _readme_command("test")
    assert test_cmd == 'pip install ".[test]" && pytest'
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "set -euo pipefail" in ci
    code = [line for line in ci if line and not line.startswith("#")]
    first_install = next(i for i, line in enumerate(code) if "pip " in line or "pip3 " in line)
    assert code[first_install] == test_cmd
    assert any(line.startswith("python3 -m venv") for line in code[:first_install])
    assert any("readme_command.py main" in line for line in code[first_install:])


def test_test_extra_declares_the_build_backend_the_wheel_test_needs():
    """The wheel test builds without isolation, so the test extra must bring a setuptools
    that reads this pyproject (PEP 639 ``license = "..."`` needs setuptools >= 77)."""
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (backend_req,) = [r for r in meta["build-system"]["requires"] if r.startswith("setuptools")]
    assert backend_req in meta["project"]["optional-dependencies"]["test"]


def test_readme_main_command_is_a_valid_command_line():
    """The README's first command installs and runs symbiote on a built-in model; it must parse."""
    import shlex

    from symbiote.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    first = readme.split("```bash\n", 1)[1].split("\n", 1)[0]
    install, run = first.split(" && ", 1)
    assert install == "pip install ."
    argv = shlex.split(run)
    assert argv[0] == "symbiote" and any(a.startswith("zoo:") for a in argv)
    args = build_parser().parse_args(argv[1:])  # exits (SystemExit) on a bad command line
    assert args.command == "search"
