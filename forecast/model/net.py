"""The stacked LSTM forecaster as a plain ``nn.Module``, sized by the data's spec; its
parts are ``forecast.model.parts``, its configuration ``forecast.model.config``.

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
With a ``distribution`` it gives the distribution's parameters instead (``Forecast.params``,
``(batch, horizon, n_targets, n_params)``), its quantiles at any levels read from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import Tensor, nn

from forecast.data.scaling import Standardize
from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.model.calibration import Calibration, calibrated
from forecast.model.config import LSTMConfig, segment_near
from forecast.model.distributions import FAMILIES
from forecast.model.inputs import check_covariates, check_input, check_state, check_units
from forecast.model.losses import Forecast, forecast_unbatched
from forecast.model.parts import (
    CountLink,
    CovariateEncoder,
    FutureEffect,
    HiddenFuture,
    LinearHead,
    LinearSkip,
    RevIN,
    SegmentDecoder,
    State,
    StaticInit,
    lstm,
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
            fits = segment_near(spec.lookback, config.segment_len)
            raise ForecastError(
                f"lookback={spec.lookback} is not a multiple of model.segment_len="
                f"{config.segment_len}: model.segment_len={fits} fits (null chooses one)"
            )
        check_units(config, spec)
        self.config = config
        self.n_features, self.n_targets = spec.n_features, spec.n_targets
        self.lookback, self.horizon = spec.lookback, spec.horizon
        self.register_buffer("target_index", torch.tensor(spec.target_index), persistent=False)
        self.n_future, self.n_static = len(spec.future_columns), len(spec.static_columns)
        self.norm = RevIN(spec.target_index, config.instance_norm)
        self.link = CountLink(target_scale(spec)) if config.floored else None
        self.calibration: Calibration | None = None  # conformal offsets, fitted after training
        family = FAMILIES.get(config.distribution)  # a distribution head, or none
        self.distribution = family(target_scale(spec)) if family else None
        self.skip = LinearSkip(self.lookback, self.horizon) if config.linear_skip else None
        self.future = None  # encoders of the covariates, if the data has any
        if self.n_future:
            embeddings = spec.embeddings(spec.future_columns)
            self.future = CovariateEncoder(self.n_future, embeddings)
        self.hidden = None  # the categorical past inputs, hidden past the lookback
        if spec.hidden_columns:
            sizes = (spec.hidden_columns, self.n_future, self.lookback, self.horizon)
            self.hidden = HiddenFuture(*sizes)
        channels = 1 if config.channel_independent else self.n_features
        width = self.future.width if self.future else 0  # every channel sees the covariates
        self.lstm = lstm(config, input_size=(channels + width) * config.segment_len)
        # Values per LSTM sequence and step, of each output: the point, then one per quantile
        # or the distribution's other parameters.
        values = 1 + (
            len(config.quantiles) if self.distribution is None else self.distribution.extra
        )
        outputs = (1 if config.channel_independent else self.n_targets) * values
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
        self,
        x: Tensor,
        future: Tensor | None = None,
        static: Tensor | None = None,
        levels: Sequence[float] | None = None,
    ) -> Forecast:
        """Point forecast and quantiles at ``levels`` (None: the configured ones); what
        training, scoring, prediction and export call. A distribution gives any levels, a
        quantile head those it learned. An unbatched input gives an unbatched forecast."""
        if self._check_input(x):
            return forecast_unbatched(partial(self.forecast, levels=levels), x, future, static)
        forecast = self._forecast(x, None, future, static, levels)[0]
        levels = self.config.quantiles if levels is None else levels
        return calibrated(self.calibration, forecast, levels)

    def sample(
        self,
        x: Tensor,
        n: int,
        seed: int = 0,
        future: Tensor | None = None,
        static: Tensor | None = None,
    ) -> Tensor:
        """``n`` sample paths of the distribution (a model with one), ``(n, batch, horizon,
        n_targets)`` scaled, the same for the same ``seed``."""
        return self.distribution.sample(self.forecast(x, future, static, levels=()).params, n, seed)

    def _forecast(
        self,
        x: Tensor,
        state: State | None,
        future: Tensor | None,
        static: Tensor | None,
        levels: Sequence[float] | None = None,
    ) -> tuple[Forecast, State]:
        batch = x.shape[0]  # not len(x): a traced graph keeps x.shape[0] dynamic
        future, static = self._check_covariates(batch, future, static)
        if state is not None:
            check_state(state, self.initial_state(batch, state[0]))
        elif self.static is not None:  # (num_layers, sequences, ...) from each series' statics
            state = self.static(self._per_sequence(static))
        x, stats = self.norm(x)  # (batch, lookback, n_features)
        output, state = self.lstm(self._to_sequences(x, future), state)  # (sequences, steps, H_out)
        out = self.head(output, state, batch)  # (sequences, horizon, outputs)
        if self.future_effect is not None:
            out = out + self.future_effect(future[:, self.lookback :], output[:, -1])
        out = self._from_sequences(out, batch)  # (batch, horizon, n_targets, values)
        raw = None
        if self.distribution is not None:  # the location goes on as a point forecast
            out, raw = out[..., :1], out[..., 1:]
        if self.skip is not None:
            out = out + self.skip(x[..., self.target_index])
        out = self.norm.inverse(out, stats)
        if self.link is not None:
            out = self.link(out)
        if raw is None:
            return self._learned(Forecast.split(out), levels), state
        spread = 1.0 if stats is None else stats[1].unsqueeze(-1)  # (batch, 1, n_targets, 1)
        params = torch.cat([out, self.distribution.constrained(raw, spread)], dim=-1)
        levels = self.config.quantiles if levels is None else levels
        quantiles = self.distribution.quantiles(params, levels) if levels else out[..., :0]
        return Forecast(out[..., 0], quantiles, params), state

    def _learned(self, forecast: Forecast, levels: Sequence[float] | None) -> Forecast:
        """A quantile head's forecast at ``levels``, some of the levels it learned."""
        learned = list(self.config.quantiles)
        if levels is None or list(levels) == learned:
            return forecast
        missing = [q for q in levels if q not in learned]
        if missing:
            raise ForecastError(
                f"quantiles {missing}: the model learned the levels {learned} alone (a model "
                "with model.distribution gives any level)"
            )
        return forecast._replace(
            quantiles=forecast.quantiles[..., [learned.index(q) for q in levels]]
        )

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
        return check_input(x, self.n_features, self.lookback)

    def _check_covariates(
        self, batch: int, future: Tensor | None, static: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        """Refuse missing or misshapen covariates, naming the dimension; returns the future
        ones encoded, one row per LSTM sequence, and the static ones."""
        check_covariates(batch, {
            "future": (future, (self.lookback + self.horizon, self.n_future)),
            "static": (static, (self.n_static,)),
        })  # fmt: skip
        if self.hidden is not None:
            future = self.hidden(future)
        encoded = None if self.future is None else self._per_sequence(self.future(future))
        return encoded, static if self.static is not None else None


def target_scale(spec: DataSpec) -> Standardize:
    """The targets' training statistics, which take scaled forecasts to the data's units
    (the identity for a spec without a scaler)."""
    if spec.scaler is None:
        return Standardize(torch.zeros(spec.n_targets), torch.ones(spec.n_targets))
    return spec.target_scaler.module()
