"""End to end: the training entry point, its MLflow run, its checkpoint and forecast-eval."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from helpers import compose_config, sine_frame
from omegaconf import OmegaConf

from forecast import Forecaster
from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.evaluate import evaluate
from forecast.model.module import LSTMLitModule
from forecast.train import train


def only_run(tracking_uri: str):
    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("forecast")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_run_logs_params_metrics_and_artifacts(trained):
    client, run = only_run(trained["cfg"].logger.tracking_uri)
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["data.lookback"] == "24"
    assert params["model.hidden_size"] == "16"
    assert params["model.optimizer.lr"] == "0.001"
    assert params["seed"] == "42"
    assert {"train_loss", "val_loss", "val_mse", "test_mse", "test_mae"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 2  # one per epoch
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 2
    assert run.data.metrics["test_mse"] == pytest.approx(trained["metrics"]["test_mse"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"checkpoint", "config.yaml", "evaluation", "plots"}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")] == [
        "checkpoint/model.pt"
    ]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/test_forecasts.png",
        "plots/test_mse_by_step.png",
    }
    assert {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")} == {
        "evaluation/test_mse_by_step.csv",
        "evaluation/test_windows.csv",
    }
    for name in ("test_mase", "test_mse_naive", "test_mse_seasonal_naive", "test_mse_linear"):
        assert run.data.metrics[name] == pytest.approx(trained["metrics"][name])
    curve = client.get_metric_history(run.info.run_id, "test_mse_by_step_model")
    assert sorted(m.step for m in curve) == list(range(1, 7))  # one point per horizon step
    assert sum(m.value for m in curve) / 6 == pytest.approx(trained["metrics"]["test_mse"], 1e-4)
    config = mlflow.artifacts.load_text(f"{run.info.artifact_uri}/config.yaml")
    assert OmegaConf.create(config).data.horizon == 6


def test_metrics_are_consistent(trained):
    m = trained["metrics"]
    assert m["test_rmse"] == pytest.approx(math.sqrt(m["test_mse"]), rel=1e-5)
    assert m["test_loss"] < m["test_mae"]  # segment_lstm's Huber loss: below the MAE
    assert m["test_mae_orig"] > m["test_mae"]  # the sines' std is above 1
    assert 0 < m["test_mse"] < 1.0  # a learnable signal, better than predicting the mean


def test_checkpoint_is_self_contained(trained):
    payload = torch.load(trained["model"], weights_only=True)
    assert payload["format"] == "forecast.lstm"
    data = payload["data"]
    assert data["features"] == ["load", "temp", "price"] == data["targets"]
    assert (data["lookback"], data["horizon"], data["freq"]) == (24, 6, "h")
    assert len(data["scaler"]["mean"]) == 3 and len(data["scaler"]["std"]) == 3
    assert payload["net"]["hidden_size"] == 16


def test_saved_model_matches_the_best_lightning_checkpoint(trained):
    from forecast import Forecaster

    (best,) = (trained["tmp"] / "run" / "checkpoints").glob("*.ckpt")
    module = LSTMLitModule.load_from_checkpoint(best, weights_only=False).eval()
    forecaster = Forecaster.load(trained["model"])
    x = torch.randn(5, 24, 3)
    with torch.no_grad():
        torch.testing.assert_close(forecaster.net(x)[0], module(x), rtol=0, atol=0)


def test_eval_reproduces_the_training_test_metrics(trained, tmp_path):
    cfg = compose_config(tmp_path, [f"ckpt_path={trained['model']}"], name="eval")
    metrics = evaluate(cfg)
    for key in ("test_mse", "test_mae", "test_rmse_orig", "test_mase", "test_mse_linear"):
        assert metrics[key] == pytest.approx(trained["metrics"][key], rel=1e-5)


def test_bf16_trains_in_bf16_and_scores_in_float32(trained, tmp_path, monkeypatch):
    """The presets' accuracy comes from bf16-mixed training: the LSTM runs in bfloat16 under
    autocast while training, the weights and the model file stay float32, and the test figures
    are the float32 forward of those weights (forecast-eval on the file gives them again)."""
    dtypes = set()
    forward = torch.nn.LSTM.forward

    def recorded(self, *args, **kwargs):
        output = forward(self, *args, **kwargs)
        dtypes.add((torch.is_grad_enabled(), output[0].dtype))
        return output

    monkeypatch.setattr(torch.nn.LSTM, "forward", recorded)
    cfg = compose_config(tmp_path, [f"data.path={trained['csv']}", "trainer.precision=bf16-mixed"])
    metrics = train(cfg)
    assert (True, torch.bfloat16) in dtypes  # training steps under autocast
    assert (False, torch.float32) in dtypes  # test scoring in float32
    assert all(math.isfinite(v) for v in metrics.values())
    (model,) = Path(cfg.paths.output_dir).glob("model.pt")
    state = torch.load(model, weights_only=True)["state_dict"]
    assert {t.dtype for t in state.values() if t.is_floating_point()} == {torch.float32}
    dtypes.clear()
    scored = evaluate(compose_config(tmp_path, [f"ckpt_path={model}"], name="eval"))
    assert dtypes == {(False, torch.float32)}
    assert scored["test_mse"] == pytest.approx(metrics["test_mse"], rel=1e-6)


def test_duplicates_merged_are_counted_logged_and_kept_in_the_model(tmp_path, caplog):
    frame = sine_frame()
    again = frame.iloc[[10, 20, 20]].assign(load=0.0)  # three rows repeating two timestamps
    repeated = pd.concat([frame, again]).sort_values("date", kind="stable")
    repeated.to_csv(tmp_path / "repeated.csv", index=False)
    overrides = [f"data.path={tmp_path / 'repeated.csv'}", "register_model=null"]
    with pytest.raises(ForecastError, match="timestamps duplicated at file line 13 "):
        train(compose_config(tmp_path, overrides))
    caplog.set_level("INFO")
    cfg = compose_config(tmp_path, [*overrides, "data.duplicates=first"])
    metrics = train(cfg)
    assert "data: 3 rows with a repeated timestamp merged (data.duplicates=first)" in caplog.text
    client = mlflow.MlflowClient(cfg.logger.tracking_uri)
    (run,) = [r for r in client.search_runs(["1"]) if r.data.params["data.duplicates"] == "first"]
    assert run.data.metrics["data_duplicates_merged"] == 3
    assert Forecaster.load(Path(cfg.paths.output_dir) / "model.pt").spec.duplicates == "first"
    # merged to their first rows, the data is the original file's: the same run
    plain = tmp_path / "plain"
    plain.mkdir()
    frame.to_csv(plain / "repeated.csv", index=False)
    same = compose_config(plain, [f"data.path={plain / 'repeated.csv'}", "register_model=null"])
    assert train(same)["test_mse"] == metrics["test_mse"]


def test_dropped_short_series_are_counted_and_logged(tmp_path, caplog):
    panel = pd.concat(
        [
            sine_frame().assign(id="a"),
            sine_frame(20).assign(id="tiny"),
            sine_frame(seed=1).assign(id="b"),
        ]
    )
    panel.to_csv(tmp_path / "panel.csv", index=False)
    overrides = [f"data.path={tmp_path / 'panel.csv'}", "data.series_id=id", "register_model=null"]
    with pytest.raises(ForecastError, match=r"series 'tiny'.*data\.short_series=drop"):
        train(compose_config(tmp_path, overrides))
    caplog.set_level("INFO")
    cfg = compose_config(tmp_path, [*overrides, "data.short_series=drop"])
    train(cfg)
    assert (
        "data: 1 series too short for a split left out (data.short_series=drop): 'tiny'"
        in caplog.text
    )
    assert "chosen for you: data.scaling=series" in caplog.text
    client = mlflow.MlflowClient(cfg.logger.tracking_uri)
    (run,) = [r for r in client.search_runs(["1"]) if r.data.params["data.short_series"] == "drop"]
    assert run.data.metrics["data_series_dropped"] == 1
    assert run.data.params["data.scaling"] == "series"  # the derived value, logged as chosen
    # the model's errors per series, worst first: the two series kept
    by_series = pd.read_csv(
        client.download_artifacts(run.info.run_id, "evaluation/test_series.csv")
    )
    assert sorted(by_series.id) == ["a", "b"] and by_series.mse.is_monotonic_decreasing


def test_a_quarterly_file_trains_and_forecasts_quarters(tmp_path):
    """Time column `1998 Q1` style, season 4, through training, predict and serve."""
    from fastapi.testclient import TestClient

    from forecast.serving.app import create_app

    frame = sine_frame(160).assign(date=[f"{1900 + k // 4} Q{k % 4 + 1}" for k in range(160)])
    frame.to_csv(tmp_path / "quarters.csv", index=False)
    overrides = [
        f"data.path={tmp_path / 'quarters.csv'}", "data.lookback=8", "data.horizon=4",
        "trainer.max_epochs=1", "register_model=null",
    ]  # fmt: skip
    cfg = compose_config(tmp_path, overrides)
    metrics = train(cfg)
    assert "test_mse_seasonal_naive" in metrics  # season 4 fits in the lookback of 8
    forecaster = Forecaster.load(Path(cfg.paths.output_dir) / "model.pt")
    assert forecaster.spec.freq == "QS-JAN"
    future = forecaster.predict(frame.tail(8))
    expected = pd.date_range("1940-01-01", periods=4, freq="QS")
    assert list(future["date"]) == list(expected)
    request = {"series": [{"data": frame.tail(8).to_dict(orient="records")}]}
    answer = TestClient(create_app(forecaster, "m")).post("/forecast", json=request)
    assert answer.status_code == 200
    dates = [row["date"] for row in answer.json()["forecasts"][0]["data"]]
    assert dates == [str(d) for d in expected]


def test_same_seed_same_run(trained, tmp_path):
    metrics = train(compose_config(tmp_path, [*trained["cfg_overrides"]]))
    assert metrics["test_mse"] == trained["metrics"]["test_mse"]
    assert metrics["best_val_loss"] == trained["metrics"]["best_val_loss"]


def test_overrides_reach_the_model(tmp_path):
    path = tmp_path / "sines.csv"
    sine_frame().to_csv(path, index=False)
    cfg = compose_config(
        tmp_path,
        [
            f"data.path={path}",
            "data.targets=[temp]",
            "model.num_layers=3",
            "model.proj_size=4",
            "model.loss=huber",
            "trainer.max_epochs=1",
            "ensemble.combine=mean",  # the network's own file, not a combination's
        ],
    )
    train(cfg)
    payload = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert payload["net"]["num_layers"] == 3 and payload["net"]["proj_size"] == 4
    assert DataSpec.from_dict(payload["data"]).target_index == [1]
    assert payload["data"]["targets"] == ["temp"]
    assert payload["state_dict"]["lstm.weight_hr_l2"].shape == (4, 16)


def test_training_registers_a_pyfunc_with_signature(trained, trained_store):
    """Registered under the data file's name: one registered model per data set."""
    info = mlflow.models.get_model_info("models:/forecast-sines/1")
    pyfunc = mlflow.pyfunc.load_model("models:/forecast-sines/1")
    assert info.signature.inputs.input_names() == ["date", "load", "temp", "price"]
    assert "temp" in info.signature.outputs.input_names()
    assert info.saved_input_example_info is not None
    history = sine_frame().tail(24)
    history["date"] = history["date"].dt.strftime("%Y-%m-%d %H:%M:%S")  # as JSON clients send it
    from forecast import Forecaster

    expected = Forecaster.load(trained["model"]).predict(history)
    pd.testing.assert_frame_equal(pyfunc.predict(history), expected)


