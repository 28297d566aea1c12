"""Mobility-on-demand scenarios: the amod JSON schema parsed into arrays, named calibrations, and
a synthetic city generator (the embedded default, so nothing needs a data file).

Schema (``../shared/data/amod/README.md``; Gammelli et al.'s files, MIT licence)::

    nlat, nlon        int: regions N = nlat * nlon, indexed 0..N-1
    demand            [{time_stamp: minute of day, origin, destination,
                        demand: trips per minute, travel_time: minutes, price: fare}, ...]
    rebTime           [{time_stamp: hour of day, origin, destination, reb_time: minutes}, ...]
    totalAcc          [{hour, acc: fleet size}, ...]
    topology_graph    [{i, j}, ...]  road-network neighbours (needed for graph='topology')

Parsing (the published simulators' conventions, Gammelli et al. 2021-2023; OHIO App. B.3.1):

* time steps of ``json_tstep`` minutes start at minute ``60 * json_hr``; row ``k`` of ``demand``
  falls in step ``s = (time_stamp - 60 json_hr) // json_tstep`` (rows before the window are
  ignored). Expected trips per step ``lambda[s, o, d] = demand_ratio * sum(demand)`` over the
  rows of the step (trips per minute summed over the step's minutes);
* price and trip time per pair and step are demand-weighted means over those rows; the trip
  time in steps is ``max(1, round(minutes / json_tstep))``. Pairs without demand in a step get
  price 0 and the rebalancing time of the pair as trip time (never used by a served trip);
* rebalancing minutes come from ``rebTime`` at one hour per step: ``reb_time_hours='start'``
  (default, the published simulators) uses hour ``json_hr`` for every step; ``'per-step'`` uses
  the hour each step starts in. A missing hour falls back to the nearest hour in the file
  (earlier on ties). In steps: ``max(1, round(minutes / json_tstep))`` off the diagonal;
* the fleet is ``acc`` of hour ``json_hr + round(json_tstep / 2 * episode_length / 60)`` (the
  hour of the middle of the episode, as the published simulators pick it; nearest hour in the
  file when absent);
* the road graph is ``topology_graph`` made symmetric without self-loops (``graph='topology'``)
  or the complete directed graph (``graph='complete'``).

Every malformed file fails with one :class:`~hieralloc.errors.DataError` naming the file, the
field, the row and the fix. Parsed scenarios are cached per (file, size, mtime, options) and
their arrays are read-only.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hieralloc.errors import DataError

#: keys every scenario file must have (``topology_graph`` only when ``graph='topology'``)
REQUIRED_KEYS = ("nlat", "nlon", "demand", "rebTime", "totalAcc")

#: named calibrations (../shared/data/amod/README.md; OHIO App. B.3; the published simulators)
CALIBRATIONS: dict[str, dict[str, Any]] = {
    "nyc_brooklyn": {"demand_ratio": 9.0, "json_hr": 19, "json_tstep": 4, "beta": 0.5, "episode_length": 20},
    "shenzhen_downtown_west": {"demand_ratio": 2.5, "json_hr": 8, "json_tstep": 3, "beta": 0.5,
                               "episode_length": 20},
}

GRAPHS = ("topology", "complete")
REB_TIME_HOURS = ("start", "per-step")
SCHEMA_HINT = "see docs/environments/mobility.md (amod schema)"


@dataclass(frozen=True, eq=False)
class Scenario:
    """A parsed mobility scenario: per-step arrays over regions, read-only.

    Attributes:
        name: short name (dataset name, file stem or ``synthetic``).
        source: where it came from (a path or a description), used in messages.
        n_regions: N.
        json_hr, json_tstep, demand_ratio: the calibration it was parsed with.
        demand: ``(S, N, N)`` expected trips per step ``lambda`` (Poisson means), scaled.
        price: ``(S, N, N)`` demand-weighted fare (0 where a pair has no demand in the step).
        trip_minutes: ``(S, N, N)`` demand-weighted trip minutes (rebalancing minutes where no demand).
        trip_steps: ``(S, N, N)`` int, trip time in steps, ``>= 1``.
        reb_minutes: ``(S, N, N)`` rebalancing minutes (diagonal as in the file, 0 when absent).
        reb_steps: ``(S, N, N)`` int, rebalancing time in steps, ``>= 1`` off the diagonal, 0 on it.
        fleet: vehicles (``totalAcc`` of ``fleet_hour``).
        fleet_hour: the ``totalAcc`` hour used.
        edges: ``(E, 2)`` int64 road-graph edges ``(i, j)``, ``i != j``, both directions, sorted.
        graph: ``'topology'`` or ``'complete'``.
        reb_hours: ``(S,)`` the ``rebTime`` hour used by each step.
    """

    name: str
    source: str
    n_regions: int
    json_hr: int
    json_tstep: int
    demand_ratio: float
    demand: np.ndarray
    price: np.ndarray
    trip_minutes: np.ndarray
    trip_steps: np.ndarray
    reb_minutes: np.ndarray
    reb_steps: np.ndarray
    fleet: int
    fleet_hour: int
    edges: np.ndarray
    graph: str
    reb_hours: np.ndarray

    @property
    def n_steps(self) -> int:
        """Steps S covered by the file's demand window."""
        return int(self.demand.shape[0])

    def padded(self, n_steps: int) -> Scenario:
        """The scenario extended to at least ``n_steps`` steps: no demand after the data window;
        trip and rebalancing times repeat the last step's."""
        S = self.n_steps
        if n_steps <= S:
            return self
        extra = n_steps - S

        def pad(a: np.ndarray, zero: bool) -> np.ndarray:
            tail = np.zeros((extra, *a.shape[1:]), a.dtype) if zero else np.repeat(a[-1:], extra, axis=0)
            return _frozen(np.concatenate([a, tail]))

        return replace(self, demand=pad(self.demand, True), price=pad(self.price, True),
                       trip_minutes=pad(self.trip_minutes, False), trip_steps=pad(self.trip_steps, False),
                       reb_minutes=pad(self.reb_minutes, False), reb_steps=pad(self.reb_steps, False),
                       reb_hours=pad(self.reb_hours, False))

    def summary(self) -> dict[str, Any]:
        """A few numbers describing the scenario (for docs and ``hieralloc list``-like output)."""
        return {"name": self.name, "regions": self.n_regions, "steps": self.n_steps, "fleet": self.fleet,
                "json_hr": self.json_hr, "json_tstep": self.json_tstep, "demand_ratio": self.demand_ratio,
                "edges": int(self.edges.shape[0]), "trips_per_step": float(self.demand.sum() / self.n_steps)}


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


