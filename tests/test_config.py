"""Config dataclasses: YAML + dotted overrides resolve into validated dataclasses with one-line errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hieralloc.config import Config, from_dict, load_yaml, merge_sources, param, parse_override, to_dict
from hieralloc.errors import ConfigError


@dataclass
class Inner(Config):
    width: int = param(3, "window width", low=1, high=9)


@dataclass
class Outer(Config):
    n: int = param(5, "count", low=1)
    rate: float = param(0.5, "a rate", low=0.0, high=1.0)
    mode: str = param("a", "mode", choices=("a", "b"))
    flag: bool = param(False, "a flag")
    sizes: tuple[int, ...] = param((1, 2), "sizes")
    inner: Inner = field(default_factory=Inner)


def test_defaults_and_roundtrip() -> None:
    cfg = from_dict(Outer, {})
    assert cfg == Outer()
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_yaml_and_overrides_resolve_with_types(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("n: 7\ninner:\n  width: 5\n")
    tree, sources = merge_sources(load_yaml(f), str(f), ["rate=0.25", "mode=b", "sizes=[3,4]", "flag=true"])
    cfg = from_dict(Outer, tree, sources)
    assert (cfg.n, cfg.rate, cfg.mode, cfg.flag, cfg.sizes, cfg.inner.width) == (7, 0.25, "b", True, (3, 4), 5)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("nn=3", "valid keys here: flag, inner, mode, n, rate, sizes"),
        ("n=abc", "must be an integer"),
        ("n=0", "in [1, inf]"),
        ("rate=2", "in [0.0, 1.0]"),
        ("rate=.nan", "finite"),
        ("mode=c", "one of 'a', 'b'"),
        ("flag=3", "true or false"),
        ("inner.width=10", "in [1, 9]"),
        ("inner.depth=1", "unknown key"),
    ],
)
def test_bad_override_names_key_range_and_source(override: str, needle: str) -> None:
    tree, sources = merge_sources(None, None, [override])
    with pytest.raises(ConfigError) as e:
        from_dict(Outer, tree, sources)
    msg = str(e.value)
    assert needle in msg
    assert override.split("=")[0] in msg
    assert f"command line '{override}'" in msg
    assert "\n" not in msg


def test_bad_value_in_file_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("inner:\n  width: -1\n")
    tree, sources = merge_sources(load_yaml(f), str(f), [])
    with pytest.raises(ConfigError, match=r"inner.width.*bad.yaml.*\[1, 9\]"):
        from_dict(Outer, tree, sources)


@pytest.mark.parametrize("text", ["a: [1, 2\n", "- 1\n- 2\n", "\x00\x01"])
def test_malformed_yaml_is_one_clear_error(tmp_path: Path, text: str) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match="m.yaml"):
        load_yaml(f)


def test_missing_file_and_malformed_override(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("justakey")
    with pytest.raises(ConfigError, match="malformed"):
        parse_override("a..b=1")


def test_python_construction_validates_too() -> None:
    with pytest.raises(ConfigError, match="'n'"):
        Outer(n=-3)