@pytest.mark.parametrize("dataset", ["etth1", "ettm1"])
@pytest.mark.parametrize("horizon", [96, 192, 336, 720])
def test_experiment_presets_compose(dataset, horizon, tmp_path):
    from hydra import compose, initialize_config_dir

    from forecast.reference import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        overrides = [f"experiment={dataset}_h{horizon}", f"paths.output_dir={tmp_path}"]
        cfg = compose("config", overrides=overrides)
    assert cfg.data.horizon == horizon
    assert "horizon" not in cfg.model and "lookback" not in cfg.model  # the DataSpec's alone
    borders = {"etth1": [8640, 11520, 14400], "ettm1": [34560, 46080, 57600]}[dataset]
    assert cfg.data.split_borders == borders and cfg.data.lookback == 96
    assert Path(cfg.data.path).is_file()
    assert cfg.model.channel_independent and cfg.data.lookback % cfg.model.segment_len == 0
    # one model for every preset: nothing tuned per dataset or horizon
    assert cfg.model.hidden_size == 256 and cfg.model.loss == "mae"
    assert cfg.trainer.precision == "bf16-mixed"


def test_the_presets_keep_the_model_their_figures_were_measured_with(tmp_path):
    """The default model trains on the Huber loss (issue #22's measurements); the presets pin
    the MAE-trained one that their published figures come from."""
    from hydra import compose, initialize_config_dir

    from forecast.reference import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        default = compose("config", overrides=[f"paths.output_dir={tmp_path}"]).model
        presets = {
            name: compose("config", overrides=[f"experiment={name}"]).model
            for name in ("etth1_h96", "ettm1_h336", "pjm_load", "m5_sales")
        }
    assert (default.hidden_size, default.loss) == (256, "huber")
    assert {name: (m.hidden_size, m.loss) for name, m in presets.items()} == dict.fromkeys(
        presets, (256, "mae")
    )


