"""Ensembles: several LSTMs trained with seeds ``seed, seed + 1, ...`` and how their forecasts
combine, as one network with the interface of ``LSTMNet`` (``forecast`` and ``config``), so
scoring, the model file, prediction, serving and export take either.

``combine``:

- ``mean``: the members' average, point and quantiles alike;
- ``median``: the members' median, per value (robust to one member gone astray);
- ``validation``: non-negative weights, summing to one, over the members and the baselines
  (``naive``, ``seasonal_naive``, ``linear``), chosen on the validation windows alone: the
  average of two weightings. Greedy ensemble selection with replacement (Caruana et al.,
  2004, as AutoGluon does: start empty, add the candidate that most lowers the validation MSE
  of the running average, repeat; a weight is the share of the rounds that picked it) finds
  the best mix for the validation windows, and trusts them fully; weights in proportion to
  ``1 / MSE**2`` hedge, as the forecast-combination literature finds simple rules do, against
  a validation span that does not look like the test (one span of 13 weeks per M4 series
  gave the LSTM all the weight and a test 10% behind the linear baseline) and against the
  members' validation error being a little optimistic (early stopping chose their epoch on
  it). Measured on eight data sets (benchmarks/combination.json), the average was never
  more than 0.04% behind the best baseline; each weighting alone was 2-10% behind on one.

Quantiles: the members' quantiles combine with the members' weights renormalized to sum to
one (equal weights if validation gave the members none), then shift by the difference between
the combined point and the members' combined point. The baselines forecast a point only: they
move an interval, they do not narrow it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from forecast.data.options import counting
from forecast.data.spec import DataSpec
from forecast.data.windows import WindowDataset
from forecast.errors import ForecastError
from forecast.model.baselines import LinearBaseline, reference_baselines
from forecast.model.calibration import Calibration, calibrated
from forecast.model.config import LSTMConfig
from forecast.model.losses import Forecast, forecast_unbatched

COMBINES = ("mean", "median", "validation")
SELECTION_ROUNDS = 50  # Caruana et al.: weights in steps of 1/50


class Ensemble(nn.Module):
    """Members (``LSTMNet``s) of one configuration and their combination; see the module docstring.

    With ``validation``, the buffer ``weights`` is over ``candidates``: the members, then the
    baselines that exist for the data (no seasonal naive when the season exceeds the
    lookback). It is zeros until ``fit_combination`` sets it or a model file's state dict is
    loaded; ``linear`` is the linear baseline's map (fitted on the training windows).
    """

    def __init__(
        self,
        members: Sequence[nn.Module],
        spec: DataSpec,
        combine: str = "mean",
        season: int = 1,
        linear: Tensor | None = None,
    ) -> None:
        super().__init__()
        if combine not in COMBINES:
            raise ForecastError(f"ensemble.combine={combine!r} is not one of {COMBINES}")
        if not members:
            raise ForecastError("an ensemble needs at least one member")
        if not counting(season):
            raise ForecastError(f"the ensemble's season={season!r} must be an integer >= 1")
        self.members = nn.ModuleList(members)
        self.config: LSTMConfig = members[0].config
        self.combine, self.season = combine, int(season)
        self.lookback, self.horizon = spec.lookback, spec.horizon
        self.target_index = list(spec.target_index)
        self.candidates = [f"member_{k}" for k in range(len(members))]
        linear_map = torch.zeros(0)
        if combine == "validation":  # zeros until fitted (or loaded from a model file)
            linear_map = torch.zeros(spec.lookback + 1, spec.horizon)
            linear_map = linear_map if linear is None else linear.float()
        # (lookback + 1, horizon): LinearBaseline's map, fitted on the training windows
        self.register_buffer("linear", linear_map)
        if combine == "validation":
            self.candidates += list(self._baselines())
        self.register_buffer(
            "weights", torch.zeros(len(self.candidates) * (combine == "validation"))
        )
        self.calibration: Calibration | None = None  # conformal offsets, fitted after training

    def chosen(self) -> dict[str, float]:
        """Each candidate's weight, for validation (the members' equal shares otherwise)."""
        if self.combine != "validation":
            return {c: 1 / len(self.members) for c in self.candidates}
        return dict(zip(self.candidates, self.weights.tolist(), strict=True))

    def describe(self) -> dict:
        """The combination as plain values, for the model file (the tensors go with the
        state dict)."""
        return {"size": len(self.members), "combine": self.combine, "season": self.season}

    def _baselines(self) -> dict[str, Callable[[Tensor], Tensor]]:
        linear = LinearBaseline(self.linear, self.target_index)
        return reference_baselines(
            self.horizon, self.target_index, self.lookback, self.season, linear
        )

    def baselines(self, x: Tensor) -> list[Tensor]:
        """The baselines among the candidates, each ``(batch, horizon, n_targets)``."""
        return [b(x) for name, b in self._baselines().items() if name in self.candidates]

    def member_forecasts(
        self,
        x: Tensor,
        future: Tensor | None = None,
        static: Tensor | None = None,
        levels: Sequence[float] | None = None,
    ) -> Forecast:
        """Every member's forecast, stacked on a first axis: ``point (members, batch,
        horizon, n_targets)``, ``quantiles (members, batch, horizon, n_targets, Q)``, and
        members with a distribution their ``params``."""
        outs = [member.forecast(x, future, static, levels) for member in self.members]
        each = zip(*outs, strict=True)  # per field of Forecast, every member's
        return Forecast(*(None if parts[0] is None else torch.stack(parts) for parts in each))

    def forecast(
        self,
        x: Tensor,
        future: Tensor | None = None,
        static: Tensor | None = None,
        levels: Sequence[float] | None = None,
    ) -> Forecast:
        """The combined forecast at the members' ``levels`` (None: all they learned), shaped
        as one member's (unbatched in, unbatched out)."""
        if x.dim() == 2:
            return forecast_unbatched(partial(self.forecast, levels=levels), x, future, static)
        return self.combined(x, self.member_forecasts(x, future, static, levels), levels)

    def combined(
        self, x: Tensor, members: Forecast, levels: Sequence[float] | None = None
    ) -> Forecast:
        """The combination of ``members`` (``member_forecasts`` of ``x`` at ``levels``),
        calibrated if the ensemble was."""
        levels = self.config.quantiles if levels is None else levels
        return calibrated(self.calibration, self._combined(x, members), levels)

    def _combined(self, x: Tensor, members: Forecast) -> Forecast:
        points, quantiles = members.point, members.quantiles
        if self.combine == "median":
            return Forecast(_median(points), _median(quantiles))
        n = len(self.members)
        if self.combine == "mean":
            return Forecast(points.mean(0), quantiles.mean(0))
        point = torch.einsum("m,m...->...", self.weights[:n], points)
        point = point + torch.einsum(
            "c,c...->...", self.weights[n:], torch.stack(self.baselines(x))
        )
        # the interval: the members' own, with their weights renormalized, moved to the point
        shares = self.shares()
        members_point = torch.einsum("m,m...->...", shares, points)
        spread = torch.einsum("m,m...->...", shares, quantiles)
        return Forecast(point, spread + (point - members_point).unsqueeze(-1))

    def shares(self) -> Tensor:
        """The members' weights renormalized to sum to one (equal if validation gave them
        none): how their quantiles and sample paths mix."""
        n = len(self.members)
        if self.combine != "validation":
            return self.weights.new_full((n,), 1.0 / n)
        weights = self.weights[:n]
        share = weights.sum()
        return weights / share if share > 0 else torch.full_like(weights, 1.0 / n)

    def sample(
        self,
        x: Tensor,
        n: int,
        seed: int = 0,
        future: Tensor | None = None,
        static: Tensor | None = None,
    ) -> Tensor:
        """``n`` paths of the members' mixture (members with a distribution): each path of
        each window from a member drawn by its share, moved by the combined point minus the
        members' combined point, as the quantiles are. ``(n, batch, horizon, n_targets)``."""
        members = self.member_forecasts(x, future, static, levels=())  # one forward each
        each = torch.stack(
            [
                m.distribution.sample(params, n, seed + k)
                for k, (m, params) in enumerate(zip(self.members, members.params, strict=True))
            ]
        )  # fmt: skip  (members, n, batch, horizon, n_targets)
        shares = self.shares()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            drawn = torch.multinomial(shares, n * x.shape[0], replacement=True)
        drawn = drawn.view(1, n, x.shape[0], 1, 1).expand(1, *each.shape[1:])
        paths = each.gather(0, drawn)[0]
        point = self._combined(x, members).point
        return paths + point - torch.einsum("m,m...->...", shares, members.point)

    def candidates_of(self, x: Tensor, members: Forecast) -> Tensor:
        """Every candidate's point forecast, ``(candidates, batch, horizon, n_targets)``."""
        return torch.cat([members.point, torch.stack(self.baselines(x))])


