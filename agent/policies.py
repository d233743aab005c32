"""Exploration policies for data collection.

Each policy is built once per episode with its own RNG and called as ``policy(env) -> action``
with the unwrapped task (so the noisy oracle can read the true state); one marked ``wants_obs``
(a trained policy) is called as ``policy(env, obs)`` with the latest observation too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Policy = Callable[[object], np.ndarray]


def uniform_random(rng: np.random.Generator, dim: int) -> Policy:
    """Independent uniform actions in [-1, 1]."""
    return lambda env: rng.uniform(-1.0, 1.0, dim)


def repeated_random(rng: np.random.Generator, dim: int, max_repeat: int = 8) -> Policy:
    """Uniform actions held for a random 1..max_repeat steps, so the data covers distance."""
    state = {"a": rng.uniform(-1.0, 1.0, dim), "left": 0}

    def act(env: object) -> np.ndarray:
        if state["left"] == 0:
            state["a"] = rng.uniform(-1.0, 1.0, dim)
            state["left"] = int(rng.integers(1, max_repeat + 1))
        state["left"] -= 1
        return state["a"].copy()

    return act


def ornstein_uhlenbeck(
    rng: np.random.Generator, dim: int, theta: float = 0.15, sigma: float = 0.4
) -> Policy:
    """Ornstein-Uhlenbeck noise clipped to [-1, 1]: smooth, temporally correlated actions."""
    state = {"a": rng.uniform(-1.0, 1.0, dim)}

    def act(env: object) -> np.ndarray:
        a = state["a"]
        state["a"] = np.clip(a - theta * a + sigma * rng.standard_normal(dim), -1.0, 1.0)
        return state["a"].copy()

    return act


def noisy_oracle(
    rng: np.random.Generator, dim: int, sigma: float = 0.3, eps: float = 0.2
) -> Policy:
    """The task's oracle plus Gaussian noise; with probability ``eps`` a uniform action."""

    def act(env: object) -> np.ndarray:
        if rng.random() < eps:
            return rng.uniform(-1.0, 1.0, dim)
        return np.clip(env.oracle_action() + sigma * rng.standard_normal(dim), -1.0, 1.0)

    return act


def oracle_segments(
    rng: np.random.Generator,
    dim: int,
    push: tuple[int, int] = (10, 30),
    wander: tuple[int, int] = (5, 15),
    sigma: float = 0.1,
) -> Policy:
    """Alternate segments of the oracle (small Gaussian noise, ``push`` steps) and of
    Ornstein-Uhlenbeck exploration (``wander`` steps): purposeful contact for object tasks whose
    random data barely touches the object (Push-T), plus off-oracle actions for the planner."""
    ou = ornstein_uhlenbeck(rng, dim)
    state = {"oracle": True, "left": int(rng.integers(push[0], push[1] + 1))}

    def act(env: object) -> np.ndarray:
        if state["left"] == 0:
            state["oracle"] = not state["oracle"]
            lo, hi = push if state["oracle"] else wander
            state["left"] = int(rng.integers(lo, hi + 1))
        state["left"] -= 1
        if state["oracle"]:
            return np.clip(env.oracle_action() + sigma * rng.standard_normal(dim), -1.0, 1.0)
        return ou(env)

    return act


def push_explore(
    rng: np.random.Generator, dim: int, sigma: float = 0.1, eps: float = 0.5
) -> Policy:
    """The task's oracle with a chance ``eps`` that each push it plans is a random one of its
    candidates instead of the best (``exploring_oracle_action``, Push-T), plus Gaussian noise:
    contact data across the pushes a primitive planner scores, not only the good ones."""

    def act(env: object) -> np.ndarray:
        if not hasattr(env, "exploring_oracle_action"):
            raise ValueError(
                f"policy=push_explore needs a task with exploring_oracle_action (push_t); "
                f"{type(env).__name__} has none: use noisy_oracle"
            )
        a = env.exploring_oracle_action(rng, eps)
        return np.clip(a + sigma * rng.standard_normal(dim), -1.0, 1.0)

    return act


