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


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = 'pip install ".[test]" && pytest'
    assert test_cmd in readme
    assert [line for line in ci.splitlines() if line.strip() and not line.startswith("#")][-1].strip() == test_cmd
    assert "set -euo pipefail" in ci and "python3 -m venv" in ci


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
