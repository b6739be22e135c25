from __future__ import annotations

import itertools

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from helpers import spec_for
from torch.utils.data import DataLoader, TensorDataset, default_collate

from forecast.data.windows import Batch
from forecast.errors import ForecastError
from forecast.model.config import LSTMConfig, derived_segment, segment_near
from forecast.model.module import LSTMLitModule
from forecast.model.net import LSTMNet

LOOKBACK, HORIZON, FEATURES, TARGETS, HIDDEN = 12, 5, 4, 2, 16


def make_net(
    num_layers: int = 2, proj_size: int = 0, target_index: list[int] | None = None, **config
) -> LSTMNet:
    config = LSTMConfig(hidden_size=HIDDEN, num_layers=num_layers, proj_size=proj_size, **config)
    return LSTMNet(config, spec_for(FEATURES, LOOKBACK, HORIZON, target_index or [0, 1]))


@pytest.mark.parametrize(("num_layers", "proj_size"), itertools.product([1, 3], [0, 8]))
def test_batched_shapes(num_layers, proj_size):
    net = make_net(num_layers, proj_size)
    forecast, (h_n, c_n) = net(torch.randn(6, LOOKBACK, FEATURES))
    h_out = proj_size or HIDDEN
    assert forecast.shape == (6, HORIZON, TARGETS)
    assert h_n.shape == (num_layers, 6, h_out)
    assert c_n.shape == (num_layers, 6, HIDDEN)
    h_0, c_0 = net.initial_state(6, forecast)
    assert h_0.shape == (num_layers, 6, h_out) and c_0.shape == (num_layers, 6, HIDDEN)


@pytest.mark.parametrize(("num_layers", "proj_size"), itertools.product([1, 3], [0, 8]))
def test_unbatched_input_matches_a_batch_of_one(num_layers, proj_size):
    net = make_net(num_layers, proj_size).eval()
    x = torch.randn(LOOKBACK, FEATURES)
    forecast, (h_n, c_n) = net(x)
    assert forecast.shape == (HORIZON, TARGETS)
    assert h_n.shape == (num_layers, proj_size or HIDDEN)
    assert c_n.shape == (num_layers, HIDDEN)
    batched, (h_b, _) = net(x.unsqueeze(0))
    torch.testing.assert_close(forecast, batched[0])
    torch.testing.assert_close(h_n, h_b[:, 0])


def test_explicit_initial_state_is_used():
    net = make_net(3, 8).eval()
    x = torch.randn(2, LOOKBACK, FEATURES)
    zeros = net.initial_state(2, x)
    torch.testing.assert_close(net(x, zeros)[0], net(x)[0])
    ones = (torch.ones_like(zeros[0]), torch.ones_like(zeros[1]))
    assert not torch.allclose(net(x, ones)[0], net(x)[0])
    unbatched = net(x[0], (ones[0][:, 0], ones[1][:, 0]))[0]
    torch.testing.assert_close(unbatched, net(x, ones)[0][0])


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2, LOOKBACK, 3), r"input dimension 2 \(features\) is 3, expected n_features=4"),
        ((LOOKBACK, 5), r"input dimension 1 \(features\) is 5, expected n_features=4"),
        ((2, 7, FEATURES), r"input dimension 1 \(time_steps\) is 7, expected lookback=12"),
        ((9, FEATURES), r"input dimension 0 \(time_steps\) is 9, expected lookback=12"),
        ((2, 1, LOOKBACK, FEATURES), "input has 4 dimensions"),
        ((FEATURES,), "input has 1 dimensions"),
    ],
)
def test_wrong_input_shapes_name_the_dimension(shape, message):
    with pytest.raises(ForecastError, match=message):
        make_net()(torch.randn(shape))


def test_wrong_state_shapes_are_named():
    net = make_net(2, 8)
    x = torch.randn(3, LOOKBACK, FEATURES)
    h_0, c_0 = net.initial_state(3, x)
    with pytest.raises(
        ForecastError, match=r"h_0 has shape \(2, 3, 16\), expected .* = \(2, 3, 8\)"
    ):
        net(x, (torch.zeros(2, 3, HIDDEN), c_0))
    with pytest.raises(
        ForecastError, match=r"c_0 has shape \(1, 3, 16\), expected .* = \(2, 3, 16\)"
    ):
        net(x, (h_0, torch.zeros(1, 3, HIDDEN)))


def test_instance_norm_makes_forecasts_follow_the_level():
    net = make_net(instance_norm=True).eval()
    x = torch.randn(2, LOOKBACK, FEATURES)
    shifted = net(x + 100.0)[0]
    torch.testing.assert_close(shifted, net(x)[0] + 100.0, rtol=1e-4, atol=1e-3)


