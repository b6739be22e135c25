"""What the benchmark scripts share: ETTh1 on its standard split, and network settings read
from ``conf/`` itself, so a benchmark measures the model a preset trains and cannot drift
from it when the preset is retuned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from forecast.config import CONF_DIR
from forecast.model import NET_ARGS
from forecast.windows import ForecastDataModule

ETTH1 = Path(__file__).resolve().parents[1] / "data" / "ETTh1.csv"
# Set from the data at run time, not by conf/model
DATA_ARGS = {"n_features", "n_targets", "lookback", "horizon", "target_index"}


def etth1(lookback: int = 96, horizon: int = 96, batch_size: int = 32) -> ForecastDataModule:
    """The ETTh1 DataModule with conf/data/etth1.yaml's borders, set up."""
    borders = OmegaConf.load(Path(CONF_DIR) / "data" / "etth1.yaml").split_borders
    dm = ForecastDataModule(
        str(ETTH1), lookback, horizon, batch_size, split_ratios=None, split_borders=list(borders)
    )
    dm.setup()
    return dm


def net_args(model: str) -> dict[str, Any]:
    """``LSTMNet`` arguments of ``conf/model/<model>.yaml`` over the ``lstm.yaml`` it extends."""
    folder = Path(CONF_DIR) / "model"
    merged = OmegaConf.merge(
        OmegaConf.load(folder / "lstm.yaml"), OmegaConf.load(folder / f"{model}.yaml")
    )
    keys = [k for k in NET_ARGS if k in merged and k not in DATA_ARGS]
    return OmegaConf.to_container(OmegaConf.masked_copy(merged, keys))