def test_model_keys_are_the_networks_fields(tmp_path):
    from forecast.errors import ForecastError
    from forecast.training.setup import build_model

    spec = DataSpec(features=["a", "b"], targets=["b"], lookback=24, horizon=6)
    cfg = compose_config(tmp_path, ["+model.hidden=32"])
    with pytest.raises(ForecastError, match=r"unknown key\(s\) \['hidden'\].*'hidden_size'"):
        build_model(cfg.model, spec)
    cfg = compose_config(tmp_path, ["model.dropout=1.5"])
    with pytest.raises(ForecastError, match=r"model\.dropout=1\.5 must be in \[0, 1\)"):
        build_model(cfg.model, spec)
    module = build_model(compose_config(tmp_path, ["model.hidden_size=12"]).model, spec)
    assert module.net.config.hidden_size == 12 and module.net.lookback == 24


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=0", r"data\.batch_size=0 must be an integer in \[1, "),
        ("data.lookback=abc", r"data\.lookback='abc' must be an integer in \[1, "),
        ("data.lookback=2.5", r"data\.lookback=2\.5 must be an integer in \[1, "),
        ("data.freq=bogus", r"data\.freq='bogus' is not a pandas frequency"),
        ("model.optimizer.lr=-0.1", r"model\.optimizer\.lr=-0\.1 must be a number >= 0"),
        ("season=-1", r"season=-1 must be an integer >= 1, or null"),
        ("season=0", r"season=0 must be an integer >= 1, or null"),
        ("data.max_rows=0", r"data\.max_rows=0 must be an integer >= 1, or null"),
        ("threads=0", r"threads=0 must be an integer >= 1, or null"),
        ("data.duplicates=drop", r"data\.duplicates='drop' must be one of \('error', 'first'"),
        ("data.short_series=skip", r"data\.short_series='skip' must be one of \('error', 'drop'\)"),
    ],
)
def test_bad_values_are_refused_before_any_data_is_read(tmp_path, override, message):
    from forecast.errors import ForecastError

    cfg = compose_config(tmp_path, ["data.path=nowhere.csv", override])
    with pytest.raises(ForecastError, match=message):
        train(cfg)  # the missing file is never reached