def test_target_index_picks_the_target_statistics():
    config = LSTMConfig(hidden_size=8, num_layers=1)
    net = LSTMNet(config, spec_for(3, LOOKBACK, HORIZON, target_index=[2])).eval()
    x = torch.randn(1, LOOKBACK, 3)
    moved = x.clone()
    moved[..., 2] += 50.0
    torch.testing.assert_close(net(moved)[0], net(x)[0] + 50.0, rtol=1e-4, atol=1e-3)


def test_unknown_loss_is_rejected():
    with pytest.raises(ForecastError, match=r"model\.loss='l3' is not one of"):
        LSTMLitModule(spec_for(FEATURES, LOOKBACK, HORIZON), loss="l3")


@pytest.mark.parametrize("decoder", ["linear", "recurrent"])
def test_overfits_a_sine_wave(decoder):
    torch.manual_seed(0)
    t = torch.arange(400, dtype=torch.float32)
    wave = torch.sin(2 * torch.pi * t / 24).unsqueeze(1)  # (rows, 1)
    starts = torch.arange(0, 400 - 24 - 6, 2)
    x = torch.stack([wave[s : s + 24] for s in starts])
    y = torch.stack([wave[s + 24 : s + 30] for s in starts])
    model = LSTMLitModule(
        spec_for(1, 24, 6), hidden_size=32, num_layers=2, instance_norm=False, decoder=decoder,
        segment_len=3, optimizer=lambda params: torch.optim.Adam(params, lr=1e-2),
    )  # fmt: skip
    no_covariates = (torch.zeros(len(x), 30, 0), torch.zeros(len(x), 0))
    loader = DataLoader(
        TensorDataset(x, y, *no_covariates), batch_size=32, shuffle=True,
        collate_fn=lambda rows: Batch(*default_collate(rows)),
    )  # fmt: skip
    trainer = pl.Trainer(
        max_epochs=60, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, loader)
    with torch.no_grad():
        mse = torch.mean((model(x) - y) ** 2).item()
    assert mse < 1e-3


@pytest.mark.parametrize("decoder", ["linear", "recurrent"])
@pytest.mark.parametrize(("channel_independent", "segment_len"), [(True, 1), (False, 4), (True, 3)])
def test_channel_independent_and_segment_shapes(channel_independent, segment_len, decoder):
    """Horizon 5 is no multiple of 4 or 3: the recurrent decoder's last segment is cropped."""
    net = make_net(
        3, 8, channel_independent=channel_independent, segment_len=segment_len, decoder=decoder
    ).eval()
    sequences = 6 * FEATURES if channel_independent else 6
    assert net.lstm.input_size == (1 if channel_independent else FEATURES) * segment_len
    forecast, (h_n, c_n) = net(torch.randn(6, LOOKBACK, FEATURES))
    assert forecast.shape == (6, HORIZON, TARGETS)
    assert h_n.shape == (3, sequences, 8) and c_n.shape == (3, sequences, HIDDEN)
    x = torch.randn(LOOKBACK, FEATURES)
    single, (h_1, _) = net(x)
    torch.testing.assert_close(single, net(x.unsqueeze(0))[0][0])
    assert h_1.shape == ((3, FEATURES, 8) if channel_independent else (3, 8))
    state = net.initial_state(6, x)
    torch.testing.assert_close(net(x.expand(6, -1, -1), state)[0][0], single)


def test_channel_independence_treats_every_feature_alike():
    """Permuting the input features permutes the forecast of each: one shared LSTM."""
    config = LSTMConfig(hidden_size=16, num_layers=2, channel_independent=True, segment_len=4)
    net = LSTMNet(config, spec_for(4, LOOKBACK, HORIZON)).eval()
    x = torch.randn(3, LOOKBACK, 4)
    order = [2, 0, 3, 1]
    torch.testing.assert_close(net(x[..., order])[0], net(x)[0][..., order])


def test_segment_len_must_divide_the_lookback_and_the_error_names_one_that_does():
    with pytest.raises(
        ForecastError, match=r"lookback=12 is not a multiple of model\.segment_len=5: "
        r"model\.segment_len=4 fits \(null chooses one\)",
    ):  # fmt: skip
        make_net(segment_len=5)


@pytest.mark.parametrize(
    ("lookback", "season", "chosen"),
    [(96, 24, 24), (168, 24, 24), (720, 24, 24), (52, 1, 13), (60, 7, 6), (20, 24, 5), (7, 1, 1)],
)
def test_a_segment_len_left_null_divides_the_lookback_near_the_season(lookback, season, chosen):
    """Near the season where it fits the lookback twice, else near a quarter of the lookback;
    always a divisor."""
    assert derived_segment(lookback, season) == chosen
    assert segment_near(168, 48) == 42  # 42 and 56 both divide 168; 42 is nearer


