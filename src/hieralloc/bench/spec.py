"""Benchmark specifications: which environments x algorithms x seeds to run and what to report.

A spec is a YAML mapping (``hieralloc bench my_spec.yaml``) or a preset shipped in
:mod:`hieralloc.bench.presets` (``hieralloc bench coverage-demo``)::

    name: my-bench                      # default: the file stem
    description: one line for 'hieralloc list'
    experiment: my-bench                # default: name
    envs:                               # names, or {name, label, overrides}
      - coverage-toy
      - {name: coverage-city, label: city-8, overrides: {env.n_agents: 8}}
    algos:                              # names, or {name, label, overrides, budgets}
      - random
      - {name: iql, overrides: {train.steps: 20000}, budgets: {paper: {algo.lr: 0.0001}}}
    seeds: 5                            # a count (0..4) or a list [0, 3, 7]
    budget:                             # overrides applied to every cell (mapping or key=value list)
      train.eval_episodes: 5
    budgets:                            # optional named budgets: `hieralloc bench SPEC --budget paper`
      paper: {train.steps: 500000}      # applied after every other override (they win; an entry's
                                        # own `budgets` part comes after the spec's)
    metrics:                            # names (higher is better), or {key, direction, label}
      - AC
      - {key: decision_ms, direction: lower, label: ms / decision}
    reference:                          # optional: "fraction of oracle bound"
      algo: oracle                      # label of an entry in algos
      numerator: served                 # per-episode metric of every method
      bound: oracle_served_bound        # per-episode metric of the reference (same episode seed)
    relative_scores:                    # optional table-level scores (HGRL Table 1's Score)
      - {key: Score_rel, higher: AC, lower: ATD, label: Score (relative)}
    plots: [bars, curves]
    stats: {reps: 2000, confidence: 0.95, seed: 0}
    x-common: &common {algo.lr: 0.001}  # keys starting with x- are ignored: holders of YAML anchors
    datasets:                           # optional offline datasets (OHIO), collected once per env entry
      inf: {behaviour: inf, episodes: 20, seed: 100000, overrides: {algo.horizon: 6}}
    # an algo entry {name: ohio-iql, dataset: inf} trains on <out>/datasets/<env label>/inf, collected
    # with `hieralloc collect` semantics (the env entry's env.* overrides apply) before any cell runs

An algo entry may also carry ``envs: [label, ...]`` (run it on these env entries only) and
``pretrained: {algo: LABEL, env: LABEL}``: each of its cells starts from the finished run of the
named entry with the same seed (on ``env``, default the cell's own env), passed as
``algo.finetune_from=<that run directory>``. Such cells run after all others; this is how a policy
trained on one scenario is evaluated (``train.steps: 0``) or fine-tuned on another (OHIO Table 5's
transfer row, Fig. 2 and 8)::

    - {name: sac, label: IQL->CAP, envs: [cap], pretrained: {algo: IQL-OHIO, env: 1w10s},
       overrides: {train.steps: 0}}

Overrides use the dotted keys of ``hieralloc train`` (``env.*``, ``algo.*``, ``train.*``); a cell's
overrides are ``budget`` then its env entry's then its algo entry's, then the selected named budget
(later ones win).

Every mistake is a :class:`~hieralloc.errors.ConfigError` naming the key and the file; unknown
environment/algorithm names raise :class:`~hieralloc.errors.UnknownNameError` and incompatible
pairs :class:`~hieralloc.errors.IncompatibleError`, all in :func:`validate_spec`, before any cell runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hieralloc.config import Config, load_yaml, param, parse_override
from hieralloc.errors import ConfigError

PLOTS = ("bars", "curves")
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class Entry:
    """One environment or algorithm of a spec: registry ``name``, unique ``label``, overrides."""

    name: str
    label: str
    overrides: tuple[str, ...] = ()
    #: this entry's part of named budgets: (budget name, overrides) pairs
    budgets: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: name of the spec's offline dataset this algorithm trains on ('' = none)
    dataset: str = ""
    #: env labels this algorithm runs on (empty: every env of the spec)
    envs: tuple[str, ...] = ()
    #: (algo label, env label) of the cell whose trained run this one starts from ('' env: the same env)
    pretrained: tuple[str, str] | None = None

    def runs_on(self, env_label: str) -> bool:
        return not self.envs or env_label in self.envs

    def budget_overrides(self, name: str) -> tuple[str, ...]:
        return dict(self.budgets).get(name, ()) if name else ()


@dataclass(frozen=True)
class MetricSpec:
    """A metric to report: the per-episode key, whether higher or lower is better, a table label."""

    key: str
    direction: Literal["higher", "lower"] = "higher"
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.key


@dataclass(frozen=True)
class ReferenceSpec:
    """Fraction of a reference's bound: per episode ``numerator`` of a method divided by ``bound``
    of the reference algorithm on the same episode seed, reported as metric ``key``."""

    algo: str
    numerator: str
    bound: str
    key: str = "frac_oracle_bound"
    label: str = "fraction of oracle bound"
    #: multiplier of the fraction (100 gives OHIO's "score = 100 x score / oracle")
    scale: float = 1.0
    #: further reference labels, for specs mixing env families: each env uses the one that runs on it
    others: tuple[str, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.algo, *self.others)


@dataclass(frozen=True)
class RelativeScoreSpec:
    """A table-level score: ``0.5 minmax(higher) - 0.5 minmax(lower)`` of the per-algorithm means,
    min-max normalised across the deployable algorithms of a task (HGRL Table 1's Score)."""

    key: str
    higher: str
    lower: str
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.key


@dataclass(frozen=True)
class StatsSpec(Config):
    """How results are aggregated over seeds and episodes (see hieralloc.eval.stats)."""

    reps: int = param(2000, "bootstrap resamples", low=100)
    confidence: float = param(0.95, "confidence level of the intervals", low=0.5, high=1.0, high_open=True)
    seed: int = param(0, "seed of the bootstrap resampling", low=0)


@dataclass(frozen=True)
class DatasetSpec:
    """An offline dataset a benchmark collects once per environment entry (OHIO's behaviour data):
    ``episodes`` episodes of the fixed policy ``behaviour`` from episode seeds of ``seed``;
    ``overrides`` are the behaviour's ``algo.*`` settings (the env entry's ``env.*`` ones apply too)."""

    name: str
    behaviour: str
    episodes: int
    seed: int = 100_000
    overrides: tuple[str, ...] = ()

    def rel_dir(self, env_label: str) -> Path:
        return Path("datasets") / env_label / self.name


@dataclass(frozen=True)
class BenchSpec:
    """A validated benchmark spec (build it with :func:`load_spec` or :func:`spec_from_mapping`)."""

    name: str
    envs: tuple[Entry, ...]
    algos: tuple[Entry, ...]
    seeds: tuple[int, ...]
    description: str = ""
    experiment: str = ""
    budget: tuple[str, ...] = ()
    #: named alternative budgets (e.g. ``paper``), each a tuple of overrides applied last
    budgets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the named budget this spec runs with ('' = the default ``budget``)
    budget_name: str = ""
    metrics: tuple[MetricSpec, ...] = ()
    reference: ReferenceSpec | None = None
    relative_scores: tuple[RelativeScoreSpec, ...] = ()
    plots: tuple[str, ...] = PLOTS
    stats: StatsSpec = field(default_factory=StatsSpec)
    datasets: dict[str, DatasetSpec] = field(default_factory=dict)
    source: str = "python"

    def cells(self) -> list[Cell]:
        """Every (env, algo, seed) cell, in env-major order (an algo entry with ``envs`` only on those)."""
        return [
            Cell(env=e, algo=a, seed=s,
                 overrides=self.budget + e.overrides + a.overrides + self.budgets.get(self.budget_name, ())
                 + e.budget_overrides(self.budget_name) + a.budget_overrides(self.budget_name))
            for e in self.envs
            for a in self.algos
            if a.runs_on(e.label)
            for s in self.seeds
        ]

    def source_cell(self, cell: Cell) -> Cell | None:
        """The cell whose trained run ``cell`` starts from (its algo entry's ``pretrained``), or None."""
        if cell.algo.pretrained is None:
            return None
        algo_label, env_label = cell.algo.pretrained
        env_label = env_label or cell.env.label
        for c in self.cells():
            if c.algo.label == algo_label and c.env.label == env_label and c.seed == cell.seed:
                return c
        raise ConfigError(f"algos.{cell.algo.label}.pretrained", f"no cell '{algo_label}' on '{env_label}' "
                          f"with seed {cell.seed}; the named entry must run on that env", self.source)

    def with_budget(self, name: str | None) -> BenchSpec:
        """This spec running under the named budget ``name`` (``None`` or '': the default)."""
        import dataclasses

        if not name:
            return self
        known_names = set(self.budgets) | {b for e in self.envs + self.algos for b, _ in e.budgets}
        if name not in known_names:
            known = ", ".join(sorted(known_names)) or "none"
            raise ConfigError("budget", f"unknown budget {name!r} for {self.name}; named budgets: {known}",
                              self.source)
        return dataclasses.replace(self, budget_name=name)

    def report_metrics(self) -> tuple[MetricSpec, ...]:
        """The spec's metrics plus the reference fraction (when a reference is named)."""
        ms = self.metrics
        if self.reference is not None and all(m.key != self.reference.key for m in ms):
            ms = ms + (MetricSpec(self.reference.key, "higher", self.reference.label),)
        return ms

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping that :func:`spec_from_mapping` reads back to an equal spec."""
        return {
            "name": self.name,
            "description": self.description,
            "experiment": self.experiment,
            "envs": [_entry_dict(e) for e in self.envs],
            "algos": [_entry_dict(a) for a in self.algos],
            "seeds": list(self.seeds),
            "budget": list(self.budget),
            "budgets": {k: list(v) for k, v in self.budgets.items()},
            "budget_name": self.budget_name,
            "metrics": [{"key": m.key, "direction": m.direction, "label": m.label} for m in self.metrics],
            "reference": None
            if self.reference is None
            else {
                "algo": self.reference.algo if not self.reference.others else list(self.reference.labels),
                "numerator": self.reference.numerator,
                "bound": self.reference.bound,
                "key": self.reference.key,
                "label": self.reference.label,
                "scale": self.reference.scale,
            },
            "relative_scores": [
                {"key": r.key, "higher": r.higher, "lower": r.lower, "label": r.label} for r in self.relative_scores
            ],
            "plots": list(self.plots),
            "stats": self.stats.to_dict(),
            "datasets": {
                d.name: {"behaviour": d.behaviour, "episodes": d.episodes, "seed": d.seed,
                         "overrides": list(d.overrides)}
                for d in self.datasets.values()
            },
        }


@dataclass(frozen=True)
class Cell:
    """One training/evaluation run of a benchmark."""

    env: Entry
    algo: Entry
    seed: int
    overrides: tuple[str, ...]

    def rel_dir(self) -> Path:
        return Path("runs") / self.env.label / self.algo.label / f"seed_{self.seed}"

    def title(self) -> str:
        return f"{self.algo.label} on {self.env.label} seed {self.seed}"


def _entry_dict(e: Entry) -> dict[str, Any]:
    out: dict[str, Any] = {"name": e.name, "label": e.label, "overrides": list(e.overrides)}
    if e.budgets:
        out["budgets"] = {b: list(o) for b, o in e.budgets}
    if e.dataset:
        out["dataset"] = e.dataset
    if e.envs:
        out["envs"] = list(e.envs)
    if e.pretrained is not None:
        out["pretrained"] = {"algo": e.pretrained[0], "env": e.pretrained[1]}
    return out


# ---------------------------------------------------------------------------------------------
# Parsing

_TOP_KEYS = (
    "name",
    "description",
    "experiment",
    "envs",
    "algos",
    "seeds",
    "budget",
    "budgets",
    "budget_name",
    "metrics",
    "reference",
    "relative_scores",
    "plots",
    "stats",
    "datasets",
)
_REQUIRED = ("envs", "algos")


def _keys_check(data: Mapping[str, Any], valid: tuple[str, ...], prefix: str, source: str) -> None:
    for k in data:
        if k not in valid:
            raise ConfigError(f"{prefix}{k}", f"unknown key; valid keys here: {', '.join(valid)}", source)


def _str(value: Any, key: str, source: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ConfigError(key, f"must be a {'string' if allow_empty else 'non-empty string'}, got {value!r}", source)
    return value


def _overrides(value: Any, key: str, source: str) -> tuple[str, ...]:
    """A mapping ``{dotted.key: value}`` or a list of ``"dotted.key=value"`` strings."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        out = []
        for k, v in value.items():
            if not isinstance(k, str) or not k or any(not p for p in k.split(".")):
                raise ConfigError(f"{key}.{k}", "override keys are dotted names like train.steps", source)
            if isinstance(v, Mapping):
                raise ConfigError(
                    f"{key}.{k}",
                    "must be a value; write nested keys with dots (e.g. env.n_agents: 5)",
                    source,
                )
            out.append(f"{k}={json.dumps(v)}")
        return tuple(out)
    if isinstance(value, (list, tuple)):
        out = []
        for i, text in enumerate(value):
            if not isinstance(text, str):
                raise ConfigError(f"{key}[{i}]", f"must be a 'key=value' string, got {text!r}", source)
            parse_override(text, f"{source}, {key}[{i}]")
            out.append(text)
        return tuple(out)
    raise ConfigError(
        key,
        f"must be a mapping of dotted keys to values or a list of key=value strings, got {value!r}",
        source,
    )


def _budgets(value: Any, source: str) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("budgets", "must map budget names to overrides, e.g. {paper: {train.steps: 500000}}",
                          source)
    return {_str(k, "budgets", source): _overrides(v, f"budgets.{k}", source) for k, v in value.items()}


def _entries(value: Any, key: str, source: str) -> tuple[Entry, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(
            key,
            f"must be a non-empty list of names or {{name, label, overrides}} mappings, got {value!r}",
            source,
        )
    out: list[Entry] = []
    for i, item in enumerate(value):
        k = f"{key}[{i}]"
        if isinstance(item, str):
            out.append(Entry(_str(item, k, source), item))
        elif isinstance(item, Mapping):
            _keys_check(item, ("name", "label", "overrides", "budgets", "dataset", "envs", "pretrained"),
                        k + ".", source)
            if "name" not in item:
                raise ConfigError(f"{k}.name", "is required", source)
            name = _str(item["name"], f"{k}.name", source)
            label = _str(item.get("label", name), f"{k}.label", source)
            if "/" in label or label in (".", ".."):
                raise ConfigError(f"{k}.label", f"must not contain '/' (it names a folder), got {label!r}", source)
            budgets = _budgets(item.get("budgets"), source)
            dataset = _str(item.get("dataset", ""), f"{k}.dataset", source, allow_empty=True)
            only = item.get("envs", [])
            if not isinstance(only, list) or not all(isinstance(x, str) and x for x in only):
                raise ConfigError(f"{k}.envs", f"must be a list of env labels, got {only!r}", source)
            out.append(Entry(name, label, _overrides(item.get("overrides"), f"{k}.overrides", source),
                             tuple(sorted(budgets.items())), dataset, tuple(only),
                             _pretrained(item.get("pretrained"), f"{k}.pretrained", source)))
        else:
            raise ConfigError(k, f"must be a name or a {{name, label, overrides}} mapping, got {item!r}", source)
    labels = [e.label for e in out]
    for i, lab in enumerate(labels):
        if lab in labels[:i]:
            raise ConfigError(f"{key}[{i}]", f"label '{lab}' appears twice; give one entry another 'label'", source)
    return tuple(out)


def _pretrained(value: Any, key: str, source: str) -> tuple[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or "algo" not in value:
        raise ConfigError(key, f"must be {{algo: LABEL, env: LABEL}} (env optional), got {value!r}", source)
    _keys_check(value, ("algo", "env"), key + ".", source)
    return _str(value["algo"], f"{key}.algo", source), _str(value.get("env", ""), f"{key}.env", source,
                                                             allow_empty=True)


def _check_links(envs: tuple[Entry, ...], algos: tuple[Entry, ...], source: str) -> None:
    """``envs`` and ``pretrained`` of algo entries name existing entries; no chains of pre-training."""
    env_labels = [e.label for e in envs]
    by_label = {a.label: a for a in algos}
    for i, a in enumerate(algos):
        for lab in a.envs:
            if lab not in env_labels:
                raise ConfigError(f"algos[{i}].envs", f"names no env entry: {lab!r}; env labels: "
                                  f"{', '.join(env_labels)}", source)
        if a.pretrained is None:
            continue
        src, env = a.pretrained
        k = f"algos[{i}].pretrained"
        if src not in by_label:
            raise ConfigError(f"{k}.algo", f"names no algo entry: {src!r}; algo labels: {', '.join(by_label)}",
                              source)
        if by_label[src].pretrained is not None:
            raise ConfigError(f"{k}.algo", f"'{src}' itself starts from a pre-trained run; name the entry that "
                              "trains from scratch (one level of pre-training)", source)
        if env and env not in env_labels:
            raise ConfigError(f"{k}.env", f"names no env entry: {env!r}; env labels: {', '.join(env_labels)}",
                              source)
        targets = [env] if env else [e for e in env_labels if a.runs_on(e)]
        for t in targets:
            if not by_label[src].runs_on(t):
                raise ConfigError(k, f"'{src}' does not run on '{t}' (its 'envs' leave it out)", source)


def _seeds(value: Any, source: str) -> tuple[int, ...]:
    if isinstance(value, bool):
        raise ConfigError("seeds", f"must be a count or a list of seeds, got {value!r}", source)
    if isinstance(value, int):
        if value < 1:
            raise ConfigError("seeds", f"a count of seeds must be >= 1, got {value}", source)
        return tuple(range(value))
    if isinstance(value, list) and value:
        for i, s in enumerate(value):
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ConfigError(f"seeds[{i}]", f"must be a non-negative integer, got {s!r}", source)
        if len(set(value)) != len(value):
            raise ConfigError("seeds", f"seeds must be distinct, got {value}", source)
        return tuple(int(s) for s in value)
    raise ConfigError("seeds", f"must be a count (e.g. 5) or a non-empty list of seeds, got {value!r}", source)


def _metrics(value: Any, source: str) -> tuple[MetricSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(
            "metrics",
            f"must be a list of metric names or {{key, direction, label}} mappings, got {value!r}",
            source,
        )
    out: list[MetricSpec] = []
    for i, item in enumerate(value):
        k = f"metrics[{i}]"
        if isinstance(item, str) and item:
            out.append(MetricSpec(item))
        elif isinstance(item, Mapping):
            _keys_check(item, ("key", "direction", "label"), k + ".", source)
            if "key" not in item:
                raise ConfigError(f"{k}.key", "is required", source)
            mkey = _str(item["key"], f"{k}.key", source)
            direction = item.get("direction", "higher")
            if direction not in DIRECTIONS:
                raise ConfigError(
                    f"{k}.direction", f"must be one of {', '.join(DIRECTIONS)}, got {direction!r}", source
                )
            label = _str(item.get("label", ""), f"{k}.label", source, allow_empty=True)
            out.append(MetricSpec(mkey, direction, label))
        else:
            raise ConfigError(k, f"must be a metric name or a {{key, direction, label}} mapping, got {item!r}", source)
    keys = [m.key for m in out]
    for i, mk in enumerate(keys):
        if mk in keys[:i]:
            raise ConfigError(f"metrics[{i}]", f"metric '{mk}' is listed twice", source)
    return tuple(out)


def _reference(value: Any, algos: tuple[Entry, ...], source: str) -> ReferenceSpec | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError("reference", f"must be a mapping with keys algo, numerator, bound, got {value!r}", source)
    _keys_check(value, ("algo", "numerator", "bound", "key", "label", "scale"), "reference.", source)
    scale = value.get("scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        raise ConfigError("reference.scale", f"must be a positive number (100 for percent), got {scale!r}", source)
    for req in ("algo", "numerator", "bound"):
        if req not in value:
            raise ConfigError(f"reference.{req}", "is required", source)
    raw = value["algo"]
    names = [_str(x, "reference.algo", source) for x in raw] if isinstance(raw, list) and raw else [
        _str(raw, "reference.algo", source)]
    labels = [a.label for a in algos]
    for algo in names:
        if algo not in labels:
            raise ConfigError(
                "reference.algo",
                f"must be the label of an entry in algos ({', '.join(labels)}), or a list of them (one per env "
                f"family, each restricted by its 'envs'), got {algo!r}",
                source,
            )
    return ReferenceSpec(
        algo=names[0],
        others=tuple(names[1:]),
        numerator=_str(value["numerator"], "reference.numerator", source),
        bound=_str(value["bound"], "reference.bound", source),
        key=_str(value.get("key", "frac_oracle_bound"), "reference.key", source),
        label=_str(value.get("label", "fraction of oracle bound"), "reference.label", source, allow_empty=True),
        scale=float(scale),
    )


def _relative_scores(value: Any, source: str) -> tuple[RelativeScoreSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(
            "relative_scores", f"must be a list of {{key, higher, lower, label}} mappings, got {value!r}", source
        )
    out: list[RelativeScoreSpec] = []
    for i, item in enumerate(value):
        k = f"relative_scores[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(k, f"must be a {{key, higher, lower, label}} mapping, got {item!r}", source)
        _keys_check(item, ("key", "higher", "lower", "label"), k + ".", source)
        for req in ("key", "higher", "lower"):
            if req not in item:
                raise ConfigError(f"{k}.{req}", "is required", source)
        out.append(
            RelativeScoreSpec(
                key=_str(item["key"], f"{k}.key", source),
                higher=_str(item["higher"], f"{k}.higher", source),
                lower=_str(item["lower"], f"{k}.lower", source),
                label=_str(item.get("label", ""), f"{k}.label", source, allow_empty=True),
            )
        )
    return tuple(out)


def _datasets(value: Any, algos: tuple[Entry, ...], source: str) -> dict[str, DatasetSpec]:
    out: dict[str, DatasetSpec] = {}
    if value is not None:
        if not isinstance(value, Mapping):
            raise ConfigError("datasets", "must map dataset names to {behaviour, episodes, seed, overrides}, e.g. "
                              "{inf: {behaviour: inf, episodes: 20}}", source)
        for name, item in value.items():
            k = f"datasets.{name}"
            _str(name, "datasets", source)
            if "/" in str(name) or name in (".", ".."):
                raise ConfigError(k, "a dataset name must not contain '/' (it names a folder)", source)
            if not isinstance(item, Mapping):
                raise ConfigError(k, f"must be a mapping with keys behaviour, episodes, seed, overrides, got {item!r}",
                                  source)
            _keys_check(item, ("behaviour", "episodes", "seed", "overrides"), k + ".", source)
            for req in ("behaviour", "episodes"):
                if req not in item:
                    raise ConfigError(f"{k}.{req}", "is required", source)
            episodes, seed = item["episodes"], item.get("seed", 100_000)
            if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
                raise ConfigError(f"{k}.episodes", f"must be an integer >= 1, got {episodes!r}", source)
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise ConfigError(f"{k}.seed", f"must be an integer >= 0, got {seed!r}", source)
            ovr = _overrides(item.get("overrides"), f"{k}.overrides", source)
            for text in ovr:
                if not text.startswith("algo."):
                    raise ConfigError(f"{k}.overrides", f"takes the behaviour's algo.* settings only, got {text!r} "
                                      "(environment settings come from the env entry)", source)
            out[str(name)] = DatasetSpec(str(name), _str(item["behaviour"], f"{k}.behaviour", source), episodes,
                                         seed, ovr)
    for i, a in enumerate(algos):
        if a.dataset and a.dataset not in out:
            known = ", ".join(sorted(out)) or "none (add a top-level 'datasets' mapping)"
            raise ConfigError(f"algos[{i}].dataset", f"names no dataset of this spec: {a.dataset!r}; datasets: "
                              f"{known}", source)
    return out


def _plots(value: Any, source: str) -> tuple[str, ...]:
    if value is None:
        return PLOTS
    if not isinstance(value, list):
        raise ConfigError("plots", f"must be a list drawn from {', '.join(PLOTS)}, got {value!r}", source)
    for i, p in enumerate(value):
        if p not in PLOTS:
            raise ConfigError(f"plots[{i}]", f"must be one of {', '.join(PLOTS)}, got {p!r}", source)
    return tuple(dict.fromkeys(value))


def _stats(value: Any, source: str) -> StatsSpec:
    from hieralloc.config import from_dict

    if value is None:
        return StatsSpec()
    if not isinstance(value, Mapping):
        raise ConfigError("stats", f"must be a mapping with keys reps, confidence, seed, got {value!r}", source)
    return from_dict(StatsSpec, value, source, prefix="stats.")


def spec_from_mapping(data: Mapping[str, Any], source: str = "python", default_name: str = "bench") -> BenchSpec:
    """Parse and check a spec mapping; ``source`` (a file path) is named in every error."""
    if not isinstance(data, Mapping):
        raise ConfigError("<root>", f"a benchmark spec must be a mapping, got {type(data).__name__}", source)
    # top-level keys starting with 'x-' hold YAML anchors shared by entries (docker-compose's habit)
    _keys_check({k: v for k, v in data.items() if not str(k).startswith("x-")}, _TOP_KEYS, "", source)
    for req in _REQUIRED:
        if req not in data:
            raise ConfigError(req, "is required (a list of registered names; see 'hieralloc list')", source)
    name = _str(data.get("name", default_name), "name", source)
    if "/" in name:
        raise ConfigError("name", f"must not contain '/', got {name!r}", source)
    algos = _entries(data["algos"], "algos", source)
    envs = _entries(data["envs"], "envs", source)
    _check_links(envs, algos, source)
    reference = _reference(data.get("reference"), algos, source)
    if reference is not None:
        by_label = {a.label: a for a in algos}
        for e in envs:
            on = [r for r in reference.labels if by_label[r].runs_on(e.label)]
            if len(on) > 1:
                raise ConfigError("reference.algo", f"{' and '.join(on)} both run on '{e.label}'; give each "
                                  "reference entry the 'envs' it is the reference for", source)
    return BenchSpec(
        name=name,
        description=_str(data.get("description", ""), "description", source, allow_empty=True),
        experiment=_str(data.get("experiment", name), "experiment", source),
        envs=envs,
        algos=algos,
        seeds=_seeds(data.get("seeds", 3), source),
        budget=_overrides(data.get("budget"), "budget", source),
        budgets=_budgets(data.get("budgets"), source),
        budget_name=_str(data.get("budget_name", ""), "budget_name", source, allow_empty=True),
        metrics=_metrics(data.get("metrics"), source),
        reference=reference,
        relative_scores=_relative_scores(data.get("relative_scores"), source),
        plots=_plots(data.get("plots"), source),
        stats=_stats(data.get("stats"), source),
        datasets=_datasets(data.get("datasets"), algos, source),
        source=source,
    )


def load_spec(spec: BenchSpec | Mapping[str, Any] | str | Path) -> BenchSpec:
    """A spec from a :class:`BenchSpec`, a mapping, a YAML path, or a preset name."""
    if isinstance(spec, BenchSpec):
        return spec
    if isinstance(spec, Mapping):
        return spec_from_mapping(spec)
    path = Path(spec)
    text = str(spec)
    if path.is_file() or text.endswith((".yaml", ".yml")) or "/" in text:
        data = load_yaml(path)
        return spec_from_mapping(data, source=str(path), default_name=path.stem)
    from hieralloc.registry import get_preset

    preset = get_preset(text)
    return spec_from_mapping(
        load_yaml(preset.path), source=f"preset '{text}' ({preset.path})", default_name=preset.name
    )


def validate_spec(spec: BenchSpec) -> None:
    """Check every env and algo name and every pair's compatibility before anything runs."""
    from hieralloc.registry import check_compatible, get_algo, get_env

    for e in spec.envs:
        env = get_env(e.name)
        algos = [a for a in spec.algos if a.runs_on(e.label)]
        behaviours = sorted({spec.datasets[a.dataset].behaviour for a in algos if a.dataset})
        for algo in [get_algo(a.name) for a in algos] + [get_algo(b) for b in behaviours]:
            check_compatible(env, algo)
