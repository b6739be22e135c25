"""The measured figures of the README and the docs, rendered from the committed results in
``benchmarks/``; and the docs' front page, which is the README with its links made the
site's.

Every figure sits in a block between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``,
written by the renderer below from the JSON a script in ``scripts/`` wrote (with the command,
date, machine and commit inside). Figures are never typed by hand: rerun the script, then
this.

    python scripts/readme_tables.py          # rewrite every block from its JSON
    python scripts/readme_tables.py --check  # exit 1 naming each page that differs (a test)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import benchmark_check
import benchmark_cpu
import benchmark_ensemble
import benchmark_inference
import benchmark_memory
import benchmark_ranks
import benchmark_serving
import benchmark_spark
import benchmark_training
import combination_benchmark
import compare_peers
import covariate_benefit
import defaults_benchmark
import interval_benchmark
import m4_benchmark
import preset_runs
import profile_training
import reproduce_benchmark
import timing_under_load
from bench_setup import BENCHMARKS, REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
FRONT_PAGE = DOCS / "index.md"
LOOKBACKS = ("reproduce_lookback96", "reproduce_lookback336", "reproduce_lookback720")


def load(name: str) -> dict:
    return json.loads((BENCHMARKS / f"{name}.json").read_text())


# block name -> its text, from the JSON file(s) it names
BLOCKS: dict[str, Callable[[], str]] = {
    **{name: (lambda n=name: reproduce_benchmark.table(load(n))) for name in LOOKBACKS},
    "lookback_choice": lambda: reproduce_benchmark.lookback_choice([load(n) for n in LOOKBACKS]),
    "quickstart": lambda: preset_runs.quickstart(load("preset_runs")),
    "preset_evaluation": lambda: preset_runs.preset_evaluation(load("preset_runs")),
    "quantiles": lambda: preset_runs.quantiles(load("preset_runs")),
    "intervals": lambda: interval_benchmark.table(load("intervals"), load("intervals_normal")),
    "preset_runs": lambda: preset_runs.runs_table(load("preset_runs")),
    "fixed_cost": lambda: preset_runs.fixed_cost(load("preset_runs")),
    "covariate_benefit": lambda: covariate_benefit.table(load("covariate_benefit")),
    "defaults": lambda: defaults_benchmark.table(load("defaults_huber")),
    "loss_choice": lambda: defaults_benchmark.choice_table(
        [
            ("MAE, 256 (the default before)", [load("defaults_combined")], load("m4_defaults")),
            ("MSE, 128", [load("defaults_mse_h128")], None),
            ("MAE, 128", [load("defaults_small_mae128")], load("m4_mae128")),
            ("Huber, 128", [load("defaults_small_huber128")], load("m4_huber")),
            ("Huber, 256 (the default)", [load("defaults_huber")], load("m4_huber256")),
        ]
    ),
    "combination": lambda: combination_benchmark.table(load("combination_huber")),
    "defaults_before": lambda: defaults_benchmark.table(load("defaults_defaults")),
    "m4": lambda: m4_benchmark.table(load("m4_huber256")),
    "m4_intervals": lambda: m4_benchmark.interval_table(
        load("m4_studentt_conformal"),
        load("m4_studentt"),
        load("m4_quantiles_conformal"),
        load("m4_studentt_lookback336"),
        load("m4_studentt_log"),
        load("m4_studentt_log_ensemble2"),
        load("m4_studentt_ensemble2"),
    ),
    "compare_peers": lambda: compare_peers.table(load("compare_peers")),
    "training_grid": lambda: benchmark_training.table(load("training_grid")),
    "training": lambda: benchmark_training.table(load("training")),
    "profile_training": lambda: profile_training.table(load("profile_training")),
    "memory": lambda: benchmark_memory.table(load("memory")),
    "memory_panels": lambda: benchmark_memory.panel_table(load("memory_panels")),
    "ranks": lambda: benchmark_ranks.table(load("ranks")),
    "spark": lambda: benchmark_spark.render(load("spark")),
    "inference": lambda: benchmark_inference.table(load("inference")),
    "cpu": lambda: benchmark_cpu.table(load("cpu")),
    "serving": lambda: benchmark_serving.table(load("serving")),
    "timing_under_load": lambda: timing_under_load.table(load("timing_under_load")),
    "check": lambda: benchmark_check.table(load("check")),
    "ensemble": lambda: benchmark_ensemble.table(load("ensemble")),
    **{
        name: (lambda n=name: reproduce_benchmark.table(load(n)))
        for name in (
            "reproduce_ensemble5",
            "reproduce_ensemble5_mean",
            "reproduce_ettm1_ensemble3_mean",
        )
    },
}
BLOCK = re.compile(
    r"<!-- results:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /results:(?P=name) -->", re.S
)


def render(text: str) -> tuple[str, list[str]]:
    """``text`` with every block rewritten; the names of the blocks that changed."""
    changed = []

    def block(match: re.Match) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise KeyError(f"README block {name!r} has no renderer in scripts/readme_tables.py")
        body = BLOCKS[name]().rstrip("\n") + "\n"
        if body != match["body"]:
            changed.append(name)
        return f"<!-- results:{name} -->\n{body}<!-- /results:{name} -->"

    return BLOCK.sub(block, text), changed


def pages() -> dict[Path, str]:
    """Every page with its blocks rendered: the README, the docs' pages, and the front page
    made from the README."""
    out = {}
    for path in [README, *sorted(DOCS.rglob("*.md"))]:
        if path != FRONT_PAGE:
            out[path] = render(path.read_text())[0]
    out[FRONT_PAGE] = front_page(out[README])
    return out


def front_page(readme: str) -> str:
    """The README as the site's index: its links into ``docs/`` made relative to it."""
    note = "<!-- made from README.md by scripts/readme_tables.py: edit the README -->\n"
    return note + readme.replace("](docs/", "](")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on a diff")
    args = parser.parse_args()
    rendered = pages()
    changed = [
        str(path.relative_to(REPO))
        for path, text in rendered.items()
        if not path.is_file() or path.read_text() != text
    ]
    if args.check:
        if changed:
            sys.exit(f"pages that differ from benchmarks/*.json: {changed}")
        return
    for path, text in rendered.items():
        path.write_text(text)
    print(f"rewrote {changed or 'nothing'}")


if __name__ == "__main__":
    main()
