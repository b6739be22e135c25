"""Ensembles (issue #14): the combination's weights come from validation alone, a one-hot
combination is its member exactly, the model file round-trips, the server runs it, and on a
short noisy series where the LSTM loses, the validation combination stays with the baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from helpers import compose_config, sine_frame

from forecast import Forecaster
from forecast.data.datamodule import ForecastDataModule
from forecast.model.config import LSTMConfig
from forecast.model.ensemble import Ensemble, combination_weights, fit_combination, select_weights
from forecast.model.net import LSTMNet
from forecast.serving.app import create_app
from forecast.serving.checkpoint import load_checkpoint, save_checkpoint

LOOKBACK, HORIZON = 24, 6


def setup(path) -> ForecastDataModule:
    datamodule = ForecastDataModule(str(path), lookback=LOOKBACK, horizon=HORIZON)
    datamodule.setup()
    return datamodule


def members(datamodule: ForecastDataModule, n: int = 3, quantiles=()) -> list[LSTMNet]:
    nets = []
    for k in range(n):
        torch.manual_seed(k)
        config = LSTMConfig(hidden_size=8, num_layers=1, quantiles=quantiles)
        nets.append(LSTMNet(config, datamodule.spec).eval())
    return nets


def combination(datamodule: ForecastDataModule, nets, combine: str = "validation") -> Ensemble:
    return fit_combination(
        nets, datamodule.spec, combine, 24, datamodule.datasets["train"], datamodule.datasets["val"]
    )


def test_weights_come_from_the_validation_split_alone(tmp_path):
    frame = sine_frame(600)
    frame.to_csv(tmp_path / "a.csv", index=False)
    noisy = frame.copy()
    test_rows = noisy.index[int(600 * 0.8) :]  # the test split: the last 20%
    noisy.loc[test_rows, ["load", "temp", "price"]] = np.random.default_rng(1).normal(
        size=(len(test_rows), 3)
    )
    noisy.to_csv(tmp_path / "b.csv", index=False)
    clean, changed = setup(tmp_path / "a.csv"), setup(tmp_path / "b.csv")
    first = combination(clean, members(clean))
    second = combination(changed, members(changed))
    assert first.weights.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(first.weights, second.weights, rtol=0, atol=0)


def test_all_weight_on_one_member_is_that_member_exactly(tmp_path):
    sine_frame(600).to_csv(tmp_path / "a.csv", index=False)
    datamodule = setup(tmp_path / "a.csv")
    nets = members(datamodule, quantiles=(0.1, 0.9))
    ensemble = combination(datamodule, nets)
    ensemble.weights.zero_()
    ensemble.weights[1] = 1.0
    x, _, future, static = datamodule.datasets["test"][torch.arange(8)]
    combined, alone = ensemble.forecast(x, future, static), nets[1].forecast(x, future, static)
    assert torch.equal(combined.point, alone.point)
    assert torch.equal(combined.quantiles, alone.quantiles)


def test_mean_and_median_of_members():
    points = torch.tensor([1.0, 5.0, 2.0, 10.0]).view(4, 1, 1, 1)
    from forecast.model.ensemble import _median

    assert _median(points).item() == 3.5  # the middle two of 1, 2, 5, 10
    assert _median(points[:3]).item() == 2.0


def test_greedy_selection_finds_the_mix_that_fits():
    """y is the average of candidates 0 and 2; candidate 1 is far off."""
    rng = np.random.default_rng(0)
    a, c = (torch.tensor(rng.normal(size=200)) for _ in range(2))
    candidates = torch.stack([a, a + 5, c])
    y = (a + c) / 2
    flat = candidates.double()
    weights = select_weights(flat @ flat.T, flat @ y.double())
    assert weights.tolist() == pytest.approx([0.5, 0.0, 0.5])


def test_the_combination_hedges_greedy_selection_with_inverse_squared_errors():
    """Candidate 0 is best on validation (MSE 1), 1 close behind (MSE 1.21), 2 far off (MSE
    100): the combination is the average of greedy selection's weights and weights in
    proportion to 1/MSE^2, so 1 keeps a share and 2 almost none."""
    rng = np.random.default_rng(0)
    y = torch.tensor(rng.normal(size=20_000))
    noise = [torch.tensor(rng.normal(size=20_000)) for _ in range(3)]
    candidates = torch.stack([y + noise[0], y + 1.1 * noise[1], y + 10 * noise[2]]).double()
    gram, cross = candidates @ candidates.T, candidates @ y.double()
    squares, count = float(y.double() @ y.double()), len(y)
    mse = ((candidates - y) ** 2).mean(1)
    inverse = mse**-2 / (mse**-2).sum()
    greedy = select_weights(gram, cross)
    weights = combination_weights(gram, cross, squares, count)
    torch.testing.assert_close(weights.double(), (greedy.double() + inverse) / 2, atol=1e-6, rtol=0)
    assert weights.sum().item() == pytest.approx(1.0)
    assert weights[1] > 0.25 and weights[2] < 0.001


def test_an_ensemble_model_file_round_trips_and_serves(tmp_path):
    sine_frame(600).to_csv(tmp_path / "a.csv", index=False)
    datamodule = setup(tmp_path / "a.csv")
    for combine in ("validation", "median"):
        ensemble = combination(datamodule, members(datamodule), combine)
        path = save_checkpoint(tmp_path / f"{combine}.pt", ensemble, datamodule.spec)
        loaded, _ = load_checkpoint(path)
        assert isinstance(loaded, Ensemble) and loaded.combine == combine
        torch.testing.assert_close(loaded.weights, ensemble.weights, rtol=0, atol=0)
        x, _, future, static = datamodule.datasets["test"][torch.arange(4)]
        torch.testing.assert_close(
            loaded.forecast(x, future, static).point, ensemble.forecast(x, future, static).point
        )
    forecaster = Forecaster.load(tmp_path / "validation.pt")
    history = pd.read_csv(tmp_path / "a.csv").iloc[-48:]
    expected = forecaster.predict(history)
    rows = history.to_dict(orient="records")
    answer = TestClient(create_app(forecaster, "m")).post(
        "/forecast", json={"series": [{"id": "a", "data": rows}]}
    )
    assert answer.status_code == 200, answer.text
    served = pd.DataFrame(answer.json()["forecasts"][0]["data"])
    np.testing.assert_allclose(served["load"], expected["load"], rtol=1e-6)


def short_noisy_series(path) -> None:
    """300 hourly rows: a daily cycle under heavy noise, too little for an LSTM to learn in a
    few epochs, enough for the seasonal and linear baselines."""
    rng = np.random.default_rng(3)
    t = np.arange(300)
    y = 10 * np.sin(2 * np.pi * t / 24) + 3 * rng.standard_normal(300)
    stamps = pd.date_range("2024-01-01", periods=300, freq="h")
    pd.DataFrame({"date": stamps, "y": y}).to_csv(path, index=False)


def test_validation_combination_stays_with_the_baselines_where_the_lstm_loses(tmp_path):
    from forecast.train import train

    cfg = ensemble_config(tmp_path, "ensemble.size=2", "ensemble.combine=validation")
    metrics = train(cfg)
    best = min(metrics["test_mse_linear"], metrics["test_mse_seasonal_naive"])
    assert metrics["test_mse_member_0"] > best  # the plain LSTM loses on test
    assert metrics["test_mse"] <= 1.02 * best
    assert metrics["test_mse_members_mean"] == pytest.approx(
        (metrics["test_mse_member_0"] + metrics["test_mse_member_1"]) / 2
    )


def test_one_model_is_combined_with_the_baselines_on_validation(tmp_path, caplog):
    """ensemble.combine=validation needs no ensemble: the one model trained as usual, then
    weighed against the baselines on the validation windows, in one model file."""
    from forecast.train import train

    caplog.set_level("INFO")
    metrics = train(ensemble_config(tmp_path, "ensemble.combine=validation"))
    assert "the model combined with the baselines (ensemble.combine=validation)" in caplog.text
    assert "weights chosen on the validation split: " in caplog.text
    best = min(metrics["test_mse_linear"], metrics["test_mse_seasonal_naive"])
    assert metrics["test_mse_member_0"] > best  # the plain LSTM loses on test
    assert metrics["test_mse"] <= 1.02 * best
    loaded, _ = load_checkpoint(tmp_path / "run" / "model.pt")
    assert isinstance(loaded, Ensemble) and len(loaded.members) == 1
    weights = loaded.chosen()
    assert list(weights) == ["member_0", "naive", "seasonal_naive", "linear"]
    assert sum(weights.values()) == pytest.approx(1)
    assert member_runs(tmp_path) == []  # one run: the model's


def ensemble_config(tmp_path, *overrides: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    short_noisy_series(tmp_path / "short.csv")
    return compose_config(
        tmp_path,
        [
            f"data.path={tmp_path / 'short.csv'}",
            "data.lookback=48",
            "data.horizon=12",
            "data.split_ratios=[0.5,0.25,0.25]",
            "model.hidden_size=8",
            "model.num_layers=1",
            "trainer.max_epochs=1",
            "register_model=null",
            *overrides,
        ],
    )


def member_runs(tmp_path) -> list:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs(client.search_experiments()[0].experiment_id)
    return sorted(
        (r for r in runs if "mlflow.parentRunId" in r.data.tags), key=lambda r: r.info.run_name
    )


def second_member_raises(monkeypatch, error: BaseException) -> list[int]:
    """The second member's fit raises ``error``; returns the list of fits started."""
    import forecast.training.members as members

    real_fit, calls = members.fit, []

    def fit(trainer, model, datamodule):
        calls.append(1)
        if len(calls) == 2:
            raise error
        real_fit(trainer, model, datamodule)

    monkeypatch.setattr(members, "fit", fit)
    return calls


