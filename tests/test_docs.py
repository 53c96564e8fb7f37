"""Every document in the repository links only to files in it.

A clone has nothing beside it: a link that leaves the repository (``../shared/...``) or
points at a file that is not there is a dead link for every reader.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: [text](target) and <a href="target">; reference-style [x]: target
_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|href=\"([^\"]+)\"|^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)


def documents() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    if listed.returncode == 0:
        return [ROOT / line for line in listed.stdout.splitlines() if line and (ROOT / line).exists()]
    return [p for p in ROOT.rglob("*.md") if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)]


def links(text: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in _LINK.finditer(text)]


def test_the_links_finder_sees_links():
    text = 'See [the notes](docs/design.md "title") and <a href="../x.md">x</a>.\n[ref]: ../shared/DESIGN.md\n'
    assert links(text) == ["docs/design.md", "../x.md", "../shared/DESIGN.md"]


def test_documents_link_only_to_files_in_the_repository():
    docs = documents()
    assert ROOT / "README.md" in docs and ROOT / "docs" / "design.md" in docs
    bad = []
    for doc in docs:
        for target in links(doc.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # a URL: leaves the repository
                bad.append(f"{doc.relative_to(ROOT)}: {target} (outside the repository)")
                continue
            path = target.split("#", 1)[0]
            if not path:
                continue  # an anchor in the same document
            resolved = (doc.parent / path).resolve()
            if not resolved.is_relative_to(ROOT):
                bad.append(f"{doc.relative_to(ROOT)}: {target} (outside the repository)")
            elif not resolved.exists():
                bad.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
    assert not bad, "\n".join(bad)


def test_readme_links_the_architecture_document():
    assert "](docs/design.md)" in (ROOT / "README.md").read_text()
