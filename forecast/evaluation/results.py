"""One set of windows scored: the model's and each baseline's ``Scores`` (and interval
scores, for quantiles), the figures they give as MLflow metrics, and the report's table."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from torch import Tensor

from forecast.evaluation.intervals import IntervalScores
from forecast.evaluation.scores import Scores

WINDOW_COLUMNS = ("origin", "mse", "mae", "mae_orig")  # Evaluation.windows' own, beside the ids


@dataclass
class Evaluation:
    """The model's and each baseline's scores on one set of windows, plus per-window errors."""

    scores: dict[str, Scores]
    seasonal_mae: Tensor
    season: int
    windows: pd.DataFrame  # one row per window: [series,] origin, mse, mae, mae_orig of the model
    quantiles: list[float] = field(default_factory=list)
    pinball: float = float("nan")  # in scaled units, as the quantile heads train on it
    # with quantiles: the model's interval scores, and seasonal naive's from its errors
    intervals: dict[str, IntervalScores] = field(default_factory=dict)
    loss: float | None = None  # the training loss on these windows, when it was given
    skipped: int = 0  # target values the data's rules made up, left out of every score
    naive2: tuple[float, float] | None = None  # Naive2's sMAPE and MASE: OWA's denominators
    stride: int = 1  # every stride-th origin of each series was scored

    def metrics(self, prefix: str) -> dict[str, float]:
        """``<prefix>_mse`` ... for the model, ``<prefix>_mse_<baseline>`` for baselines."""
        out = {}
        for name, scores in self.scores.items():
            keep = scores.metrics(self.seasonal_mae)
            if name == "model":
                out |= {f"{prefix}_{k}": v for k, v in keep.items()}
            else:
                shown = ("mse", "mae", "mase", "mae_orig", "rmse_orig", "smape", "mase_series")
                out |= {f"{prefix}_{k}_{name}": keep[k] for k in shown}
        members = [name for name in self.scores if name.startswith("member_")]
        for metric in ("mse", "mae") if members else ():  # an ensemble's members on average
            each = [out[f"{prefix}_{metric}_{name}"] for name in members]
            out[f"{prefix}_{metric}_members_mean"] = sum(each) / len(each)
        if self.quantiles:
            out[f"{prefix}_pinball"] = self.pinball
        for name, interval in self.intervals.items():
            suffix = "" if name == "model" else f"_{name}"
            out |= {f"{prefix}_{k}{suffix}": v for k, v in interval.metrics().items()}
        if self.loss is not None:
            out[f"{prefix}_loss"] = self.loss
        out[f"{prefix}_targets_skipped"] = float(self.skipped)
        owa = {f"{prefix}_owa" if n == "model" else f"{prefix}_owa_{n}": v
               for n, v in self.owa().items()}  # fmt: skip
        return out | owa

    def owa(self) -> dict[str, float]:
        """M4's OWA of the model and each baseline against Naive2 (none where not scored)."""
        if self.naive2 is None:
            return {}
        smape, mase = self.naive2
        each = {name: scores.metrics(self.seasonal_mae) for name, scores in self.scores.items()}
        return {n: (m["smape"] / smape + m["mase_series"] / mase) / 2 for n, m in each.items()}

    def table(self) -> str:
        every = f", every {self.stride}-th origin" if self.stride > 1 else ""
        lines = [
            f"{'':<16}{'MSE':>9}{'MAE':>9}{'MASE':>9}{'MAE':>12}{'RMSE':>12}{'sMAPE':>9}   "
            f"({len(self.windows)} windows{every}; the last three in the data's units)"
        ]
        for name, scores in self.scores.items():
            m = scores.metrics(self.seasonal_mae)
            lines.append(
                f"{name:<16}{m['mse']:>9.4f}{m['mae']:>9.4f}{m['mase']:>9.4f}"
                f"{m['mae_orig']:>12.4g}{m['rmse_orig']:>12.4g}{m['smape']:>9.3f}"
            )
        if self.quantiles:
            nominal = self.quantiles[-1] - self.quantiles[0]
            lines.append(f"quantiles {self.quantiles}: pinball {self.pinball:.4f}; the "
                         f"q{self.quantiles[0]:g} to q{self.quantiles[-1]:g} interval, nominal "
                         f"coverage {nominal:.2f}:")  # fmt: skip
        for name, interval in self.intervals.items():
            m = interval.metrics()
            lines.append(
                f"{name:<16}interval: coverage {m['coverage']:.3f}, width "
                f"{m['interval_width']:.4g}, MSIS {m['msis']:.3f}, WQL {m['wql']:.4f} (CRPS from "
                "the quantiles; the data's units)"
            )
        lines += self.series_lines()
        if self.naive2 is not None:
            owa = ", ".join(f"{name} {value:.3f}" for name, value in self.owa().items())
            lines.append(f"OWA against Naive2 (M4's): {owa}")
        if self.skipped:
            scored = int(next(iter(self.scores.values())).counts.sum())
            lines.append(
                f"{self.skipped} target value(s) filled by data.fill_gaps or data.fill_missing "
                f"not scored ({scored} scored)"
            )
        return "\n".join(lines)

    def by_series(self) -> pd.DataFrame | None:
        """The model's errors per series (the mean over its windows), worst MSE first; None
        for one series."""
        ids = [c for c in self.windows.columns if c not in WINDOW_COLUMNS]
        if not ids:
            return None
        grouped = self.windows.groupby(ids, sort=False)
        table = grouped[["mse", "mae", "mae_orig"]].mean()
        table.insert(0, "windows", grouped.size())
        return table.sort_values("mse", ascending=False).reset_index()

    def series_lines(self) -> list[str]:
        """The worst and the best series, for a panel."""
        table = self.by_series()
        if table is None or len(table) < 2:
            return []
        ids = [c for c in table.columns if c not in ("windows", "mse", "mae", "mae_orig")]

        def named(row: pd.Series) -> str:
            return ", ".join(str(row[c]) for c in ids) + f" (MSE {row.mse:.4f})"

        return [
            f"per series ({len(table)}): worst {named(table.iloc[0])}, best {named(table.iloc[-1])}"
        ]

    def by_step(self) -> pd.DataFrame:
        """MSE per horizon step (rows) for the model and each baseline (columns)."""
        curves = {name: s.mse_by_step().numpy() for name, s in self.scores.items()}
        frame = pd.DataFrame(curves)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="step")
        return frame