# ---------------------------------------------------------------------------------------------
# validation helpers: one DataError naming file, field, row and fix


def _fail(source: str, where: str, problem: str, fix: str) -> DataError:
    return DataError(f"scenario file {source}: {where}: {problem}; fix: {fix}")


def _type_name(v: Any) -> str:
    return "null" if v is None else {bool: "boolean", str: "string", list: "list", dict: "object"}.get(
        type(v), type(v).__name__)


def _rows(data: dict[str, Any], key: str, source: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = data[key]
    if not isinstance(rows, list):
        raise _fail(source, f"field '{key}'", f"must be a list of objects, got {_type_name(rows)}",
                    f"write '{key}' as a JSON list of {{{', '.join(fields)}}} objects ({SCHEMA_HINT})")
    for k, r in enumerate(rows):
        if not isinstance(r, dict):
            raise _fail(source, f"field '{key}', row {k}", f"must be an object, got {_type_name(r)}",
                        f"write each row as {{{', '.join(fields)}}}")
        if len(r) < len(fields) or any(f not in r for f in fields):
            missing = next(f for f in fields if f not in r)
            raise _fail(source, f"field '{key}', row {k}", f"missing key '{missing}'",
                        f"every '{key}' row needs {', '.join(fields)}")
    return rows


def _column(rows: list[dict[str, Any]], key: str, field: str, source: str, kind: str,
            low: float | None = None, high: float | None = None, unit: str = "") -> np.ndarray:
    """Column ``field`` of table ``key`` as an array; ``kind`` 'int' (integral numbers) or 'num'."""
    col = [r[field] for r in rows]
    types = set(map(type, col))
    bad_type = types - {int, float}  # bool, str, None, list, dict are rejected (bool is not int here)
    if bad_type:
        k = next(i for i, v in enumerate(col) if type(v) in bad_type)
        want = "an integer" if kind == "int" else "a number"
        raise _fail(source, f"field '{key}', row {k}, key '{field}'",
                    f"must be {want}, got {_type_name(col[k])} {col[k]!r}",
                    f"write {field} as a JSON {'integer' if kind == 'int' else 'number'}{unit}")
    arr = np.asarray(col, dtype=float) if types != {int} else np.asarray(col, dtype=np.int64)
    if arr.dtype.kind == "f":
        nonfinite = ~np.isfinite(arr)
        if nonfinite.any():
            k = int(np.flatnonzero(nonfinite)[0])
            raise _fail(source, f"field '{key}', row {k}, key '{field}'", f"is {col[k]!r}, not a finite number",
                        f"write a finite {field}{unit}")
        if kind == "int":
            frac = arr != np.round(arr)
            if frac.any():
                k = int(np.flatnonzero(frac)[0])
                raise _fail(source, f"field '{key}', row {k}, key '{field}'",
                            f"must be an integer, got {col[k]!r}", f"write {field} as a whole number{unit}")
            arr = arr.astype(np.int64)
    if low is not None and arr.size and (arr < low).any():
        k = int(np.flatnonzero(arr < low)[0])
        what = "negative" if low == 0 else f"below {low:g}"
        raise _fail(source, f"field '{key}', row {k}, key '{field}'", f"= {col[k]!r} is {what}",
                    f"{field} must be >= {low:g}{unit}")
    if high is not None and arr.size and (arr > high).any():
        k = int(np.flatnonzero(arr > high)[0])
        raise _fail(source, f"field '{key}', row {k}, key '{field}'", f"= {col[k]!r} is above {high:g}",
                    f"{field} must be <= {high:g}{unit}")
    return arr


def _region(rows: list[dict[str, Any]], key: str, field: str, source: str, n: int) -> np.ndarray:
    arr = _column(rows, key, field, source, "int")
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise _fail(source, f"field '{key}', row {k}, key '{field}'",
                    f"region id {int(arr[k])} is outside 0..{n - 1} (nlat * nlon = {n} regions)",
                    "use region ids 0..nlat*nlon-1, or correct nlat/nlon")
    return arr


def _positive_int(data: dict[str, Any], key: str, source: str) -> int:
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise _fail(source, f"field '{key}'", f"must be a positive integer, got {_type_name(v)} {v!r}",
                    f"write {key} as a JSON integer (nlat * nlon is the number of regions)")
    if v < 1:
        raise _fail(source, f"field '{key}'", f"must be >= 1, got {v!r}", f"set {key} to at least 1")
    return int(v)


def _nearest(hours: np.ndarray, want: int) -> int:
    """The hour in ``hours`` closest to ``want`` (earlier on ties)."""
    order = np.lexsort((hours, np.abs(hours - want)))
    return int(hours[order[0]])


# ---------------------------------------------------------------------------------------------
# parsing


def parse_scenario(
    data: Any,
    source: str,
    *,
    name: str | None = None,
    demand_ratio: float = 1.0,
    json_hr: int | None = None,
    json_tstep: int = 3,
    episode_length: int = 20,
    graph: str = "topology",
    reb_time_hours: str = "start",
) -> Scenario:
    """Parse a scenario (the decoded JSON object of one amod file) into a :class:`Scenario`.

    ``json_hr=None`` starts at the first hour with demand in the file. See the module docstring
    for the conventions; raises :class:`DataError` on malformed data.
    """
    if not isinstance(data, dict):
        raise _fail(source, "top level", f"must be a JSON object, got {_type_name(data)}",
                    f"the file must be one object with keys {', '.join(REQUIRED_KEYS)}, topology_graph")
    if graph not in GRAPHS:
        raise DataError(f"graph must be one of {', '.join(GRAPHS)}, got {graph!r}")
    if reb_time_hours not in REB_TIME_HOURS:
        raise DataError(f"reb_time_hours must be one of {', '.join(REB_TIME_HOURS)}, got {reb_time_hours!r}")
    if not (demand_ratio > 0 and math.isfinite(demand_ratio)):
        raise DataError(f"demand_ratio must be a positive number, got {demand_ratio!r}")
    if json_tstep < 1:
        raise DataError(f"json_tstep must be >= 1 minute, got {json_tstep!r}")
    need = REQUIRED_KEYS + (("topology_graph",) if graph == "topology" else ())
    for key in need:
        if key not in data:
            fix = ("add it, or build the environment with graph='complete'" if key == "topology_graph"
                   else f"add '{key}' ({SCHEMA_HINT})")
            raise _fail(source, f"missing key '{key}'", f"the amod schema needs {', '.join(need)}", fix)
    n = _positive_int(data, "nlat", source) * _positive_int(data, "nlon", source)

    # ---- demand
    drows = _rows(data, "demand", source, ("time_stamp", "origin", "destination", "demand", "travel_time", "price"))
    if not drows:
        raise _fail(source, "field 'demand'", "is empty", "the scenario needs at least one demand row")
    ts = _column(drows, "demand", "time_stamp", source, "int", low=0, unit=" (minute of the day)")
    o = _region(drows, "demand", "origin", source, n)
    d = _region(drows, "demand", "destination", source, n)
    v = _column(drows, "demand", "demand", source, "num", low=0, unit=" (trips per minute)")
    tt = _column(drows, "demand", "travel_time", source, "num", low=0, unit=" (minutes)")
    pr = _column(drows, "demand", "price", source, "num", low=0, unit=" (fare)")
    if json_hr is None:
        json_hr = int(ts.min()) // 60
    start = 60 * int(json_hr)
    inside = ts >= start
    if not inside.any() or v[inside].sum() <= 0:
        first, last = int(ts.min()), int(ts.max())
        raise _fail(source, "field 'demand'",
                    f"has no positive demand at or after hour {json_hr} (rows cover minutes {first}..{last}, "
                    f"hours {first // 60}..{last // 60})",
                    f"choose json_hr within {first // 60}..{last // 60}")
    s = (ts[inside] - start) // json_tstep
    S = int(s.max()) + 1
    flat = (s * n + o[inside]) * n + d[inside]
    vv = v[inside] * demand_ratio
    lam = np.bincount(flat, weights=vv, minlength=S * n * n).reshape(S, n, n)
    pv = np.bincount(flat, weights=pr[inside] * vv, minlength=S * n * n).reshape(S, n, n)
    tv = np.bincount(flat, weights=tt[inside] * vv, minlength=S * n * n).reshape(S, n, n)
    has = lam > 0
    price = np.where(has, pv / np.where(has, lam, 1.0), 0.0)
    trip_min = np.where(has, tv / np.where(has, lam, 1.0), np.nan)

    # ---- rebalancing times
    rrows = _rows(data, "rebTime", source, ("time_stamp", "origin", "destination", "reb_time"))
    if not rrows:
        raise _fail(source, "field 'rebTime'", "is empty", "add N*N rows per hour {time_stamp, origin, destination, "
                    "reb_time}")
    rh = _column(rrows, "rebTime", "time_stamp", source, "int", low=0, unit=" (hour of the day)")
    ro = _region(rrows, "rebTime", "origin", source, n)
    rd = _region(rrows, "rebTime", "destination", source, n)
    rt = _column(rrows, "rebTime", "reb_time", source, "num", low=0, unit=" (minutes)")
    hours = np.unique(rh)
    step_hours = (start + np.arange(S) * json_tstep) // 60
    if reb_time_hours == "start":
        step_hours[:] = json_hr
    used = np.array([_nearest(hours, int(h)) for h in step_hours], dtype=np.int64)
    reb_by_hour: dict[int, np.ndarray] = {}
    for h in np.unique(used):
        sel = np.flatnonzero(rh == h)
        M = np.full((n, n), np.nan)
        M[ro[sel], rd[sel]] = rt[sel]
        off = ~np.eye(n, dtype=bool) & np.isnan(M)
        if off.any():
            i, j = (int(x[0]) for x in np.nonzero(off))
            raise _fail(source, f"field 'rebTime', hour {int(h)}",
                        f"has no row for origin {i}, destination {j}",
                        f"add a row {{time_stamp: {int(h)}, origin: {i}, destination: {j}, reb_time: minutes}} "
                        "(every ordered pair of regions needs one per hour)")
        np.fill_diagonal(M, np.where(np.isnan(np.diag(M)), 0.0, np.diag(M)))
        reb_by_hour[int(h)] = M
    reb_min = np.stack([reb_by_hour[int(h)] for h in used])
    reb_steps = np.maximum(np.round(reb_min / json_tstep), 1).astype(np.int64)
    reb_steps[:, np.arange(n), np.arange(n)] = 0
    trip_min = np.where(np.isnan(trip_min), reb_min, trip_min)
    trip_steps = np.maximum(np.round(trip_min / json_tstep), 1).astype(np.int64)

    # ---- fleet
    arows = _rows(data, "totalAcc", source, ("hour", "acc"))
    if not arows:
        raise _fail(source, "field 'totalAcc'", "is empty", "add at least one row {hour, acc}")
    ah = _column(arows, "totalAcc", "hour", source, "int", low=0, unit=" (hour of the day)")
    acc = _column(arows, "totalAcc", "acc", source, "int", low=0, unit=" (vehicles)")
    want_hour = int(json_hr) + round(json_tstep / 2 * episode_length / 60)  # the published simulators' choice
    fleet_hour = _nearest(np.unique(ah), want_hour)
    fleet = int(acc[np.flatnonzero(ah == fleet_hour)[-1]])
    if fleet < 1:
        k = int(np.flatnonzero(ah == fleet_hour)[-1])
        raise _fail(source, f"field 'totalAcc', row {k}, key 'acc'", f"the fleet of hour {fleet_hour} is 0",
                    "give a positive fleet size (or set fleet_size in the environment config)")

    # ---- road graph
    if graph == "topology":
        trows = _rows(data, "topology_graph", source, ("i", "j"))
        ti = _region(trows, "topology_graph", "i", source, n)
        tj = _region(trows, "topology_graph", "j", source, n)
        pairs = {(int(a), int(b)) for a, b in zip(ti, tj, strict=True) if a != b}
        pairs |= {(b, a) for a, b in pairs}
    else:
        pairs = {(i, j) for i in range(n) for j in range(n) if i != j}
    edges = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)

    label = name or Path(source).stem.removeprefix("scenario_")
    return Scenario(
        name=label, source=source, n_regions=n, json_hr=int(json_hr), json_tstep=int(json_tstep),
        demand_ratio=float(demand_ratio), demand=_frozen(lam), price=_frozen(price),
        trip_minutes=_frozen(trip_min), trip_steps=_frozen(trip_steps), reb_minutes=_frozen(reb_min),
        reb_steps=_frozen(reb_steps), fleet=fleet, fleet_hour=fleet_hour, edges=_frozen(edges), graph=graph,
        reb_hours=_frozen(used),
    )


