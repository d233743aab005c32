"""Every relative link in README.md and docs/*.md points at a file that exists and, with a
``#fragment``, at a heading of that file (GitHub's anchor rule: lower case, punctuation other
than ``-`` and ``_`` dropped, spaces to ``-``)."""

import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@functools.cache  # README links into docs/results.md dozens of times: read it once
def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # no headings in code
    return {anchor(h) for h in re.findall(r"^#+ (.*)$", text, re.M)}


def test_anchor_follows_githubs_rule():
    heading = "Two-room: a keypoint encoder (`two_room (keypoints)`)"
    assert anchor(heading) == "two-room-a-keypoint-encoder-two_room-keypoints"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc):
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s):, mailto:
            continue
        path, _, fragment = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{doc.name}: {broken}"
