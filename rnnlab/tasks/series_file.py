"""A user's own series from a CSV or NPY file, one step ahead: the `series_file` task.

The file is untrusted: every problem with it (missing, unreadable, ragged or non-numeric CSV, a pickled
or non-numeric NPY, NaN or infinite values, too few rows, an unknown column) is a one-line ConfigError.
NPY is read with numpy.load(allow_pickle=False): a file can hold numbers, never code. A CSV's first row
is its header unless every cell of it is a number; NPY columns (and a headerless CSV's) are named "0",
"1", ... A 1-D NPY array is one column.

Row t of `task.columns` is the input at t, row t + 1 of `task.targets` its target: by default every
column predicts itself one step ahead, so free running (task.horizon) can feed the outputs back; with
targets other than the columns it is a driven system, like NARMA-10 (u in, y out). With `standardize`,
each column is shifted and scaled by its mean and std over the training part only (the held-out stretch
never informs the model). Splitting, protocols and metrics are timeseries.SeriesTask's.

Reproducibility: the file's SHA-256 is written into the run's config as `task.sha256` (config.toml,
beside `task.path`); a config that names a hash (a resumed run, a rerun of its config.toml) refuses a file
whose content has changed since.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from ..options import opt
from .registry import TASKS
from .timeseries import SeriesOptions, SeriesTask


@dataclass
class SeriesFileOptions(SeriesOptions):
    name: str = opt("series_file", "task (`rnnlab list tasks`)")
    path: str = opt("", "the series: a .npy file (a 1-D or 2-D numeric array) or a CSV file (anything else)")
    length: int = opt(0, "input/target pairs used, from the first row (0: every row of the file)", min=0)
    columns: list[str] = opt([], "input columns, by header name (NPY, headerless CSV: \"0\", \"1\", ...); "
                             "[]: all of them")
    targets: list[str] = opt([], "target columns, predicted one step ahead; []: the input columns")
    standardize: bool = opt(True, "shift and scale each column to zero mean and unit std over the training part")
    sha256: str = opt("", "the file's SHA-256, filled in when the run starts; if set, a file with other "
                      "content is refused")


def read_table(path: str) -> tuple[list[str], np.ndarray, str]:
    """Column names, the values (rows, columns) float64, and the SHA-256 of the file's bytes."""
    if not path:
        raise ConfigError("task.path", path, "task series_file needs a file", "a .csv or .npy file")
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError("task.path", path, "no such file") from None
    except OSError as error:
        raise ConfigError("task.path", path, f"cannot be read ({error.strerror or error})") from None
    digest = hashlib.sha256(data).hexdigest()
    names, values = read_npy(path, data) if path.lower().endswith(".npy") else read_csv(path, data)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, column = bad[0]
        raise ConfigError("task.path", path, f"row {row + 1} of column {names[column]!r} is {values[row, column]} "
                          f"({len(bad)} such values): a series must be finite", "a file of finite numbers")
    return names, values, digest


def read_npy(path: str, data: bytes) -> tuple[list[str], np.ndarray]:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:  # pickled objects, a bad header, a truncated body
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError("task.path", path, f"is not a readable .npy array ({reason})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        raise ConfigError("task.path", path, f"holds {getattr(array, 'dtype', type(array).__name__)} values, "
                          "not real numbers", "a .npy array of integers or floats")
    if array.ndim not in (1, 2):
        raise ConfigError("task.path", path, f"is a {array.ndim}-D array", "a 1-D (one column) or 2-D "
                          "(rows, columns) array")
    array = array.reshape(len(array), -1).astype(np.float64)  # (rows, columns)
    return [str(i) for i in range(array.shape[1])], array


