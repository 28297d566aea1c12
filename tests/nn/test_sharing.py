"""Parameter-sharing modes of AgentNet: shapes, equivalence with separate networks, group reassignment."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hieralloc.nn.sharing import SHARING_MODES, AgentNet, GroupLayout, GroupLinear

torch.set_num_threads(1)


@pytest.mark.parametrize("mode", SHARING_MODES)
@pytest.mark.parametrize("recurrent", [True, False])
def test_output_shapes_per_mode(mode: str, recurrent: bool) -> None:
    torch.manual_seed(0)
    net = AgentNet(5, 7, 4, mode, n_groups=2, hidden=8, recurrent=recurrent)
    expected_groups = {"none": 4, "full": 1, "full_id": 1, "grouped": 2}[mode]
    assert net.fc1.weight.shape[0] == expected_groups
    assert net.fc1.weight.shape[1] == 5 + (4 if mode == "full_id" else 0)
    y, h = net(torch.randn(6, 3, 4, 5))
    assert y.shape == (6, 3, 4, 7)
    assert h.shape == (3, 4, 8 if recurrent else 0)
    # carrying the hidden state step by step gives the same outputs as one unrolled call
    x = torch.randn(5, 2, 4, 5)
    full, _ = net(x)
    hs = net.initial_hidden(2)
    steps = []
    for t in range(5):
        yt, hs = net(x[t : t + 1], None, hs)
        steps.append(yt)
    torch.testing.assert_close(torch.cat(steps), full)


def _reference_nets(net: AgentNet) -> list[tuple[nn.Linear, nn.GRUCell, nn.Linear]]:
    """One plain PyTorch FC-GRU-FC network per parameter group, holding that group's weights."""
    assert net.rnn is not None
    out = []
    for g in range(net.n_groups):
        fc1 = nn.Linear(net.fc1.in_features, net.hidden)
        gru = nn.GRUCell(net.hidden, net.hidden)
        fc2 = nn.Linear(net.hidden, net.out_dim)
        with torch.no_grad():
            fc1.weight.copy_(net.fc1.weight[g].T)
            fc1.bias.copy_(net.fc1.bias[g, 0])
            gru.weight_ih.copy_(net.rnn.weight_ih[g].T)
            gru.weight_hh.copy_(net.rnn.weight_hh[g].T)
            gru.bias_ih.copy_(net.rnn.bias_ih[g, 0])
            gru.bias_hh.copy_(net.rnn.bias_hh[g, 0])
            fc2.weight.copy_(net.out.weight[g].T)
            fc2.bias.copy_(net.out.bias[g, 0])
        out.append((fc1, gru, fc2))
    return out


def _run_reference(ref: tuple[nn.Linear, nn.GRUCell, nn.Linear], x: torch.Tensor) -> torch.Tensor:
    fc1, gru, fc2 = ref
    h = torch.zeros(x.shape[1], gru.hidden_size)
    ys = []
    for t in range(x.shape[0]):
        h = gru(torch.relu(fc1(x[t])), h)
        ys.append(fc2(h))
    return torch.stack(ys)


@pytest.mark.parametrize("mode", ["grouped", "none"])
def test_singleton_groups_equal_separate_per_agent_networks(mode: str) -> None:
    torch.manual_seed(1)
    n = 3
    net = AgentNet(4, 5, n, mode, n_groups=n, hidden=6, recurrent=True)
    assignment = [2, 0, 1] if mode == "grouped" else [0, 1, 2]
    net.set_assignment(assignment)
    refs = _reference_nets(net)
    x = torch.randn(7, 2, n, 4)
    y, _ = net(x)
    for i in range(n):
        torch.testing.assert_close(y[:, :, i], _run_reference(refs[assignment[i]], x[:, :, i]), rtol=1e-5, atol=1e-5)


