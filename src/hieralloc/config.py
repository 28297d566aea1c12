"""Dataclass configs: declaration, validation, YAML loading and dotted ``key=value`` overrides.

Every hyper-parameter in hieralloc lives in a dataclass that subclasses :class:`Config` and
declares its fields with :func:`param`, which records the help text and the valid range or
choices. Construction validates (``__post_init__``), so a config built from Python, YAML or the
command line is checked by the same code. Errors are :class:`~hieralloc.errors.ConfigError`:
one line naming the key, what is valid, and the source (file or argument).

Resolution order for a run: dataclass defaults < ``--config file.yaml`` < ``key=value``
arguments. Nested sections are addressed with dots (``env.n_agents=10``).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from hieralloc.errors import ConfigError

C = TypeVar("C")

_MISSING = dataclasses.MISSING


def param(
    default: Any = _MISSING,
    help: str = "",
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: Iterable[Any] | None = None,
    default_factory: Any = _MISSING,
) -> Any:
    """Declare a config field with its documentation and valid range.

    ``low``/``high`` bound numeric values (closed unless ``low_open``/``high_open``); ``choices``
    restricts a value to a fixed set. Non-finite floats are always rejected.
    """
    meta = {
        "help": help,
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "choices": tuple(choices) if choices is not None else None,
    }
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def describe_range(f: dataclasses.Field[Any]) -> str:
    """Human-readable statement of what a field accepts."""
    m = f.metadata
    if m.get("choices"):
        return "one of " + ", ".join(repr(c) for c in m["choices"])
    lo, hi = m.get("low"), m.get("high")
    if lo is None and hi is None:
        return ""
    left = "(" if m.get("low_open") else "["
    right = ")" if m.get("high_open") else "]"
    return f"in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


class Config:
    """Mixin for config dataclasses: validates every field on construction.

    Subclasses must be ``@dataclasses.dataclass`` and may override :meth:`validate` for
    cross-field checks (call ``super().validate()`` first).
    """

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            _check_value(f, value, f.name, getattr(self, "_source", None))

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def _check_value(f: dataclasses.Field[Any], value: Any, key: str, source: str | None) -> None:
    m = f.metadata
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(key, f"must be a finite number, got {value!r}", source)
    choices = m.get("choices")
    if choices and value not in choices:
        raise ConfigError(key, f"must be {describe_range(f)}, got {value!r}", source)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = m.get("low"), m.get("high")
        bad = (
            (lo is not None and (value < lo or (m.get("low_open") and value == lo)))
            or (hi is not None and (value > hi or (m.get("high_open") and value == hi)))
        )
        if bad:
            raise ConfigError(key, f"must be {describe_range(f)}, got {value!r}", source)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain (YAML-safe) dict of a config dataclass, recursively."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            out[f.name] = to_dict(v)
        elif isinstance(v, tuple):
            out[f.name] = list(v)
        else:
            out[f.name] = v
    return out


def field_docs(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help + range) for each field: used by docs and ``hieralloc list``."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not _MISSING else (
            f.default_factory() if f.default_factory is not _MISSING else None
        )
        rng = describe_range(f)
        rows.append((f.name, _type_name(hints[f.name]), default,
                     f.metadata.get("help", "") + (f" ({rng})" if rng else "")))
    return rows


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


# ---------------------------------------------------------------------------------------------
# Coercion of untyped (YAML / command-line) values into field types


def _coerce(tp: Any, value: Any, key: str, source: str) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, key, source)
            except ConfigError as e:
                errors.append(e.problem)
        raise ConfigError(key, "; ".join(errors), source)
    if origin is Literal:
        if value not in args:
            raise ConfigError(key, f"must be one of {', '.join(repr(a) for a in args)}, got {value!r}",
                              source)
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"must be a mapping of {tp.__name__} fields, got {value!r}", source)
        return from_dict(tp, value, source, prefix=key + ".")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"must be true or false, got {value!r}", source)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(key, f"must be an integer, got {value!r}", source)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(key, f"must be a finite number, got {value!r}", source)
            return value
        if isinstance(value, str):
            try:
                f = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(f):
                    return f
        raise ConfigError(key, f"must be a number, got {value!r}", source)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(key, f"must be a string, got {value!r}", source)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list, got {value!r}", source)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value))
        if origin is tuple and args:
            if len(value) != len(args):
                raise ConfigError(key, f"must have {len(args)} elements, got {len(value)}", source)
            return tuple(_coerce(a, v, f"{key}[{i}]", source) for i, (a, v) in enumerate(zip(args, value, strict=True)))
        inner = args[0] if args else Any
        seq = [_coerce(inner, v, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"must be a mapping, got {value!r}", source)
        return dict(value)
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(key, f"has unsupported type {tp!r}", source)


def from_dict(
    cls: type[C],
    data: Mapping[str, Any] | None,
    source: str | Mapping[str, str] = "python",
    prefix: str = "",
) -> C:
    """Build ``cls`` from a plain mapping, checking keys, types and ranges.

    ``source`` is either one label for every key or a mapping from dotted key to label (so a
    value from ``--config run.yaml`` and one from the command line are blamed correctly).
    """
    data = data or {}
    if not isinstance(data, Mapping):
        src = source if isinstance(source, str) else "config"
        raise ConfigError(prefix.rstrip(".") or "<root>", f"must be a mapping, got {data!r}", src)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    def src_of(k: str) -> str:
        if isinstance(source, str):
            return source
        full = prefix + k
        best = "defaults"
        for key, s in source.items():
            if full == key or full.startswith(key + ".") or key.startswith(full + "."):
                best = s
        return best

    for k in data:
        if k not in fields:
            valid = ", ".join(sorted(fields))
            raise ConfigError(prefix + str(k), f"unknown key; valid keys here: {valid}", src_of(str(k)))
    kwargs = {}
    for k, v in data.items():
        sub_source: str | Mapping[str, str] = source
        tp = hints[k]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(v, Mapping):
            kwargs[k] = from_dict(tp, v, sub_source, prefix=prefix + k + ".")
        else:
            kwargs[k] = _coerce(tp, v, prefix + k, src_of(k))
    try:
        obj = cls(**kwargs)
    except ConfigError as e:
        full = e.key if e.key.startswith(prefix) else prefix + e.key
        raise ConfigError(full, e.problem, e.source or src_of(e.key.split(".")[0])) from None
    return obj


def parse_override(text: str, source: str = "command line") -> tuple[str, Any]:
    """Split ``a.b=value`` and parse the value as YAML (``3`` -> int, ``true`` -> bool)."""
    if "=" not in text:
        raise ConfigError(text, "overrides must look like key=value (e.g. env.n_agents=10)", source)
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(text, "override key is empty or malformed", source)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def set_dotted(tree: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Assign ``tree[a][b] = value`` for ``key == 'a.b'``, creating sections as needed."""
    parts = key.split(".")
    node = tree
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(".".join(parts[: i + 1]), "is a value, not a section", source)
        node = nxt
    node[parts[-1]] = value


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; errors name the file and the fix."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--config", f"file '{p}' does not exist", str(p))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError("<file>", f"is not valid YAML{where}: {getattr(e, 'problem', e)}", str(p)) from None
    except UnicodeDecodeError:
        raise ConfigError("<file>", "is not a UTF-8 text file", str(p)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("<file>", f"must contain a mapping at the top level, got {type(data).__name__}",
                          str(p))
    return data


def flatten_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.extend(flatten_keys(v, prefix + str(k) + "."))
        else:
            out.append(prefix + str(k))
    return out


def merge_sources(
    file_tree: Mapping[str, Any] | None,
    file_label: str | None,
    overrides: Iterable[str],
    override_label: str = "command line",
) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge a YAML tree and ``key=value`` overrides, remembering where each key came from."""
    tree: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if file_tree:
        tree = _deepcopy_tree(file_tree)
        for k in flatten_keys(file_tree):
            sources[k] = file_label or "config file"
    for text in overrides:
        key, value = parse_override(text, override_label)
        set_dotted(tree, key, value, override_label)
        sources[key] = f"{override_label} '{text}'"
    return tree, sources


def _deepcopy_tree(t: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deepcopy_tree(v) if isinstance(v, Mapping) else v for k, v in t.items()}