def test_a_failed_member_is_reported_and_the_others_kept(tmp_path, monkeypatch, caplog):
    from forecast.train import train

    second_member_raises(monkeypatch, RuntimeError("out of memory"))
    metrics = train(ensemble_config(tmp_path, "ensemble.size=3"))
    assert "ensemble member 1 (seed 43) failed, the others go on: out of memory" in caplog.text
    assert {k for k in metrics if k.startswith("test_mse_member_")} == {
        "test_mse_member_0",
        "test_mse_member_1",
    }  # fmt: skip  (the two members kept, renumbered in the model file)
    statuses = [r.info.status for r in member_runs(tmp_path)]
    assert statuses == ["FINISHED", "FAILED", "FINISHED"]


def test_ctrl_c_during_a_member_stops_the_ensemble_and_marks_its_runs_killed(tmp_path, monkeypatch):
    """Issue #24, probe 13: a member stopped by Ctrl-C reads KILLED, not FAILED, and no member
    after it starts."""
    from forecast.train import train

    calls = second_member_raises(monkeypatch, KeyboardInterrupt("training stopped by Ctrl-C"))
    with pytest.raises(KeyboardInterrupt):
        train(ensemble_config(tmp_path, "ensemble.size=3"))
    assert len(calls) == 2
    assert [r.info.status for r in member_runs(tmp_path)] == ["FINISHED", "KILLED"]


