"""The config reference of the docs, generated from ``conf/`` (read by forecast.reference, as
every command's ``--help`` is): a page per config group with every key, its default and its
comment, and for the data and model groups the dataclass whose fields the keys mirror one to
one (``DataOptions``, ``LSTMConfig``).

    python scripts/config_reference.py          # rewrite docs/reference/*.md
    python scripts/config_reference.py --check  # exit 1 naming each page that differs (a test)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from forecast.reference import header, keys

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
PAGES = REPO / "docs" / "reference"
# group -> (title, what it configures, the dataclass its keys mirror)
GROUPS = {
    "config": ("forecast-train", "The top-level keys of `conf/config.yaml`.", None),
    "data": ("data", "How a table is read, checked, split and windowed.",
             "forecast.data.options.DataOptions"),
    "model": ("model", "The network and its optimizer.", "forecast.model.config.LSTMConfig"),
    "trainer": ("trainer", "`pytorch_lightning.Trainer` arguments.", None),
    "logger": ("logger", "Where runs are tracked.", None),
    "callbacks": ("callbacks", "Lightning callbacks, each from its `_target_`.", None),
    "paths": ("paths", "Where outputs go.", None),
    "experiment": ("experiment", "Presets: overrides of the groups above.", None),
    "hparams_search": ("hparams_search", "Optuna searches (`forecast-train -m ...`).", None),
    "commands": ("the other commands",
                 "forecast-eval, forecast-check, forecast-predict, forecast-serve, "
                 "forecast-export.", None),
}  # fmt: skip


def files(group: str) -> list[Path]:
    if group == "config":
        return [CONF / "config.yaml"]
    if group == "commands":
        return [CONF / "eval.yaml", CONF / "check.yaml", *sorted((CONF / "serving").glob("*.yaml"))]
    return sorted((CONF / group).glob("*.yaml"))


def page(group: str) -> str:
    title, about, mirrors = GROUPS[group]
    lines = [f"# {title}", "", about, ""]
    if mirrors:
        lines += [f"The keys are the fields of `{mirrors}`, checked there once.", ""]
    lines.append("Generated from `conf/` by `python scripts/config_reference.py`.")
    for path in files(group):
        rows = keys(path)
        lines += ["", f"## `{path.relative_to(REPO)}`", ""]
        if header(path):
            lines += [header(path), ""]
        if not rows:
            lines.append("No keys of its own (only a defaults list).")
            continue
        lines += ["| key | default | meaning |", "|---|---|---|"]
        for key in rows:
            default = key.default.replace("|", "\\|") or "(a group)"
            meaning = key.comment.replace("|", "\\|")
            lines.append(f"| `{key.path}` | `{default}` | {meaning} |")
    return "\n".join(lines) + "\n"


def render() -> dict[Path, str]:
    return {PAGES / f"{group}.md": page(group) for group in GROUPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on a diff")
    args = parser.parse_args()
    pages = render()
    changed = [p.name for p, text in pages.items() if not p.is_file() or p.read_text() != text]
    if args.check:
        if changed:
            sys.exit(f"reference pages that differ from conf/: {changed}")
        return
    PAGES.mkdir(parents=True, exist_ok=True)
    for path, text in pages.items():
        path.write_text(text)
    print(f"rewrote {changed or 'nothing'}")


if __name__ == "__main__":
    main()
