"""What every planner shares: bounds, the plan() contract, NaN ranking, the deadline clock.

Shapes: N candidates, H horizon, A action dim; sample-first ``(N, H, A)`` everywhere.

A planner minimizes ``objective: (N, H, A) -> (N,)`` (lower is better) inside the box
``[action_low, action_high]``. ``plan()`` resolves the device, dtype and generator once, then
hands a :class:`Search` to the algorithm's ``_search`` loop. The search evaluates candidates
through :meth:`Search.evaluate`, which ranks NaN/inf costs as worst and keeps the best
candidate ever evaluated, so the returned plan is anytime and ``result.cost`` is exactly the
objective's cost of ``result.actions``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

Objective = Callable[[Tensor], Tensor]  # (N, H, A) -> (N,)
BoundLike = Sequence[float] | np.ndarray | Tensor  # (A,)


@dataclass(frozen=True)
class PlanResult:
    """What ``plan()`` returns."""

    actions: Tensor  #: (H, A) best action sequence evaluated, always within bounds
    cost: float  #: the objective's cost of ``actions`` (inf if every candidate was non-finite)
    iterations: int  #: completed iterations (gd: completed CEM iterations + gradient steps)
    timed_out: bool  #: True when the deadline stopped the search before its last iteration
    evaluations: int  #: candidate sequences passed to the objective in total


# --------------------------------------------------------------------------- config checks


_KINDS = {"int": int, "float": (int, float), "bool": bool}


def check_config(cfg: Any) -> None:
    """Type checks for a flat config dataclass whose fields are annotated int, float or bool."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        kind = _KINDS[f.type if isinstance(f.type, str) else f.type.__name__]
        bad_bool = isinstance(value, bool) and f.type != "bool"
        if bad_bool or not isinstance(value, kind):
            raise ValueError(
                f"{type(cfg).__name__}.{f.name}={value!r}: expected {f.type}, "
                f"got {type(value).__name__}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{type(cfg).__name__}.{f.name}={value!r} must be finite")


def require(ok: bool, cfg: Any, name: str, rule: str) -> None:
    """Raise one clear line if ``ok`` is False: ``CEMConfig.num_elites=0: need >= 1``."""
    if not ok:
        raise ValueError(f"{type(cfg).__name__}.{name}={getattr(cfg, name)!r}: need {rule}")


# --------------------------------------------------------------------------- deadline clock


def _no_sync() -> None:
    return None


class Clock:
    """Decides whether another round (an iteration or a final evaluation) fits the deadline.

    The prediction for a round is the duration of the last one. On CUDA the queue is
    synchronized before reading the time, but only when a deadline is set.
    """

    def __init__(self, deadline_s: float | None, device: torch.device) -> None:
        self.start = self.mark = time.perf_counter()
        self.end = None if deadline_s is None else self.start + deadline_s
        cuda = device.type == "cuda" and deadline_s is not None
        self.sync = (lambda: torch.cuda.synchronize(device)) if cuda else _no_sync

    def out_of_time(self) -> bool:
        """Called between rounds; True if the next round would likely end past the deadline."""
        if self.end is None:
            return False
        self.sync()
        now = time.perf_counter()
        last_round, self.mark = now - self.mark, now
        return now + last_round > self.end


# --------------------------------------------------------------------------- search state


class Search:
    """Per-plan state handed to an algorithm: device, generator, bounds, best-so-far."""

    def __init__(
        self,
        objective: Objective,
        mean: Tensor,
        generator: torch.Generator,
        bounds: tuple[Tensor, Tensor],
        clock: Clock,
    ) -> None:
        self.objective = objective
        self.mean = mean  # (H, A) initial mean, within bounds
        self.device, self.dtype = mean.device, mean.dtype
        self.generator = generator
        self.low, self.high = bounds  # (A,), (A,)
        self.center = (self.low + self.high) / 2  # (A,)
        self.half = (self.high - self.low) / 2  # (A,)
        self.clock = clock
        self.best_actions = mean  # (H, A)
        self.best_cost = torch.full((), math.inf, device=mean.device, dtype=mean.dtype)
        self.evaluations = 0

    def clamp(self, actions: Tensor) -> Tensor:
        return torch.clamp(actions, self.low, self.high)  # (..., H, A)

    def evaluate(self, samples: Tensor) -> Tensor:
        """Costs of ``samples (N, H, A)`` as ``(N,)`` on the planner's device; non-finite -> inf.

        Also keeps the best candidate seen so far (without synchronizing the device).
        """
        return self.evaluate_costs(samples, self.objective(samples))

    def evaluate_costs(self, samples: Tensor, costs: Tensor) -> Tensor:
        """Like :meth:`evaluate` for costs the caller already computed (e.g. with a graph)."""
        n = samples.shape[0]
        if not isinstance(costs, Tensor) or costs.shape != (n,):
            got = costs.shape if isinstance(costs, Tensor) else type(costs).__name__
            raise ValueError(f"objective must return a tensor of shape ({n},), got {got}")
        costs = costs.detach().to(device=self.device, dtype=self.dtype)  # (N,) one transfer
        costs = torch.where(torch.isfinite(costs), costs, math.inf)  # NaN/±inf rank worst
        self.evaluations += n
        self.track(samples, costs)
        return costs

    def track(self, samples: Tensor, costs: Tensor) -> None:
        """Keep the best of ``samples (N, H, A)`` with already-sanitized ``costs (N,)``."""
        c, i = torch.min(costs, 0)
        better = c < self.best_cost  # () bool, stays on the device
        self.best_cost = torch.where(better, c, self.best_cost)
        best = samples.detach().index_select(0, i.view(1))[0]  # (H, A) no host sync
        self.best_actions = torch.where(better, best, self.best_actions)


