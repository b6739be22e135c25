"""What the benchmark scripts share: ETTh1 on its standard split, and network settings read
from ``conf/`` itself, so a benchmark measures the model a preset trains and cannot drift
from it when the preset is retuned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import OmegaConf

from forecast.config import CONF_DIR
from forecast.model import LSTMLitModule
from forecast.spec import DataSpec
from forecast.windows import ForecastDataModule

ETTH1 = Path(__file__).resolve().parents[1] / "data" / "ETTh1.csv"


def etth1(lookback: int = 96, horizon: int = 96, batch_size: int = 32) -> ForecastDataModule:
    """The ETTh1 DataModule with conf/data/etth1.yaml's borders, set up."""
    borders = OmegaConf.load(Path(CONF_DIR) / "data" / "etth1.yaml").split_borders
    dm = ForecastDataModule(
        str(ETTH1), lookback, horizon, batch_size, split_ratios=None, split_borders=list(borders)
    )
    dm.setup()
    return dm


def lit_module(model: str, spec: DataSpec, **overrides: Any) -> LSTMLitModule:
    """``conf/model/<model>.yaml`` (over the ``lstm.yaml`` it extends) built for ``spec``, as
    forecast-train builds it; ``overrides`` replace its keys (``scheduler=None``)."""
    folder = Path(CONF_DIR) / "model"
    merged = OmegaConf.merge(
        OmegaConf.load(folder / "lstm.yaml"), OmegaConf.load(folder / f"{model}.yaml")
    )
    merged.pop("defaults", None)
    return instantiate(merged, _convert_="all")(spec=spec, **overrides)
