"""Policy first, planner after: who acts when, and what the control loop sees."""

import numpy as np
import pytest

from agent.handoff import Handoff


class _Actor:
    def __init__(self, name: str, log: list) -> None:
        self.name, self.log, self.plan = name, log, np.zeros((2, 1))

    def reset(self, goal, seed=None) -> None:
        self.log.append(f"reset {self.name}")

    def act(self, obs) -> np.ndarray:
        self.log.append(self.name)
        return np.array([1.0 if self.name == "bc" else -1.0])


def test_the_policy_acts_k_times_then_the_planner_and_reset_starts_over():
    log: list = []
    both = Handoff(_Actor("bc", log), _Actor("mpc", log), steps=2)
    both.reset({})
    acts = [both.act({})[0] for _ in range(4)]
    assert acts == [1.0, 1.0, -1.0, -1.0]
    assert log == ["reset bc", "reset mpc", "bc", "bc", "mpc", "mpc"]
    assert both.plan is not None  # the planner's plan once it acts
    both.reset({})
    assert both.plan is None and both.act({})[0] == 1.0  # a new episode: the policy again


def test_a_handoff_needs_a_positive_step():
    with pytest.raises(ValueError, match="hand off after 1 or more steps"):
        Handoff(None, None, steps=0)
