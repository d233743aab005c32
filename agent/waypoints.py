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

Warm start (``shift``): after k executed env steps the points move by the executed
displacement, and those already reached drop out (the last point is repeated at the end).
"""

from __future__ import annotations

import torch
from torch import Tensor


class WaypointPath:
    """Decode ``(N, W, A)`` waypoints into ``(N, steps, A)`` env-step actions."""

    def __init__(self, points: int, steps: int, high: Tensor, reach: float | None = None) -> None:
        high = torch.as_tensor(high, dtype=torch.float32).flatten()
        if points < 1 or steps < 1:
            raise ValueError(f"waypoints={points}, steps={steps}: need both >= 1")
        if not bool((high > 0).all()):
            raise ValueError(
                f"agent.waypoints needs action bounds symmetric about 0 (high > 0), got {high}"
            )
        self.points, self.steps, self.high = points, steps, high
        self.reach = float(steps if reach is None else reach)  #: in full-action steps
        if self.reach <= 0:
            raise ValueError(f"agent.waypoint_reach={reach}: use a number > 0 (or null)")

    def bounds(self) -> tuple[Tensor, Tensor]:
        """The planner's bounds per waypoint coordinate, (A,) each."""
        return -self.reach * self.high, self.reach * self.high

    def decode(self, params: Tensor, steps: int | None = None) -> tuple[Tensor, Tensor]:
        """``params (N, W, A)`` -> actions ``(N, steps, A)`` and how many waypoints each path
        has reached by then, ``(N,)`` long."""
        n, w, a = params.shape
        steps = self.steps if steps is None else steps
        high = self.high.to(device=params.device, dtype=params.dtype)
        pos = params.new_zeros(n, a)
        j = torch.zeros(n, dtype=torch.long, device=params.device)
        rows = torch.arange(n, device=params.device)
        out = []
        for _ in range(steps):
            target = params[rows, j.clamp(max=w - 1)]  # (N, A)
            delta = target - pos
            # largest scale <= 1 that keeps every coordinate within its bound: direction kept
            scale = (high / delta.abs().clamp_min(1e-9)).amin(-1, keepdim=True).clamp(max=1.0)
            step = torch.where((j < w)[:, None], delta * scale, torch.zeros_like(delta))
            pos = pos + step
            out.append(step)
            j = j + ((j < w) & (scale[:, 0] >= 1.0)).long()  # landed on the point
        return torch.stack(out, dim=1), j

    def shift(self, params: Tensor, k: int) -> Tensor:
        """The plan ``(W, A)`` after its first ``k`` env steps were executed: points relative to
        the new position, reached ones dropped (the last repeated in their place)."""
        actions, reached = self.decode(params[None], steps=k)
        moved = params - actions[0].sum(0)  # (W, A)
        r = int(reached[0].clamp(max=self.points - 1))
        return torch.cat([moved[r:], moved[-1:].expand(r, -1)])