def _median(values: Tensor) -> Tensor:
    """The median over the first axis, the mean of the middle two for an even count: by a
    sort, which tracing and ONNX export take (``torch.quantile`` is not exported)."""
    ordered, middle = values.sort(dim=0).values, len(values) // 2
    return ordered[middle] if len(values) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def combination_weights(gram: Tensor, cross: Tensor, squares: float, count: int) -> Tensor:
    """The ``validation`` weights (module docstring) from the candidates' sums over the
    validation values (``candidate_sums``): greedy selection's and ``inverse_weights``'
    average."""
    both = select_weights(gram, cross).double() + inverse_weights(gram, cross, squares, count)
    return (both / 2).float()


def inverse_weights(gram: Tensor, cross: Tensor, squares: float, count: int) -> Tensor:
    """Each candidate's weight in proportion to ``1 / MSE**2`` on the validation values."""
    gram, cross = gram.double(), cross.double()
    mse = ((gram.diagonal() - 2 * cross + squares) / max(count, 1)).clamp_min(1e-12)
    inverse = mse.pow(-2)
    return inverse / inverse.sum()


def select_weights(gram: Tensor, cross: Tensor, rounds: int = SELECTION_ROUNDS) -> Tensor:
    """Greedy ensemble selection with replacement, from the candidates' Gram matrix ``gram
    (C, C)`` (``<P_c, P_d>`` over the validation values) and ``cross (C,)`` (``<P_c, y>``):
    the squared error of any average of candidates follows from these, so they are summed
    batch by batch and no forecast is kept. Returns each candidate's weight, a multiple of
    ``1 / rounds``; ties go to the earlier candidate (the members, before the baselines)."""
    gram, cross = gram.double(), cross.double()
    counts = torch.zeros(len(cross), dtype=torch.float64)
    for k in range(1, rounds + 1):
        # ||(S + P_c) / k - y||^2 less ||y||^2, for S the sum of the picks so far
        trial = counts.unsqueeze(0) + torch.eye(len(cross), dtype=torch.float64)
        error = ((trial @ gram) * trial).sum(1) / k**2 - 2 * (trial @ cross) / k
        counts[int(torch.argmin(error))] += 1
    return (counts / rounds).float()


