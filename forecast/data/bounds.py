"""How much of a table is read: ``data.max_rows`` and ``data.max_values``, checked on a Parquet
data set's metadata before a column is decoded and on a text table while it is read (a
compressed file as it expands), each refusal saying how much memory the table would take."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from forecast.data.options import DataOptions
from forecast.errors import ForecastError

# A compressed table may expand to this many bytes a value (data.max_values) before it is
# refused: numbers and timestamps as text take 2 to 25; a bomb expands by a thousand or more.
TEXT_BYTES_PER_VALUE = 32

# A value's bytes at the peak of setup, for the messages' estimate: 10 to 12 measured on
# panels of 1e7 and 1e8 rows read whole (a CSV file), up to 20 for float64 columns; a Parquet
# panel read in chunks of series takes about 3 (benchmarks/memory_panels.json).
BYTES_AT_PEAK = 16


def memory_needed(values: int, about: str = "about") -> str:
    """What setting up ``values`` values takes, in words, for a refusal."""
    size = values * BYTES_AT_PEAK
    power, unit = next(
        (p, u) for p, u in ((9, "GB"), (6, "MB"), (3, "KB")) if size >= 10**p or p == 3
    )
    shown = f"{size / 10**power:,.{1 if power == 9 else 0}f} {unit}"
    return f"setting it up takes {about} {shown} at its peak"


def too_many_rows(path: Path, max_rows: int, width: int, rows: int | None = None) -> str:
    """``rows``: the file's, where its metadata says (else it has more than were read)."""
    found = f"{rows:,} rows, " if rows is not None else ""
    estimate = memory_needed((rows or max_rows) * width, "about" if rows else "at least")
    return (
        f"{path} has {found}more than data.max_rows={max_rows} rows: with its {width} "
        f"columns {estimate}; raise data.max_rows if memory allows"
    )


def check_size(path: Path, options: DataOptions, rows: int, width: int) -> None:
    """A table of ``rows`` x ``width`` values (a Parquet data set's, from its metadata)."""
    if options.max_rows is not None and rows > options.max_rows:
        raise ForecastError(too_many_rows(path, options.max_rows, width, rows))
    if options.max_values is not None and rows * width > options.max_values:
        raise ForecastError(
            f"{path} has {rows * width} values ({width} columns x {rows} rows), more than "
            f"data.max_values={options.max_values} ({memory_needed(rows * width)}); raise "
            "data.max_values if memory allows"
        )


class TextBound:
    """The most of a text table read_table reads: rows (``data.max_rows``, and
    ``data.max_values`` over the header's ``width`` columns) and bytes of text
    (``TEXT_BYTES_PER_VALUE`` a value), so that a file too large for memory is refused while
    it is read, whatever its compressed size."""

    def __init__(self, path: Path, options: DataOptions, width: int) -> None:
        self.path, self.options, self.width = path, options, width
        values = options.max_values
        by_values = None if values is None else values // width
        bounds = [b for b in (options.max_rows, by_values) if b is not None]
        self.rows = min(bounds) if bounds else None
        self.by_values = by_values is not None and by_values == self.rows
        self.bytes = None if values is None else values * TEXT_BYTES_PER_VALUE

    def check_rows(self, rows: int) -> None:
        if self.rows is None or rows <= self.rows:
            return
        if not self.by_values:
            raise ForecastError(too_many_rows(self.path, self.rows, self.width))
        raise ForecastError(
            f"{self.path} has more than data.max_values={self.options.max_values} values "
            f"({self.width} columns, more than {self.rows} rows); "
            f"{memory_needed(rows * self.width, 'at least')}; raise data.max_values if memory "
            "allows"
        )

    @contextlib.contextmanager
    def stream(self, raw: IO[bytes]) -> Iterator[IO[bytes]]:
        yield io.BufferedReader(_CountedBytes(raw, self.bytes, self._too_large))

    def _too_large(self) -> ForecastError:
        return ForecastError(
            f"{self.path} holds more than {self.bytes} bytes of text ({TEXT_BYTES_PER_VALUE} a "
            f"value for data.max_values={self.options.max_values}): a file that expands this "
            "far is refused before it fills memory; raise data.max_values if it is a real table"
        )


class _CountedBytes(io.RawIOBase):
    """A binary stream that raises once more than ``limit`` bytes have been read from it."""

    def __init__(self, raw: IO[bytes], limit: int | None, error: Callable[[], Exception]):
        self.raw, self.limit, self.error, self.count = raw, limit, error, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        self.count += len(data)
        if self.limit is not None and self.count > self.limit:
            raise self.error()
        buffer[: len(data)] = data
        return len(data)
