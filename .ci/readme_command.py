"""Print one of the README's two set-up commands (``main`` or ``test``), exactly as written.

README.md holds them as the first line of the code block under "## Run it on a built-in
model" and "## Run the tests". .ci/run takes the main command from here, so CI runs what
the README says; it writes the test command out literally (it must be the first thing
CI installs) and tests/test_packaging.py checks that the two agree.
"""

from __future__ import annotations

import sys
from pathlib import Path

SECTIONS = {"main": "## Run it on a built-in model", "test": "## Run the tests"}


def command(readme: str, which: str) -> str:
    section = readme.split(SECTIONS[which], 1)[1]
    return section.split("```bash\n", 1)[1].split("\n", 1)[0].strip()


if __name__ == "__main__":
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    print(command(text, sys.argv[1]))
