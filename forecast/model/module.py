"""The LightningModule that trains an ``LSTMNet``."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torchmetrics import MeanAbsoluteError, MeanMetric, MeanSquaredError, MetricCollection

from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.model.config import LSTMConfig
from forecast.model.losses import Forecast, ForecastLoss
from forecast.model.net import LSTMNet, target_scale

if TYPE_CHECKING:
    from forecast.data.windows import Batch


class LSTMLitModule(pl.LightningModule):
    """Trains an ``LSTMNet`` on scaled windows; validation is scored here, the test split by
    ``forecast.evaluation.scoring`` (next to the baselines, from the same sums).

    ``net`` are the fields of ``LSTMConfig`` (the other keys of ``conf/model/lstm.yaml``).
    ``optimizer`` and ``scheduler`` are partials (Hydra ``_partial_: true``) taking the
    parameters and the optimizer respectively. With quantiles the loss is the point loss
    plus the pinball loss of the quantiles; with a distribution, its negative log-likelihood.
    """

    def __init__(
        self,
        spec: DataSpec,
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
        config = self.net.config
        self.loss = ForecastLoss(
            config.loss, config.quantiles, target_scale(spec), config.tweedie_power,
            self.net.distribution,
        )  # fmt: skip
        self.optimizer, self.scheduler = optimizer, scheduler
        self.val_metrics = MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError()}, prefix="val_"
        )
        # each loss's sum over every observed target and their count, summed across DDP
        # ranks: exact where ranks hold different numbers of windows (a mean of means is not)
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()

    def forward(
        self, x: Tensor, future: Tensor | None = None, static: Tensor | None = None
    ) -> Tensor:
        return self.net.forecast(x, future, static, levels=()).point

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        loss = self.loss(self._forecast(batch), batch.y)
        self.train_loss.update(loss.detach(), weight=torch.isfinite(batch.y).sum())
        self.log(
            "train_loss", self.train_loss, on_epoch=True, on_step=False, prog_bar=True,
            batch_size=len(batch.x),
        )  # fmt: skip
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        forecast = self._forecast(batch)
        observed = torch.isfinite(batch.y)  # a made-up target is not scored
        self.val_loss.update(self.loss(forecast, batch.y), weight=observed.sum())
        self.log("val_loss", self.val_loss, prog_bar=True, batch_size=len(batch.x))
        self.val_metrics.update(forecast.point[observed], batch.y[observed])
        self.log_dict(self.val_metrics, batch_size=len(batch.x))

    def _forecast(self, batch: Batch) -> Forecast:
        """What the loss scores: a distribution's parameters (no quantiles read from them),
        or the learned quantiles."""
        levels = () if self.net.distribution is not None else None
        return self.net.forecast(batch.x, batch.future, batch.static, levels)

    def configure_optimizers(self) -> Any:
        optimizer = (self.optimizer or torch.optim.Adam)(self.parameters())
        if self.scheduler is None:
            return optimizer
        scheduler = {"scheduler": self.scheduler(optimizer), "monitor": "val_loss"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
