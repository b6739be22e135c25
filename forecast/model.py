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
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from forecast.errors import ForecastError
from forecast.losses import ForecastLoss
from forecast.spec import DataSpec

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

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ForecastError(f"model.decoder={self.decoder!r} is not one of {DECODERS}")
        quantiles = tuple(float(q) for q in self.quantiles or ())
        if any(not 0 < q < 1 for q in quantiles) or list(quantiles) != sorted(set(quantiles)):
            raise ForecastError(
                f"model.quantiles={list(quantiles)} must be distinct, increasing and inside (0, 1)"
            )
        object.__setattr__(self, "quantiles", quantiles)
        if self.segment_len < 1:
            raise ForecastError(f"model.segment_len={self.segment_len} must be >= 1")
        if not 0 <= self.proj_size < self.hidden_size:
            raise ForecastError(
                "proj_size has to be smaller than hidden_size and >= 0 "
                f"(model.proj_size={self.proj_size}, model.hidden_size={self.hidden_size})"
            )

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
        self.norm = RevIN(spec.target_index, config.instance_norm)
        self.skip = LinearSkip(self.lookback, self.horizon) if config.linear_skip else None
        channels = 1 if config.channel_independent else self.n_features
        self.lstm = lstm(config, input_size=channels * config.segment_len)
        # Values per LSTM sequence and step: the point, then one per quantile, of each output.
        outputs = (1 if config.channel_independent else self.n_targets) * (
            1 + len(config.quantiles)
        )
        if config.decoder == "linear":
            self.head = LinearHead(config, self.horizon, outputs)
        else:
            self.head = SegmentDecoder(config, self.n_features, self.horizon, outputs)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """The point forecast and ``(h_n, c_n)``, as ``nn.LSTM`` returns its state; takes an
        unbatched ``(lookback, n_features)`` input, with an unbatched state if any."""
        if not self._check_input(x):
            forecast, state = self._forecast(x, state)
            return forecast.point, state
        # Unbatched states gain the LSTM's batch axis; channel-independent ones already have
        # it: one sequence per feature.
        per_window = not self.config.channel_independent
        if per_window and state is not None:
            state = (state[0].unsqueeze(1), state[1].unsqueeze(1))
        forecast, (h_n, c_n) = self._forecast(x.unsqueeze(0), state)
        if per_window:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return forecast.point[0], (h_n, c_n)

    def forecast(self, x: Tensor) -> Forecast:
        """Point forecast and quantiles from the zero state; what training, scoring,
        prediction and export call. An unbatched input gives an unbatched forecast."""
        if self._check_input(x):
            return Forecast(*(part[0] for part in self._forecast(x.unsqueeze(0), None)[0]))
        return self._forecast(x, None)[0]

    def _forecast(self, x: Tensor, state: State | None) -> tuple[Forecast, State]:
        if state is not None:
            self._check_state(state, x.shape[0])
        batch = x.shape[0]  # not len(x): a traced graph keeps x.shape[0] dynamic
        x, stats = self.norm(x)  # (batch, lookback, n_features)
        output, state = self.lstm(self._to_sequences(x), state)  # (sequences, steps, H_out)
        out = self._from_sequences(self.head(output, state, batch), batch)
        if self.skip is not None:  # out: (batch, horizon, n_targets, 1 + n_quantiles)
            out = out + self.skip(x[..., self.target_index])
        return Forecast.split(self.norm.inverse(out, stats)), state

    def _to_sequences(self, x: Tensor) -> Tensor:
        """``(batch, lookback, n_features)`` -> ``(sequences, steps, channels * segment_len)``:
        one sequence per window, or per window and feature; a segment's rows in a row."""
        if self.config.channel_independent:  # (batch * n_features, lookback, 1)
            x = x.transpose(1, 2).reshape(-1, self.lookback, 1)
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
        loss: str = "mse",
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
        self.loss = ForecastLoss(loss, self.net.config.quantiles)
        self.optimizer, self.scheduler = optimizer, scheduler
        self.val_metrics = MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError()}, prefix="val_"
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net.forecast(x).point

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = self.loss(self.net.forecast(x), y)
        self.log(
            "train_loss", loss, on_epoch=True, on_step=False, prog_bar=True, batch_size=len(x),
            sync_dist=True,
        )  # fmt: skip
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        forecast = self.net.forecast(x)
        loss = self.loss(forecast, y)
        self.log("val_loss", loss, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.val_metrics.update(forecast.point, y)
        self.log_dict(self.val_metrics, batch_size=len(x))

    def configure_optimizers(self) -> Any:
        optimizer = (self.optimizer or torch.optim.Adam)(self.parameters())
        if self.scheduler is None:
            return optimizer
        scheduler = {"scheduler": self.scheduler(optimizer), "monitor": "val_loss"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