@pytest.mark.slow
@pytest.mark.parametrize("flags", [[], ["-m", "seed=1,2"]])
def test_an_unwritable_log_folder_is_one_line(tmp_path, flags):
    """Hydra makes the run's folder before our code runs; below a file it cannot."""
    (tmp_path / "file").write_text("")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "forecast-train"),
            *flags,
            f"paths.log_dir={tmp_path / 'file' / 'logs'}",
            "data.path=nowhere.csv",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "cannot write the run's folder" in result.stderr and "set paths.log_dir" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_runs_of_one_seed_get_distinct_names_after_their_data(trained, tmp_path):
    names = []
    for _ in range(2):
        cfg = compose_config(tmp_path, [f"data.path={trained['csv']}", "register_model=null"])
        train(cfg)
        names.append(cfg.logger.run_name)
    client = mlflow.MlflowClient(cfg.logger.tracking_uri)
    experiment = client.get_experiment_by_name("forecast")
    logged = {r.info.run_name for r in client.search_runs([experiment.experiment_id])}
    assert logged == set(names) and len(logged) == 2
    assert all(name.startswith("sines_h6_") for name in names)


def test_a_run_records_its_data_file_and_commit(trained, trained_store):
    """The training file as the run's dataset input (path, fingerprint, columns) and the
    git commit of the folder it ran in (this checkout), as MLflow records them."""
    import subprocess

    from forecast.evaluation.tracking import fingerprint

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(trained["cfg"].logger.experiment_name)
    (run,) = client.search_runs([experiment.experiment_id])
    (data,) = run.inputs.dataset_inputs
    assert data.dataset.name == "sines.csv"
    assert data.dataset.digest == fingerprint(trained["csv"])
    assert '"uri": "' + str(trained["csv"].resolve()) in data.dataset.source
    assert [c["name"] for c in json.loads(data.dataset.schema)["mlflow_colspec"]] == [
        "load", "temp", "price",
    ]  # fmt: skip
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    commit = head.stdout.strip() if head.returncode == 0 else None  # a copy outside git: none
    assert run.data.tags.get("mlflow.source.git.commit") == commit


