"""The README and the docs render as written: every code fence is closed and no heading hides inside one.

An unclosed fence swallowed half of the README on GitHub once (from the decision-line example on, the outcome
table and the "After the push" and "Alerts" sections were code). markdown-it-py is a CommonMark renderer
(Airflow's own dependency, pinned in constraints.txt), so these checks read the documents as a renderer does.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from tests.support import ROOT

DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def _closing_fence(line: str, opener: str) -> bool:
    match = FENCE.match(line)
    return (
        bool(match)
        and match.group(1)[0] == opener[0]
        and len(match.group(1)) >= len(opener)
        and line[match.end() :].strip() == ""
    )


def unclosed_fences(text: str) -> list[int]:
    """1-based line numbers of fences that the renderer runs to the end of their container (never closed)."""
    lines = text.splitlines()
    problems = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type != "fence" or token.map is None:
            continue
        start, end = token.map
        last = lines[end - 1] if end - 1 > start else ""
        if not _closing_fence(last.lstrip() if token.level else last, token.markup):
            problems.append(start + 1)
    return problems


def rendered_headings(text: str) -> list[str]:
    tokens = MarkdownIt("commonmark").parse(text)
    return [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]


def swallowed_headings(text: str) -> list[str]:
    """Section headings (``## …`` and deeper) that the renderer shows as code: a fence opened where one should
    have closed. Shell comments in code are ``# …``, so a ``##`` line inside a code block is a lost heading."""
    return [
        line
        for t in MarkdownIt("commonmark").parse(text)
        if t.type in ("fence", "code_block")
        for line in t.content.splitlines()
        if re.match(r"^#{2,6} \S", line)
    ]


def test_the_checks_catch_an_unclosed_fence():
    broken = "# A\n\n```\ncode\n```\n\ntext\n```\n\n## B\n\nmore\n"
    assert unclosed_fences(broken) == [8]
    assert swallowed_headings(broken) == ["## B"] and rendered_headings(broken) == ["A"]
    fixed = broken.replace("text\n```\n", "text\n\n```\nx\n```\n")
    assert unclosed_fences(fixed) == [] and swallowed_headings(fixed) == []
    assert rendered_headings(fixed) == ["A", "B"]
    # One fence too many in the middle pairs every later fence wrongly: the last one is left open.
    shifted = "```\na\n```\nx\n```\n## Lost\n```\nb\n```\n"
    assert unclosed_fences(shifted) == [9] and swallowed_headings(shifted) == ["## Lost"]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_fence_is_closed(path: Path):
    assert unclosed_fences(path.read_text(encoding="utf-8")) == [], (
        f"{path.name}: unclosed code fence at line(s)"
    )


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_section_heading_renders_as_code(path: Path):
    assert swallowed_headings(path.read_text(encoding="utf-8")) == []


def test_the_readme_and_the_guides_render_their_sections():
    def headings(name: str) -> list[str]:
        return rendered_headings((ROOT / name).read_text(encoding="utf-8"))

    assert {"Quick start", "Safe by default", "How a run works", "Documentation"} <= set(
        headings("README.md")
    )
    assert {
        "Reading the task log",
        "After the push: edits, cancellations, refunds, late payment",
        "Alerts",
        "`tracking_sync` — shipments back to the merchant",
    } <= set(headings("docs/operator-guide.md"))
    assert {"Settings: Variable `ordersync_settings` (JSON object)", "Connections", "Schedule"} <= set(
        headings("docs/configuration.md")
    )


def test_the_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(((?:docs/)[^)#]+)", text)
    assert links and all((ROOT / link).is_file() for link in links), links
