"""How ``ensemble.combine=validation`` weighs the model and the baselines, against the rules
it is made of, on the model files of a ``defaults_benchmark.py`` run: the weights of each rule
come from the validation windows, the figure is the test MSE over the best baseline's (above
1: the rule loses to a baseline), so the choice of rule is measured on every data set at once.

    python scripts/defaults_benchmark.py --label defaults
    python scripts/combination_benchmark.py --runs bench/defaults/defaults

Rules: ``greedy`` (Caruana's selection alone), ``inverse_mse2`` (weights in proportion to
1/MSE^2 alone), ``validation`` (their average: what the combination is), and ``lstm`` (the
model alone, no baseline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_setup import BENCHMARKS, REPO, markdown_table, provenance, run_meta, write_results

from forecast.data.datamodule import ForecastDataModule
from forecast.model.ensemble import (
    Ensemble,
    Sums,
    candidate_sums,
    combination_weights,
    inverse_weights,
    select_weights,
)
from forecast.serving.checkpoint import load_checkpoint

RULES = ("lstm", "greedy", "inverse_mse2", "validation")


def mse(weights: torch.Tensor, stats: Sums) -> float:
    gram, cross, squares, count = stats
    w = weights.double()
    return float((w @ gram @ w - 2 * w @ cross + squares) / count)


def study(path: Path) -> dict:
    """Each rule's validation weights and test MSE over the best baseline's, for one model file."""
    net, spec = load_checkpoint(path)
    if not isinstance(net, Ensemble) or net.combine != "validation":
        raise SystemExit(f"{path}: not a model combined with ensemble.combine=validation")
    datamodule = ForecastDataModule.from_spec(spec)
    datamodule.setup("fit")
    val, test = (candidate_sums(net, datamodule.datasets[split]) for split in ("val", "test"))
    alone = torch.eye(len(net.candidates))
    best = min(mse(alone[k], test) for k in range(len(net.members), len(net.candidates)))
    greedy = select_weights(val[0], val[1])
    validation, inverse = combination_weights(*val), inverse_weights(*val)
    weights = dict(zip(RULES, (alone[0], greedy, inverse, validation), strict=True))
    return {
        "dataset": path.parent.name, "candidates": net.candidates,
        "weights": {rule: [round(float(v), 3) for v in w] for rule, w in weights.items()},
        "ratio": {rule: mse(w, test) / best for rule, w in weights.items()},
    }  # fmt: skip


def table(results: dict) -> str:
    rows = [[r["dataset"], *(f"{r['ratio'][rule]:.3f}" for rule in RULES)] for r in results["runs"]]
    worst = [max(r["ratio"][rule] for r in results["runs"]) for rule in RULES]
    rows.append(["worst", *(f"**{w:.3f}**" for w in worst)])
    note = "Test MSE over the best baseline's, weights from the validation windows."
    return markdown_table(["data", *RULES], rows, note, provenance(results["meta"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=REPO / "bench" / "defaults" / "defaults")
    parser.add_argument("--out", type=Path, default=BENCHMARKS / "combination.json")
    args = parser.parse_args()
    results = {"meta": run_meta("combination_benchmark.py"), "runs": []}
    for path in sorted((args.runs / "logs").glob("*/model.pt")):
        results["runs"].append(study(path))
        print(f"{path.parent.name}: {results['runs'][-1]['ratio']}", flush=True)
    write_results(args.out, results)
    print(table(results))


if __name__ == "__main__":
    main()
