"""The stacked LSTM forecaster: its configuration, its parts, the network, and the
LightningModule that trains it.

Shapes, with ``batch_first=True`` and ``H_out = proj_size or hidden_size``:

    x            (batch, lookback, n_features)      or unbatched (lookback, n_features)
    h_0, h_n     (num_layers, batch, H_out)         or unbatched (num_layers, H_out)
    c_0, c_n     (num_layers, batch, hidden_size)   or unbatched (num_layers, hidden_size)
    LSTM output  (batch, lookback, H_out)
    forecast     (batch, horizon, n_targets)        or unbatched (horizon, n_targets)
    quantiles    (batch, horizon, n_targets, n_quantiles), ``Forecast.quantiles``

With ``channel_independent`` the LSTM's own batch is ``batch * n_features`` (one sequence per
window and feature, input size 1), so ``h``/``c`` carry that in their middle axis (unbatched:
``n_features``); with ``segment_len = s`` the LSTM runs ``lookback / s`` steps of ``s * channels``
inputs, and its output is ``(sequences, lookback / s, H_out)``.

The forecast is direct multi-horizon: the head maps the encoder's last output (or, with the
recurrent decoder, its final state) to all ``horizon x n_targets`` values at once, so errors do
not compound the way they do when feeding predictions back step by step. With ``quantiles``
the same head also gives each configured quantile of every value (trained with the pinball
loss next to the point loss), so one forward pass yields the point forecast and its intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, NamedTuple

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from forecast.errors import ForecastError
from forecast.losses import COUNT_LOSSES, LOSSES, ForecastLoss
from forecast.spec import DataSpec

if TYPE_CHECKING:
    from forecast.windows import Batch

State = tuple[Tensor, Tensor]
DECODERS = ("linear", "recurrent")


@dataclass(frozen=True)
class LSTMConfig:
    """The network's own choices, one field per key of ``conf/model/lstm.yaml``. Its sizes
    that come from the data (features, targets, lookback, horizon) are the ``DataSpec``'s."""

    hidden_size: int = 64
    num_layers: int = 2
    dropout: float = 0.0
    proj_size: int = 0  # 0: none; else h_t is projected to proj_size (< hidden_size)
    instance_norm: bool = True
    channel_independent: bool = False
    segment_len: int = 1  # time steps per LSTM step
    decoder: str = "linear"  # or "recurrent"
    linear_skip: bool = False
    quantiles: tuple[float, ...] = ()
    loss: str = "mse"  # a count loss (poisson, tweedie) makes the forecast a non-negative mean
    tweedie_power: float = 1.5  # the Tweedie variance power, in (1, 2)

    def __post_init__(self) -> None:
        for name, top in (("hidden_size", 1 << 16), ("num_layers", 64), ("segment_len", 1 << 16)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                # the upper bound keeps a mistyped size from asking for terabytes of weights
                raise ForecastError(f"model.{name}={value!r} must be an integer in [1, {top}]")
        if not isinstance(self.dropout, int | float) or not 0 <= self.dropout < 1:
            raise ForecastError(f"model.dropout={self.dropout!r} must be in [0, 1)")
        if self.decoder not in DECODERS:
            raise ForecastError(f"model.decoder={self.decoder!r} is not one of {DECODERS}")
        quantiles = tuple(float(q) for q in self.quantiles or ())
        if any(not 0 < q < 1 for q in quantiles) or list(quantiles) != sorted(set(quantiles)):
            raise ForecastError(
                f"model.quantiles={list(quantiles)} must be distinct, increasing and inside (0, 1)"
            )
        object.__setattr__(self, "quantiles", quantiles)
        if self.loss not in LOSSES:
            raise ForecastError(f"model.loss={self.loss!r} is not one of {sorted(LOSSES)}")
        if not isinstance(self.tweedie_power, int | float) or not 1 < self.tweedie_power < 2:
            raise ForecastError(f"model.tweedie_power={self.tweedie_power!r} must be in (1, 2)")
        if not 0 <= self.proj_size < self.hidden_size:
            raise ForecastError(
                "proj_size has to be smaller than hidden_size and >= 0 "
                f"(model.proj_size={self.proj_size}, model.hidden_size={self.hidden_size})"
            )

    @property
    def counts(self) -> bool:
        """Whether the forecast is a non-negative mean, for a count loss."""
        return self.loss in COUNT_LOSSES

    @property
    def h_out(self) -> int:
        """Width of the LSTM's output and of ``h``."""
        return self.proj_size or self.hidden_size


class Forecast(NamedTuple):
    """What the network forecasts: the point forecast and, per configured level, a quantile."""

    point: Tensor  # (batch, horizon, n_targets)
    quantiles: Tensor  # (batch, horizon, n_targets, n_quantiles); n_quantiles may be 0

    @classmethod
    def split(cls, values: Tensor) -> Forecast:
        """From the head's layout ``(..., 1 + n_quantiles)``: the point first."""
        return cls(values[..., 0], values[..., 1:])

    def flat(self) -> Tensor:
        """``(batch, horizon, n_targets * (1 + n_quantiles))``: every target's point, then
        each target's quantiles in level order (the output columns of forecast-predict)."""
        return torch.cat([self.point, self.quantiles.flatten(2)], dim=2)


class RevIN(nn.Module):
    """Reversible instance normalization: each window is standardized by its own mean and std
    per feature and the forecast mapped back with its target columns' statistics. The LSTM
    then models shape, not level, which keeps it accurate when a series drifts away from the
    training period's level. Disabled, both directions are the identity."""

    def __init__(self, target_index: list[int], enabled: bool) -> None:
        super().__init__()
        self.enabled = enabled
        self.register_buffer("target_index", torch.tensor(target_index), persistent=False)

    def forward(self, x: Tensor) -> tuple[Tensor, State | None]:
        """``x (batch, lookback, n_features)`` standardized, and the targets' statistics."""
        if not self.enabled:
            return x, None
        mean = x.mean(dim=1, keepdim=True)  # (batch, 1, n_features)
        std = (x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).sqrt()
        return (x - mean) / std, (mean[..., self.target_index], std[..., self.target_index])

    def inverse(self, out: Tensor, stats: State | None) -> Tensor:
        """``out (batch, horizon, n_targets, values)`` back in the window's units."""
        if stats is None:
            return out
        mean, std = (s.unsqueeze(-1) for s in stats)  # (batch, 1, n_targets, 1)
        return out * std + mean


def target_statistics(spec: DataSpec) -> tuple[Tensor, Tensor]:
    """The targets' training mean and std, ``(n_targets,)`` float32: what takes scaled
    forecasts to the data's units (0 and 1 for a spec without a scaler)."""
    if spec.scaler is None:
        return torch.zeros(spec.n_targets), torch.ones(spec.n_targets)
    scaler = spec.target_scaler
    return torch.tensor(scaler.mean).float(), torch.tensor(scaler.std).float()


class CountLink(nn.Module):
    """Keeps a count model's forecasts non-negative in the data's units: the network's output
    (scaled, after instance normalization is undone) is mapped to the data's units, through a
    softplus, and scaled back. Softplus is the identity for large values, so the network
    learns levels as any other model does, and bends smoothly to zero below them."""

    def __init__(self, spec: DataSpec) -> None:
        super().__init__()
        mean, std = target_statistics(spec)
        # (n_targets, 1): broadcast over (batch, horizon, n_targets, 1 + n_quantiles)
        self.register_buffer("mean", mean[:, None], persistent=False)
        self.register_buffer("std", std[:, None], persistent=False)

    def forward(self, out: Tensor) -> Tensor:
        return (nn.functional.softplus(out * self.std + self.mean) - self.mean) / self.std


class LinearHead(nn.Module):
    """The whole horizon at once from the encoder's last output, through dropout."""

    def __init__(self, config: LSTMConfig, horizon: int, outputs: int) -> None:
        super().__init__()
        self.horizon = horizon
        self.dropout = nn.Dropout(config.dropout)
        self.linear = nn.Linear(config.h_out, horizon * outputs)

    def forward(self, output: Tensor, state: State, batch: int) -> Tensor:
        """``output (sequences, steps, H_out)`` -> ``(sequences, horizon, outputs)``."""
        out = self.linear(self.dropout(output[:, -1]))
        return out.view(out.shape[0], self.horizon, -1)


class SegmentDecoder(nn.Module):
    """SegRNN's parallel multi-step decoding: every output segment of ``segment_len`` steps is
    one decoder step from the encoder's final state, its input a learned embedding of the
    segment's position (and, channel-independent, of the channel). The steps share one
    state, not each other's outputs, so they run as one batch and errors cannot compound."""

    def __init__(self, config: LSTMConfig, n_features: int, horizon: int, outputs: int) -> None:
        super().__init__()
        self.horizon, self.segment_len = horizon, config.segment_len
        self.channel_independent = config.channel_independent
        self.segments = -(-horizon // config.segment_len)  # the last one may be cropped
        hidden = config.hidden_size
        half = hidden // 2 if config.channel_independent else hidden
        self.position = nn.Parameter(torch.randn(self.segments, half) * 0.02)
        self.channel = nn.Parameter(torch.randn(n_features, hidden - half) * 0.02)
        self.lstm = lstm(config, input_size=hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.linear = nn.Linear(config.h_out, config.segment_len * outputs)

    def forward(self, output: Tensor, state: State, batch: int) -> Tensor:
        """Final state ``(num_layers, sequences, ...)`` -> ``(sequences, horizon, outputs)``."""
        h_n, c_n = state
        sequences, n = h_n.shape[1], self.segments
        inputs = self.position.unsqueeze(0).expand(sequences, n, -1)  # (sequences, n, half)
        if self.channel_independent:  # sequence k is feature k % n_features of its window
            channel = self.channel.repeat(batch, 1).unsqueeze(1).expand(sequences, n, -1)
            inputs = torch.cat([inputs, channel], dim=-1)  # (sequences, n, hidden_size)
        state = (h_n.repeat_interleave(n, dim=1), c_n.repeat_interleave(n, dim=1))
        out, _ = self.lstm(inputs.reshape(sequences * n, 1, -1), state)
        out = self.linear(self.dropout(out[:, 0]))  # (sequences * n, segment_len * outputs)
        return out.view(sequences, n * self.segment_len, -1)[:, : self.horizon]


class LinearSkip(nn.Linear):
    """One lookback -> horizon map shared by all targets, added to the LSTM's forecast: the
    LSTM then models what a linear extrapolation of the window misses."""

    def forward(self, targets: Tensor) -> Tensor:
        """``(batch, lookback, n_targets)`` -> ``(batch, horizon, n_targets, 1)``."""
        return super().forward(targets.transpose(1, 2)).transpose(1, 2).unsqueeze(-1)


class CovariateEncoder(nn.Module):
    """Covariate columns as model inputs: numeric ones (already scaled) pass through, each
    categorical one (codes) becomes a learned embedding. ``(..., n_columns)`` ->
    ``(..., width)``."""

    def __init__(self, n_columns: int, embeddings: list[tuple[int, int]]) -> None:
        super().__init__()
        categorical = {k for k, _ in embeddings}
        numeric = [k for k in range(n_columns) if k not in categorical]
        self.register_buffer("numeric", torch.tensor(numeric, dtype=torch.long), False)
        codes = [k for k, _ in embeddings]
        self.register_buffer("categorical", torch.tensor(codes, dtype=torch.long), False)
        # Wide enough to tell categories apart, narrow enough not to swamp the numeric inputs.
        self.embeddings = nn.ModuleList(nn.Embedding(n, min(8, n)) for _, n in embeddings)
        self.width = len(self.numeric) + sum(e.embedding_dim for e in self.embeddings)

    def forward(self, values: Tensor) -> Tensor:
        codes = values[..., self.categorical].long()
        embedded = [e(codes[..., j]) for j, e in enumerate(self.embeddings)]
        return torch.cat([values[..., self.numeric], *embedded], dim=-1)


class StaticInit(nn.Module):
    """The LSTM's initial state from the series' static covariates: the natural place for
    what is fixed about a series. ``(sequences, width)`` -> ``h_0 (num_layers, sequences,
    H_out)``, ``c_0 (num_layers, sequences, hidden_size)``."""

    def __init__(self, config: LSTMConfig, width: int) -> None:
        super().__init__()
        self.layers, self.h_out = config.num_layers, config.h_out
        self.linear = nn.Linear(width, config.num_layers * (config.h_out + config.hidden_size))

    def forward(self, static: Tensor) -> State:
        state = self.linear(static).view(len(static), self.layers, -1).transpose(0, 1)
        h_0, c_0 = state[..., : self.h_out], state[..., self.h_out :]
        return torch.tanh(h_0).contiguous(), c_0.contiguous()


class FutureEffect(nn.Module):
    """What the known future adds to each horizon step: a small MLP, shared by the steps, of
    the step's covariates and the encoder's last output, so an effect can depend on the state.
    ``(sequences, horizon, width)`` and ``(sequences, H_out)`` -> ``(sequences, horizon,
    outputs)``, added to the head's forecast."""

    def __init__(self, config: LSTMConfig, width: int, outputs: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(width + config.h_out, config.hidden_size),
            nn.ReLU(),
            nn.Linear(config.hidden_size, outputs),
        )

    def forward(self, future: Tensor, last: Tensor) -> Tensor:
        # The MLP's first layer on [future, last] as the sum of its two parts, the state's
        # computed once per sequence rather than once per horizon step: with a wide state
        # and a long horizon, that product was most of a training step.
        first, relu, second = self.mlp
        width = future.shape[-1]
        own = nn.functional.linear(future, first.weight[:, :width])
        shared = nn.functional.linear(last, first.weight[:, width:], first.bias)
        return second(relu(own + shared.unsqueeze(1)))


def lstm(config: LSTMConfig, input_size: int) -> nn.LSTM:
    return nn.LSTM(
        input_size=input_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        # PyTorch applies dropout between layers only; with one layer it would be a no-op.
        dropout=config.dropout if config.num_layers > 1 else 0.0,
        proj_size=config.proj_size,
        batch_first=True,
    )


class LSTMNet(nn.Module):
    """Stacked ``nn.LSTM`` encoder and a head, sized by ``spec``; see the module docstring.

    With ``channel_independent`` every feature is its own univariate sequence through the one
    shared LSTM, which regularizes strongly when channels behave alike. With
    ``segment_len > 1`` the LSTM steps over segments of that many time steps, its input the
    segment flattened: fewer sequential steps, so faster and easier to train.
    """

    def __init__(self, config: LSTMConfig, spec: DataSpec) -> None:
        super().__init__()
        if spec.lookback % config.segment_len:
            raise ForecastError(
                f"lookback={spec.lookback} is not a multiple of "
                f"model.segment_len={config.segment_len}"
            )
        self.config = config
        self.n_features, self.n_targets = spec.n_features, spec.n_targets
        self.lookback, self.horizon = spec.lookback, spec.horizon
        self.register_buffer("target_index", torch.tensor(spec.target_index), persistent=False)
        self.n_future, self.n_static = len(spec.future_columns), len(spec.static_columns)
        self.norm = RevIN(spec.target_index, config.instance_norm)
        self.link = CountLink(spec) if config.counts else None
        self.skip = LinearSkip(self.lookback, self.horizon) if config.linear_skip else None
        self.future = None  # encoders of the covariates, if the data has any
        if self.n_future:
            embeddings = spec.embeddings(spec.future_columns)
            self.future = CovariateEncoder(self.n_future, embeddings)
        channels = 1 if config.channel_independent else self.n_features
        width = self.future.width if self.future else 0  # every channel sees the covariates
        self.lstm = lstm(config, input_size=(channels + width) * config.segment_len)
        # Values per LSTM sequence and step: the point, then one per quantile, of each output.
        outputs = (1 if config.channel_independent else self.n_targets) * (
            1 + len(config.quantiles)
        )
        if config.decoder == "linear":
            self.head = LinearHead(config, self.horizon, outputs)
        else:
            self.head = SegmentDecoder(config, self.n_features, self.horizon, outputs)
        self.future_effect = FutureEffect(config, width, outputs) if self.future else None
        self.static = None
        if self.n_static:
            encoder = CovariateEncoder(self.n_static, spec.embeddings(spec.static_columns))
            self.static = nn.Sequential(encoder, StaticInit(config, encoder.width))

    def forward(
        self,
        x: Tensor,
        state: State | None = None,
        future: Tensor | None = None,
        static: Tensor | None = None,
    ) -> tuple[Tensor, State]:
        """The point forecast and ``(h_n, c_n)``, as ``nn.LSTM`` returns its state; takes an
        unbatched ``(lookback, n_features)`` input, with an unbatched state (and covariates:
        ``future (lookback + horizon, n_future)``, ``static (n_static,)``) if any."""
        if not self._check_input(x):
            forecast, state = self._forecast(x, state, future, static)
            return forecast.point, state
        # Unbatched states gain the LSTM's batch axis; channel-independent ones already have
        # it: one sequence per feature.
        per_window = not self.config.channel_independent
        if per_window and state is not None:
            state = (state[0].unsqueeze(1), state[1].unsqueeze(1))
        future, static = (None if t is None else t.unsqueeze(0) for t in (future, static))
        forecast, (h_n, c_n) = self._forecast(x.unsqueeze(0), state, future, static)
        if per_window:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return forecast.point[0], (h_n, c_n)

    def forecast(
        self, x: Tensor, future: Tensor | None = None, static: Tensor | None = None
    ) -> Forecast:
        """Point forecast and quantiles; what training, scoring, prediction and export call.
        An unbatched input gives an unbatched forecast."""
        if self._check_input(x):
            future, static = (None if t is None else t.unsqueeze(0) for t in (future, static))
            batched = self._forecast(x.unsqueeze(0), None, future, static)[0]
            return Forecast(*(part[0] for part in batched))
        return self._forecast(x, None, future, static)[0]

    def _forecast(
        self, x: Tensor, state: State | None, future: Tensor | None, static: Tensor | None
    ) -> tuple[Forecast, State]:
        batch = x.shape[0]  # not len(x): a traced graph keeps x.shape[0] dynamic
        future, static = self._check_covariates(batch, future, static)
        if state is not None:
            self._check_state(state, batch)
        elif self.static is not None:  # (num_layers, sequences, ...) from each series' statics
            state = self.static(self._per_sequence(static))
        x, stats = self.norm(x)  # (batch, lookback, n_features)
        output, state = self.lstm(self._to_sequences(x, future), state)  # (sequences, steps, H_out)
        out = self.head(output, state, batch)  # (sequences, horizon, outputs)
        if self.future_effect is not None:
            out = out + self.future_effect(future[:, self.lookback :], output[:, -1])
        out = self._from_sequences(out, batch)  # (batch, horizon, n_targets, 1 + n_quantiles)
        if self.skip is not None:
            out = out + self.skip(x[..., self.target_index])
        out = self.norm.inverse(out, stats)
        if self.link is not None:
            out = self.link(out)
        return Forecast.split(out), state

    def _per_sequence(self, t: Tensor) -> Tensor:
        """Covariates of each window, repeated for each of its sequences."""
        return t.repeat_interleave(self.n_features, 0) if self.config.channel_independent else t

    def _to_sequences(self, x: Tensor, future: Tensor | None) -> Tensor:
        """``(batch, lookback, n_features)`` -> ``(sequences, steps, (channels + covariates) *
        segment_len)``: one sequence per window, or per window and feature, each step with
        the encoded future covariates of its time step; a segment's rows in a row."""
        if self.config.channel_independent:  # (batch * n_features, lookback, 1)
            x = x.transpose(1, 2).reshape(-1, self.lookback, 1)
        if future is not None:  # future: (sequences, lookback + horizon, width), encoded
            x = torch.cat([x, future[:, : self.lookback]], dim=-1)
        return x.reshape(x.shape[0], self.lookback // self.config.segment_len, -1)

    def _from_sequences(self, out: Tensor, batch: int) -> Tensor:
        """The head's ``(sequences, horizon, outputs * values)`` -> ``(batch, horizon,
        n_targets, values)``; channel-independent, the target channels are picked out."""
        if self.config.channel_independent:
            out = out.reshape(batch, self.n_features, self.horizon, -1).transpose(1, 2)
            return out[:, :, self.target_index]
        return out.reshape(batch, self.horizon, self.n_targets, -1)

    def sequences(self, batch: int) -> int:
        """How many sequences the LSTM runs for ``batch`` windows: its own batch size."""
        return batch * self.n_features if self.config.channel_independent else batch

    def initial_state(self, batch: int, like: Tensor) -> State:
        """Zeros: ``h_0 (num_layers, batch, H_out)``, ``c_0 (num_layers, batch, hidden_size)``."""
        sequences, config = self.sequences(batch), self.config
        h_0 = like.new_zeros(config.num_layers, sequences, config.h_out)
        c_0 = like.new_zeros(config.num_layers, sequences, config.hidden_size)
        return h_0, c_0

    def _check_input(self, x: Tensor) -> bool:
        """Raise a ForecastError naming the wrong dimension; return whether ``x`` is unbatched."""
        if x.ndim not in (2, 3):
            raise ForecastError(
                f"input has {x.ndim} dimensions {tuple(x.shape)}; expected "
                f"(batch, time_steps, features) or unbatched (time_steps, features)"
            )
        time_dim, feature_dim = x.ndim - 2, x.ndim - 1
        if x.shape[feature_dim] != self.n_features:
            raise ForecastError(
                f"input dimension {feature_dim} (features) is {x.shape[feature_dim]}, expected "
                f"n_features={self.n_features}; input shape {tuple(x.shape)}"
            )
        if x.shape[time_dim] != self.lookback:
            raise ForecastError(
                f"input dimension {time_dim} (time_steps) is {x.shape[time_dim]}, expected "
                f"lookback={self.lookback}; input shape {tuple(x.shape)}"
            )
        return x.ndim == 2

    def _check_covariates(
        self, batch: int, future: Tensor | None, static: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """Refuse missing or misshapen covariates, naming the dimension; returns the future
        ones encoded, one row per LSTM sequence, and the static ones."""
        expected = {
            "future": (future, (self.lookback + self.horizon, self.n_future)),
            "static": (static, (self.n_static,)),
        }
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
        encoded = None if self.future is None else self._per_sequence(self.future(future))
        return encoded, static if self.static is not None else None

    def _check_state(self, state: State, batch: int) -> None:
        expected = dict(zip(("h_0", "c_0"), self.initial_state(batch, state[0]), strict=True))
        for (name, zeros), tensor in zip(expected.items(), state, strict=True):
            if tensor.shape != zeros.shape:
                raise ForecastError(
                    f"{name} has shape {tuple(tensor.shape)}, expected (num_layers, batch, "
                    f"{'proj_size or hidden_size' if name == 'h_0' else 'hidden_size'}) = "
                    f"{tuple(zeros.shape)}"
                )


class LSTMLitModule(pl.LightningModule):
    """Trains an ``LSTMNet`` on scaled windows; validation is scored here, the test split by
    ``forecast.scoring`` (next to the baselines, from the same sums).

    ``net`` are the fields of ``LSTMConfig`` (the other keys of ``conf/model/lstm.yaml``).
    ``optimizer`` and ``scheduler`` are partials (Hydra ``_partial_: true``) taking the
    parameters and the optimizer respectively. With quantiles the loss is the point loss
    plus the pinball loss of the quantiles.
    """

    def __init__(
        self,
        spec: DataSpec,
        optimizer: Any = None,
        scheduler: Any = None,
        **net: Any,
    ) -> None:
        super().__init__()
        unknown = sorted(set(net) - {f.name for f in fields(LSTMConfig)})
        if unknown:
            raise ForecastError(
                f"model: unknown key(s) {unknown}; the network's keys are "
                f"{[f.name for f in fields(LSTMConfig)]}"
            )
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.net = LSTMNet(LSTMConfig(**net), spec)
        config = self.net.config
        self.loss = ForecastLoss(
            config.loss, config.quantiles, *target_statistics(spec), config.tweedie_power
        )
        self.optimizer, self.scheduler = optimizer, scheduler
        self.val_metrics = MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError()}, prefix="val_"
        )

    def forward(
        self, x: Tensor, future: Tensor | None = None, static: Tensor | None = None
    ) -> Tensor:
        return self.net.forecast(x, future, static).point

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss = self.loss(self.net.forecast(batch.x, batch.future, batch.static), batch.y)
        self.log(
            "train_loss", loss, on_epoch=True, on_step=False, prog_bar=True,
            batch_size=len(batch.x), sync_dist=True,
        )  # fmt: skip
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        forecast = self.net.forecast(batch.x, batch.future, batch.static)
        loss = self.loss(forecast, batch.y)
        self.log("val_loss", loss, prog_bar=True, batch_size=len(batch.x), sync_dist=True)
        self.val_metrics.update(forecast.point, batch.y)
        self.log_dict(self.val_metrics, batch_size=len(batch.x))

    def configure_optimizers(self) -> Any:
        optimizer = (self.optimizer or torch.optim.Adam)(self.parameters())
        if self.scheduler is None:
            return optimizer
        scheduler = {"scheduler": self.scheduler(optimizer), "monitor": "val_loss"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