@torch.no_grad()
def fit_combination(
    members: Sequence[nn.Module],
    spec: DataSpec,
    combine: str,
    season: int,
    train: WindowDataset,
    val: WindowDataset,
    stride: int = 1,
    batch_size: int = 1024,
) -> Ensemble:
    """The ensemble of ``members``; with ``validation`` its weights chosen on ``val``'s
    windows alone, every ``stride``-th origin (the linear baseline is fitted on ``train``'s,
    as when it is scored)."""
    linear = LinearBaseline.fit(train).weight if combine == "validation" else None
    ensemble = Ensemble([m.eval() for m in members], spec, combine, season, linear=linear)
    if combine != "validation":
        return ensemble
    sums = candidate_sums(ensemble, val, stride, batch_size)
    ensemble.weights.copy_(combination_weights(*sums))
    return ensemble


Sums = tuple[Tensor, Tensor, float, int]


@torch.no_grad()
def candidate_sums(
    ensemble: Ensemble, windows: WindowDataset, stride: int = 1, batch_size: int = 1024
) -> Sums:
    """What the squared error of any weighting of the candidates over ``windows`` (every
    ``stride``-th origin) follows from: the Gram matrix ``(C, C)``, the products with the
    targets ``(C,)``, the targets' sum of squares and their count (observed targets only: a
    made-up one is not chosen on)."""
    size = len(ensemble.candidates)
    gram = torch.zeros(size, size, dtype=torch.float64)
    cross = torch.zeros(size, dtype=torch.float64)
    squares, count = 0.0, 0
    for index in windows.strided(stride).split(batch_size):
        x, y, future, static = windows[index]
        candidates = ensemble.candidates_of(x, ensemble.member_forecasts(x, future, static))
        observed = torch.isfinite(y).reshape(-1)
        flat = candidates.reshape(size, -1)[:, observed].double()
        values = y.reshape(-1)[observed].double()
        gram += flat @ flat.T
        cross += flat @ values
        squares, count = squares + float(values @ values), count + len(values)
    totals = torch.tensor([squares, count], dtype=torch.float64)
    windows.shard.summed(gram, cross, totals)  # under DDP, every rank's windows
    return gram, cross, float(totals[0]), int(totals[1])
