"""What a network is given, checked before it runs: the input window, the covariates and an
initial state, each wrong dimension named with what was expected; and whether the data's
scaling fits a head that works in the data's units."""

from __future__ import annotations

from torch import Tensor

from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.model.config import COUNT_LOSSES, LSTMConfig
from forecast.model.parts import State


def check_input(x: Tensor, n_features: int, lookback: int) -> bool:
    """Raise a ForecastError naming the wrong dimension; return whether ``x`` is unbatched."""
    if x.ndim not in (2, 3):
        raise ForecastError(
            f"input has {x.ndim} dimensions {tuple(x.shape)}; expected "
            f"(batch, time_steps, features) or unbatched (time_steps, features)"
        )
    time_dim, feature_dim = x.ndim - 2, x.ndim - 1
    if x.shape[feature_dim] != n_features:
        raise ForecastError(
            f"input dimension {feature_dim} (features) is {x.shape[feature_dim]}, expected "
            f"n_features={n_features}; input shape {tuple(x.shape)}"
        )
    if x.shape[time_dim] != lookback:
        raise ForecastError(
            f"input dimension {time_dim} (time_steps) is {x.shape[time_dim]}, expected "
            f"lookback={lookback}; input shape {tuple(x.shape)}"
        )
    return x.ndim == 2


def check_covariates(
    batch: int, expected: dict[str, tuple[Tensor | None, tuple[int, ...]]]
) -> None:
    """``expected``: each kind's tensor (or None) and its shape past the batch axis; a
    kind of width 0 may be left out."""
    for name, (values, shape) in expected.items():
        if values is None and shape[-1]:
            raise ForecastError(
                f"the model takes {name} covariates of shape (batch, "
                f"{', '.join(map(str, shape))}) and none were given"
            )
        given = values is not None and (values.shape[-1] or shape[-1])
        if given and tuple(values.shape) != (batch, *shape):
            raise ForecastError(
                f"{name} covariates have shape {tuple(values.shape)}, expected "
                f"(batch, {', '.join(map(str, shape))}) = {(batch, *shape)}"
            )


def check_state(state: State, zeros: State) -> None:
    """``state``'s ``h_0`` and ``c_0`` shaped as ``zeros`` (the network's initial state)."""
    for name, tensor, expected in zip(("h_0", "c_0"), state, zeros, strict=True):
        if tensor.shape != expected.shape:
            raise ForecastError(
                f"{name} has shape {tuple(tensor.shape)}, expected (num_layers, batch, "
                f"{'proj_size or hidden_size' if name == 'h_0' else 'hidden_size'}) = "
                f"{tuple(expected.shape)}"
            )


def check_units(config: LSTMConfig, spec: DataSpec) -> None:
    """A head floored in the data's units (a count loss or distribution, or nonnegative)
    maps through one scaler per column: per-series scaling is refused by name."""
    if not config.floored or spec.series_scaler is None:
        return
    chosen = f"model.loss={config.loss}" if config.loss in COUNT_LOSSES else (
        f"model.distribution={config.distribution}" if config.distribution else
        "model.nonnegative=true"
    )  # fmt: skip
    raise ForecastError(
        f"{chosen} works in the data's units through one scaler per column: set data.scaling=column"
    )
