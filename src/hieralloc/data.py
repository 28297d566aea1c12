"""Known datasets, the data-directory setting, and verification by checksum.

Datasets are never shipped inside hieralloc. They live in a data directory chosen by, in order:
the ``--data-dir`` option, the ``HIERALLOC_DATA_DIR`` environment variable, or
``~/.cache/hieralloc/data``. Each dataset has a fixed relative path there, e.g.
``amod/scenario_nyc_brooklyn.json``.

The mobility-on-demand scenarios are the thirteen city files of Gammelli et al.'s public repository
(MIT licence; attribution in docs/data.md), pinned to one commit and checked by SHA-256.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from hieralloc.errors import DataError, UnknownNameError

ENV_VAR = "HIERALLOC_DATA_DIR"
DEFAULT_DIR = Path("~/.cache/hieralloc/data")

AMOD_ORIGIN = ("https://raw.githubusercontent.com/DanieleGammelli/graph-meta-rl-for-amod/"
               "bd6fe8cd561ab70e85d360966715a53a0a56386c/data/{file}")

# SHA-256 of the thirteen city files at the pinned commit (from the dataset's SHA256SUMS).
_AMOD_SHA256 = {
    "chicago": "7e0802d12dc3a92219542a9178355a67d01e94c1649fb0e276fa8e80d22e7b07",
    "nyc_brooklyn": "384b2fdfc023b66a1d88736ce216452a1a03753d908c386e806f8c025ef28bab",
    "nyc_man_middle": "2d681eef3069dd31aa7667014fe9ec04ebce0d8e62f0a01c0ef6f2ff45c5200d",
    "nyc_man_north": "c5ec096d56a40508e85afafb1e845acac6e652eb2ec9150637992ff14cdac0fd",
    "nyc_man_south": "99994cd0da4beb833a873d8263dfc26aa34aa22684e85dacc2c7c4f2a5e08b58",
    "porto": "2ab57ff1d59cdfcb2ecaf7b06206750156f1b5409fd09cd05aa71f14d96cccdc",
    "rome": "fb17038224349bf392a466e3ef3fdfc2f1ad108eea96119d1108cbd88db714c1",
    "san_francisco": "632c9572f7e28aa33bfdf3c81b8863005b4c89a40833aac856e4b747e5fabf19",
    "shenzhen_baoan": "cf99eeb8a70e5c4b24f4d1ce4bfe552819afbeac4cbb196f4e377a6c3fc0c118",
    "shenzhen_downtown_east": "18108c9b4ad1868ddc75bd4638ab710f7e26918c483a8a452e9966cefc767d9e",
    "shenzhen_downtown_west": "c867b2b0f2373b28657e4a87e3f603ae71771e5a8e36e0680d479fa6cfaeb1b5",
    "shenzhen_north": "9475c8b6ab64f1411b3ee6cc1ebb2516c9123749c0dd07d08572cbde53d7ea50",
    "washington_dc": "c73fce5c0476de57217e6957b0fd314a6f0441d226de8f8f434e8fd78a3c40d3",
}


@dataclass(frozen=True)
class Dataset:
    """One known data file: its name, place in the data directory, checksum and public origin."""

    name: str
    relpath: str
    sha256: str
    url: str
    description: str


DATASETS: dict[str, Dataset] = {
    f"amod/{city}": Dataset(
        name=f"amod/{city}",
        relpath=f"amod/scenario_{city}.json",
        sha256=digest,
        url=AMOD_ORIGIN.format(file=f"scenario_{city}.json"),
        description=f"mobility-on-demand scenario '{city}' (Gammelli et al., MIT licence)",
    )
    for city, digest in _AMOD_SHA256.items()
}


def data_dir(override: str | Path | None = None) -> Path:
    """The data directory: ``override`` (``--data-dir``), else $HIERALLOC_DATA_DIR, else the default."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DIR.expanduser()


def get_dataset(name: str) -> Dataset:
    if name in DATASETS:
        return DATASETS[name]
    # accept bare city names for the mobility scenarios
    if f"amod/{name}" in DATASETS:
        return DATASETS[f"amod/{name}"]
    raise UnknownNameError("dataset", name, list(DATASETS))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class DatasetStatus:
    dataset: Dataset
    path: Path
    present: bool
    verified: bool | None  # None when not checked (absent)
    detail: str


def status(ds: Dataset, root: Path, check: bool = True) -> DatasetStatus:
    """Whether ``ds`` is in ``root`` and, when ``check``, whether its checksum matches."""
    path = root / ds.relpath
    if not path.is_file():
        return DatasetStatus(ds, path, False, None, "missing")
    if not check:
        return DatasetStatus(ds, path, True, None, "present (not verified)")
    digest = sha256_file(path)
    if digest != ds.sha256:
        return DatasetStatus(ds, path, True, False,
                             f"checksum mismatch (got {digest[:12]}…, expected {ds.sha256[:12]}…): "
                             "the file is damaged or a different version; fetch it again")
    return DatasetStatus(ds, path, True, True, "verified")


def require(name: str, root: str | Path | None = None, verify: bool = True) -> Path:
    """Path of a known dataset, raising :class:`DataError` that says how to get it when absent."""
    ds = get_dataset(name)
    base = data_dir(root)
    st = status(ds, base, check=verify)
    if not st.present:
        raise DataError(f"dataset '{ds.name}' is not in the data directory {base} (expected {st.path}); "
                        f"set --data-dir or ${ENV_VAR} to the folder holding '{ds.relpath}', "
                        f"or download it from {ds.url}")
    if st.verified is False:
        raise DataError(f"dataset '{ds.name}' at {st.path}: {st.detail}")
    return st.path
