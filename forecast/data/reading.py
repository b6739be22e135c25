"""Tables in: CSV (plain or compressed) and Parquet files read into pandas, every way a file
can be unreadable refused by name before it costs memory."""

from __future__ import annotations

import bz2
import contextlib
import csv
import functools
import gzip
import io
import logging
import lzma
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from forecast.data.bounds import TextBound, check_size
from forecast.data.options import DataOptions
from forecast.data.parquet import folder_rows, parquet_dataset, parquet_frame
from forecast.data.rules import RowNames
from forecast.errors import ForecastError

log = logging.getLogger(__name__)


def read_table(
    path: str | Path, options: DataOptions | None = None, keep: np.ndarray | None = None
) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a folder of Parquet files (``parquet_files``), as
    ``options`` say (``data.max_rows``, ``data.max_values``, ``data.header``,
    ``data.columns``, ``data.delimiter``); without options, a file with a header line, of
    any number of rows, its delimiter detected. A missing or unreadable file is a
    ForecastError.

    ``max_rows`` and ``max_values`` bound the work before it is done: a file with more data
    rows, or more values (rows x columns), is refused after reading at most that many, and a
    compressed file as soon as it expands past ``bounds.TEXT_BYTES_PER_VALUE`` bytes a value, rather
    than after exhausting memory (a 137 KB bz2 of zeros is gigabytes of values). A CSV file
    without a header line (``header=False``) is read with ``columns`` as its names; with a
    header, ``columns`` replace the names it has. ``keep`` (a boolean per row) reads only
    those rows of a Parquet data set.
    """
    options = options or DataOptions(max_rows=None)
    header, columns = options.header, options.columns
    path = Path(path)
    if not path.is_file() and not path.is_dir():
        raise ForecastError(f"data file not found: {path}")
    kind, compression = ("parquet", None) if path.is_dir() else table_kind(path)
    names = None if columns is None else [str(c) for c in columns]
    if kind == "parquet" and (names is not None or not header):
        raise ForecastError(f"{path}: data.header and data.columns are for CSV files only")
    try:
        frame = (
            _read_csv(path, compression, names, options)
            if kind == "csv"
            else (_read_parquet(path, options, keep))
        )
    except ForecastError:
        raise
    except (ValueError, OSError, EOFError, pd.errors.ParserError) as err:
        raise ForecastError(f"cannot read {path}: {err}") from None
    if frame.empty:
        raise ForecastError(f"{path} has no data rows (columns: {list(frame.columns)})")
    if not header and names is None:  # as pandas does: by position, as text
        frame.columns = [str(c) for c in frame.columns]
        log.warning(
            "%s has no header line (data.header=false): its columns are named by position, "
            "0 to %d; data.columns=[...] names them", path, len(frame.columns) - 1,
        )  # fmt: skip
    return frame


# The field separators a CSV file's first line is searched for, the usual one first.
DELIMITERS = (",", ";", "\t", "|")
# Text tables by name; a compressed file is known by its first bytes, whatever its name.
TEXT_SUFFIXES = (".csv", ".txt", ".tsv", ".dat")
MAGIC = {b"\x1f\x8b": "gz", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}
# A header line longer than this is not a table's header: a binary file, or one line of text.
HEADER_BYTES = 1 << 20


# CSV files as they come, compressed: the suffix after .csv names the codec (pandas' own names).
COMPRESSIONS: dict[str, Callable[[Path], AbstractContextManager[IO[bytes]]]] = {
    ".gz": functools.partial(gzip.open, mode="rb"),
    ".bz2": functools.partial(bz2.open, mode="rb"),
    ".xz": functools.partial(lzma.open, mode="rb"),
    ".zip": lambda path: _zip_member(path),  # the archive's one file
}


def table_kind(path: Path) -> tuple[str, str | None]:
    """``("csv" | "parquet", compression)``: by the file's first bytes, which name a Parquet
    file and a compressed one whatever the file is called (``exchange_rate.txt.gz``, a ``.csv``
    that is gzip inside); by its suffixes otherwise (text: .csv, .txt, .tsv, .dat)."""
    with path.open("rb") as file:
        head = file.read(8)
    compression = next((codec for magic, codec in MAGIC.items() if head.startswith(magic)), None)
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    table = suffixes[-1] if suffixes else ""
    if head.startswith(b"PAR1") or (table in (".parquet", ".pq") and compression is None):
        return "parquet", None
    if table in TEXT_SUFFIXES or compression is not None:
        return "csv", compression
    raise ForecastError(
        f"{path}: unsupported file type {''.join(path.suffixes) or 'without a suffix'!r}, "
        f"expected text ({', '.join(TEXT_SUFFIXES)}, plain or compressed: "
        f"{', '.join(COMPRESSIONS)}) or .parquet"
    )


@contextlib.contextmanager
def _zip_member(path: Path) -> Iterator[IO[bytes]]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if len(names) != 1:
            shown = ", ".join(names[:5]) + (
                f", ... ({len(names)} in all)" if len(names) > 5 else ""
            )
            raise ForecastError(f"{path}: a zip archive must hold one file, it holds {shown}")
        with archive.open(names[0]) as member:
            yield member


def _read_csv(
    path: Path, compression: str | None, names: list[str] | None, options: DataOptions
) -> pd.DataFrame:
    delimiter, width = _check_header(path, compression, names, options.delimiter)
    bound = TextBound(path, options, width)
    with _opened(path, compression) as raw, bound.stream(raw) as text:
        frame = pd.read_csv(
            text,
            sep=delimiter,
            nrows=None if bound.rows is None else bound.rows + 1,
            header=0 if options.header else None,
            names=names,
        )
    bound.check_rows(len(frame))
    return frame


def _opened(path: Path, compression: str | None) -> AbstractContextManager[IO[bytes]]:
    return COMPRESSIONS[f".{compression}"](path) if compression else path.open("rb")


def _check_header(
    path: Path, compression: str | None, names: list[str] | None, delimiter: str | None
) -> tuple[str, int]:
    """Look at the first line before pandas reads the file: a binary file or one without line
    breaks would otherwise be parsed whole as a single field, at many times its size in
    memory. pandas renames a repeated column name to ``name.1``: refuse it instead, by name.
    Given ``names`` (data.columns), there must be one per field of the first line: pandas
    would make the extra fields an index, silently. Returns the delimiter: ``delimiter``
    (data.delimiter), else the one of ``DELIMITERS`` the first line holds most of (a comma
    on a tie, or where it holds none); and the number of fields of the first line."""
    try:
        with _opened(path, compression) as file:
            start = file.read(HEADER_BYTES + 1)
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError) as err:
        raise ForecastError(f"cannot read {path} as a .{compression} file: {err}") from None
    if (nul := start.find(b"\0")) >= 0:
        raise ForecastError(f"{path} is not a text CSV file: NUL byte at offset {nul}")
    if len(start) > HEADER_BYTES and b"\n" not in start and b"\r" not in start:
        raise ForecastError(
            f"{path}: no line break in the first {HEADER_BYTES} bytes; a CSV file starts with "
            "a header line of column names"
        )
    try:
        text = start.decode("utf-8")
    except UnicodeDecodeError as err:  # cut mid-character at the end, or not UTF-8 at all
        if len(start) <= HEADER_BYTES or err.start < len(start) - 4:
            raise ForecastError(f"{path} is not UTF-8 text (byte {err.start})") from None
        text = start[: err.start].decode("utf-8")
    first = text.splitlines()[0] if text else ""
    delimiter = delimiter or max(DELIMITERS, key=first.count)
    header = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    if names is not None and len(names) != len(header):
        raise ForecastError(
            f"{path}: data.columns names {len(names)} columns, the file's first line has "
            f"{len(header)} fields"
        )
    header = header if names is None else names
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ForecastError(f"{path}: column name(s) {repeated} appear more than once")
    return delimiter, max(len(header), 1)


def _read_parquet(path: Path, options: DataOptions, keep: np.ndarray | None) -> pd.DataFrame:
    """The bounds checked on the files' metadata (on the rows kept), before any column is
    decoded."""
    dataset = parquet_dataset(path)
    rows = dataset.count_rows() if keep is None else int(keep.sum())
    width = max(len(dataset.schema.names), 1)
    check_size(path, options, rows, width)
    return parquet_frame(dataset, keep)


def table_columns(
    frame: pd.DataFrame, columns: Sequence[str], source: str, rows: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The named columns' values (in ``rows`` order); a missing column is a ForecastError."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ForecastError(
            f"{source}: column(s) {missing} not found; available: {list(frame.columns)}"
        )
    return {c: frame[c].to_numpy() if rows is None else frame[c].to_numpy()[rows] for c in columns}


def file_rows(path: str | Path, header: bool = True) -> RowNames:
    """Rows of ``path`` as read_table reads it: data row 0 is line 2 of a CSV with a header;
    in a folder, row 0 of its first file."""
    path = Path(path)
    if path.is_dir():
        return folder_rows(path)
    kind, _ = table_kind(path)
    return RowNames(first_line=(2 if header else 1) if kind == "csv" else None)
