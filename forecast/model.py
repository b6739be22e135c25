"""The stacked LSTM forecaster: a plain ``nn.Module`` and the LightningModule that trains it.

Shapes, with ``batch_first=True`` and ``H_out = proj_size or hidden_size``:

    x            (batch, lookback, n_features)      or unbatched (lookback, n_features)
    h_0, h_n     (num_layers, batch, H_out)         or unbatched (num_layers, H_out)
    c_0, c_n     (num_layers, batch, hidden_size)   or unbatched (num_layers, hidden_size)
    LSTM output  (batch, lookback, H_out)
    forecast     (batch, horizon, n_targets)        or unbatched (horizon, n_targets)
    quantiles    (batch, horizon, n_targets, n_quantiles), from ``LSTMNet.decode``

With ``channel_independent`` the LSTM's own batch is ``batch * n_features`` (one sequence per
window and feature, input size 1), so ``h``/``c`` carry that in their middle axis (unbatched:
``n_features``); with ``segment_len = s`` the LSTM runs ``lookback / s`` steps of ``s * channels``
inputs, and its output is ``(sequences, lookback / s, H_out)``.

The forecast is direct multi-horizon: one linear head maps the last time step's output of the
last layer to all ``horizon x n_targets`` values at once, so errors do not compound the way
they do when feeding predictions back step by step. With ``quantiles`` the same head also gives
each configured quantile of every value (trained with the pinball loss next to the point loss),
so one forward pass yields the point forecast and its prediction intervals.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanMetric, MeanSquaredError, MetricCollection

from forecast.errors import ForecastError

State = tuple[Tensor, Tensor]
DECODERS = ("linear", "recurrent")
LOSSES: dict[str, Callable[[], nn.Module]] = {
    "mse": nn.MSELoss,
    "mae": nn.L1Loss,
    "huber": nn.HuberLoss,
}


class LSTMNet(nn.Module):
    """Stacked ``nn.LSTM`` encoder and a linear head; see the module docstring for shapes.

    With ``instance_norm`` each input window is standardized by its own mean and std per
    feature and the forecast is mapped back with the statistics of its target columns
    (reversible instance normalization): the LSTM then models shape, not level, which keeps
    it accurate when the series drifts away from the training period's level.

    With ``channel_independent`` every feature is its own univariate sequence through the one
    shared LSTM (the LSTM's batch is then ``batch * n_features`` and its input one channel),
    which regularizes strongly when channels behave alike. With ``segment_len > 1`` the LSTM
    steps over ``lookback / segment_len`` segments of ``segment_len`` time steps each, its
    input the segment flattened: fewer sequential steps, so faster and easier to train.
    """

    def __init__(
        self,
        n_features: int,
        n_targets: int,
        lookback: int,
        horizon: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        proj_size: int = 0,
        instance_norm: bool = True,
        target_index: Sequence[int] | None = None,
        channel_independent: bool = False,
        segment_len: int = 1,
        quantiles: Sequence[float] = (),
        decoder: str = "linear",
        linear_skip: bool = False,
    ) -> None:
        super().__init__()
        if decoder not in DECODERS:
            raise ForecastError(f"model.decoder={decoder!r} is not one of {DECODERS}")
        quantiles = [float(q) for q in quantiles or ()]
        if any(not 0 < q < 1 for q in quantiles) or quantiles != sorted(set(quantiles)):
            raise ForecastError(
                f"model.quantiles={quantiles} must be distinct, increasing and inside (0, 1)"
            )
        self.quantiles = quantiles
        if segment_len < 1 or lookback % segment_len:
            raise ForecastError(
                f"lookback={lookback} is not a multiple of model.segment_len={segment_len}"
            )
        self.channel_independent, self.segment_len = channel_independent, segment_len
        self.n_features, self.n_targets = n_features, n_targets
        self.lookback, self.horizon = lookback, horizon
        self.hidden_size, self.num_layers, self.proj_size = hidden_size, num_layers, proj_size
        self.instance_norm, self.decoder = instance_norm, decoder
        # One lookback -> horizon map shared by all targets, added to the LSTM's forecast: the
        # LSTM then models what a linear extrapolation of the window misses.
        self.skip = nn.Linear(lookback, horizon) if linear_skip else None
        target_index = list(range(n_targets)) if target_index is None else list(target_index)
        if len(target_index) != n_targets:
            raise ValueError(f"target_index has {len(target_index)} entries, n_targets={n_targets}")
        self.register_buffer("target_index", torch.tensor(target_index), persistent=False)
        channels = 1 if channel_independent else n_features
        self.lstm = nn.LSTM(
            input_size=channels * segment_len,
            hidden_size=hidden_size,
            num_layers=num_layers,
            # PyTorch applies dropout between layers only; with one layer it would be a no-op.
            dropout=dropout if num_layers > 1 else 0.0,
            proj_size=proj_size,
            batch_first=True,
        )
        self.dropout = nn.Dropout(dropout)
        outputs = 1 if channel_independent else n_targets  # per LSTM sequence
        # Per value: the point forecast, then one output per quantile.
        values = outputs * (1 + len(quantiles))
        if decoder == "linear":  # the whole horizon from the last output at once
            self.head = nn.Linear(proj_size or hidden_size, horizon * values)
        else:  # one decoder step per output segment, all segments in parallel
            self.out_segments = -(-horizon // segment_len)
            half = hidden_size // 2 if channel_independent else hidden_size
            self.position = nn.Parameter(torch.randn(self.out_segments, half) * 0.02)
            self.channel = nn.Parameter(torch.randn(n_features, hidden_size - half) * 0.02)
            self.decoder_lstm = nn.LSTM(
                input_size=hidden_size,
                hidden_size=hidden_size,
                num_layers=num_layers,
                dropout=dropout if num_layers > 1 else 0.0,
                proj_size=proj_size,
                batch_first=True,
            )
            self.head = nn.Linear(proj_size or hidden_size, segment_len * values)

    def sequences(self, batch: int) -> int:
        """How many sequences the LSTM runs for ``batch`` windows: its own batch size."""
        return batch * self.n_features if self.channel_independent else batch

    def initial_state(self, batch: int, like: Tensor) -> State:
        """Zeros: ``h_0 (num_layers, batch, H_out)``, ``c_0 (num_layers, batch, hidden_size)``."""
        sequences = self.sequences(batch)
        h_0 = like.new_zeros(self.num_layers, sequences, self.proj_size or self.hidden_size)
        c_0 = like.new_zeros(self.num_layers, sequences, self.hidden_size)
        return h_0, c_0

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Forecast from ``x``; returns ``(forecast, (h_n, c_n))``, the state as nn.LSTM does."""
        out, state = self.decode(x, state)
        return out[..., 0], state

    def decode(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Point forecast and quantiles stacked on a last axis: ``(..., 1 + n_quantiles)``."""
        unbatched = self._check_input(x)
        # Unbatched states gain the LSTM's batch axis; channel-independent ones already have
        # it: one sequence per feature.
        per_sample = unbatched and not self.channel_independent
        if unbatched:
            x = x.unsqueeze(0)
            if per_sample and state is not None:
                state = (state[0].unsqueeze(1), state[1].unsqueeze(1))
        batch = x.shape[0]
        state = self.initial_state(batch, x) if state is None else state
        self._check_state(state, batch)
        if self.instance_norm:
            mean = x.mean(dim=1, keepdim=True)  # (batch, 1, n_features)
            std = (x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).sqrt()
            x = (x - mean) / std
        normalized = x
        if self.channel_independent:  # (batch * n_features, lookback, 1)
            x = x.transpose(1, 2).reshape(batch * self.n_features, self.lookback, 1)
        # (sequences, lookback / segment_len, segment_len * channels): a segment's rows in a row
        x = x.reshape(x.shape[0], self.lookback // self.segment_len, -1)
        output, (h_n, c_n) = self.lstm(x, state)  # output (sequences, steps, H_out)
        if self.decoder == "linear":
            out = self.head(self.dropout(output[:, -1]))  # (sequences, horizon * outputs * (1+Q))
        else:
            out = self._decode_segments(h_n, c_n, batch)
        values = 1 + len(self.quantiles)
        if self.channel_independent:  # (batch, n_features, horizon, 1 + Q) -> targets' columns
            forecast = out.view(batch, self.n_features, self.horizon, values).transpose(1, 2)
            forecast = forecast[:, :, self.target_index]
        else:
            forecast = out.view(batch, self.horizon, self.n_targets, values)
        if self.skip is not None:  # (batch, n_targets, lookback) -> (batch, horizon, n_targets, 1)
            targets = normalized[..., self.target_index].transpose(1, 2)
            forecast = forecast + self.skip(targets).transpose(1, 2).unsqueeze(-1)
        if self.instance_norm:  # statistics (batch, 1, n_targets, 1): one per window and column
            scale, shift = (s[..., self.target_index].unsqueeze(-1) for s in (std, mean))
            forecast = forecast * scale + shift
        if unbatched:
            state_out = (h_n.squeeze(1), c_n.squeeze(1)) if per_sample else (h_n, c_n)
            return forecast.squeeze(0), state_out
        return forecast, (h_n, c_n)

    def _decode_segments(self, h_n: Tensor, c_n: Tensor, batch: int) -> Tensor:
        """SegRNN's parallel multi-step decoding: every output segment is one decoder step
        from the encoder's final state, its input a learned embedding of the segment's
        position (and, channel-independent, of the channel). The steps share one state, not
        each other's outputs, so they run as one batch and errors cannot compound.

        Returns ``(sequences, horizon * outputs * (1 + Q))``, the linear head's layout.
        """
        sequences, n = h_n.shape[1], self.out_segments
        inputs = self.position.unsqueeze(0).expand(sequences, n, -1)
        if self.channel_independent:  # sequence k is feature k % n_features of its window
            channel = self.channel.repeat(batch, 1).unsqueeze(1).expand(sequences, n, -1)
            inputs = torch.cat([inputs, channel], dim=-1)
        state = (h_n.repeat_interleave(n, dim=1), c_n.repeat_interleave(n, dim=1))
        output, _ = self.decoder_lstm(inputs.reshape(sequences * n, 1, -1), state)
        out = self.head(self.dropout(output[:, 0]))  # (sequences * n, segment_len * values)
        out = out.view(sequences, n * self.segment_len, -1)[:, : self.horizon]
        return out.reshape(sequences, -1)

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
        sequences = self.sequences(batch)
        expected = {
            "h_0": (self.num_layers, sequences, self.proj_size or self.hidden_size),
            "c_0": (self.num_layers, sequences, self.hidden_size),
        }
        for (name, shape), tensor in zip(expected.items(), state, strict=True):
            if tuple(tensor.shape) != shape:
                raise ForecastError(
                    f"{name} has shape {tuple(tensor.shape)}, expected (num_layers, batch, "
                    f"{'proj_size or hidden_size' if name == 'h_0' else 'hidden_size'}) = {shape}"
                )


NET_ARGS = tuple(inspect.signature(LSTMNet).parameters)


def pinball_loss(quantiles: Tensor, y: Tensor, levels: Sequence[float]) -> Tensor:
    """Mean pinball (quantile) loss of ``quantiles (..., Q)`` for targets ``y (...)``.

    Its minimizer is the ``q``-th quantile of ``y`` given the input, so a head trained with
    it gives calibrated intervals rather than a spread that merely looks plausible.
    """
    q = quantiles.new_tensor(levels)
    error = y.unsqueeze(-1) - quantiles
    return torch.maximum(q * error, (q - 1) * error).mean()


def interval_hits(quantiles: Tensor, y: Tensor) -> Tensor:
    """Whether each ``y`` lies between the lowest and the highest quantile: its mean is the
    interval's coverage, to compare with the nominal ``q_high - q_low``."""
    return (y >= quantiles[..., 0]) & (y <= quantiles[..., -1])


class LSTMForecaster(pl.LightningModule):
    """Trains an ``LSTMNet`` on scaled windows and scores it in scaled and original units.

    With ``quantiles`` the loss is the point loss plus the pinball loss of the quantiles, and
    the test split is also scored by ``test_pinball`` and ``test_coverage``: the share of
    actual values inside the interval from the lowest to the highest quantile.

    ``target_std`` are the training-split standard deviations of the targets; errors
    multiplied by them are errors in the data's own units (the mean cancels in a difference).
    ``optimizer`` and ``scheduler`` are partials (Hydra ``_partial_: true``) taking the
    parameters and the optimizer respectively.
    """

    def __init__(
        self,
        n_features: int,
        n_targets: int,
        lookback: int,
        horizon: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        proj_size: int = 0,
        instance_norm: bool = True,
        target_index: Sequence[int] | None = None,
        channel_independent: bool = False,
        segment_len: int = 1,
        quantiles: Sequence[float] = (),
        decoder: str = "linear",
        linear_skip: bool = False,
        loss: str = "mse",
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        target_std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ForecastError(f"model.loss={loss!r} is not one of {sorted(LOSSES)}")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"], logger=False)
        self.net = LSTMNet(**{name: self.hparams[name] for name in NET_ARGS})
        self.loss = LOSSES[loss]()
        self.optimizer, self.scheduler = optimizer, scheduler
        std = torch.ones(n_targets) if target_std is None else torch.tensor(target_std)
        self.register_buffer("target_std", std.float())
        scaled = {"mse": MeanSquaredError(), "mae": MeanAbsoluteError()}
        self.val_metrics = MetricCollection(scaled, prefix="val_")
        self.test_metrics = MetricCollection(
            {
                **scaled,
                "rmse": MeanSquaredError(squared=False),
                "mae_orig": MeanAbsoluteError(),
                "rmse_orig": MeanSquaredError(squared=False),
            },
            prefix="test_",
        )
        if quantiles:
            self.test_metrics.add_metrics({"pinball": MeanMetric(), "coverage": MeanMetric()})

    @property
    def net_config(self) -> dict[str, Any]:
        """Constructor arguments of ``self.net``: what a checkpoint needs to rebuild it."""
        return {name: self.hparams[name] for name in NET_ARGS}

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)[0]

    def losses(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(loss, point forecast, quantiles)``; the loss adds the pinball loss if any."""
        out = self.net.decode(x)[0]
        forecast, quantiles = out[..., 0], out[..., 1:]
        loss = self.loss(forecast, y)
        if self.net.quantiles:
            loss = loss + pinball_loss(quantiles, y, self.net.quantiles)
        return loss, forecast, quantiles

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = self.losses(x, y)[0]
        self.log(
            "train_loss", loss, on_epoch=True, on_step=False, prog_bar=True, batch_size=len(x),
            sync_dist=True,
        )  # fmt: skip
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        loss, forecast, _ = self.losses(x, y)
        self.log("val_loss", loss, prog_bar=True, batch_size=len(x), sync_dist=True)
        self.val_metrics.update(forecast, y)
        self.log_dict(self.val_metrics, batch_size=len(x))

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        loss, forecast, quantiles = self.losses(x, y)
        self.log("test_loss", loss, batch_size=len(x), sync_dist=True)
        for name, metric in self.test_metrics.items(keep_base=True):
            if name == "pinball":
                metric.update(pinball_loss(quantiles, y, self.net.quantiles), weight=y.numel())
            elif name == "coverage":
                metric.update(interval_hits(quantiles, y).float())
            else:
                units = self.target_std if name.endswith("_orig") else 1.0
                metric.update(forecast * units, y * units)
        self.log_dict(self.test_metrics, batch_size=len(x))

    def configure_optimizers(self) -> Any:
        optimizer = (self.optimizer or torch.optim.Adam)(self.parameters())
        if self.scheduler is None:
            return optimizer
        scheduler = {"scheduler": self.scheduler(optimizer), "monitor": "val_loss"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