def number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def read_csv(path: str, data: bytes) -> tuple[list[str], np.ndarray]:
    try:
        rows = [row for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) if row]
    except (UnicodeDecodeError, csv.Error) as error:
        raise ConfigError("task.path", path, f"is not a readable CSV file ({str(error).splitlines()[0]})",
                          "UTF-8 text, comma-separated numbers") from None
    if not rows:
        raise ConfigError("task.path", path, "is empty", "a CSV file of numbers, one row per step")
    header = [cell.strip() for cell in rows[0]]
    if all(number(cell) is not None for cell in header):
        names, body, first = [str(i) for i in range(len(header))], rows, 1
    else:
        names, body, first = header, rows[1:], 2
        if len(set(names)) != len(names) or "" in names:
            raise ConfigError("task.path", path, f"has an empty or repeated name in its header {names}",
                              "a header of distinct column names")
    values = np.empty((len(body), len(names)))  # (rows, columns)
    for i, row in enumerate(body):
        if len(row) != len(names):
            raise ConfigError("task.path", path, f"row {i + first} has {len(row)} fields where the first row "
                              f"has {len(names)}", "the same number of fields on every row")
        for j, cell in enumerate(row):
            value = number(cell)
            if value is None:
                raise ConfigError("task.path", path, f"row {i + first}, column {names[j]!r}: {cell[:40]!r} is "
                                  "not a number", "numbers only below the header")
            values[i, j] = value
    return names, values


def pick(names: list[str], wanted: list[str], key: str, path: str) -> list[int]:
    """Indices of the `wanted` columns (all of them when empty)."""
    if not wanted:
        return list(range(len(names)))
    for name in wanted:
        if name not in names:
            raise ConfigError(key, wanted, f"{name!r} is not a column of {path}", ", ".join(map(repr, names)))
    if len(set(wanted)) != len(wanted):
        raise ConfigError(key, wanted, "names a column twice", "distinct column names")
    return [names.index(name) for name in wanted]


@TASKS.register("series_file", "A series from a CSV or NPY file (one or more columns), one step ahead")
class SeriesFile(SeriesTask):
    Options = SeriesFileOptions
    source = "task.path"

    def __init__(self, options, seed: int = 0):
        self.options = o = options
        names, values, digest = read_table(o.path)
        if o.sha256 and o.sha256 != digest:
            raise ConfigError("task.sha256", o.sha256, f"{o.path} has changed since this config was made (its "
                              f"SHA-256 is now {digest})", "the hash of the file the run was made with, or \"\" "
                              "to take the file as it is now")
        o.sha256 = digest  # into the saved config.toml: the run records exactly what it read
        inputs, targets = pick(names, o.columns, "task.columns", o.path), pick(names, o.targets, "task.targets",
                                                                              o.path)
        self.inputs_are_series = inputs == targets
        rows = o.length + 1 if o.length else len(values)
        needed = o.seq_len + max(o.eval_steps, 1) + 1
        if rows > len(values) or len(values) < needed:
            raise ConfigError("task.length" if rows > len(values) else "task.path",
                              o.length if rows > len(values) else o.path,
                              f"{o.path} has {len(values)} rows: too few for {rows - 1} pairs"
                              if rows > len(values) else f"has {len(values)} rows: too few for a series of "
                              f"task.seq_len = {o.seq_len} training steps and a held-out stretch",
                              f"at most {len(values) - 1} (or 0: all)" if rows > len(values)
                              else f"a file of at least {needed} rows")
        values = values[:rows]
        if o.standardize:
            values = self.standardized(names, values, rows - 1, sorted(set(inputs + targets)))
        series = torch.tensor(values, dtype=torch.float32)  # (rows, columns)
        self.split_series(series[:-1, inputs], series[1:, targets])  # input at t, target at t + 1

    def standardized(self, names: list[str], values: np.ndarray, pairs: int, used: list[int]) -> np.ndarray:
        """Each column by its mean and std over the rows the training part reads (inputs and targets)."""
        train_rows = pairs - (self.options.eval_steps or pairs // 10) + 1
        train = values[:max(train_rows, 1)]
        mean, std = train.mean(0), train.std(0)  # (columns,)
        constant = [j for j in used if std[j] == 0]
        if constant:
            column = names[constant[0]]
            raise ConfigError("task.standardize", True, f"column {column!r} of {self.options.path} is constant "
                              "over the training part", "false, or leave the column out (task.columns)")
        return (values - mean) / np.where(std == 0, 1.0, std)  # unused constant columns stay as they are