def test_reassigning_groups_changes_the_parameters_used() -> None:
    torch.manual_seed(2)
    net = AgentNet(4, 3, 3, "grouped", n_groups=2, hidden=8, recurrent=True)
    x = torch.randn(4, 1, 3, 4)
    y_a, _ = net(x, torch.tensor([0, 0, 1]))
    y_b, _ = net(x, torch.tensor([1, 0, 1]))
    assert not torch.allclose(y_a[:, :, 0], y_b[:, :, 0])  # agent 0 switched groups
    torch.testing.assert_close(y_a[:, :, 1:], y_b[:, :, 1:])  # the others did not
    # agent 0 in group 1 computes exactly what agent 2 (group 1) computes on the same input
    x_same = x.clone()
    x_same[:, :, 0] = x[:, :, 2]
    y_c, _ = net(x_same, torch.tensor([1, 0, 1]))
    torch.testing.assert_close(y_c[:, :, 0], y_c[:, :, 2])
    # gradients reach only the groups in use
    net.zero_grad()
    y, _ = net(x, torch.tensor([0, 0, 0]))
    y.sum().backward()
    assert net.fc1.weight.grad is not None
    assert net.fc1.weight.grad[0].abs().sum() > 0 and net.fc1.weight.grad[1].abs().sum() == 0
    # a per-episode assignment: episode 0 uses [0, 0, 0], episode 1 uses [1, 1, 1]
    xb = torch.randn(4, 2, 3, 4)
    y2, _ = net(xb, torch.tensor([[0, 0, 0], [1, 1, 1]]))
    y0, _ = net(xb[:, :1], torch.tensor([0, 0, 0]))
    y1, _ = net(xb[:, 1:], torch.tensor([1, 1, 1]))
    torch.testing.assert_close(y2, torch.cat([y0, y1], 1))


def test_full_id_is_shared_network_with_agent_id_input() -> None:
    torch.manual_seed(3)
    net = AgentNet(4, 2, 3, "full_id", hidden=5, recurrent=False)
    x = torch.randn(1, 1, 3, 4)
    x[..., 1, :] = x[..., 0, :]  # same observation, different agents
    y, _ = net(x)
    assert not torch.allclose(y[..., 0, :], y[..., 1, :])  # the id tells them apart
    shared = AgentNet(4, 2, 3, "full", hidden=5, recurrent=False)
    y2, _ = shared(x)
    torch.testing.assert_close(y2[..., 0, :], y2[..., 1, :])


def test_layout_pack_unpack_roundtrip_and_padding() -> None:
    groups = torch.tensor([2, 0, 2, 2, 1, 0])
    lay = GroupLayout(groups, 3)
    assert (lay.G, lay.C) == (3, 3)
    x = torch.arange(12.0).reshape(6, 2)
    packed = lay.pack(x)
    assert packed.shape == (3, 3, 2)
    torch.testing.assert_close(lay.unpack(packed), x)
    # group 0 holds rows 1 and 5 (then a zero pad), group 1 row 4, group 2 rows 0, 2, 3
    torch.testing.assert_close(packed[0], torch.stack([x[1], x[5], torch.zeros(2)]))
    torch.testing.assert_close(packed[2], x[[0, 2, 3]])
    with pytest.raises(ValueError, match="group ids"):
        GroupLayout(torch.tensor([0, 3]), 3)


def test_group_linear_is_one_linear_per_group() -> None:
    torch.manual_seed(4)
    gl = GroupLinear(3, 4, 2)
    x = torch.randn(3, 5, 4)
    y = gl(x)
    for g in range(3):
        torch.testing.assert_close(y[g], x[g] @ gl.weight[g] + gl.bias[g])


def test_bad_assignment_is_rejected() -> None:
    net = AgentNet(2, 2, 3, "full_id", hidden=4)
    with pytest.raises(ValueError, match="fixed assignment"):
        net.set_assignment([0, 1, 0])
    g = AgentNet(2, 2, 3, "grouped", n_groups=2, hidden=4)
    with pytest.raises(ValueError, match="one group per agent"):
        g.set_assignment([0, 1])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        g.set_assignment([0, 2, 1])
