"""Progress display for long work: a rich bar with ETA and the latest metric, or nothing (--quiet)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Bar:
    """One progress task; ``update`` advances it and shows the latest metric text."""

    def __init__(self, progress: Progress | None, total: float, description: str) -> None:
        self._p = progress
        self._task = progress.add_task(description, total=total, metric="") if progress else None

    def log(self, text: str) -> None:
        """Print a line above the bar (to stderr when the bar is off)."""
        if self._p is None:
            print(text, file=sys.stderr)
        else:
            self._p.console.print(text, highlight=False, soft_wrap=True, markup=False)

    def update(self, completed: float | None = None, advance: float | None = None, metric: str = "") -> None:
        if self._p is None or self._task is None:
            return
        kw: dict[str, Any] = {"metric": metric} if metric else {}
        if completed is not None:
            kw["completed"] = completed
        if advance is not None:
            kw["advance"] = advance
        self._p.update(self._task, **kw)


@contextmanager
def progress_bar(total: float, description: str, quiet: bool = False) -> Iterator[Bar]:
    """Context manager yielding a :class:`Bar` (a no-op one when ``quiet``)."""
    if quiet:
        yield Bar(None, total, description)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[metric]}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as p:
        yield Bar(p, total, description)


def fmt_metrics(metrics: dict[str, Any], keys: tuple[str, ...] | None = None, limit: int = 3) -> str:
    """Short 'k=v' text of a few metrics for the progress bar."""
    items = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and (keys is None or k in keys)]
    return " ".join(f"{k}={v:.4g}" for k, v in items[:limit])
