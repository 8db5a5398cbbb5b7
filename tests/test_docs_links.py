"""Every relative link of the README and docs/ points at a file that exists and, where it
names an anchor, at a heading of that file (GitHub's slugs)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def github_slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings (outside code fences; repeats get -1, -2, ...)."""
    repeats: dict[str, int] = {}
    found = set()
    fenced = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^#+ (.*)", line)
        if match:
            slug = github_slug(match.group(1))
            count = repeats.get(slug, 0)
            repeats[slug] = count + 1
            found.add(f"{slug}-{count}" if count else slug)
    return found


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {path}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_slug_and_anchors_catch_a_missing_heading(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Speed on CPU\n\n## `fd4mm` (digest §3.3)\n\n## Speed on CPU\n\n"
                    "```\n# not a heading\n```\n")
    assert anchors(page) == {"speed-on-cpu", "fd4mm-digest-33", "speed-on-cpu-1"}
