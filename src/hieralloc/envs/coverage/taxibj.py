"""TaxiBJ loader (HGRL Sec. 5.1): the standard HDF5 release as a demand source named ``taxibj``.

The crowd-flow files of Zhang et al. (2017), ``BJ13_M32x32_T30_InOut.h5`` .. ``BJ16_...``, each
hold two datasets (the release's README):

* ``date``: (T,) timeslot strings ``YYYYMMDDSS``, SS = 01..48 (30-minute slots, 48 a day);
* ``data``: (T, 2, 32, 32) flows, ``data[i][0]`` the **inflow** and ``data[i][1]`` the outflow
  matrix of timeslot ``date[i]``.

HGRL uses the first 7 days (48 slots each: T = 336) of inflow, resized to 64 x 64. This loader:

1. keeps only complete days (all 48 slots present), as the release's own tools do
   (``remove_incomplete_days`` in DeepST); the files have missing slots;
2. takes ``n_frames`` slots (default 336 = 7 days) from ``start_day`` (an index among the complete
   days, default 0);
3. selects ``flow``: ``inflow`` (channel 0, the default and HGRL's demand), ``outflow`` (1) or
   ``total`` (their sum);
4. resizes each 32 x 32 frame to the configured ``height x width`` by area weighting, which
   preserves every frame's total exactly (for 64 x 64: each cell splits into four of a quarter).

Use it as ``source: taxibj`` with ``source_options: {path: BJ16_M32x32_T30_InOut.h5}`` and
``height: 64, width: 64``. A relative path is looked up in the working directory first, then in
the data directory (``--data-dir`` / ``$HIERALLOC_DATA_DIR``). Reading needs ``h5py``
(``pip install -e '.[taxibj]'``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hieralloc.envs.coverage.demand import _number, _options, register_source
from hieralloc.errors import ConfigError, DataError

if TYPE_CHECKING:
    from hieralloc.envs.coverage.config import CoverageConfig

SLOTS_PER_DAY = 48
PAPER_FRAMES = 7 * SLOTS_PER_DAY  # HGRL Sec. 5.1: first 7 days, T = 336
FLOWS = {"inflow": (0,), "outflow": (1,), "total": (0, 1)}
LAYOUT = ("the standard TaxiBJ release BJ*_M32x32_T30_InOut.h5 holds 'data' of shape (T, 2, 32, 32) "
          "(inflow, outflow) and 'date' of shape (T,) with YYYYMMDDSS timeslots")
EXTRA_HINT = "pip install -e '.[taxibj]'  (or: pip install h5py)"


@dataclass(frozen=True)
class TaxiBJData:
    """Frames read from a TaxiBJ file: demand (T, H, W), the slot strings used, skipped days."""

    frames: np.ndarray
    slots: list[str]
    skipped_days: list[str] = field(default_factory=list)
    path: str = ""


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as e:
        from hieralloc.errors import MissingDependencyError

        raise MissingDependencyError(
            f"the TaxiBJ loader needs the package 'h5py' ({e.__class__.__name__}: {e}); install it with: "
            f"{EXTRA_HINT}") from None
    return h5py


def resolve_path(path: str | Path, what: str = "TaxiBJ file") -> Path:
    """``path`` if it exists, else the same relative path inside the data directory."""
    from hieralloc.data import ENV_VAR, data_dir

    p = Path(path).expanduser()
    if p.is_file():
        return p
    tried = [str(p)]
    if not p.is_absolute():
        cand = data_dir() / p
        if cand.is_file():
            return cand
        tried.append(str(cand))
    raise DataError(f"{what} not found (tried {' and '.join(repr(t) for t in tried)}); set "
                    f"source_options.path to your copy of BJ*_M32x32_T30_InOut.h5, absolute or relative to "
                    f"the data directory (--data-dir or ${ENV_VAR})")


def _parse_slot(raw: Any, i: int, path: Path) -> tuple[str, int]:
    s = raw.decode("ascii", "replace") if isinstance(raw, (bytes, np.bytes_)) else str(raw)
    s = s.strip()
    ok = len(s) == 10 and s.isdigit()
    if ok:
        try:
            _dt.datetime.strptime(s[:8], "%Y%m%d")
        except ValueError:
            ok = False
    slot = int(s[8:]) if ok else -1
    if not ok or not 1 <= slot <= SLOTS_PER_DAY:
        raise DataError(f"TaxiBJ file '{path}': field 'date' entry {i} is {s!r}, not a YYYYMMDDSS timeslot "
                        f"with SS in 01..{SLOTS_PER_DAY}; {LAYOUT}")
    return s[:8], slot


def complete_days(dates: Any, path: Path) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """Group timeslots by day: [(day, row indices of slots 1..48 in order)] and the incomplete days."""
    by_day: dict[str, dict[int, int]] = {}
    dup: set[str] = set()
    for i, raw in enumerate(dates):
        day, slot = _parse_slot(raw, i, path)
        slots = by_day.setdefault(day, {})
        if slot in slots:
            dup.add(day)
        slots[slot] = i
    full, skipped = [], []
    for day in sorted(by_day):
        slots = by_day[day]
        if len(slots) == SLOTS_PER_DAY and day not in dup:
            full.append((day, np.array([slots[s] for s in range(1, SLOTS_PER_DAY + 1)], dtype=np.int64)))
        else:
            skipped.append(day)
    return full, skipped


def resize_preserving_totals(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample (T, h, w) maps to (T, H, W) by area weighting; every frame keeps its total exactly.

    New cell i along an axis covers [i/H, (i+1)/H) of the unit interval and receives, from every old
    cell j, the fraction of j's extent it overlaps: out = A_x F A_y^T with column-stochastic A.
    """
    def weights(n_old: int, n_new: int) -> np.ndarray:
        edges_old = np.arange(n_old + 1) / n_old
        edges_new = np.arange(n_new + 1) / n_new
        lo = np.maximum(edges_new[:-1, None], edges_old[None, :-1])
        hi = np.minimum(edges_new[1:, None], edges_old[None, 1:])
        return np.clip(hi - lo, 0.0, None) * n_old  # (n_new, n_old), columns sum to 1

    f = np.asarray(frames, dtype=np.float64)
    H, W = int(size[0]), int(size[1])
    if (H, W) == f.shape[-2:]:
        return f.copy()
    ax, ay = weights(f.shape[-2], H), weights(f.shape[-1], W)
    return np.einsum("ih,thw,jw->tij", ax, f, ay, optimize=True)


