"""Every command's --help and its answer to a mistyped key, from conf/'s comments (issue #24,
friction 5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from forecast.reference import COMMANDS, CONF_DIR, help_text, keys, unknown_key

DATA_KEYS = keys(Path(CONF_DIR) / "data" / "csv.yaml")


def test_train_help_lists_every_data_key_with_its_description_and_the_recipes():
    text = help_text("forecast-train")
    lines = text.splitlines()
    for key in DATA_KEYS:
        if key.path == "_target_":
            continue
        line = next(line for line in lines if line.split()[:1] == [f"data.{key.path}"])
        assert key.summary[:30] in line, (key.path, line)
    assert "  data.series_id                null              Column naming the series" in text
    assert "forecast-train experiment=etth1_h96" in text and "data: csv, etth1, ettm1" in text
    assert max(len(line) for line in lines if line.startswith("  data.")) <= 119


def test_serving_help_shows_what_is_required_not_an_interpolation():
    text = help_text("forecast-predict")
    assert "${model}" not in text and "???" not in text
    assert "  input         (required)" in text
    assert "ckpt_path     null              The model file (required)" in text


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("forecast-train", ["data=csv", "data.serie_id=id"],
         "data.serie_id is not a key of forecast-train; did you mean data.series_id?"),
        ("forecast-train", ["model.hiden_size=8"], "did you mean model.hidden_size?"),
        ("forecast-train", ["modle=segment_lstm"], "did you mean model?"),
        ("forecast-check", ["data.categorial=[wd]"], "did you mean data.categorical?"),
        ("forecast-predict", ["ckpth_path=m.pt"], "did you mean ckpt_path?"),
        ("forecast-eval", ["ckpt_path=m.pt", "backtest.strid=24"], "mean backtest.stride or"),
        ("forecast-serve", ["prot=80"], "did you mean port?"),
        ("forecast-train", ["zzz=1"], "zzz is not a key of forecast-train (forecast-train --help"),
    ],
)  # fmt: skip
def test_a_mistyped_key_is_answered_with_the_nearest_names(command, args, message):
    assert message in unknown_key(command, args)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_recipes_and_hydra_syntax_pass(command):
    for line, _ in COMMANDS[command].recipes:
        args = [arg.strip("'") for arg in line.split()[1:]]
        assert unknown_key(command, args) is None, line
    hydra = ["-m", "+trainer.gradient_clip_val=1", "~logger", "hydra.run.dir=x",
             "hydra/launcher=basic", "--config-dir", "x"]  # fmt: skip
    assert unknown_key(command, hydra) is None


def test_every_key_of_train_is_known():
    """Nested keys (a callback's patience, the optimizer's lr), group options, and mappings
    set whole pass."""
    args = [
        "callbacks.early_stopping.patience=1", "model.optimizer.lr=0.1", "data=etth1",
        "model.optimizer={lr: 0.1}", "ensemble.parallel=2", "paths.log_dir=x", "seed=1",
    ]  # fmt: skip
    assert unknown_key("forecast-train", args) is None


def test_the_commands_answer_help_and_typos_before_importing_torch():
    code = (
        "import sys; sys.argv = ['forecast-train', '--help']; import forecast.cli as c; "
        "c.train(); assert 'torch' not in sys.modules and 'hydra' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Keys, their defaults and what they do" in out.stdout
    code = "import sys; sys.argv = ['x', 'data.serie_id=1']; import forecast.cli as c; c.train()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.startswith("error: data.serie_id is not a key")
    assert "Traceback" not in out.stderr