def test_members_at_once_train_as_they_would_one_after_the_other(tmp_path):
    from forecast.train import train

    one_by_one = train(ensemble_config(tmp_path / "a", "ensemble.size=2"))
    at_once = train(ensemble_config(tmp_path / "b", "ensemble.size=2", "ensemble.parallel=2"))
    for k in (0, 1):  # same seeds, same windows; one thread each instead of two
        key = f"test_mse_member_{k}"
        assert at_once[key] == pytest.approx(one_by_one[key], rel=1e-3)
    assert [r.info.status for r in member_runs(tmp_path / "b")] == ["FINISHED", "FINISHED"]
    assert len(list((tmp_path / "b" / "run" / "checkpoints").glob("member_*/*.ckpt"))) == 2


@pytest.mark.parametrize("combine", ["validation", "median"])
def test_an_exported_ensemble_runs_the_combination(tmp_path, combine):
    import onnxruntime

    from forecast.serving.export import ScaledForecaster, export

    sine_frame(600).to_csv(tmp_path / "a.csv", index=False)
    datamodule = setup(tmp_path / "a.csv")
    forecaster = Forecaster(combination(datamodule, members(datamodule), combine), datamodule.spec)
    raw = torch.randn(3, LOOKBACK, 3) * 2 + 10
    with torch.inference_mode():
        expected = ScaledForecaster(forecaster).eval()(raw).numpy()
    scripted = torch.jit.load(str(export(forecaster, "torchscript", tmp_path / "m.ts")))
    with torch.inference_mode():
        np.testing.assert_allclose(scripted(raw).numpy(), expected, rtol=1e-5, atol=1e-5)
    session = onnxruntime.InferenceSession(str(export(forecaster, "onnx", tmp_path / "m.onnx")))
    name = session.get_inputs()[0].name
    got = session.run(None, {name: raw.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
