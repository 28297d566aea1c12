"""Benchmark presets: every ``*.yaml`` in this folder is registered under its file stem.

``hieralloc list`` shows them with the YAML's ``description:``; ``hieralloc bench <name>`` runs one.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from hieralloc.registry import PresetSpec, register_preset

PRESET_DIR = Path(__file__).resolve().parent


def _description(path: Path) -> str:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return "(unreadable preset file)"
    desc = data.get("description", "") if isinstance(data, dict) else ""
    return str(desc).strip().splitlines()[0] if desc else ""


def register_all() -> list[PresetSpec]:
    """Register every preset YAML in :data:`PRESET_DIR` (idempotent)."""
    out = []
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        out.append(register_preset(PresetSpec(name=path.stem, path=path, description=_description(path))))
    return out


register_all()
