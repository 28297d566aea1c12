"""``hieralloc data fetch``: download known datasets from their public origin into the data directory.

Each file is streamed with :mod:`urllib` into a temporary file in the destination folder while its
SHA-256 is computed; only a complete file with the expected checksum is moved into place with
:func:`os.replace` (atomic on one file system). A broken connection, an HTTP error or a checksum
mismatch removes the temporary file, so no partial or wrong file is ever left under the dataset's
name. Files already present with the right checksum are skipped; present but damaged files are
downloaded again.

The origin is a URL pattern with ``{file}`` for the file name (default
:data:`hieralloc.data.AMOD_ORIGIN`, the pinned commit of Gammelli et al.'s repository). The
environment variable ``HIERALLOC_DATA_URL`` (or the ``base_url`` argument) overrides it for mirrors
and tests; a value without ``{file}`` is a folder URL and gets ``/{file}`` appended.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from hieralloc.data import AMOD_ORIGIN, DATASETS, Dataset, data_dir, get_dataset, sha256_file
from hieralloc.errors import DataError

URL_ENV_VAR = "HIERALLOC_DATA_URL"
CHUNK = 1 << 16


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch` did for one dataset: ``status`` is ``'downloaded'`` or ``'present'``."""

    name: str
    path: Path
    status: str
    url: str
    bytes: int


def origin_pattern(base_url: str | None = None) -> str:
    """The URL pattern used: ``base_url``, else ``$HIERALLOC_DATA_URL``, else the public origin."""
    pattern = base_url or os.environ.get(URL_ENV_VAR) or AMOD_ORIGIN
    if "{file}" not in pattern:
        pattern = pattern.rstrip("/") + "/{file}"
    scheme = urllib.parse.urlsplit(pattern).scheme
    if scheme not in ("http", "https", "file"):
        raise DataError(f"data URL {pattern!r} must start with http://, https:// or file:// "
                        f"(set --url or ${URL_ENV_VAR} to a mirror, or unset it for the public origin)")
    return pattern


def resolve_names(names: Iterable[str]) -> list[Dataset]:
    """Datasets for ``names``: dataset names, bare city names, or ``all`` (every known dataset)."""
    out: dict[str, Dataset] = {}
    for n in names:
        if n == "all":
            out.update(DATASETS)
        else:
            ds = get_dataset(n)
            out[ds.name] = ds
    if not out:
        raise DataError("name at least one dataset to fetch, or 'all' (see 'hieralloc data list')")
    return list(out.values())


def _download(ds: Dataset, url: str, dest: Path, timeout: float) -> int:
    """Stream ``url`` into ``dest`` atomically after checking the checksum; returns bytes written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (scheme checked)
                    announced = resp.headers.get("Content-Length")
                    while block := resp.read(CHUNK):
                        out.write(block)
                        h.update(block)
                        size += len(block)
                    # read(n) returns b"" when the server closes early: compare with the announced length
                    if announced is not None and announced.isdigit() and size != int(announced):
                        raise http.client.IncompleteRead(b"", int(announced) - size)
            except urllib.error.HTTPError as e:
                raise DataError(f"dataset '{ds.name}': {url} answered HTTP {e.code} {e.reason}; check the URL "
                                f"(--url or ${URL_ENV_VAR}) or try again later") from None
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as e:
                reason = getattr(e, "reason", None) or (
                    "connection closed early" if isinstance(e, http.client.IncompleteRead) else e.__class__.__name__)
                raise DataError(f"dataset '{ds.name}': downloading {url} failed after {size} bytes ({reason}); "
                                f"check the network connection or set ${URL_ENV_VAR} to a mirror, "
                                "then run the command again") from None
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if digest != ds.sha256:
            raise DataError(f"dataset '{ds.name}': the file from {url} ({size} bytes) has SHA-256 {digest[:12]}…, "
                            f"expected {ds.sha256[:12]}…; it is damaged or a different version, so it was not "
                            f"saved; check the URL (--url or ${URL_ENV_VAR}) or try again")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return size


def fetch(
    names: Iterable[str],
    root: str | Path | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    report: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Download the datasets ``names`` (``'all'`` for every known one) into the data directory.

    Args:
        names: dataset names (``amod/nyc_brooklyn``), bare city names (``nyc_brooklyn``) or ``all``.
        root: data directory (default :func:`hieralloc.data.data_dir`: $HIERALLOC_DATA_DIR or
            ``~/.cache/hieralloc/data``).
        base_url: URL pattern with ``{file}`` or folder URL (default ``$HIERALLOC_DATA_URL``, else
            the public origin).
        timeout: seconds per network operation.
        report: called with each :class:`FetchResult` as soon as that dataset is done (CLI output).

    Returns the results of the successful datasets. Every dataset is attempted; if any failed, a
    :class:`DataError` listing each failure is raised after the others are done (the successful
    files stay).
    """
    datasets = resolve_names(names)
    pattern = origin_pattern(base_url)
    base = data_dir(root)
    results: list[FetchResult] = []
    failures: list[str] = []
    for ds in datasets:
        dest = base / ds.relpath
        file_name = Path(ds.relpath).name
        url = pattern.format(file=file_name)
        if dest.is_file() and sha256_file(dest) == ds.sha256:
            res = FetchResult(ds.name, dest, "present", url, dest.stat().st_size)
        else:
            try:
                size = _download(ds, url, dest, timeout)
            except DataError as e:
                failures.append(str(e))
                continue
            res = FetchResult(ds.name, dest, "downloaded", url, size)
        results.append(res)
        if report is not None:
            report(res)
    if failures:
        if len(failures) == 1:
            raise DataError(failures[0])
        raise DataError(f"{len(failures)} of {len(datasets)} datasets failed: " + " | ".join(failures))
    return results


__all__ = ["URL_ENV_VAR", "FetchResult", "fetch", "origin_pattern", "resolve_names"]
