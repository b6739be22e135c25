"""What a finished training run prints: the model next to the baselines, and where the run,
checkpoint and config went. Every metric is in the MLflow run; the console shows the ones a
reader compares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from forecast.evaluation.results import Evaluation
from forecast.model.ensemble import Ensemble


@dataclass
class RunOutputs:
    """What a finished run produced, for logging and the report."""

    model_path: Path
    metrics: dict[str, float]
    evaluation: Evaluation | None = None
    data_changes: list[tuple[str, int, str]] = field(default_factory=list)
    ensemble: Ensemble | None = None
    derived: dict[str, object] = field(default_factory=dict)  # keys left null: what was chosen


def report(outputs: RunOutputs, run: str | None, config_path: Path) -> str:
    """The report's lines; ``run`` says where the MLflow run is, if there is one."""
    metrics = outputs.metrics
    lines = [""]
    lines += [f"data: {count} {line}" for _, count, line in outputs.data_changes if count]
    if outputs.derived:
        lines.append("chosen for you: " + " ".join(f"{k}={v}" for k, v in outputs.derived.items()))
    if outputs.ensemble is not None:
        lines += ensemble_lines(outputs.ensemble, metrics["best_val_loss"])
    elif "best_val_loss" in metrics:
        lines.append(f"best val_loss {metrics['best_val_loss']:.4f}")
    if "val_coverage" in metrics:
        lines.append(interval_line(metrics))
    if outputs.evaluation is not None:
        evaluation = outputs.evaluation
        lines += [f"test split, season {evaluation.season}:", evaluation.table()]
    lines.append("")
    if run is not None:
        lines.append(f"MLflow run   {run}")
    lines += [f"checkpoint   {outputs.model_path}", f"config       {config_path}"]
    return "\n".join(lines)


def ensemble_lines(ensemble: Ensemble, val_loss: float) -> list[str]:
    size = len(ensemble.members)
    lines = [
        f"ensemble of {size} members, ensemble.combine={ensemble.combine}"
        if size > 1
        else "the model combined with the baselines (ensemble.combine=validation)"
    ]
    if ensemble.combine == "validation":
        chosen = [f"{c} {w:.2f}" for c, w in ensemble.chosen().items() if w]
        lines.append(f"weights chosen on the validation split: {', '.join(chosen)}")
    lines.append(f"the combination's val_loss {val_loss:.4f}")
    return lines


def interval_line(metrics: dict[str, float]) -> str:
    line = f"validation coverage of the interval {metrics['val_coverage']:.3f}"
    if "val_coverage_conformal" in metrics:
        line += (
            f", {metrics['val_coverage_conformal']:.3f} once calibrated (conformal=true: "
            "each quantile moved by its validation errors' quantile)"
        )
    return line
