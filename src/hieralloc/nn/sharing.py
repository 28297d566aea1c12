"""Parameter sharing across agents as one mechanism: G parameter groups and an agent -> group map.

Every multi-agent network in hieralloc (Q-networks, actors, critics) is an :class:`AgentNet`. Its
weights are stacked along a leading *group* dimension, ``weight[g]`` being the parameters of group
``g``, and each agent uses the parameters of its group:

* ``none``: one network per agent (G = N, agent i in group i).
* ``full``: one network for all agents (G = 1).
* ``full_id``: one network, a one-hot agent id appended to every input (G = 1; EPyMARL's
  ``obs_agent_id``, Papoudakis et al. 2021).
* ``grouped``: G = k networks; agents map to groups through an assignment that the caller may
  change between episodes (DyPS, Sec. 3: group-shared policies with a dynamic assignment).

Forward passes are batched per group, never looped over agents: the rows (episode, agent) are
permuted into a padded block ``[G, C, ...]`` (C = largest group size; :class:`GroupLayout`), every
layer is one ``torch.baddbmm`` over the group dimension (:class:`GroupLinear`,
:class:`GroupGRUCell`), and the outputs are permuted back. With ``none`` every group holds exactly
the same number of rows, so there is no padding; with ``full``/``full_id`` the layout is the
identity and the layers are plain matrix products.

Agent bodies (EPyMARL's ``rnn`` and ``mlp`` agents, Papoudakis et al. 2021, App. A):

* recurrent: ``Linear(in, H) -> ReLU -> GRUCell(H, H) -> Linear(H, out)`` (FC-GRU-FC),
* feed-forward: ``Linear(in, H) -> ReLU -> Linear(H, H) -> ReLU -> Linear(H, out)``.

Initialisation per group is PyTorch's default for ``nn.Linear`` / ``nn.GRUCell``, so a
``none``-shared net is distributed exactly like N separately built networks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

SHARING_MODES = ("none", "full", "full_id", "grouped")


def n_param_groups(mode: str, n_agents: int, n_groups: int = 1) -> int:
    """Number of parameter groups G a sharing mode needs."""
    if mode == "none":
        return n_agents
    if mode in ("full", "full_id"):
        return 1
    if mode == "grouped":
        return n_groups
    raise ValueError(f"unknown sharing mode {mode!r}; valid: {', '.join(SHARING_MODES)}")


def default_assignment(mode: str, n_agents: int, n_groups: int = 1) -> list[int]:
    """The agent -> group map of a mode (``grouped``: agent i in group i mod k until reassigned)."""
    if mode == "none":
        return list(range(n_agents))
    if mode in ("full", "full_id"):
        return [0] * n_agents
    return [i % n_groups for i in range(n_agents)]


class GroupLayout:
    """Maps R rows, each tagged with a group, to a padded ``[G, C, ...]`` block and back.

    ``pack`` gathers row ``order[j]`` into slot ``dest[j]`` of the flattened ``[G * C]`` block (the
    rows of group g fill slots ``g * C .. g * C + count_g - 1``; the rest are zero padding whose
    outputs are discarded); ``unpack`` gathers each row's slot back. Both are single index
    operations, differentiable, and computed once per forward pass: the layers in between work on
    the packed block.
    """

    def __init__(self, groups: torch.Tensor, n_groups: int) -> None:
        g = groups.reshape(-1).long()
        self.R = int(g.numel())
        self.G = int(n_groups)
        if self.R and (int(g.min()) < 0 or int(g.max()) >= self.G):
            raise ValueError(f"group ids must lie in [0, {self.G - 1}], got {g.tolist()}")
        self.identity = self.G == 1
        if self.identity:
            self.C = self.R
            return
        order = torch.argsort(g, stable=True)
        counts = torch.bincount(g, minlength=self.G)
        self.C = max(int(counts.max()), 1) if self.R else 1
        starts = torch.cumsum(counts, 0) - counts
        g_sorted = g[order]
        slot = torch.arange(self.R) - starts[g_sorted]
        dest = g_sorted * self.C + slot  # slot of sorted row j in the [G * C] block
        # pack: slot s takes row pack_idx[s] (R = the zero padding row)
        self.pack_idx = torch.full((self.G * self.C,), self.R, dtype=torch.long)
        self.pack_idx[dest] = order
        # unpack: row r reads slot unpack_idx[r]
        self.unpack_idx = torch.empty(self.R, dtype=torch.long)
        self.unpack_idx[order] = dest

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """``[R, *f] -> [G, C, *f]``."""
        if self.identity:
            return x.unsqueeze(0)
        padded = torch.cat([x, x.new_zeros((1, *x.shape[1:]))], 0)
        return padded[self.pack_idx].reshape(self.G, self.C, *x.shape[1:])

    def unpack(self, y: torch.Tensor) -> torch.Tensor:
        """``[G, C, *f] -> [R, *f]``."""
        if self.identity:
            return y.squeeze(0)
        return y.reshape(self.G * self.C, *y.shape[2:])[self.unpack_idx]


class GroupLinear(nn.Module):
    """G independent affine maps applied in one batched product: ``y[g] = x[g] @ W[g] + b[g]``.

    ``weight`` is ``[G, in, out]`` (the transpose of ``nn.Linear.weight`` per group), ``bias``
    ``[G, 1, out]``. Initialised per group like ``nn.Linear`` (uniform in +-1/sqrt(in)).
    """

    def __init__(self, n_groups: int, in_features: int, out_features: int) -> None:
        super().__init__()
        self.n_groups, self.in_features, self.out_features = n_groups, in_features, out_features
        self.weight = nn.Parameter(torch.empty(n_groups, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(n_groups, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``[G, M, in]`` -> ``[G, M, out]``."""
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"groups={self.n_groups}, in={self.in_features}, out={self.out_features}"


