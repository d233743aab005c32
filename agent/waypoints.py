"""Plans as via-points: a few waypoints in displacement space -> an env-step action path.

For tasks whose actions are displacements (Push-T's pusher, a gantry's end effector) a plan
that goes around an object and then pushes is a narrow set in raw (H, A) action space, which
CEM's diagonal Gaussian rarely samples. ``agent.waypoints=W`` lets the planner search over W
points instead: ``params (N, W, A)``, each a position relative to where the robot is at plan
time, in action units (one full action moves ``action_high``). The path moves toward each point
in turn as fast as the action bounds allow (straight lines, direction kept, the last step
shortened to land on the point), then holds still; it lasts ``steps`` env steps, so points the
lookahead cannot reach are cut short. The planner's contract is unchanged: it plans a (W, A)
"action" sequence within ``[-reach * high, reach * high]``.

Action dimensions that are absolute commands, not displacements (an arm's gripper opening),
are listed in ``absolute`` (``agent.waypoint_absolute_dims``): each waypoint carries a value
for them, within the action bounds, held while the path moves to that point (the last one's
after it).

Warm start (``shift``): after k executed env steps the points move by the executed
displacement, and those already reached drop out (the last point is repeated at the end).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class WaypointPath:
    """Decode ``(N, W, A)`` waypoints into ``(N, steps, A)`` env-step actions."""

    def __init__(
        self,
        points: int,
        steps: int,
        high: Tensor,
        reach: float | None = None,
        absolute: Sequence[int] = (),
        low: Tensor | None = None,
    ) -> None:
        high = torch.as_tensor(high, dtype=torch.float32).flatten()
        low = -high if low is None else torch.as_tensor(low, dtype=torch.float32).flatten()
        if points < 1 or steps < 1:
            raise ValueError(f"waypoints={points}, steps={steps}: need both >= 1")
        a = high.numel()
        if not all(0 <= d < a for d in absolute):
            raise ValueError(
                f"agent.waypoint_absolute_dims={list(absolute)}: this task's actions have {a} "
                f"dimensions, use indices 0..{a - 1}"
            )
        #: True for displacement dimensions (the path), False for absolute commands (held)
        self.moves = torch.ones(a, dtype=torch.bool)
        self.moves[list(absolute)] = False
        if not bool(self.moves.any()):
            raise ValueError("agent.waypoint_absolute_dims lists every action dimension: no path")
        lo, hi = low[self.moves], high[self.moves]
        if not (bool((hi > 0).all()) and torch.allclose(lo, -hi)):
            raise ValueError(
                f"agent.waypoints={points} needs action bounds symmetric about 0 "
                f"(displacements), this task's are {low.tolist()}..{high.tolist()}: use "
                "agent.waypoints=0, or list absolute commands in agent.waypoint_absolute_dims"
            )
        self.points, self.steps, self.high, self.low = points, steps, high, low
        self.reach = float(steps if reach is None else reach)  #: in full-action steps
        if self.reach <= 0:
            raise ValueError(f"agent.waypoint_reach={reach}: use a number > 0 (or null)")

    def bounds(self) -> tuple[Tensor, Tensor]:
        """The planner's bounds per waypoint coordinate, (A,) each: +-reach x the action bound
        for displacements, the action bounds for absolute commands."""
        far = self.reach * self.high
        return torch.where(self.moves, -far, self.low), torch.where(self.moves, far, self.high)

    def decode(self, params: Tensor, steps: int | None = None) -> tuple[Tensor, Tensor]:
        """``params (N, W, A)`` -> actions ``(N, steps, A)`` and how many waypoints each path
        has reached by then, ``(N,)`` long.

        Segment j (from point j-1, the first from 0, to point j) is ``m_j`` full steps long
        (its largest coordinate over that coordinate's bound): ``ceil(m_j)`` env steps (at
        least 1), full ones along it and a shorter last one that lands on the point. Computed
        for all steps at once (no loop over time): the planner calls this for every sample."""
        n, w, a = params.shape
        steps = self.steps if steps is None else steps
        high = self.high.to(device=params.device, dtype=params.dtype)
        moves = self.moves.to(params.device)
        start = torch.cat([params.new_zeros(n, 1, a), params[:, :-1]], 1)  # (N, W, A)
        seg = params - start  # (N, W, A)
        m = (seg.abs() / high)[..., moves].amax(-1)  # (N, W) full steps per segment
        count = m.ceil().clamp_min(1)  # (N, W) env steps per segment
        end = count.cumsum(1)  # (N, W) env step at which each point is reached
        t = torch.arange(steps, device=params.device, dtype=params.dtype)  # (T,)
        j = (t[None, :, None] >= end[:, None, :]).sum(-1)  # (N, T) segment of each step
        jc = j.clamp(max=w - 1)
        k = t[None] - (end - count).gather(1, jc)  # (N, T) step within the segment
        m_j = m.gather(1, jc)  # (N, T)
        frac = torch.where(m_j > 0, (m_j - k).clamp(max=1.0) / m_j.clamp_min(1e-12), 0.0)
        frac = torch.where(j < w, frac, 0.0)  # after the last point: hold still
        idx = jc[..., None].expand(n, steps, a)
        path = seg.gather(1, idx) * frac[..., None]  # (N, T, A)
        held = params.gather(1, idx)  # absolute commands: the current (or last) point's
        reached = (end <= steps).sum(-1)  # (N,)
        return torch.where(moves, path, held), reached

    def shift(self, params: Tensor, k: int) -> Tensor:
        """The plan ``(W, A)`` after its first ``k`` env steps were executed: points relative to
        the new position, reached ones dropped (the last repeated in their place)."""
        actions, reached = self.decode(params[None], steps=k)
        moved = params - torch.where(self.moves.to(params.device), actions[0].sum(0), 0.0)
        r = int(reached[0].clamp(max=self.points - 1))
        return torch.cat([moved[r:], moved[-1:].expand(r, -1)])