# --------------------------------------------------------------------------- planner base


def _as_bounds(low: BoundLike, high: BoundLike) -> tuple[np.ndarray, np.ndarray]:
    lo = np.asarray(low.cpu() if isinstance(low, Tensor) else low, dtype=np.float64)
    hi = np.asarray(high.cpu() if isinstance(high, Tensor) else high, dtype=np.float64)
    if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0:
        raise ValueError(
            f"action_low/action_high must both have shape (A,) with A >= 1, "
            f"got {lo.shape} and {hi.shape}"
        )
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError(f"action bounds must be finite, got low={lo}, high={hi}")
    if not (lo < hi).all():
        raise ValueError(f"need action_low < action_high in every dim, got low={lo}, high={hi}")
    return lo, hi


class Planner(ABC):
    """Base of all planners. Subclasses implement ``_search(search) -> (iterations, timed_out)``.

    Warm start and receding horizon are the caller's job: pass the previous plan shifted by
    the executed steps as ``init_mean``. Planners that carry memory across plans (iCEM's
    elites) shift it with ``shift(steps)`` and forget it with ``reset()``.
    """

    name: ClassVar[str]
    needs_grad: ClassVar[bool] = False  #: True if the objective must be differentiable

    def __init__(
        self, cfg: Any, action_low: BoundLike, action_high: BoundLike, horizon: int
    ) -> None:
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be an int >= 1, got {horizon!r}")
        self.cfg = cfg
        self.low_np, self.high_np = _as_bounds(action_low, action_high)
        self.horizon = horizon
        self.action_dim = self.low_np.shape[0]
        self._bounds: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(H={self.horizon}, A={self.action_dim}, {self.cfg})"

    def reset(self) -> None:
        """Forget memory carried across plans (call at episode start)."""
        return None

    def shift(self, steps: int) -> None:
        """Shift memory carried across plans by ``steps`` executed actions (tail padded)."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"shift(steps): need an int >= 0, got {steps!r}")

    def bounds(self, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """``(low, high)``, each ``(A,)``, on ``device`` (cached)."""
        key = (device, dtype)
        if key not in self._bounds:
            lo64, hi64 = torch.as_tensor(self.low_np), torch.as_tensor(self.high_np)
            lo, hi = lo64.to(dtype), hi64.to(dtype)  # (A,) rounded to nearest: round inward
            lo = torch.where(lo.double() < lo64, torch.nextafter(lo, hi), lo)
            hi = torch.where(hi.double() > hi64, torch.nextafter(hi, lo), hi)
            self._bounds[key] = (lo.to(device), hi.to(device))
        return self._bounds[key]

    def plan(
        self,
        objective: Objective,
        init_mean: Tensor | None = None,
        generator: torch.Generator | None = None,
        deadline_s: float | None = None,
    ) -> PlanResult:
        """Minimize ``objective`` over action sequences ``(H, A)`` within the bounds.

        ``init_mean (H, A)``: warm start (already shifted by the caller). Device and dtype come
        from ``init_mean``, else from ``generator``'s device (float32), else CPU float32. All
        sampling uses ``generator`` (a fresh one seeded from torch's global RNG if None).
        ``deadline_s``: return the best plan so far once the next round would end past it; the
        first iteration always runs, so that the plan has a cost.
        """
        if deadline_s is not None and not (deadline_s > 0 and math.isfinite(deadline_s)):
            raise ValueError(f"deadline_s must be a positive number or None, got {deadline_s!r}")
        h, a = self.horizon, self.action_dim
        if init_mean is not None:
            if not isinstance(init_mean, Tensor) or init_mean.shape != (h, a):
                got = init_mean.shape if isinstance(init_mean, Tensor) else type(init_mean)
                raise ValueError(f"init_mean must be a tensor of shape ({h}, {a}), got {got}")
            if not init_mean.is_floating_point():
                raise ValueError(f"init_mean must be floating point, got {init_mean.dtype}")
            if not bool(torch.isfinite(init_mean).all()):
                raise ValueError("init_mean has non-finite entries")
            device, dtype = init_mean.device, init_mean.dtype
        else:
            device = generator.device if generator is not None else torch.device("cpu")
            dtype = torch.float32
        if generator is None:
            seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))  # global torch RNG
            generator = torch.Generator(device=device).manual_seed(seed)
        elif generator.device.type != device.type:
            raise ValueError(
                f"generator is on {generator.device} but init_mean is on {device}: "
                "pass a generator on the device the planner should sample on"
            )
        low, high = self.bounds(device, dtype)
        if init_mean is None:
            mean = ((low + high) / 2).expand(h, a).clone()  # (H, A)
        else:
            mean = torch.clamp(init_mean.detach(), low, high)  # (H, A)
        search = Search(objective, mean, generator, (low, high), Clock(deadline_s, device))
        with torch.set_grad_enabled(self.needs_grad):
            iterations, timed_out = self._search(search)
        return PlanResult(
            actions=search.best_actions.detach(),
            cost=float(search.best_cost),
            iterations=iterations,
            timed_out=timed_out,
            evaluations=search.evaluations,
        )

    @abstractmethod
    def _search(self, s: Search) -> tuple[int, bool]:
        """Run the algorithm; evaluate through ``s.evaluate``. Returns (iterations, timed_out)."""
