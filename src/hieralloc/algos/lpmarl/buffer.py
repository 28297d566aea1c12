"""Episode replay for the two levels of LPMARL (App. E: 5,000 episodes, batches of 32 episodes).

:class:`EpisodeRing` stores, per episode, a set of row-major fields (``(rows, ...)`` with ``rows``
= the episode's length ``L``, or ``L + 1`` for fields named in ``plus_one``, e.g. the bootstrap
state after the last decision). Storage is allocated lazily and grows by doubling, up to
``capacity`` episodes (a ring: the oldest episode is overwritten). The learner keeps one ring per
level (steps for the low level, decisions for the high level) and samples both with the same
episode indices (:meth:`EpisodeRing.gather`), so a batch is ``batch_size`` whole episodes, as in
the paper. :meth:`state_dict` holds tensors and plain Python only (``torch.load(weights_only=True)``).

The fields differ from :class:`~hieralloc.algos.marl.EpisodeBuffer`'s fixed time-major set (the low
level needs the next observation under the *same* assignment, the high level variable numbers of
decisions per episode), hence this small generic, episode-major ring on the same slot bookkeeping
(:class:`~hieralloc.algos.marl.RingSlots`). Episodes of mixed sizes (``size_range``)
are stored padded to one agent count (:func:`pad_agents`; the graphs by
:func:`~hieralloc.algos.lpmarl.graph.pad_packed`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from hieralloc.algos.marl import RingSlots


def pad_agents(a: np.ndarray, n_max: int, fill: Any = 0) -> np.ndarray:
    """``a`` ``(rows, N, ...)`` padded along the agent axis (axis 1) to ``n_max`` with ``fill`` (mixed-size
    replay, LPMARL Sec. 5.1.2: dead agents have zero observations, no valid action, task -1, zero reward
    and ``alive = False``); returned unchanged when ``N == n_max``."""
    a = np.asarray(a)
    n = a.shape[1]
    if n == n_max:
        return a
    if n > n_max:
        raise ValueError(f"cannot pad {n} agents down to {n_max}")
    pad = np.full((a.shape[0], n_max - n, *a.shape[2:]), fill, dtype=a.dtype)
    return np.concatenate([a, pad], axis=1)


class EpisodeRing(RingSlots):
    """Ring of ``capacity`` episodes of named fields (module docstring)."""

    def __init__(self, capacity: int, plus_one: Iterable[str] = ()) -> None:
        super().__init__(capacity)
        self.plus_one = frozenset(plus_one)

    def _rows(self, name: str, L: int) -> int:
        return L + 1 if name in self.plus_one else L

    def _grow(self, slots: int, rows_of: dict[str, int]) -> None:
        for k, v in list(self.data.items()):
            rows = max(int(v.shape[1]), rows_of[k])
            n = max(int(v.shape[0]), slots)
            if rows == v.shape[1] and n == v.shape[0]:
                continue
            new = torch.zeros((n, rows, *v.shape[2:]), dtype=v.dtype)
            new[: v.shape[0], : v.shape[1]] = v
            self.data[k] = new
        self._grow_lengths(slots)

    def insert(self, length: int, fields: dict[str, np.ndarray]) -> None:
        """Store one episode of ``length`` rows (``length + 1`` for the ``plus_one`` fields)."""
        L = int(length)
        tensors = {k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in fields.items()}
        for k, t in tensors.items():
            if t.shape[0] != self._rows(k, L):
                raise ValueError(f"field {k!r} has {t.shape[0]} rows, expected {self._rows(k, L)}")
        if not self.data:
            self.data = {k: torch.zeros((0, 0, *t.shape[1:]), dtype=t.dtype) for k, t in tensors.items()}
        if set(tensors) != set(self.data):
            raise ValueError(f"episode fields {sorted(tensors)} differ from the buffer's {sorted(self.data)}")
        self._grow(self._slots_needed(), {k: self._rows(k, L) for k in tensors})
        i = self.pos
        for k, t in tensors.items():
            v = self.data[k]
            v[i] = 0
            v[i, : t.shape[0]] = t.to(v.dtype)
        self._advance(L)

    def gather(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """The episodes ``idx``, trimmed to their longest: fields ``(B, R, ...)`` plus ``mask`` ``(B, Lmax)``
        (real rows of the ``length``-row fields) and ``length`` ``(B,)``."""
        lengths = self.lengths[idx]
        T = int(lengths.max()) if lengths.numel() else 0
        out = {k: v.index_select(0, idx)[:, : self._rows(k, T)] for k, v in self.data.items()}
        out["mask"] = torch.arange(T)[None, :] < lengths[:, None]
        out["length"] = lengths
        return out

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {"data": {k: v[:n].clone() for k, v in self.data.items()}, **self._ring_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_ring_state(state)
        self.data = {k: v.clone() for k, v in state["data"].items()}


__all__ = ["EpisodeRing", "pad_agents"]
