"""The goal-conditioned MPC agent: world model + goal + cost -> the planner's objective.

Receding horizon and warm start live here (and only here): every ``replan_every`` steps the
agent plans H actions, executes the first k, and warm-starts the next plan with the previous
one shifted by k (tail padded with its last action). ``reset(goal)`` starts an episode.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agent.config import check_device
from agent.model import WorldModel
from agent.waypoints import WaypointPath

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentConfig:
    """MPC settings (the ``agent`` block of the evaluate / control configs)."""

    horizon: int = 5  #: H, planned actions per plan
    replan_every: int = 1  #: k, planned actions executed per plan
    #: each planned action is held this many env steps; the model rolls out horizon x
    #: action_repeat steps, so the lookahead grows at no extra planner dimensions. A
    #: ``model.frameskip`` k model multiplies the hold by k (each of its steps is k env steps)
    #: at no extra predictor calls: lookahead = horizon x action_repeat x frameskip env steps
    action_repeat: int = 1
    cost_metric: str = "l2"  #: l2 | l1 distance between latents
    cost_weighting: str = "final"  #: final | uniform | linear (over the horizon)
    proprio_weight: float = 0.0  #: weight of the optional proprio cost term
    deadline_ms: float | None = None  #: planner deadline per plan (None = run all iterations)
    #: landmark graph (agent.build_landmarks) that turns far goals into near subgoals
    landmarks: str | None = None
    lookahead: float = 5.0  #: subgoal distance along the graph's path, in env steps
    #: how that distance is measured: direct (the graph's distance from the observation to
    #: the node) | path (the path's length up to the node: steps the metric cannot see)
    lookahead_metric: str = "direct"
    device: str = "cpu"  #: cpu | cuda | auto
    #: float32 | bfloat16: the planner's imagined rollouts under torch.autocast in bfloat16;
    #: costs are still computed in float32 from the rolled-out latents. Pays on large
    #: predictors where the CPU has bf16 units (README: 1.3-1.7x per plan for a 3x512 predictor
    #: with AVX512-BF16); slower for small ones or without bf16 units
    precision: str = "float32"
    #: compile the imagined rollout and its cost with torch.compile (inductor), warmed up at
    #: the first ``reset``: with the small predictors most tasks ship, plans that are nearly
    #: all rollout run 1.5-1.8x faster, whole MPC steps 1.1-1.6x (README, Benchmarks), after
    #: a one-time compile per process; needs a C++ compiler on CPU. Costs match
    #: eager to float rounding (not bit for bit), so plans may differ slightly
    compile: bool = False
    #: model.proprio_state latents: weight of their proprio part inside the latent cost
    #: (1 = plain distance over the whole latent; 0 = the image part alone, for goals that
    #: are a scene, not a robot pose, e.g. the robot-masked arm tasks)
    proprio_part_weight: float = 1.0
    #: model.proprio_state latents: weight of their image part in the cost toward a landmark
    #: subgoal (1 = as toward the goal; 0 = aim at the subgoal's proprio alone: a frame of
    #: another episode shows *its* scene, which scene matching only approximates)
    subgoal_image_weight: float = 1.0
    #: model.proprio_state latents: the proprio entries a subgoal pins (None = all), e.g.
    #: [0, 1] for a position: a frame picked mid-motion should not ask for its velocity
    subgoal_proprio_dims: tuple[int, ...] | None = None
    #: model.proprio_state latents: weight of the pinned proprio entries toward a subgoal (None
    #: = proprio_part_weight): a masked arm's goal is the scene, its subgoals also a gripper pose
    subgoal_proprio_weight: float | None = None
    #: plan W waypoints in displacement space instead of H actions (0 = off; agent/waypoints.py):
    #: for displacement actions, paths around an object that raw action samples rarely find;
    #: the lookahead stays horizon x action_repeat x frameskip env steps
    waypoints: int = 0
    #: bound of each waypoint coordinate, in full-action steps from the robot (None = the
    #: lookahead in env steps)
    waypoint_reach: float | None = None
    #: action dimensions that are absolute commands, not displacements (e.g. [3] for the arm's
    #: gripper): each waypoint carries one, held while moving to it
    waypoint_absolute_dims: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.horizon < 1 or not 1 <= self.replan_every <= self.horizon:
            raise ValueError(
                f"agent.horizon={self.horizon}, agent.replan_every={self.replan_every}: need "
                "horizon >= 1 and 1 <= replan_every <= horizon"
            )
        if self.subgoal_proprio_dims is not None:  # a YAML list -> a tuple (frozen, hashable)
            object.__setattr__(self, "subgoal_proprio_dims", tuple(self.subgoal_proprio_dims))
        if self.waypoint_absolute_dims is not None:
            dims = tuple(self.waypoint_absolute_dims)
            object.__setattr__(self, "waypoint_absolute_dims", dims)
        for name in (
            "proprio_weight",
            "proprio_part_weight",
            "subgoal_image_weight",
            "subgoal_proprio_weight",
        ):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= 0):  # NaN fails both
                raise ValueError(f"agent.{name}={v}: use a finite number >= 0")
        if self.deadline_ms is not None and not self.deadline_ms > 0:
            raise ValueError(f"agent.deadline_ms={self.deadline_ms}: use a time > 0 or null (none)")
        if self.waypoints < 0:
            raise ValueError(f"agent.waypoints={self.waypoints}: use 0 (off) or a count >= 1")
        if self.waypoint_reach is not None and not (
            math.isfinite(self.waypoint_reach) and self.waypoint_reach > 0
        ):
            raise ValueError(f"agent.waypoint_reach={self.waypoint_reach}: use > 0 or null")
        if not (math.isfinite(self.lookahead) and self.lookahead > 0):
            raise ValueError(f"agent.lookahead={self.lookahead}: use a number > 0")
        if self.lookahead_metric not in ("direct", "path"):
            raise ValueError(
                f"agent.lookahead_metric={self.lookahead_metric!r}: use direct or path"
            )
        if self.action_repeat < 1:
            raise ValueError(f"agent.action_repeat={self.action_repeat}: use an integer >= 1")
        check_device("agent.device", self.device)
        if not isinstance(self.compile, bool):
            raise ValueError(f"agent.compile={self.compile!r}: use true or false")
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"agent.precision={self.precision!r}: use float32 or bfloat16")
        if self.cost_metric not in ("l1", "l2"):
            raise ValueError(f"agent.cost_metric={self.cost_metric!r}: use l1 or l2")
        if self.cost_weighting not in ("final", "uniform", "linear"):
            raise ValueError(
                f"agent.cost_weighting={self.cost_weighting!r}: use final, uniform or linear"
            )

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


def horizon_weights(kind: str, h: int) -> torch.Tensor | None:
    if kind == "final":
        return None
    w = torch.ones(h) if kind == "uniform" else torch.arange(1, h + 1, dtype=torch.float32)
    return w / w.sum()


def warm_start(
    plan: torch.Tensor | None,
    planner: Any,
    k: int,
    path: WaypointPath | None = None,
    hold: int = 1,
) -> torch.Tensor | None:
    """The previous plan (H, A) shifted by the ``k`` executed actions, tail padded with its
    last action (None before the first plan); planners that keep state (iCEM's elites) shift
    too. With ``path`` (agent.waypoints) the waypoints shift by the ``k x hold`` executed env
    steps instead (``WaypointPath.shift``)."""
    if plan is None:
        return None
    if path is not None:
        return path.shift(plan, k * hold)
    if hasattr(planner, "shift"):
        planner.shift(k)
    return torch.cat([plan[k:], plan[-1:].expand(k, -1)])


def env_actions(
    plans: torch.Tensor, hold: int, path: WaypointPath | None = None, steps: int | None = None
) -> torch.Tensor:
    """Planned ``(N, H, A)`` -> env-step actions ``(N, T, A)``: each action held ``hold``
    steps, or (``path``, agent.waypoints) the path of the planned waypoints; the first
    ``steps`` of them (default all)."""
    if path is not None:
        return path.decode(plans, steps)[0]
    actions = plans.repeat_interleave(hold, dim=1)
    return actions if steps is None else actions[:, :steps]


def make_planner(
    planner_cfg: Any, cfg: AgentConfig, low: Any, high: Any, frameskip: int = 1
) -> tuple[Any, WaypointPath | None]:
    """The planner (a ``configs/planner`` mapping) over ``agent.horizon`` actions within
    ``[low, high]``, or with ``agent.waypoints=W`` over W waypoints, and then their path."""
    import planners

    options, horizon, path = dict(planner_cfg), cfg.horizon, None
    if cfg.waypoints:
        if options.get("name") == "icem":
            raise ValueError(
                "agent.waypoints with planner=icem: its elites carried across replans are "
                "shifted in time, not in space; use planner=cem, mppi, gd or random"
            )
        steps = cfg.horizon * cfg.action_repeat * frameskip
        path = WaypointPath(
            cfg.waypoints,
            steps,
            torch.as_tensor(np.asarray(high, np.float32)),
            cfg.waypoint_reach,
            cfg.waypoint_absolute_dims or (),
            torch.as_tensor(np.asarray(low, np.float32)),
        )
        (low, high), horizon = path.bounds(), cfg.waypoints
    return planners.make_from_config(options, low, high, horizon), path


def build_agent(
    model: WorldModel,
    planner_cfg: Any,
    cfg: AgentConfig,
    low: Any,
    high: Any,
    seed: int = 0,
    landmarks: Any = None,
) -> MPCAgent:
    """The MPC agent and its planner (``make_planner``)."""
    planner, path = make_planner(planner_cfg, cfg, low, high, model.cfg.frameskip)
    return MPCAgent(model, planner, cfg, seed=seed, landmarks=landmarks, path=path)


def imagined_cost(
    model: WorldModel,
    z0: torch.Tensor,
    steps: torch.Tensor,
    goal: torch.Tensor,
    scale: torch.Tensor | None,
    weights: torch.Tensor | None,
    metric: str,
    low: bool,
    proprio_weight: float,
    goal_proprio: torch.Tensor | None,
) -> torch.Tensor:
    """Roll ``steps`` (N, T, A) out from z0 and score the latents against ``goal`` -> (N,).

    ``goal`` is already in the cost's view (``WorldModel.cost_view``) and scaled by ``scale``
    (the per-dimension weights of the latent cost, None: plain distance); ``low``: the
    rollout under bfloat16 autocast, the cost in float32."""
    with torch.autocast(z0.device.type, dtype=torch.bfloat16, enabled=low):
        zs = model.rollout(z0, steps)  # (N, T / k, *latent): one per predictor step
    zs = zs.float()
    zc = model.cost_view(zs)
    zc = zc if scale is None else zc * scale
    c = model.latent_cost(zc, goal, metric, weights)
    if proprio_weight and goal_proprio is not None:
        c = c + proprio_weight * model.proprio_cost(zs, goal_proprio)
    return c


class MPCAgent:
    """``reset(goal_obs)``, then ``act(obs) -> action`` every env step."""

    def __init__(
        self,
        model: WorldModel,
        planner: Any,
        cfg: AgentConfig,
        seed: int = 0,
        landmarks: Any = None,
        path: WaypointPath | None = None,
    ) -> None:
        self.cfg = cfg
        #: agent.waypoints: the planner plans (W, A) waypoints that this decodes into actions
        self.path = path
        #: optional high level (agent.landmarks.LandmarkGraph): far goals -> near subgoals
        self.landmarks = landmarks
        self.subgoal: torch.Tensor | None = None  # latent aimed at by the last plan
        self.device = cfg.resolved_device()
        self.model = model.to(self.device).eval()
        self.planner = planner
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.weights = horizon_weights(cfg.cost_weighting, cfg.horizon * cfg.action_repeat)
        if self.weights is not None:
            self.weights = self.weights.to(self.device)
        self.part_scale = self._part_scale()  # None: plain latent cost
        self.subgoal_scale = self._part_scale(
            cfg.subgoal_image_weight, cfg.subgoal_proprio_dims, cfg.subgoal_proprio_weight
        )
        self.needs_grad = bool(getattr(planner, "needs_grad", False))
        #: agent.compile: the rollout + cost, compiled once and warmed up at the first reset
        self._imagine = torch.compile(imagined_cost) if cfg.compile else imagined_cost
        self._warm = not cfg.compile
        self.last_plan_ms: float | None = None
        self.planned = False  # whether the last act() made a new plan
        self.imagined: torch.Tensor | None = None  # (H, *latent) of the last plan

    def _part_scale(
        self,
        image_weight: float = 1.0,
        dims: tuple[int, ...] | None = None,
        proprio_weight: float | None = None,
    ) -> torch.Tensor | None:
        """Per-dimension scale of the latent cost (None: plain distance over the latent)."""
        cfg = self.cfg
        w = cfg.proprio_part_weight if proprio_weight is None else proprio_weight
        if w == 1.0 and image_weight == 1.0 and dims is None:
            return None
        mcfg = self.model.cfg
        if not mcfg.proprio_state:
            name = next(
                n
                for n, default in (
                    ("proprio_part_weight", 1.0),
                    ("subgoal_image_weight", 1.0),
                    ("subgoal_proprio_dims", None),
                    ("subgoal_proprio_weight", None),
                )
                if getattr(cfg, n) != default
            )
            raise ValueError(
                f"agent.{name}={getattr(cfg, name)} needs a model.proprio_state checkpoint "
                "(its latent has a proprio part): leave it at its default for this one"
            )
        if dims is not None and not all(0 <= i < mcfg.proprio_dim for i in dims):
            raise ValueError(
                f"agent.subgoal_proprio_dims={list(dims)}: this model's proprio has "
                f"{mcfg.proprio_dim} entries, use indices 0..{mcfg.proprio_dim - 1}"
            )
        scale = torch.ones(mcfg.state_dim, device=self.device)
        scale[: mcfg.latent_dim] = image_weight**0.5  # squared distances: the part weighs w
        part = torch.zeros(mcfg.proprio_dim, device=self.device)  # unpinned entries weigh 0
        part[list(range(mcfg.proprio_dim)) if dims is None else list(dims)] = w**0.5
        scale[mcfg.latent_dim :] = part
        return scale

    @property
    def _hold(self) -> int:
        """Env steps each planned action is held: agent.action_repeat x model.frameskip."""
        return self.cfg.action_repeat * self.model.cfg.frameskip

    def _encode(self, obs: dict[str, np.ndarray]) -> torch.Tensor:
        """One observation -> (1, *latent); proprio_state models also read its proprio."""
        return self.model.encode_observation(obs)

    @torch.no_grad()
    def reset(self, goal: dict[str, np.ndarray], seed: int | None = None) -> None:
        """Start an episode toward ``goal`` (``pixels`` and optional ``proprio``).

        A ``model.proprio_state`` world model needs the goal's proprio as well."""
        gp = goal.get("proprio")
        uses_proprio = self.model.cfg.proprio_state or self.cfg.proprio_weight
        if uses_proprio and gp is not None and len(gp) != self.model.cfg.proprio_dim:
            raise ValueError(
                f"the goal's proprio has {len(gp)} values, the world model was trained on "
                f"{self.model.cfg.proprio_dim}: use a checkpoint trained on this task's current "
                "data, or agent.proprio_weight=0 with an image-only one"
            )
        self.z_goal = self._encode(goal)[0]  # (*latent)
        self.goal_proprio = None if gp is None else torch.as_tensor(gp, device=self.device).float()
        self.plan: torch.Tensor | None = None  # (H, A) warm start; (W, A) waypoints
        self.queue: list[np.ndarray] = []
        self.steps: np.ndarray | None = None  # (T, A) env-step actions of the current plan
        self.history: list[torch.Tensor] = []  # latents of the last K env steps (K > 1)
        if not self._warm:
            self._warm_up()
        if seed is not None:
            self.generator.manual_seed(seed)
        if hasattr(self.planner, "reset"):
            self.planner.reset()
        if self.landmarks is not None:
            self.landmarks.reset(self.z_goal, goal.get("proprio"), goal.get("pixels"))

    def _warm_up(self) -> None:
        """agent.compile: plan once toward the goal from the goal, so that every shape the
        planner asks for is compiled before the first timed plan (a real-time loop would
        otherwise miss its first ticks). Its own generator: the agent's draws are untouched."""
        k = self.model.cfg.history
        z0 = self.z_goal.expand(k, *self.z_goal.shape)  # (K, *latent)
        gen = torch.Generator(device=self.device).manual_seed(0)
        goals = [None] if self.landmarks is None else [None, self.z_goal]  # subgoal cost too
        t0 = time.perf_counter()
        with torch.set_grad_enabled(self.needs_grad):
            for goal in goals:
                self.planner.plan(self.objective(z0, goal), generator=gen)
        self._warm = True
        log.info("agent.compile: rollout compiled in %.1f s", time.perf_counter() - t0)

    def objective(self, z0: torch.Tensor, goal: torch.Tensor | None = None):
        """Cost of candidate plans from z0 toward ``goal`` (default: the episode's goal)."""
        step_cost = self.step_objective(z0, goal)
        return lambda plans: step_cost(self._env_actions(plans))  # (N, H, A) -> (N,)

    def _env_actions(self, plans: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        return env_actions(plans, self._hold, self.path, steps)

    def step_objective(self, z0: torch.Tensor, goal: torch.Tensor | None = None):
        """The same cost for env-step action sequences ``(N, H * action_repeat * frameskip,
        A)``, each step its own action (no holding), e.g. to score a recorded controller's
        actions exactly as the planner scores its candidates."""
        final = goal is None  # the proprio term applies to the episode's goal, not subgoals
        goal = self.z_goal if goal is None else goal
        model, cfg, weights, gp = self.model, self.cfg, self.weights, self.goal_proprio

        scale = self.part_scale if final else self.subgoal_scale
        goal_c = model.cost_view(goal)
        goal_c = goal_c if scale is None else goal_c * scale

        low = cfg.precision == "bfloat16"
        pw = cfg.proprio_weight if final else 0.0
        imagine = self._imagine

        def cost(steps: torch.Tensor) -> torch.Tensor:  # (N, H*r*k, A) -> (N,)
            return imagine(model, z0, steps, goal_c, scale, weights, cfg.cost_metric, low, pw, gp)

        return cost

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.planned = not self.queue
        k = self.model.cfg.history
        if k > 1:  # the predictor reads the last K latents: encode every step, not just replans
            with torch.no_grad():
                z = self._encode(obs)[0]
            # an episode's first frame stands in for the frames before it (zero motion)
            self.history = [*(self.history or [z] * k)[1:], z]
        if self.planned:
            self._replan(obs)
        return self.queue.pop(0)

    @property
    def upcoming(self) -> np.ndarray | None:
        """The env-step actions the current plan holds after those ``act`` returned, ``(T,
        A)`` (None before the first plan): what the real-time loop executes when a new plan
        comes too late. Unlike ``plan`` (planned actions or waypoints), one row per env step."""
        if self.steps is None:
            return None
        executed = self.cfg.replan_every * self._hold - len(self.queue)
        return self.steps[executed:].copy()

    def _replan(self, obs: dict[str, np.ndarray]) -> None:
        t0 = time.perf_counter()
        k = self.cfg.replan_every
        if self.model.cfg.history > 1:
            z0 = torch.stack(self.history)  # (K, *latent), oldest first
        else:
            with torch.no_grad():
                z0 = self._encode(obs)  # (1, *latent) = K=1 history
        r = self._hold
        init = warm_start(self.plan, self.planner, k, self.path, r)
        goal = None
        if self.landmarks is not None:
            with torch.no_grad():
                goal, _ = self.landmarks.subgoal(
                    z0[-1],
                    self.cfg.lookahead,
                    obs.get("proprio"),
                    along_path=self.cfg.lookahead_metric == "path",
                )
            if goal is not None:
                goal = goal.to(self.device).reshape(self.z_goal.shape)
        self.subgoal = goal
        deadline = None if self.cfg.deadline_ms is None else self.cfg.deadline_ms / 1000
        with torch.set_grad_enabled(self.needs_grad):
            result = self.planner.plan(
                self.objective(z0, goal),
                init_mean=init,
                generator=self.generator,
                deadline_s=deadline,
            )
        self.plan = result.actions.detach()
        steps = self._env_actions(self.plan[None])  # (1, T, A), decoded once per plan
        with torch.no_grad():
            self.imagined = self.model.rollout(z0, steps)[0]
        self.steps = steps[0].cpu().numpy().astype(np.float32)
        self.queue = list(self.steps[: k * r].copy())  # the first k x r, executed next
        self.last_plan_ms = (time.perf_counter() - t0) * 1000
