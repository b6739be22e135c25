"""The network's parts, each one idea with its shapes: instance normalization, the count link,
the two heads, the linear skip and the covariates' encoders, state and effect."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from forecast.data.scaling import Standardize
from forecast.model.config import LSTMConfig

State = tuple[Tensor, Tensor]


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


class CountLink(nn.Module):
    """Keeps forecasts non-negative in the data's units (a count loss's mean, or
    ``model.nonnegative``): the network's output
    (scaled, after instance normalization is undone) is mapped to the data's units by the
    targets' ``scale``, through a softplus, and scaled back. Softplus is the identity for
    large values, so the network learns levels as any other model does, and bends smoothly
    to zero below them."""

    def __init__(self, scale: Standardize) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, out: Tensor) -> Tensor:
        """``out (batch, horizon, n_targets, values)``: the targets to the last axis and back."""
        units = self.scale.inverse(out.movedim(-1, 0))
        return self.scale(nn.functional.softplus(units)).movedim(0, -1)


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


class HiddenFuture(nn.Module):
    """The categorical past inputs' codes past the lookback replaced by their hidden code:
    what was observed with the series is an input over the lookback only, in training and
    in every forecast alike, whatever the horizon rows hold. ``(batch, lookback + horizon,
    n_future)`` -> the same shape."""

    def __init__(self, hidden: dict[int, int], width: int, lookback: int, horizon: int) -> None:
        """``hidden``: ``{column: code}`` (DataSpec.hidden_columns) of ``width`` columns."""
        super().__init__()
        mask = torch.zeros(lookback + horizon, width, dtype=torch.bool)
        mask[lookback:, list(hidden)] = True
        codes = torch.zeros(width)
        codes[list(hidden)] = torch.tensor(list(hidden.values()), dtype=codes.dtype)
        self.register_buffer("mask", mask, persistent=False)
        self.register_buffer("codes", codes, persistent=False)

    def forward(self, future: Tensor) -> Tensor:
        return torch.where(self.mask, self.codes.to(future.dtype), future)


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