def test_refit_trains_again_on_training_and_validation_rows(tmp_path, caplog):
    """refit=true: the first fit as without it (same seed, same best epoch and val_loss),
    then the model trained again on train + validation for that many epochs."""
    from forecast.data.datamodule import ForecastDataModule

    csv = tmp_path / "sines.csv"
    sine_frame().to_csv(csv, index=False)
    dm = ForecastDataModule(str(csv), lookback=24, horizon=6)
    dm.setup()
    assert len(dm.datasets["train"]) == 420 - 30 + 1  # 0.7 of 600 rows
    dm.merge_validation()
    train_windows = dm.datasets["train"]
    assert len(train_windows) == 480 - 30 + 1  # the validation's 60 rows joined
    last = int(train_windows.starts(torch.tensor([len(train_windows) - 1]))) + 24 + 6
    assert last == 480  # the last window ends where validation ended; the test is untouched

    keys = [f"data.path={csv}", "register_model=null", "trainer.max_epochs=3",
            "ensemble.combine=mean"]  # fmt: skip
    plain = train(compose_config(tmp_path / "plain", keys))
    caplog.set_level("INFO")
    refitted = train(compose_config(tmp_path / "refit", [*keys, "refit=true"]))
    assert refitted["best_epoch"] == plain["best_epoch"]
    assert refitted["best_val_loss"] == pytest.approx(plain["best_val_loss"])
    assert refitted["test_mse"] != pytest.approx(plain["test_mse"])
    epochs = int(plain["best_epoch"])
    assert f"refit on the training and validation rows for {epochs} epoch(s)" in caplog.text
    with pytest.raises(ForecastError, match=r"refit=true retrains one model: set ensemble\.size"):
        train(compose_config(tmp_path / "many", [*keys, "refit=true", "ensemble.size=2"]))