def load_taxibj(path: str | Path, n_frames: int = PAPER_FRAMES, flow: str = "inflow",
                size: tuple[int, int] = (64, 64), start_day: int = 0) -> TaxiBJData:
    """Read ``n_frames`` slots of complete days of a TaxiBJ HDF5 file as a (T, H, W) demand tensor.

    Every problem with the file is one :class:`DataError` naming the file, the field and the fix.
    """
    if flow not in FLOWS:
        raise ConfigError("source_options.flow", f"must be one of {', '.join(FLOWS)}, got {flow!r}")
    if n_frames < 1:
        raise ConfigError("n_frames", f"must be at least 1, got {n_frames}")
    p = resolve_path(path)
    h5py = _h5py()
    try:
        fh = h5py.File(p, "r")
    except OSError as e:
        raise DataError(f"TaxiBJ file '{p}' is not a readable HDF5 file ({e}); {LAYOUT}") from None
    with fh:
        for key in ("data", "date"):
            if key not in fh or not isinstance(fh[key], h5py.Dataset):
                found = ", ".join(sorted(fh.keys())) or "nothing"
                raise DataError(f"TaxiBJ file '{p}': dataset '{key}' is missing (found: {found}); {LAYOUT}")
        data, date = fh["data"], fh["date"]
        if data.dtype.kind not in "iuf":
            raise DataError(f"TaxiBJ file '{p}': field 'data' has dtype {data.dtype}, expected numbers (float or "
                            f"integer flow counts); {LAYOUT}")
        if data.ndim != 4 or data.shape[1] != 2 or min(data.shape) < 1:
            raise DataError(f"TaxiBJ file '{p}': field 'data' has shape {tuple(data.shape)}, expected (T, 2, 32, 32) "
                            f"(T timeslots, inflow/outflow, 32 x 32 grid); {LAYOUT}")
        if date.ndim != 1 or date.shape[0] != data.shape[0]:
            raise DataError(f"TaxiBJ file '{p}': field 'date' has shape {tuple(date.shape)} but 'data' has "
                            f"{data.shape[0]} timeslots; the two must match one to one; {LAYOUT}")
        if date.dtype.kind not in "SUO":
            raise DataError(f"TaxiBJ file '{p}': field 'date' has dtype {date.dtype}, expected YYYYMMDDSS strings; "
                            f"{LAYOUT}")
        days, skipped = complete_days(date[()], p)
        need = -(-n_frames // SLOTS_PER_DAY)
        if start_day < 0 or start_day + need > len(days):
            raise DataError(f"TaxiBJ file '{p}' has {len(days)} complete days (all {SLOTS_PER_DAY} slots); "
                            f"start_day={start_day} with n_frames={n_frames} needs {need} from there; lower "
                            f"n_frames or start_day, or use a longer file")
        chosen = days[start_day:start_day + need]
        rows = np.concatenate([idx for _, idx in chosen])[:n_frames]
        lo, hi = int(rows.min()), int(rows.max()) + 1
        block = np.asarray(data[lo:hi], dtype=np.float64)[rows - lo]  # (n, 2, h, w), one contiguous read
    bad = ~np.isfinite(block)
    if bad.any():
        t, c, x, y = np.argwhere(bad)[0]
        raise DataError(f"TaxiBJ file '{p}': field 'data' holds a non-finite value ({block[t, c, x, y]}) at "
                        f"timeslot {_slot_name(date_strings(chosen), t)}, channel {c}, cell ({x}, {y}); fill "
                        f"or drop the missing values, or choose other days with start_day")
    if (block < 0).any():
        t, c, x, y = np.argwhere(block < 0)[0]
        raise DataError(f"TaxiBJ file '{p}': field 'data' holds a negative flow ({block[t, c, x, y]:g}) at "
                        f"timeslot {_slot_name(date_strings(chosen), t)}, channel {c}, cell ({x}, {y}); flows "
                        f"are counts and must be >= 0")
    frames = block[:, list(FLOWS[flow])].sum(axis=1)
    frames = resize_preserving_totals(frames, size)
    return TaxiBJData(frames, date_strings(chosen)[:n_frames], skipped, str(p))


def date_strings(days: list[tuple[str, np.ndarray]]) -> list[str]:
    return [f"{day}{s:02d}" for day, _ in days for s in range(1, SLOTS_PER_DAY + 1)]


def _slot_name(slots: list[str], t: int) -> str:
    return slots[t] if 0 <= t < len(slots) else str(t)


def taxibj_demand(cfg: CoverageConfig) -> np.ndarray:
    """Demand source ``taxibj``: see the module docstring; the grid is the config's height x width."""
    o = _options(cfg, {"path": "", "flow": "inflow", "start_day": 0})
    if not str(o["path"]):
        raise ConfigError("source_options.path", "source 'taxibj' needs the path of a TaxiBJ HDF5 file "
                          "(e.g. source_options.path=BJ16_M32x32_T30_InOut.h5 inside the data directory)")
    start = int(_number(o, "start_day", 0, integer=True))
    n = cfg.n_frames if cfg.n_frames > 0 else PAPER_FRAMES
    return load_taxibj(str(o["path"]), n, str(o["flow"]), (cfg.height, cfg.width), start).frames


register_source("taxibj", taxibj_demand, "TaxiBJ HDF5 release (source_options.path): inflow, complete days, "
                "first 7 days (T=336), area-resized to the grid (HGRL Sec. 5.1: 64x64)", PAPER_FRAMES)

__all__ = ["FLOWS", "PAPER_FRAMES", "SLOTS_PER_DAY", "TaxiBJData", "complete_days", "load_taxibj",
           "resize_preserving_totals", "resolve_path", "taxibj_demand"]
