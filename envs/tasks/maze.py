"""PointMaze U-maze and Medium: a ball navigating a grid maze, seen from above.

The layouts are gymnasium-robotics' ``U_MAZE`` and ``MEDIUM_MAZE`` (1 m cells, walls = 1);
the MJCF is built here so the ball and camera suit 64x64 images (ball radius 0.2 m).
Start and goal are drawn in two different free cells, jittered by up to 0.25 m.

Success rule: the ball centre is within ``0.3`` m of the goal position.
Step budget: 100 steps (U-maze) / 200 steps (Medium) at 10 Hz (action repeat 10, physics at
100 Hz). Actions: 2-D force in [-1, 1] (x 10 N on a 1 kg ball with damping).
Proprio: position (2) and velocity (2).
"""

from __future__ import annotations

from collections import deque

import mujoco
import numpy as np

from envs.tasks.nav import PlanarNav, add_ball, add_wall, planar_scene

LAYOUTS = {
    "umaze": [
        [1, 1, 1, 1, 1],
        [1, 0, 0, 0, 1],
        [1, 1, 1, 0, 1],
        [1, 0, 0, 0, 1],
        [1, 1, 1, 1, 1],
    ],
    "medium": [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, 0, 0, 1, 1, 0, 0, 1],
        [1, 0, 0, 1, 0, 0, 0, 1],
        [1, 1, 0, 0, 0, 1, 1, 1],
        [1, 0, 0, 1, 0, 0, 0, 1],
        [1, 0, 1, 0, 0, 1, 0, 1],
        [1, 0, 0, 0, 1, 0, 0, 1],
        [1, 1, 1, 1, 1, 1, 1, 1],
    ],
}
BUDGETS = {"umaze": 100, "medium": 200}
_JITTER = 0.25


class Maze(PlanarNav):
    success_threshold = 0.3

    @classmethod
    def step_budget(cls, layout: str = "umaze", **kwargs) -> int:
        return BUDGETS[layout]

    def __init__(self, layout: str = "umaze", **kwargs) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r} is unknown: use one of {list(LAYOUTS)}")
        self.layout = layout
        self.grid = np.array(LAYOUTS[layout])
        self.max_episode_steps = BUDGETS[layout]
        self.free_cells = [tuple(c) for c in np.argwhere(self.grid == 0)]
        super().__init__(**kwargs)

    def cell_center(self, cell: tuple[int, int]) -> np.ndarray:
        """(row, col) -> world (x, y); row 0 is the top of the image."""
        rows, cols = self.grid.shape
        return np.array([cell[1] - (cols - 1) / 2, (rows - 1) / 2 - cell[0]])

    def cell_of(self, xy: np.ndarray) -> tuple[int, int]:
        rows, cols = self.grid.shape
        return int(round((rows - 1) / 2 - xy[1])), int(round(xy[0] + (cols - 1) / 2))

    def _build_model(self) -> mujoco.MjModel:
        half = max(self.grid.shape) / 2
        spec = planar_scene(half, camera_height=2 * half)
        for cell in np.argwhere(self.grid == 1):
            add_wall(spec, [*self.cell_center(tuple(cell)), 0.25], [0.5, 0.5, 0.25])
        add_ball(spec, radius=0.2, force=10.0, damping=5.0)
        return spec.compile()

    def _sample_episode(self, rng: np.random.Generator) -> None:
        i, j = rng.choice(len(self.free_cells), size=2, replace=False)
        start = self.cell_center(self.free_cells[i]) + rng.uniform(-_JITTER, _JITTER, 2)
        self._goal = self.cell_center(self.free_cells[j]) + rng.uniform(-_JITTER, _JITTER, 2)
        self.data.qpos[:] = start
        self._goal_cell = self.free_cells[j]
        self._dist_field = self._bfs(self._goal_cell)

    def _bfs(self, goal: tuple[int, int]) -> dict[tuple[int, int], int]:
        dist = {goal: 0}
        queue = deque([goal])
        while queue:
            r, c = queue.popleft()
            for nb in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if self.grid[nb] == 0 and nb not in dist:
                    dist[nb] = dist[(r, c)] + 1
                    queue.append(nb)
        return dist

    def oracle_action(self) -> np.ndarray:
        """Follow the BFS shortest path cell by cell, then steer onto the goal."""
        cell = self.cell_of(self.data.qpos)
        if cell == self._goal_cell or cell not in self._dist_field:
            return self._steer(self._goal)
        r, c = cell
        nbs = [n for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)) if n in self._dist_field]
        nxt = min(nbs, key=self._dist_field.__getitem__)
        return self._steer(self.cell_center(nxt))
