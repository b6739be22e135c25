"""``forecast-predict``: forecasts for every series of a history file, written to a file.

    forecast-predict ckpt_path=<model.pt | runs:/<id>/model | models:/<name>/<version>>
                     input=history.csv [future=future.csv] output=forecast.csv
                     ['quantiles=[0.025,0.975]'] [samples=100 seed=0]

In Python, ``forecast.Forecaster`` does the same: ``Forecaster.load(uri).predict(history)``.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hydra
import pandas as pd
from omegaconf import DictConfig

from forecast.config import exit_on_error, model_uri, use_threads
from forecast.data.parquet import series_chunks
from forecast.data.reading import read_table, table_kind
from forecast.data.spec import DataSpec
from forecast.errors import ForecastError
from forecast.reference import SERVING_CONF_DIR
from forecast.serving.checks import one_answer
from forecast.serving.forecaster import Forecaster

log = logging.getLogger(__name__)


class TableWriter:
    """Forecasts written a chunk at a time into a temporary file or folder, put in place
    only when every chunk is written: an existing output is replaced only when done, and
    memory holds one chunk. A ``.csv`` or ``.parquet`` path is one file; a path without a
    suffix a folder of Parquet files, ``part-00000.parquet`` a chunk, as Spark writes one."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in ("", ".csv", ".parquet", ".pq"):
            raise ForecastError(
                f"output {self.path}: unsupported file type, expected .csv, .parquet, or a "
                "folder (a name without a suffix)"
            )
        self.kind = {"": "folder", ".csv": "csv"}.get(suffix, "parquet")
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.parquet: Any = None  # the open pyarrow.parquet.ParquetWriter of a .parquet file
        self.parts = 0

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.parts:
            self._discard()  # a temp file a killed run left: appended to, it would be written
        if self.kind == "csv":
            frame.to_csv(self.tmp, index=False, mode="a", header=not self.parts)
        elif self.kind == "folder":
            self.tmp.mkdir(exist_ok=True)
            frame.to_parquet(self.tmp / f"part-{self.parts:05d}.parquet", index=False)
        else:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self.parquet = self.parquet or pq.ParquetWriter(self.tmp, table.schema)
            self.parquet.write_table(table.cast(self.parquet.schema))
        self.parts += 1

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, _: object) -> None:
        try:
            if self.parquet is not None:
                self.parquet.close()
            if error is None:
                self._put_in_place()
        except OSError as err:
            error = err
        if error is not None:
            self._discard()
        if isinstance(error, OSError):
            raise ForecastError(f"cannot write {self.path}: {error.strerror or error}") from None

    def _put_in_place(self) -> None:
        """The finished output replaces the earlier one: a folder of earlier forecasts is
        moved aside first and deleted only once the new one is in place."""
        if not (self.kind == "folder" and self.path.is_dir()):
            self.tmp.replace(self.path)
            return
        earlier = self.path.with_name(f".{self.path.name}.earlier")
        self.path.replace(earlier)
        try:
            self.tmp.replace(self.path)
        except OSError:
            earlier.replace(self.path)
            raise
        shutil.rmtree(earlier)

    def _discard(self) -> None:
        """No stray temp file; an existing output stays as it was."""
        with contextlib.suppress(OSError):  # a name too long cannot be unlinked either
            if self.tmp.is_dir():
                shutil.rmtree(self.tmp)
            else:
                self.tmp.unlink(missing_ok=True)


def histories(path: Path, spec: DataSpec, chunk_series: int | None) -> Iterable[pd.DataFrame]:
    """The input's series: from Parquet (a file or a folder) ``chunk_series`` series at a
    time, and only the columns the model reads; else the whole table at once."""
    text = path.is_file() and table_kind(path)[0] == "csv"
    if chunk_series is None or not spec.id_columns or text:
        return [read_table(path)]
    columns = [*spec.timestamp_columns, *spec.id_columns, *spec.features, *spec.side_columns]
    return series_chunks(path, list(dict.fromkeys(columns)), spec.id_columns, chunk_series)


@hydra.main(version_base="1.3", config_path=SERVING_CONF_DIR, config_name="predict")
@exit_on_error
def main(cfg: DictConfig) -> None:
    use_threads(cfg)
    one_answer(cfg.quantiles, cfg.samples)
    forecaster = Forecaster.load(model_uri(cfg))
    spec = forecaster.spec
    future = None if cfg.future is None else read_table(cfg.future)
    rows = 0
    with TableWriter(cfg.output) as writer:
        for history in histories(Path(cfg.input), spec, cfg.chunk_series):
            if cfg.samples:
                forecasts = forecaster.sample(history, future, cfg.samples, cfg.seed)
            else:
                forecasts = forecaster.predict(history, future, cfg.quantiles)
            writer.write(forecasts)
            rows += len(forecasts)
    log.info("wrote %d rows (%s steps per series) to %s", rows, spec.horizon, cfg.output)


if __name__ == "__main__":
    main()
