"""Plain-dict registries of environments, algorithms, scenarios and benchmark presets.

Modules register their entries at import time with :func:`register_env`,
:func:`register_algo`, :func:`register_scenario` and :func:`register_preset`. :func:`load_builtins`
imports the built-in modules once, so lookups always see every entry. Tests iterate over these
registries so that every new environment and algorithm is covered automatically.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hieralloc.errors import IncompatibleError, UnknownNameError


@dataclass(frozen=True)
class Capabilities:
    """What an algorithm needs or supports; checked against the environment before a run."""

    discrete: bool = True
    continuous: bool = False
    on_policy: bool = False
    off_policy: bool = False
    needs_global_state: bool = False
    supports_masks: bool = True
    learns: bool = False
    #: the algorithm reads the whole future (an oracle); only for evaluation, never deployable
    full_information: bool = False
    #: environment families the algorithm is written for (None = any family)
    families: tuple[str, ...] | None = None

    def flags(self) -> str:
        names = [f.name for f in dataclasses.fields(self) if f.type in ("bool", bool) and getattr(self, f.name)]
        fam = f" families={','.join(self.families)}" if self.families else ""
        return ",".join(names) + fam


@dataclass(frozen=True)
class EnvSpec:
    """A registered environment.

    ``make(config)`` returns a PettingZoo ``ParallelEnv``. ``family`` groups environments that
    share dynamics (e.g. every coverage-grid demand source is family ``coverage``).
    """

    name: str
    family: str
    config_cls: type
    make: Callable[[Any], Any]
    description: str
    discrete: bool = True
    continuous: bool = False
    has_global_state: bool = True
    has_masks: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)

    def default_config(self, **overrides: Any) -> Any:
        from hieralloc.config import from_dict

        return from_dict(self.config_cls, {**self.defaults, **overrides})


@dataclass(frozen=True)
class AlgoSpec:
    """A registered algorithm or baseline.

    ``build(env, config, seed)`` returns a policy object (see :mod:`hieralloc.algos.base`). For
    learners, ``learner`` builds the trainer-facing object instead.
    """

    name: str
    config_cls: type
    build: Callable[..., Any]
    caps: Capabilities
    description: str


@dataclass(frozen=True)
class ScenarioSpec:
    """A named environment configuration (an env name plus config values)."""

    name: str
    env: str
    values: dict[str, Any]
    description: str


@dataclass(frozen=True)
class PresetSpec:
    """A named benchmark specification shipped as YAML inside the package."""

    name: str
    path: Path
    description: str


ENVS: dict[str, EnvSpec] = {}
ALGOS: dict[str, AlgoSpec] = {}
SCENARIOS: dict[str, ScenarioSpec] = {}
PRESETS: dict[str, PresetSpec] = {}

_loaded = False


def _put(table: dict[str, Any], spec: Any) -> Any:
    if spec.name in table and table[spec.name] != spec:
        raise ValueError(f"duplicate registration of '{spec.name}'")
    table[spec.name] = spec
    return spec


def register_env(spec: EnvSpec) -> EnvSpec:
    return _put(ENVS, spec)


def register_algo(spec: AlgoSpec) -> AlgoSpec:
    return _put(ALGOS, spec)


def register_scenario(spec: ScenarioSpec) -> ScenarioSpec:
    return _put(SCENARIOS, spec)


def register_preset(spec: PresetSpec) -> PresetSpec:
    return _put(PRESETS, spec)


def load_builtins() -> None:
    """Import every built-in module that registers entries (idempotent)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import hieralloc.algos  # noqa: F401
    import hieralloc.bench.presets  # noqa: F401
    import hieralloc.envs  # noqa: F401


def get_env(name: str) -> EnvSpec:
    load_builtins()
    if name in ENVS:
        return ENVS[name]
    if name in SCENARIOS:
        sc = SCENARIOS[name]
        base = ENVS[sc.env]
        return dataclasses.replace(base, name=sc.name, defaults={**base.defaults, **sc.values},
                                   description=sc.description)
    raise UnknownNameError("environment", name, list(ENVS) + list(SCENARIOS))


def get_algo(name: str) -> AlgoSpec:
    load_builtins()
    if name not in ALGOS:
        raise UnknownNameError("algorithm", name, list(ALGOS))
    return ALGOS[name]


def get_preset(name: str) -> PresetSpec:
    load_builtins()
    if name not in PRESETS:
        raise UnknownNameError("benchmark preset", name, list(PRESETS))
    return PRESETS[name]


def check_compatible(env: EnvSpec, algo: AlgoSpec) -> None:
    """Raise :class:`IncompatibleError` when the algorithm cannot run on the environment."""
    c = algo.caps
    problems = []
    if c.families is not None and env.family not in c.families:
        problems.append(f"it is written for {', '.join(c.families)} environments, "
                        f"and '{env.name}' is a {env.family} environment")
    if env.discrete and not env.continuous and not c.discrete:
        problems.append("the environment has discrete actions and the algorithm needs continuous ones")
    if env.continuous and not env.discrete and not c.continuous:
        problems.append("the environment has continuous actions and the algorithm needs discrete ones")
    if c.needs_global_state and not env.has_global_state:
        problems.append("the algorithm needs a global state and the environment provides none")
    if problems:
        raise IncompatibleError(
            f"algorithm '{algo.name}' cannot run on environment '{env.name}': " + "; ".join(problems)
            + ". Pick another pair (see 'hieralloc list')."
        )