class GroupGRUCell(nn.Module):
    """G independent GRU cells (Cho et al. 2014, PyTorch's ``nn.GRUCell`` equations), batched.

        r = sigma(W_ir x + b_ir + W_hr h + b_hr)
        z = sigma(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
        h' = (1 - z) * n + z * h

    The input projection is split out (:meth:`input_gates`) so a whole sequence is projected in one
    product and only the recurrent product runs inside the time loop.
    """

    def __init__(self, n_groups: int, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.n_groups, self.input_size, self.hidden_size = n_groups, input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(n_groups, input_size, 3 * hidden_size))
        self.weight_hh = nn.Parameter(torch.empty(n_groups, hidden_size, 3 * hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(n_groups, 1, 3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(n_groups, 1, 3 * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def input_gates(self, x: torch.Tensor) -> torch.Tensor:
        """``[G, M, in] -> [G, M, 3H]``: W_i x + b_i for the r, z, n gates."""
        return torch.baddbmm(self.bias_ih, x, self.weight_ih)

    def step(self, gx: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One step from precomputed input gates ``gx [G, C, 3H]`` and hidden ``h [G, C, H]``."""
        gh = torch.baddbmm(self.bias_hh, h, self.weight_hh)
        # chunk/unbind (not indexing): their backward concatenates instead of zero-filling copies
        x_r, x_z, x_n = gx.chunk(3, -1)
        h_r, h_z, h_n = gh.chunk(3, -1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return n + z * (h - n)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.step(self.input_gates(x), h)


class AgentNet(nn.Module):
    """A multi-agent network under a parameter-sharing mode (see the module docstring).

    Args:
        in_dim: per-agent input size (without the agent id; ``full_id`` appends it).
        out_dim: per-agent output size (Q-values, policy parameters, or 1 for a value).
        n_agents: number of agents N.
        sharing: one of :data:`SHARING_MODES`.
        n_groups: k for ``grouped`` (ignored otherwise).
        hidden: width H of the hidden layers / GRU state.
        recurrent: FC-GRU-FC body if true, a 3-layer MLP otherwise.

    :meth:`forward` takes time-major inputs ``x [T, B, N, in]``, an optional assignment
    ``groups`` (``[N]`` or per episode ``[B, N]``; default :attr:`assignment`) and an optional
    hidden state ``h0 [B, N, H]``; it returns ``(y [T, B, N, out], h_T [B, N, H])`` (``h_T`` is an
    empty ``[B, N, 0]`` tensor for feed-forward bodies).
    """

    assignment: torch.Tensor

    def __init__(self, in_dim: int, out_dim: int, n_agents: int, sharing: str = "full_id", n_groups: int = 1,
                 hidden: int = 64, recurrent: bool = True) -> None:
        super().__init__()
        if sharing not in SHARING_MODES:
            raise ValueError(f"unknown sharing mode {sharing!r}; valid: {', '.join(SHARING_MODES)}")
        self.in_dim, self.out_dim, self.n_agents = in_dim, out_dim, n_agents
        self.sharing = sharing
        self.n_groups = n_param_groups(sharing, n_agents, n_groups)
        self.hidden = hidden
        self.recurrent = recurrent
        self.use_id = sharing == "full_id"
        d_in = in_dim + (n_agents if self.use_id else 0)
        G = self.n_groups
        self.fc1 = GroupLinear(G, d_in, hidden)
        if recurrent:
            self.rnn: GroupGRUCell | None = GroupGRUCell(G, hidden, hidden)
            self.fc2: GroupLinear | None = None
        else:
            self.rnn = None
            self.fc2 = GroupLinear(G, hidden, hidden)
        self.out = GroupLinear(G, hidden, out_dim)
        self.register_buffer("assignment", torch.tensor(default_assignment(sharing, n_agents, self.n_groups),
                                                        dtype=torch.long))
        self._layout_key: tuple[int, ...] | None = None
        self._layout: GroupLayout | None = None

    @property
    def hidden_dim(self) -> int:
        """Size of the recurrent state (0 for a feed-forward body)."""
        return self.hidden if self.recurrent else 0

    def initial_hidden(self, batch: int) -> torch.Tensor:
        return torch.zeros(batch, self.n_agents, self.hidden_dim)

    def set_assignment(self, groups: Sequence[int] | torch.Tensor) -> None:
        """Set the default agent -> group map (only ``grouped`` may differ from the mode's map)."""
        g = torch.as_tensor(groups, dtype=torch.long).reshape(-1)
        check_assignment(g, self.sharing, self.n_agents, self.n_groups)
        self.assignment.copy_(g)

    def layout(self, groups: torch.Tensor, batch: int) -> GroupLayout:
        """Layout of the ``batch * N`` rows (episode-major, then agent) for an assignment."""
        g = groups.long()
        if g.dim() == 1:
            g = g.unsqueeze(0).expand(batch, -1)
        key = (batch, *g.reshape(-1).tolist()) if g.numel() <= 4096 else None
        if key is not None and key == self._layout_key and self._layout is not None:
            return self._layout
        lay = GroupLayout(g.reshape(-1), self.n_groups)
        if key is not None:
            self._layout_key, self._layout = key, lay
        return lay

    def forward(self, x: torch.Tensor, groups: torch.Tensor | None = None,
                h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        T, B, N, _ = x.shape
        if N != self.n_agents:
            raise ValueError(f"expected {self.n_agents} agents, got input of shape {tuple(x.shape)}")
        if self.use_id:
            eye = torch.eye(N, dtype=x.dtype, device=x.device)
            x = torch.cat([x, eye.expand(T, B, N, N)], dim=-1)
        lay = self.layout(self.assignment if groups is None else groups, B)
        G, C = lay.G, lay.C
        rows = x.permute(1, 2, 0, 3).reshape(B * N, T, x.shape[-1])  # row = (episode, agent)
        xp = lay.pack(rows).reshape(G, C * T, -1)
        z = torch.relu(self.fc1(xp))
        if self.rnn is not None:
            gx = self.rnn.input_gates(z).reshape(G, C, T, -1).unbind(2)
            h = (z.new_zeros(G, C, self.hidden) if h0 is None
                 else lay.pack(h0.reshape(B * N, self.hidden)))
            hs = []
            for t in range(T):
                h = self.rnn.step(gx[t], h)
                hs.append(h)
            z = torch.stack(hs, dim=2).reshape(G, C * T, self.hidden)
            h_last = lay.unpack(h).reshape(B, N, self.hidden)
        else:
            assert self.fc2 is not None
            z = torch.relu(self.fc2(z))
            h_last = x.new_zeros(B, N, 0)
        y = self.out(z).reshape(G, C, T, self.out_dim)
        y = lay.unpack(y).reshape(B, N, T, self.out_dim).permute(2, 0, 1, 3)
        return y, h_last


def check_assignment(groups: torch.Tensor, sharing: str, n_agents: int, n_groups: int) -> None:
    """Raise ``ValueError`` unless ``groups`` is a valid agent -> group map for the mode."""
    if groups.numel() != n_agents:
        raise ValueError(f"a group assignment needs one group per agent ({n_agents}), got {groups.numel()}")
    if sharing != "grouped":
        fixed = torch.tensor(default_assignment(sharing, n_agents, n_groups))
        if not torch.equal(groups.cpu(), fixed):
            raise ValueError(f"sharing={sharing!r} has the fixed assignment {fixed.tolist()}; "
                             "use sharing='grouped' to assign groups")
        return
    if int(groups.min()) < 0 or int(groups.max()) >= n_groups:
        raise ValueError(f"group ids must lie in [0, {n_groups - 1}], got {groups.tolist()}")


__all__ = ["SHARING_MODES", "AgentNet", "GroupGRUCell", "GroupLayout", "GroupLinear", "check_assignment",
           "default_assignment", "n_param_groups"]
