"""n-step and TD(lambda) targets of the value-based family against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from hieralloc.algos.value.targets import lambda_targets, nstep_targets

# column 0: terminated 3-step episode; column 1: 2 steps truncated (bootstrapped), then padding
REWARD = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 0.0]])
NEXT_V = torch.tensor([[10.0, 4.0], [20.0, 8.0], [30.0, 0.0]])
DONE = torch.tensor([[False, False], [False, False], [True, False]])
VALID = torch.tensor([[True, True], [True, True], [True, False]])


@pytest.mark.parametrize(("n", "expected"), [
    (1, [[6.0, 3.0], [12.0, 5.0], [3.0, 0.0]]),
    (2, [[7.0, 3.5], [3.5, 5.0], [3.0, 0.0]]),
    (3, [[2.75, 3.5], [3.5, 5.0], [3.0, 0.0]]),  # column 0 = Monte-Carlo return 1 + 0.5 * 2 + 0.25 * 3
])
def test_nstep_targets(n: int, expected: list[list[float]]) -> None:
    y = nstep_targets(REWARD, DONE, VALID, NEXT_V, 0.5, n)
    torch.testing.assert_close(y[:, 0], torch.tensor(expected)[:, 0])
    torch.testing.assert_close(y[:2, 1], torch.tensor(expected)[:2, 1])


def test_lambda_targets() -> None:
    y = lambda_targets(REWARD, DONE, VALID, NEXT_V, 0.5, 0.5)
    # t2: 3; t1: 2 + 0.5 (0.5 * 20 + 0.5 * 3); t0: 1 + 0.5 (0.5 * 10 + 0.5 * 7.75)
    torch.testing.assert_close(y[:, 0], torch.tensor([5.4375, 7.75, 3.0]))
    # truncated column: t1 bootstraps on V = 8 alone; t0: 1 + 0.5 (0.5 * 4 + 0.5 * 5)
    torch.testing.assert_close(y[:2, 1], torch.tensor([3.25, 5.0]))
    # lambda = 0 is the one-step target, lambda = 1 the Monte-Carlo return bootstrapped at the end
    torch.testing.assert_close(lambda_targets(REWARD, DONE, VALID, NEXT_V, 0.5, 0.0),
                               nstep_targets(REWARD, DONE, VALID, NEXT_V, 0.5, 1))
    torch.testing.assert_close(lambda_targets(REWARD, DONE, VALID, NEXT_V, 0.5, 1.0)[:2],
                               nstep_targets(REWARD, DONE, VALID, NEXT_V, 0.5, 3)[:2])
    with pytest.raises(ValueError):
        nstep_targets(REWARD, DONE, VALID, NEXT_V, 0.5, 0)