POLICIES: dict[str, Callable[..., Policy]] = {
    "random": uniform_random,
    "repeat": repeated_random,
    "ou": ornstein_uhlenbeck,
    "noisy_oracle": noisy_oracle,
    "oracle_segments": oracle_segments,
    "push_explore": push_explore,
}
#: the policies that call the task's oracle to act
ORACLE_DRIVEN = ("noisy_oracle", "oracle_segments")
#: "mixed" draws one of these per episode
MIXED = ("repeat", "ou", "noisy_oracle")


#: the learned policy's name; it needs ``policy_checkpoint`` (see agent.collector)
LEARNED = "gcbc"
#: ``noisy_learned``'s (sigma, eps) unless a collection sets them
LEARNED_NOISE = (0.2, 0.1)
#: the policies whose noise a collection may set (``policy_sigma``, ``policy_eps``)
NOISY = (LEARNED, "noisy_oracle", "push_explore")


def noisy_learned(
    rng: np.random.Generator,
    dim: int,
    policy: object,
    sigma: float = LEARNED_NOISE[0],
    eps: float = LEARNED_NOISE[1],
) -> Policy:
    """A trained goal-conditioned policy (``reset(goal)`` / ``act(obs)``, e.g.
    ``agent.gcbc.GCBCPolicy``) toward the episode's goal plus Gaussian noise; with probability
    ``eps`` a uniform action. Called as ``act(env, obs)``: it reads the latest observation."""
    state: dict[str, object] = {"env": None}

    def act(env: object, obs: dict[str, np.ndarray]) -> np.ndarray:
        if state["env"] is None:  # first step of the episode: aim at its goal
            policy.reset(env.goal_observation())
            state["env"] = env
        a = np.asarray(policy.act(obs), np.float64)
        if rng.random() < eps:
            return rng.uniform(-1.0, 1.0, dim)
        return np.clip(a + sigma * rng.standard_normal(dim), -1.0, 1.0)

    act.wants_obs = True  # type: ignore[attr-defined]
    return act


def policy_choices(name: str) -> list[str]:
    """The policies an episode of ``name`` is drawn from: ``mixed`` is ``MIXED``, ``a+b+c``
    one of those (uniformly, per episode), anything else itself. Raises on an unknown name."""
    choices = list(MIXED) if name == "mixed" else name.split("+")
    unknown = [c for c in choices if c not in POLICIES and c != LEARNED]  # "" and "a+" too
    if unknown:
        raise ValueError(
            f"policy={name!r}: unknown {unknown!r}; choose one of {[*POLICIES, LEARNED, 'mixed']}"
            " or join several with '+' (one drawn per episode, e.g. repeat+ou+oracle_segments)"
        )
    return choices


def make_policy(
    name: str,
    rng: np.random.Generator,
    dim: int,
    learned: object | None = None,
    noise: dict[str, float] | None = None,
) -> Policy:
    """One episode's policy; ``learned`` is the trained policy that ``gcbc`` drives.
    ``noise`` (``sigma``: Gaussian sigma, ``eps``: chance of a uniform action) is that trained
    policy's when there is one (the noisy oracle of the same collection keeps its own), else
    the noisy oracle's; the other policies ignore it."""
    choices = policy_choices(name)
    if len(choices) > 1:
        name = choices[int(rng.integers(len(choices)))]
    if name == LEARNED:
        if learned is None:
            raise ValueError(
                f"policy={LEARNED} needs a trained policy: set policy_checkpoint=<gcbc>.safetensors"
            )
        return noisy_learned(rng, dim, learned, **(noise or {}))
    if name in NOISY and learned is None:
        return POLICIES[name](rng, dim, **(noise or {}))
    return POLICIES[name](rng, dim)