def read_scenario_json(path: str | Path) -> Any:
    """Decode one scenario file; a missing or non-JSON file raises :class:`DataError`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"scenario file {p} does not exist; give the path of an amod scenario .json file "
                        "or a dataset name (see 'hieralloc data list')")
    try:
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as e:
        raise DataError(f"scenario file {p}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}; "
                        "fix: repair the file or download it again ('hieralloc data fetch')") from None
    except UnicodeDecodeError:
        raise DataError(f"scenario file {p}: not a UTF-8 text file; fix: give an amod scenario .json file") from None


@functools.lru_cache(maxsize=16)
def _load_file_cached(path: str, size: int, mtime_ns: int, options: tuple[tuple[str, Any], ...]) -> Scenario:
    return parse_scenario(read_scenario_json(path), path, **dict(options))


def load_scenario(
    city: str | Path,
    *,
    data_dir: str | Path | None = None,
    demand_ratio: float = 1.0,
    json_hr: int | None = None,
    json_tstep: int = 3,
    episode_length: int = 20,
    graph: str = "topology",
    reb_time_hours: str = "start",
    synthetic_regions: int = 10,
    data_seed: int = 0,
) -> Scenario:
    """A scenario by name or path: ``'synthetic'`` (generated, see :func:`synthetic_city`), a dataset
    name (``nyc_brooklyn`` or ``amod/nyc_brooklyn``, read from the data directory through
    :func:`hieralloc.data.require`, checksum verified), or the path of any file in the schema."""
    opts = {"demand_ratio": float(demand_ratio), "json_hr": json_hr, "json_tstep": int(json_tstep),
            "episode_length": int(episode_length), "graph": graph, "reb_time_hours": reb_time_hours}
    text = str(city)
    if text == "synthetic":
        return _synthetic_cached(int(synthetic_regions), int(data_seed), tuple(sorted(opts.items())))
    from hieralloc import data

    if text in data.DATASETS or f"amod/{text}" in data.DATASETS:
        path = data.require(text, data_dir)
    else:
        path = Path(text).expanduser()
        if not path.is_file() and (text.endswith(".json") or "/" in text or "\\" in text):
            read_scenario_json(path)  # raises: the file does not exist
        if not path.is_file():
            known = ", ".join(sorted(k.removeprefix("amod/") for k in data.DATASETS))
            raise DataError(f"unknown mobility scenario {text!r}: not 'synthetic', not a dataset name ({known}) "
                            "and not an existing file; give one of those or the path of an amod scenario .json file")
    st = path.stat()
    return _load_file_cached(str(path.resolve()), st.st_size, st.st_mtime_ns, tuple(sorted(opts.items())))


# ---------------------------------------------------------------------------------------------
# synthetic city


def synthetic_city(
    n_regions: int = 10,
    seed: int = 0,
    *,
    start_hour: int = 7,
    n_hours: int = 3,
    trips_per_minute: float = 8.0,
    fleet_factor: float = 1.1,
    fare: tuple[float, float, float] = (4.0, 2.2, 0.6),
) -> dict[str, Any]:
    """A synthetic morning-commute city in the amod schema (a JSON-ready dict).

    Regions: ``round(0.3 N)`` (at least 1) downtown regions within 1.5 km of the centre, the
    others on a 2.5-5.5 km ring (uniform angles). Road distance = 1.3 x straight-line km.
    Rebalancing minutes per hour ``2 + 60 distance / speed`` with speed 30 km/h, slowed to 20 km/h
    at the peak hour (``start_hour + 1``). Demand (trips per minute, per minute of the window):
    a gravity model ``pop_i att_j exp(-distance / 5 km)`` with log-normal populations and
    attractions (downtown attracts 3x), trips into downtown peaking 75 minutes into the window
    and trips out of downtown growing through it, scaled to ``trips_per_minute`` on average.
    Trip minutes = 1.05 x the hour's rebalancing minutes; fare = ``fare[0] + fare[1] km + fare[2] minutes``
    (default 4 + 2.2 per km + 0.6 per minute: about 25 per trip, near NYC Brooklyn's 29).
    Fleet = ``fleet_factor`` x the vehicles that the average demand keeps busy (trip minutes plus
    three minutes), so vehicles are scarce enough for rebalancing to matter. Road graph: a minimum
    spanning tree plus each region's 3 nearest neighbours.
    """
    from scipy.sparse.csgraph import minimum_spanning_tree

    if n_regions < 2:
        raise DataError(f"the synthetic city needs at least 2 regions, got {n_regions}")
    rng = np.random.default_rng(seed)
    N = int(n_regions)
    core = np.arange(N) < max(1, round(0.3 * N))
    ang = rng.uniform(0.0, 2 * np.pi, N)
    rad = np.where(core, rng.uniform(0.0, 1.5, N), rng.uniform(2.5, 5.5, N))
    xy = np.stack([rad * np.cos(ang), rad * np.sin(ang)], axis=1)
    km = 1.3 * np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    hours = list(range(start_hour, start_hour + n_hours))
    speed = {h: 30.0 - 10.0 * math.exp(-((h - start_hour - 1) ** 2) / 2.0) for h in hours}
    reb = {h: 2.0 + 60.0 * km / speed[h] for h in hours}
    for h in hours:
        np.fill_diagonal(reb[h], 1.0)
    pop = rng.lognormal(0.0, 0.5, N) * np.where(core, 0.6, 1.0)
    att = rng.lognormal(0.0, 0.5, N) * np.where(core, 3.0, 1.0)
    w = pop[:, None] * att[None, :] * np.exp(-km / 5.0)
    np.fill_diagonal(w, 0.0)
    minutes = np.arange(60 * n_hours)
    block = 5 * (minutes // 5)  # rates change every 5 minutes
    into_core = 0.6 + 0.8 * np.exp(-(((block - 75) / 45.0) ** 2))
    out_of_core = 0.5 + 0.5 * block / max(len(minutes) - 1, 1)
    profile = np.where(core[None, None, :], into_core[:, None, None],
                       np.where(core[None, :, None], out_of_core[:, None, None], 0.8))  # (M, N, N)
    rate = w[None] * profile
    rate *= trips_per_minute / rate.sum(axis=(1, 2)).mean()
    trip_minutes = {h: np.maximum(np.round(1.05 * reb[h]), 1).astype(int) for h in hours}
    price = np.round(fare[0] + fare[1] * km + fare[2] * trip_minutes[hours[0]], 2)
    busy = float(sum((rate[minutes // 60 == k] * (trip_minutes[h] + 3)).sum(axis=(1, 2)).mean()
                     for k, h in enumerate(hours)) / len(hours))
    fleet = int(math.ceil(fleet_factor * busy))
    ii, jj = np.nonzero(w > 0)
    tmin = np.stack([trip_minutes[h] for h in hours])[minutes // 60][:, ii, jj]  # (M, pairs)
    rates = np.round(rate[:, ii, jj], 6)
    cols = zip(np.repeat(60 * start_hour + minutes, len(ii)).tolist(), np.tile(ii, len(minutes)).tolist(),
               np.tile(jj, len(minutes)).tolist(), rates.ravel().tolist(), tmin.ravel().tolist(),
               np.tile(price[ii, jj], len(minutes)).tolist(), strict=True)
    demand = [{"time_stamp": t, "origin": i, "destination": j, "demand": r, "travel_time": tt, "price": p}
              for t, i, j, r, tt, p in cols]
    reb_rows = [{"time_stamp": h, "origin": i, "destination": j, "reb_time": round(float(reb[h][i, j]), 4)}
                for h in hours for i in range(N) for j in range(N)]
    mst = minimum_spanning_tree(km).toarray() > 0
    knn = np.argsort(km + np.diag(np.full(N, np.inf)), axis=1)[:, : min(3, N - 1)]
    adj = mst | mst.T
    adj[np.repeat(np.arange(N), knn.shape[1]), knn.ravel()] = True
    adj |= adj.T
    topo = [{"i": int(i), "j": int(j)} for i, j in zip(*np.nonzero(adj), strict=True)]
    return {"nlat": N, "nlon": 1, "demand": demand, "rebTime": reb_rows,
            "totalAcc": [{"hour": h, "acc": fleet} for h in hours], "topology_graph": topo}


@functools.lru_cache(maxsize=16)
def _synthetic_cached(n_regions: int, seed: int, options: tuple[tuple[str, Any], ...]) -> Scenario:
    opts = dict(options)
    if opts.get("json_hr") is None:
        opts["json_hr"] = 7
    source = f"synthetic city (n_regions={n_regions}, seed={seed})"
    return parse_scenario(synthetic_city(n_regions, seed), source, name="synthetic", **opts)


def dataset_names() -> Iterable[str]:
    """City names of the known scenario files (``hieralloc.data.DATASETS``)."""
    from hieralloc import data

    return sorted(k.removeprefix("amod/") for k in data.DATASETS if k.startswith("amod/"))


__all__ = ["CALIBRATIONS", "GRAPHS", "REB_TIME_HOURS", "REQUIRED_KEYS", "Scenario", "dataset_names",
           "load_scenario", "parse_scenario", "read_scenario_json", "synthetic_city"]
