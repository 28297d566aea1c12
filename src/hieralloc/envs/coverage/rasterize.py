"""Rasterise a trip table (pickup time, longitude, latitude) into a (T, H, W) demand tensor.

Public trip records (NYC TLC, Chicago taxi trips, ...) become a demand grid for the coverage
environment: count the pickups of each time step in each cell of a bounding box, save the counts
with ``numpy.save`` and load them with the ``npy`` demand source
(``source: npy, source_options: {path: grid.npy}``, ``height``/``width`` = the grid).

* Input: CSV or .csv.gz (read with the ``csv`` module, header row required) or Parquet (needs ``pyarrow``,
  imported only then). Columns are chosen by name (``time_col``, ``lon_col``, ``lat_col``).
* Time: ISO 8601 text (``2016-01-01 08:15:00``, ``...T...``, with or without a UTC offset), or a
  number of seconds since the Unix epoch, or any ``strptime`` format via ``time_format``; Parquet
  timestamp columns are used as they are. Times with an offset are converted to UTC; naive times
  are taken as they are (so a table in local time stays in local time).
* Time steps: ``step_min`` minutes from ``start`` (default: midnight before the first valid trip);
  ``end`` (exclusive) or the last trip fixes T.
* Space: ``bbox = (lon_min, lat_min, lon_max, lat_max)`` split into ``grid = (H, W)`` equal cells;
  row 0 is the **northern** edge (x grows southwards, as an image of the map), column 0 the western
  edge. Points on the max edges belong to the last row/column.
* Bad rows (missing or unparseable time, non-numeric or NaN/inf coordinates) are counted by reason
  and skipped; trips outside the box or the time range are counted and dropped. The counts are in
  the returned :class:`RasterReport` and in a JSON file next to the ``.npy`` (same name).
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hieralloc.errors import ConfigError, DataError

PARQUET_HINT = "pip install pyarrow  (or: pip install -e '.[trips]')"
_EPOCH = _dt.datetime(1970, 1, 1)


@dataclass
class RasterReport:
    """What :func:`rasterize_trips` read, kept and dropped."""

    source: str
    out: str
    shape: tuple[int, int, int]
    start: str
    step_min: float
    bbox: tuple[float, float, float, float]
    rows: int = 0
    used: int = 0
    bad: dict[str, int] = field(default_factory=dict)
    out_of_box: int = 0
    out_of_time: int = 0

    @property
    def n_bad(self) -> int:
        return sum(self.bad.values())

    def summary(self) -> str:
        bad = ", ".join(f"{k}: {v}" for k, v in sorted(self.bad.items())) or "none"
        T, H, W = self.shape
        return (f"{self.rows} rows: {self.used} trips rasterised into {T} x {H} x {W} ({self.out}); "
                f"bad rows {self.n_bad} ({bad}); outside the box {self.out_of_box}; outside the time range "
                f"{self.out_of_time}")


def parse_grid(text: str) -> tuple[int, int]:
    """``'64x64'`` -> (64, 64); ConfigError otherwise."""
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise ConfigError("--grid", f"must look like HxW (e.g. 64x64), got {text!r}") from None
    if h < 1 or w < 1:
        raise ConfigError("--grid", f"both sizes must be positive, got {text!r}")
    return h, w


def parse_bbox(text: str | Sequence[float]) -> tuple[float, float, float, float]:
    """``'lon_min,lat_min,lon_max,lat_max'`` (or 4 numbers) -> a validated bounding box."""
    try:
        vals = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError):
        raise ConfigError("--bbox", f"must be four numbers LON_MIN,LAT_MIN,LON_MAX,LAT_MAX, got {text!r}") from None
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise ConfigError("--bbox", f"must be four finite numbers LON_MIN,LAT_MIN,LON_MAX,LAT_MAX, got {text!r}")
    lon0, lat0, lon1, lat1 = vals
    if not (lon0 < lon1 and lat0 < lat1):
        raise ConfigError("--bbox", f"needs LON_MIN < LON_MAX and LAT_MIN < LAT_MAX (order: LON_MIN,LAT_MIN,"
                          f"LON_MAX,LAT_MAX), got {text!r}")
    if not (-90 <= lat0 and lat1 <= 90 and -180 <= lon0 and lon1 <= 180):
        raise ConfigError("--bbox", f"latitudes must lie in [-90, 90] and longitudes in [-180, 180], got {text!r}")
    return lon0, lat0, lon1, lat1


def _parse_time_iso(s: str) -> float:
    """Seconds since the epoch (naive times as they are, aware ones in UTC); ValueError if unparseable."""
    s = s.strip()
    try:
        if s.replace(".", "", 1).isdigit():  # a plain number: seconds since the epoch
            return float(s)
        return _to_seconds(_dt.datetime.fromisoformat(s.replace("Z", "+00:00")))
    except (ValueError, OverflowError):
        raise ValueError(s) from None


def _to_seconds(d: _dt.datetime) -> float:
    if d.tzinfo is not None:
        d = d.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return (d - _EPOCH).total_seconds()


def _iso(seconds: float) -> str:
    return (_EPOCH + _dt.timedelta(seconds=seconds)).isoformat()


def parse_time(value: str, time_format: str | None = None) -> float:
    """One timestamp -> seconds since the epoch (see the module docstring); ValueError if bad."""
    if time_format:
        return _to_seconds(_dt.datetime.strptime(value.strip(), time_format))
    return _parse_time_iso(value)


def _read_csv(path: Path, cols: Sequence[str]) -> tuple[list[Any], ...]:
    try:
        if path.suffix.lower() == ".gz":
            fh: Any = gzip.open(path, "rt", newline="", encoding="utf-8-sig")
        else:
            fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"trip table '{path}' cannot be opened: {e}") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"trip table '{path}' is empty (a header row with the column names is needed)") from None
        except (csv.Error, UnicodeDecodeError, OSError) as e:
            raise DataError(f"trip table '{path}' is not a readable CSV file: {e}") from None
        names = [h.strip() for h in header]
        idx = [_column_index(names, c, path) for c in cols]
        out: tuple[list[Any], ...] = tuple([] for _ in cols)
        try:
            for row in reader:
                if not row:
                    continue
                for k, i in enumerate(idx):
                    out[k].append(row[i] if i < len(row) else None)
        except (csv.Error, UnicodeDecodeError, OSError) as e:
            raise DataError(f"trip table '{path}' line {reader.line_num}: {e}") from None
    return out


def _column_index(names: Sequence[str], col: str, path: Path) -> int:
    if col not in names:
        shown = ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")
        raise DataError(f"trip table '{path}' has no column '{col}' (columns: {shown}); pass the right name "
                        f"with --time-col / --lon-col / --lat-col")
    return names.index(col)


def _read_parquet(path: Path, cols: Sequence[str]) -> tuple[list[Any], ...]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        from hieralloc.errors import MissingDependencyError

        raise MissingDependencyError(f"reading Parquet trip tables needs the package 'pyarrow' "
                                     f"({e.__class__.__name__}: {e}); install it with: {PARQUET_HINT}, or "
                                     f"convert the table to CSV") from None
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as e:
        raise DataError(f"trip table '{path}' is not a readable Parquet file: {e}") from None
    for c in cols:
        _column_index(list(schema.names), c, path)
    table = pq.read_table(path, columns=list(dict.fromkeys(cols)))
    out = []
    for k, c in enumerate(cols):
        col = table.column(c)
        if k == 0 and pa.types.is_timestamp(col.type):
            # timestamps: seconds since the epoch (Arrow stores aware timestamps in UTC)
            unit = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[col.type.unit]
            ints = col.cast(pa.int64()).to_pylist()
            out.append([None if v is None else v * unit for v in ints])
        else:
            out.append(col.to_pylist())
    return tuple(out)


def _times(raw: Iterable[Any], time_format: str | None) -> np.ndarray:
    """Seconds since the epoch, NaN where the value is missing or unparseable."""
    out = []
    for v in raw:
        if v is None:
            out.append(math.nan)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(float(v))
        elif isinstance(v, _dt.datetime):
            out.append(_to_seconds(v))
        else:
            try:
                out.append(parse_time(str(v), time_format))
            except (ValueError, OverflowError):
                out.append(math.nan)
    return np.asarray(out, dtype=np.float64)


def _coords(raw: Sequence[Any]) -> np.ndarray:
    """Floats, NaN where missing or non-numeric."""
    try:
        return np.asarray([math.nan if v is None or v == "" else float(v) for v in raw], dtype=np.float64)
    except (TypeError, ValueError):
        out = []
        for v in raw:
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                out.append(math.nan)
        return np.asarray(out, dtype=np.float64)


def rasterize_trips(path: str | Path, out: str | Path, *, bbox: str | Sequence[float],
                    grid: str | tuple[int, int] = (64, 64), step_min: float = 30.0,
                    time_col: str = "pickup_datetime", lon_col: str = "pickup_longitude",
                    lat_col: str = "pickup_latitude", start: str | None = None, end: str | None = None,
                    time_format: str | None = None, file_format: str | None = None,
                    dtype: str = "float32") -> RasterReport:
    """Count pickups per (time step, cell) and save the (T, H, W) tensor as ``out`` (.npy).

    Args:
        path: the trip table: ``.csv`` (or gzip-compressed ``.csv.gz``) or ``.parquet`` / ``.pq``.
        out: where to write the ``.npy`` array (a ``.json`` report is written next to it).
        bbox: (lon_min, lat_min, lon_max, lat_max) or ``"lon_min,lat_min,lon_max,lat_max"``.
        grid: (H, W) or ``"HxW"``.
        step_min: time step in minutes (TaxiBJ / HGRL: 30).
        time_col, lon_col, lat_col: column names (defaults: NYC TLC's yellow-taxi 2009-2016 names).
        start, end: ISO times; ``start`` defaults to midnight before the first valid trip, ``end``
            (exclusive) to just after the last one.
        time_format: a ``strptime`` format for text times that are not ISO 8601.
        file_format: ``csv`` or ``parquet`` (default: from the file name).
        dtype: ``float32`` (default, exact for counts < 2^24) or ``float64``.
    """
    src = Path(path).expanduser()
    if not src.is_file():
        raise DataError(f"trip table '{src}' does not exist")
    H, W = parse_grid(grid) if isinstance(grid, str) else (int(grid[0]), int(grid[1]))
    if H < 1 or W < 1:
        raise ConfigError("--grid", f"both sizes must be positive, got {grid!r}")
    lon0, lat0, lon1, lat1 = parse_bbox(bbox)
    if not (isinstance(step_min, (int, float)) and math.isfinite(step_min) and step_min > 0):
        raise ConfigError("--step-min", f"must be a positive number of minutes, got {step_min!r}")
    if dtype not in ("float32", "float64"):
        raise ConfigError("dtype", f"must be float32 or float64, got {dtype!r}")
    fmt = file_format or ("parquet" if src.suffix.lower() in (".parquet", ".pq") else "csv")
    if fmt not in ("csv", "parquet"):
        raise ConfigError("--format", f"must be csv or parquet, got {fmt!r}")
    cols = (time_col, lon_col, lat_col)
    raw_t, raw_lon, raw_lat = (_read_parquet if fmt == "parquet" else _read_csv)(src, cols)
    n = len(raw_t)
    t = _times(raw_t, time_format)
    lon, lat = _coords(raw_lon), _coords(raw_lat)

    bad_time = ~np.isfinite(t)
    bad_coord = ~(np.isfinite(lon) & np.isfinite(lat)) & ~bad_time
    ok = ~(bad_time | bad_coord)
    bad = {k: int(v) for k, v in (("time", bad_time.sum()), ("coordinates", bad_coord.sum())) if v}
    inbox = ok & (lon >= lon0) & (lon <= lon1) & (lat >= lat0) & (lat <= lat1)
    out_of_box = int((ok & ~inbox).sum())

    step = float(step_min) * 60.0
    if start is not None:
        try:
            t0 = parse_time(start, None)
        except ValueError:
            raise ConfigError("--start", f"must be an ISO time like 2016-01-01T00:00:00, got {start!r}") from None
    elif inbox.any():
        first = float(t[inbox].min())
        t0 = math.floor(first / 86400.0) * 86400.0  # midnight before the first trip (naive or UTC)
    else:
        t0 = 0.0
    if end is not None:
        try:
            t1 = parse_time(end, None)
        except ValueError:
            raise ConfigError("--end", f"must be an ISO time like 2016-01-08T00:00:00, got {end!r}") from None
        if t1 <= t0:
            raise ConfigError("--end", f"must be after the start {_iso(t0)}, got {end!r}")
    else:
        t1 = math.nan
    if end is not None:
        T = max(1, math.ceil((t1 - t0) / step))
    elif inbox.any():  # up to and including the step of the last trip
        T = max(1, math.floor((float(t[inbox].max()) - t0) / step) + 1)
    else:
        T = 1
    intime = inbox & (t >= t0) & (t < t0 + T * step)
    if end is not None:
        intime &= t < t1
    out_of_time = int((inbox & ~intime).sum())
    report = RasterReport(source=str(src), out=str(out), shape=(T, H, W), start=_iso(t0), step_min=float(step_min),
                          bbox=(lon0, lat0, lon1, lat1), rows=n, used=int(intime.sum()), bad=bad,
                          out_of_box=out_of_box, out_of_time=out_of_time)
    if report.used == 0:
        raise DataError(f"no trip of '{src}' falls inside the bounding box and time range ({report.summary()}); "
                        f"check --bbox (order LON_MIN,LAT_MIN,LON_MAX,LAT_MAX), --start/--end and the column names")
    ti = np.floor((t[intime] - t0) / step).astype(np.int64)
    # rows from the north edge, columns from the west edge; the max edges fold into the last cell
    xi = np.minimum(np.floor((lat1 - lat[intime]) / (lat1 - lat0) * H).astype(np.int64), H - 1)
    yi = np.minimum(np.floor((lon[intime] - lon0) / (lon1 - lon0) * W).astype(np.int64), W - 1)
    counts = np.bincount(np.ravel_multi_index((ti, xi, yi), (T, H, W)), minlength=T * H * W)
    grid_arr = counts.reshape(T, H, W).astype(dtype)
    dst = Path(out).expanduser()
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.save(dst, grid_arr, allow_pickle=False)
    meta = asdict(report)
    meta["n_bad"] = report.n_bad
    meta["orientation"] = "row 0 = north edge (lat_max), column 0 = west edge (lon_min)"
    dst.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return report


def add_cli_arguments(p: Any) -> None:
    """Arguments of ``hieralloc data rasterize`` (for an argparse sub-parser)."""
    p.add_argument("trips", help="trip table: .csv (header row) or .parquet (needs pyarrow)")
    p.add_argument("--out", required=True, help="output .npy file (a .json report is written next to it)")
    p.add_argument("--bbox", required=True, metavar="LON_MIN,LAT_MIN,LON_MAX,LAT_MAX", help="bounding box")
    p.add_argument("--grid", default="64x64", metavar="HxW", help="grid size (default 64x64)")
    p.add_argument("--step-min", type=float, default=30.0, help="time step in minutes (default 30)")
    p.add_argument("--time-col", default="pickup_datetime", help="pickup time column")
    p.add_argument("--lon-col", default="pickup_longitude", help="pickup longitude column")
    p.add_argument("--lat-col", default="pickup_latitude", help="pickup latitude column")
    p.add_argument("--start", default=None, help="first time step (ISO; default: midnight before the first trip)")
    p.add_argument("--end", default=None, help="end of the last time step, exclusive (ISO; default: last trip)")
    p.add_argument("--time-format", default=None, help="strptime format when times are not ISO 8601")
    p.add_argument("--format", dest="file_format", choices=("csv", "parquet"), default=None,
                   help="input format (default: from the file name)")


def run_cli(args: Any) -> RasterReport:
    """Run :func:`rasterize_trips` from parsed :func:`add_cli_arguments` arguments."""
    return rasterize_trips(args.trips, args.out, bbox=args.bbox, grid=args.grid, step_min=args.step_min,
                           time_col=args.time_col, lon_col=args.lon_col, lat_col=args.lat_col, start=args.start,
                           end=args.end, time_format=args.time_format, file_format=args.file_format)


__all__ = ["RasterReport", "add_cli_arguments", "parse_bbox", "parse_grid", "parse_time", "rasterize_trips",
           "run_cli"]
