"""The README's figures are the committed benchmark results, rendered, never typed by hand."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import readme_tables  # noqa: E402


def test_every_readme_block_matches_its_json():
    text = (REPO / "README.md").read_text()
    rendered, changed = readme_tables.render(text)
    assert changed == [], "rerun python scripts/readme_tables.py"
    assert rendered == text
    # every renderer is used, so no result goes unshown
    names = {m["name"] for m in readme_tables.BLOCK.finditer(text)}
    assert names == set(readme_tables.BLOCKS)


@pytest.mark.parametrize("path", sorted((REPO / "benchmarks").glob("*.json")), ids=lambda p: p.name)
def test_every_result_file_says_how_where_and_when_it_was_made(path):
    meta = json.loads(path.read_text())["meta"]
    assert meta["command"].startswith("python scripts/")
    assert (REPO / meta["command"].split()[1]).is_file()
    assert {"date", "machine", "commit"} <= set(meta) and all(meta.values())


def test_a_changed_figure_is_caught():
    text = (REPO / "README.md").read_text()
    match = next(readme_tables.BLOCK.finditer(text))
    body = match["body"]
    digit = next(i for i, c in enumerate(body) if c.isdigit())
    figure = str((int(body[digit]) + 1) % 10)
    tampered = text.replace(body, body[:digit] + figure + body[digit + 1 :], 1)
    _, changed = readme_tables.render(tampered)
    assert changed == [match["name"]]
