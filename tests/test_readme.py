"""The figures of the README and the docs are the committed benchmark results, rendered, never
typed by hand; the config reference is conf/, rendered, and misses no key."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import config_reference  # noqa: E402
import readme_tables  # noqa: E402


def test_every_block_of_the_readme_and_the_docs_matches_its_json():
    rendered = readme_tables.pages()
    for path, text in rendered.items():
        assert path.read_text() == text, f"rerun python scripts/readme_tables.py ({path.name})"
    # every renderer is used, so no result goes unshown
    names = {m["name"] for text in rendered.values() for m in readme_tables.BLOCK.finditer(text)}
    assert names == set(readme_tables.BLOCKS)


def test_the_config_reference_is_generated_from_conf():
    assert config_reference.render() == {
        path: path.read_text() for path in (REPO / "docs" / "reference").glob("*.md")
    }, "rerun python scripts/config_reference.py"


def test_every_key_in_conf_is_in_the_reference():
    reference = "".join(text for text in config_reference.render().values())
    for path in (REPO / "conf").rglob("*.yaml"):
        for key in config_reference.keys(path):
            assert f"| `{key.path}` |" in reference, f"{path}: {key.path} is not in the reference"


def test_data_and_model_keys_are_the_dataclasses_fields():
    from dataclasses import fields

    from forecast.data.options import DataOptions
    from forecast.model.config import LSTMConfig

    data = {k.path for k in config_reference.keys(REPO / "conf" / "data" / "csv.yaml")}
    assert data - {"_target_"} == {f.name for f in fields(DataOptions)}
    model = {
        k.path
        for k in config_reference.keys(REPO / "conf" / "model" / "lstm.yaml")
        if "." not in k.path
    }
    assert model - {"_target_", "_partial_", "optimizer", "scheduler"} == {
        f.name for f in fields(LSTMConfig)
    }


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
