"""Small hand-made tables: values encode their own row and column so windows can be checked exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
ETTH1 = REPO / "data" / "ETTh1.csv"


def coded_frame(n_rows: int, columns: tuple[str, ...] = ("a", "b", "c")) -> pd.DataFrame:
    """Hourly rows where column j of row i holds ``100 * i + j``."""
    frame = pd.DataFrame(
        {c: 100.0 * np.arange(n_rows) + j for j, c in enumerate(columns)},
    )
    frame.insert(0, "date", pd.date_range("2024-01-01", periods=n_rows, freq="h"))
    return frame


def sine_frame(n_rows: int = 600, seed: int = 0) -> pd.DataFrame:
    """Three noisy daily sines: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)
    frame = pd.DataFrame(
        {
            "load": 10 + 3 * np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n_rows),
            "temp": 20 + 2 * np.cos(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(n_rows),
            "price": 5 + np.sin(2 * np.pi * t / 12) + 0.1 * rng.standard_normal(n_rows),
        }
    )
    frame.insert(0, "date", pd.date_range("2024-01-01", periods=n_rows, freq="h"))
    return frame


@pytest.fixture
def sine_csv(tmp_path: Path) -> Path:
    path = tmp_path / "sines.csv"
    sine_frame().to_csv(path, index=False)
    return path