def test_unknown_decoder_is_rejected():
    with pytest.raises(ForecastError, match=r"model\.decoder='attention' is not one of"):
        make_net(decoder="attention")


@pytest.mark.parametrize("channel_independent", [False, True])
def test_linear_skip_adds_a_shared_linear_map_of_each_target(channel_independent):
    """Head silenced, skip set to copy the last input value: the forecast is repeat-last."""
    net = make_net(
        1, instance_norm=False, channel_independent=channel_independent, linear_skip=True,
        target_index=[3, 1],
    ).eval()  # fmt: skip
    with torch.no_grad():
        net.head.linear.weight.zero_()
        net.head.linear.bias.zero_()
        net.skip.weight.zero_()
        net.skip.weight[:, -1] = 1.0
        net.skip.bias.zero_()
    x = torch.randn(6, LOOKBACK, FEATURES)
    expected = x[:, -1:, [3, 1]].expand(-1, HORIZON, -1)
    torch.testing.assert_close(net(x)[0], expected)


def test_quantile_head_shapes_and_point_forecast():
    config = LSTMConfig(hidden_size=8, num_layers=1, quantiles=[0.1, 0.5, 0.9])
    net = LSTMNet(config, spec_for(3, 12, 4, target_index=[0, 2])).eval()
    x = torch.randn(5, 12, 3)
    forecast = net.forecast(x)
    assert forecast.point.shape == (5, 4, 2)
    assert forecast.quantiles.shape == (5, 4, 2, 3)  # three quantiles of every value
    torch.testing.assert_close(net(x)[0], forecast.point)
    single = net.forecast(x[0])
    assert single.point.shape == (4, 2) and single.quantiles.shape == (4, 2, 3)
    torch.testing.assert_close(single.quantiles, forecast.quantiles[0])
    # forecast-predict's columns: every target's point, then each target's quantiles
    flat = forecast.flat()
    assert flat.shape == (5, 4, 2 + 2 * 3)
    torch.testing.assert_close(flat[..., 2:5], forecast.quantiles[..., 0, :])
    with pytest.raises(ForecastError, match="quantiles"):
        LSTMConfig(quantiles=[0.9, 0.1])


def test_nonnegative_keeps_the_point_and_the_quantiles_at_or_above_zero(tmp_path):
    """Windows far below zero: the plain network follows them down, the nonnegative one stays
    at or above zero in every value, quantiles included, and its model file says so."""
    from forecast import Forecaster
    from forecast.data.scaling import Scaler
    from forecast.serving.checkpoint import load_checkpoint, save_checkpoint

    spec = spec_for(1, LOOKBACK, HORIZON)
    spec = type(spec)(
        **(spec.values() | {"freq": "h"}), scaler=Scaler(np.array([5.0]), np.array([2.0]))
    )
    x = torch.linspace(-50, -40, LOOKBACK).view(1, LOOKBACK, 1).expand(8, -1, -1)
    for nonnegative in (False, True):
        torch.manual_seed(0)
        config = LSTMConfig(hidden_size=8, num_layers=1, quantiles=(0.1, 0.9),
                            nonnegative=nonnegative)  # fmt: skip
        forecast = LSTMNet(config, spec).eval().forecast(x)
        units = torch.cat([forecast.point[..., None], forecast.quantiles], -1) * 2.0 + 5.0
        assert (units.min() >= 0) == nonnegative
    path = save_checkpoint(tmp_path / "model.pt", LSTMNet(config, spec), spec)
    net, _ = load_checkpoint(path)
    assert net.config.nonnegative and Forecaster(net, spec).net.link is not None


def test_nonnegative_must_be_a_boolean():
    with pytest.raises(ForecastError, match=r"model\.nonnegative='yes' must be true or false"):
        LSTMConfig(nonnegative="yes")


def test_model_segment_lstm_on_any_lookback_chooses_a_segment_and_says_so(tmp_path):
    """The issue's first try: model=segment_lstm at lookback 168 failed on the preset's 48."""
    from helpers import compose_config, sine_frame

    from forecast.training.setup import build

    sine_frame(600).to_csv(tmp_path / "sines.csv", index=False)
    cfg = compose_config(
        tmp_path, [f"data.path={tmp_path / 'sines.csv'}", "model=segment_lstm",
                   "data.lookback=168"],
    )  # fmt: skip
    datamodule, model, _ = build(cfg)
    assert model.net.config.segment_len == 24  # hourly: a day per LSTM step
    assert datamodule.derived["model.segment_len"] == 24
