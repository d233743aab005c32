"""Goal-conditioned behaviour cloning on a world model's frozen latents: the learned-policy
baseline that plans nothing.

    python -m agent.gcbc --checkpoint <world model> --data <dataset> --out <dir>/gcbc \
        [--steps 6000] [--min-change-quantile 0.7] [--ensemble 5] [--codebook 64]
        [--goal-share 0.5] [--seed 0]
    python -m agent.evaluate env=<task> policy=gcbc checkpoint=<dir>/gcbc.safetensors

Trained on the same data as the world model, with hindsight goals (GCSL / goal-conditioned
BC): for an observation at step ``t`` of an episode, the goal is the observation ``k`` env
steps later (``k`` between one predictor step and the lookahead, ``horizon x frameskip``, or
``--max-goal-steps``),
and the target is what the data did next: ``horizon`` actions, each the mean of the
``frameskip`` env actions it stands for (the MPC agent's held actions). The policy
``pi(z, z_goal) -> (horizon, A)`` is an MLP on the world model's latents of both (image and,
for ``model.proprio_state`` models, proprio); the encoder stays frozen. It acts like the MPC
agent: the first action, held ``frameskip`` env steps, then again.

Exploration data is mostly undirected motion. ``--min-change-quantile q`` keeps only the
pairs over which the *image* part of the latent changed more than its ``q``-quantile over
random pairs (with the robot masked out of the images, that is the object moving), so the
policy learns from the pushes and lifts rather than from the wandering in between. It reads
no simulator state.

Two options for what the mean action misses. ``--codebook K`` clusters the training plans
into K k-means centres and makes the head a classifier over them plus an offset from each
(Behavior Transformers' k-means head, Shafiullah et al. 2022): where the data holds two ways to
act (grasp from the left or the right) the mean of both is neither, the likeliest centre is
one of them; an ensemble then averages the heads' log-probabilities and their offsets for the
chosen centre. ``--goal-share s`` draws that share of each batch toward the episode's own goal
image instead of a later frame (steps before the data first met the success rule), for data
that was collected toward goals (demonstrations).

DAgger (Ross et al. 2011): a dataset collected with ``agent.collect policy=gcbc
policy_checkpoint=<this policy> expert_labels=true`` holds the states the *policy* visits,
each labelled with the task's ``expert_action()`` there (its oracle, or a replanning one).
Passed among ``--data`` (with ``--goal-share > 0``), its targets are those labels and its
pairs aim at the episode's goal; retrain on the demonstrations plus every round's data,
collect again with the new policy.

Files: ``<out>.safetensors`` (the MLP) and ``<out>.json`` (config, the world model's path and
sha256, dataset sha256, training time, validation error against predicting the mean action),
written atomically; loading refuses a world model whose weights are not the ones trained on.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from agent import checkpoint
from agent.cli import config_of, head_parser
from agent.dataset import Dataset, atomic_write_json
from agent.errors import friendly_errors
from agent.metrics import encode_all, encode_episode
from agent.model import WorldModel

FORMAT = "jepa-mpc-gcbc-1"


KMEANS_SAMPLE = 20_000  #: training plans the codebook's k-means runs on
MAX_CENTRES = 1024  #: codebook sizes above this leave k-means a handful of plans per centre


@dataclass(frozen=True)
class GCBCConfig:
    """Training settings (recorded in the JSON)."""

    horizon: int = 8  #: planned actions per output, each held ``frameskip`` env steps
    hidden: int = 512  #: MLP width
    layers: int = 2  #: hidden layers
    steps: int = 6000  #: Adam steps
    batch_size: int = 512
    lr: float = 1e-3
    #: keep pairs whose image latent changed more than this quantile (0 = keep every pair)
    min_change_quantile: float = 0.0
    val_share: float = 0.1  #: last episodes held out for the validation error
    #: farthest hindsight goal in env steps (0 = the lookahead, ``horizon x frameskip``)
    max_goal_steps: int = 0
    #: independently seeded heads (seed, seed + 1, ...) whose actions are averaged
    ensemble: int = 1
    seed: int = 0
    #: share of each batch whose goal is the episode's own goal image (episodes that met the
    #: task's success rule, steps before it): test goals are goal images, not later frames
    goal_share: float = 0.0
    #: K > 0: the head classifies the action plan into K k-means centres of the training
    #: plans and regresses an offset from the chosen one (a multimodal head, as in Behavior
    #: Transformers, Shafiullah et al. 2022); 0 = one mean action (MSE)
    codebook: int = 0
    #: store the weights in float16 (half the file; the policy still computes in float32,
    #: and the validation figures are those of the rounded weights)
    half: bool = False

    def __post_init__(self) -> None:
        if min(self.horizon, self.hidden, self.layers, self.steps, self.batch_size) < 1:
            raise ValueError("gcbc: horizon, hidden, layers, steps, batch_size must be >= 1")
        if self.ensemble < 1:
            raise ValueError(f"gcbc: ensemble={self.ensemble}: use 1 or more heads")
        if not 0.0 <= self.min_change_quantile < 1.0:
            raise ValueError(
                f"gcbc: min_change_quantile={self.min_change_quantile}: use a value in [0, 1)"
            )
        if self.max_goal_steps < 0:
            raise ValueError(
                f"gcbc: max_goal_steps={self.max_goal_steps}: use 0 (the lookahead) or more"
            )
        if not 0.0 < self.val_share < 1.0:
            raise ValueError(f"gcbc: val_share={self.val_share}: use a value in (0, 1)")
        if not 0.0 <= self.goal_share < 1.0:
            raise ValueError(f"gcbc: goal_share={self.goal_share}: use a value in [0, 1)")
        if self.codebook < 0 or self.codebook == 1:
            raise ValueError(f"gcbc: codebook={self.codebook}: use 0 (none) or 2 or more centres")
        if self.codebook > MAX_CENTRES:  # 100000 ran k-means for minutes, silently
            raise ValueError(
                f"gcbc: codebook={self.codebook}: use at most {MAX_CENTRES} centres (k-means runs "
                f"on {KMEANS_SAMPLE} training plans; the shipped policy uses 64)"
            )


def make_head(state_dim: int, action_dim: int, cfg: GCBCConfig) -> nn.Sequential:
    """MLP: (z, z_goal, z - z_goal) -> (horizon * A) in [-1, 1]; with a codebook of K centres
    -> K logits, then K offsets of (horizon * A) each."""
    mods: list[nn.Module] = []
    d = 3 * state_dim
    for _ in range(cfg.layers):
        mods += [nn.Linear(d, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.SiLU()]
        d = cfg.hidden
    if cfg.codebook:
        mods += [nn.Linear(d, cfg.codebook * (1 + cfg.horizon * action_dim))]
    else:
        mods += [nn.Linear(d, cfg.horizon * action_dim), nn.Tanh()]
    return nn.Sequential(*mods)


def _split(out: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A codebook head's output (N, K (1 + P)) -> logits (N, K), offsets (N, K, P)."""
    return out[:, :k], out[:, k:].reshape(len(out), k, -1)


def codebook_loss(out: torch.Tensor, y: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on the centre nearest each target plus the squared error of that centre
    plus its offset (summed over the plan's entries)."""
    logits, offsets = _split(out, len(centres))
    c = torch.cdist(y, centres).argmin(1)
    rows = torch.arange(len(y))
    err = (centres[c] + offsets[rows, c] - y).pow(2).sum(1)
    return nn.functional.cross_entropy(logits, c) + err.mean()


def plan_actions(
    heads: list[nn.Module], x: torch.Tensor, centres: torch.Tensor | None = None
) -> torch.Tensor:
    """The ensemble's plan (N, horizon * A): the heads' mean action, or with a codebook the
    centre with the highest mean log-probability plus the heads' mean offset for it."""
    if centres is None:
        return mean_action(heads, x)
    parts = [_split(h(x), len(centres)) for h in heads]
    logp = torch.stack([p[0].log_softmax(1) for p in parts]).mean(0)
    c = logp.argmax(1)
    rows = torch.arange(len(x))
    offset = torch.stack([p[1][rows, c] for p in parts]).mean(0)
    return (centres[c] + offset).clamp(-1.0, 1.0)


def _inputs(z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    return torch.cat([z, goal, z - goal], dim=-1)


def mean_action(heads: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """The ensemble's output: its heads' mean (one head: that head's)."""
    return torch.stack([h(x) for h in heads]).mean(0)


def state_dict(
    heads: list[nn.Module], centres: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """One head: its own keys (the single-head file format); more: ``head<i>.<key>``; a
    codebook's centres as ``codebook``."""
    prefix = (lambda i: "") if len(heads) == 1 else (lambda i: f"head{i}.")
    out = {
        f"{prefix(i)}{k}": v.contiguous()
        for i, h in enumerate(heads)
        for k, v in h.state_dict().items()
    }
    if centres is not None:
        out["codebook"] = centres.contiguous()
    return out


@torch.no_grad()
def _encode_dataset(model: WorldModel, ds: Dataset, cfg: GCBCConfig):
    """Flat latents (N, S), per-frame action targets (N, H, A), episode lengths and, with
    ``goal_share``, each episode's goal latent (E, S) and the steps whose target leads to it
    (the first step meeting the success rule, -1: none; else None, None).

    A dataset with ``expert_labels`` (``agent.collect expert_labels=true``: DAgger data) is
    read with those labels as targets, and every one of its steps leads to the goal."""
    k, a_dim = model.cfg.frameskip, model.cfg.action_dim
    zs, targets, lengths, goals, reached = [], [], [], [], []
    with_goals = cfg.goal_share > 0
    for ep in ds.iter_episodes():
        zs.append(encode_episode(model, ep).flatten(1))
        acts = np.array(ep["expert_actions" if ds.expert_labels else "actions"], np.float32)
        if with_goals:
            gp = torch.as_tensor(np.array(ep["goal_pixels"]))[None]
            gq = np.array(ep["goal_proprio"], np.float32)[None]
            gq = torch.as_tensor(gq) if model.cfg.proprio_state else None
            goals.append(encode_all(model, gp, gq).flatten(1))
            reached.append(len(acts) if ds.expert_labels else ds.first_success(ep))
        span = cfg.horizon * k
        padded = np.concatenate([acts, np.repeat(acts[-1:], span, axis=0)])  # hold the last one
        windows = np.lib.stride_tricks.sliding_window_view(padded, span, axis=0)  # (T+1, A, span)
        blocks = windows[: len(acts) + 1].transpose(0, 2, 1).reshape(-1, cfg.horizon, k, a_dim)
        targets.append(torch.as_tensor(blocks.mean(2)))
        lengths.append(len(acts) + 1)
    goal_parts = (torch.cat(goals), np.array(reached)) if with_goals else (None, None)
    expert = np.full(len(lengths), ds.expert_labels)
    return torch.cat(zs), torch.cat(targets), np.array(lengths), *goal_parts, expert


class _Pairs:
    """Hindsight (observation, goal) pairs of one set of episodes."""

    def __init__(
        self,
        z,
        image,
        targets,
        starts,
        lengths,
        episodes,
        lo_k,
        hi_k,
        threshold,
        goals=None,
        reached=None,
        goal_share=0.0,
        expert=None,
    ):
        self.z, self.image, self.targets = z, image, targets  # image: z's image part (a view)
        self.starts, self.lengths, self.episodes = starts, lengths, episodes
        self.lo_k, self.hi_k, self.threshold = lo_k, hi_k, threshold
        self.goals, self.goal_share = goals, goal_share
        #: episodes whose goal image the data reached after at least one step
        self.with_goal = episodes[reached[episodes] >= 1] if goals is not None else episodes[:0]
        self.reached = reached
        #: hindsight pairs come from the episodes whose targets are what ran (not DAgger's)
        self.hindsight = episodes if expert is None else episodes[~expert[episodes]]

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        e = self.hindsight[rng.integers(0, len(self.hindsight), n)]
        last = self.lengths[e] - 1
        t = (rng.random(n) * last).astype(int)
        t2 = np.minimum(t + rng.integers(self.lo_k, self.hi_k + 1, n), last)
        return self.starts[e] + t, self.starts[e] + t2

    def change(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return (self.image[j] - self.image[i]).norm(dim=1).numpy()

    def batch(self, n: int, rng: np.random.Generator):
        if not len(self.hindsight):  # DAgger data alone: every pair aims at its goal
            return self._goal_pairs(n, rng)
        n_goal = int(round(self.goal_share * n)) if len(self.with_goal) else 0
        if not n_goal:
            return self._hindsight(n, rng)
        x, y = self._hindsight(n - n_goal, rng)  # first, as always: the same seed, same draws
        xg, yg = self._goal_pairs(n_goal, rng)
        return torch.cat([x, xg]), torch.cat([y, yg])

    def _goal_pairs(self, n: int, rng: np.random.Generator):
        """Pairs aimed at the episode's own goal, from a step before it was first met."""
        e = self.with_goal[rng.integers(0, len(self.with_goal), n)]
        i = self.starts[e] + (rng.random(n) * self.reached[e]).astype(int)  # before success
        return _inputs(self.z[i], self.goals[e]), self.targets[i].flatten(1)

    def _hindsight(self, n: int, rng: np.random.Generator):
        i, j = self.draw(n, rng)
        if self.threshold is not None:  # redraw until n pairs with a large enough change
            keep = self.change(i, j) > self.threshold
            i, j = i[keep], j[keep]
            while len(i) < n:
                a, b = self.draw(n, rng)
                keep = self.change(a, b) > self.threshold
                i, j = np.concatenate([i, a[keep]]), np.concatenate([j, b[keep]])
            i, j = i[:n], j[:n]
        return _inputs(self.z[i], self.z[j]), self.targets[i].flatten(1)


def read_manifest(path: str) -> dict[str, Any]:
    """The JSON beside a gcbc policy file, checked to be one."""
    meta_path = Path(path).with_suffix(".json")
    if not meta_path.exists():
        raise FileNotFoundError(
            f"{meta_path} does not exist: train a policy with python -m agent.gcbc"
        )
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a gcbc policy ({FORMAT}): train one with agent.gcbc")
    return meta


def world_model_of(path: str) -> str:
    """The world model a gcbc policy file reads (from its manifest)."""
    return read_manifest(path)["world_model"]


def evaluation_key(run_config: dict[str, Any]) -> str:
    """Where a policy's manifest keeps an evaluation run with this config."""
    return "evaluation_handoff" if run_config.get("handoff_steps") else "evaluation"


def record_evaluation(out: str, results_path: str, command: str | None = None) -> dict[str, Any]:
    """Add an ``agent.evaluate policy=gcbc`` run (held-out seeds) to ``<out>.json``: as
    ``evaluation``, or with ``handoff_steps=K`` (the planner finishing) as
    ``evaluation_handoff``."""
    meta_path = Path(f"{out}.json")
    meta = json.loads(meta_path.read_text())
    r = json.loads(Path(results_path).read_text())
    if (
        r.get("config", {}).get("policy") != "gcbc"
        or r["config"].get("checkpoint") != f"{out}.safetensors"
    ):
        raise ValueError(
            f"{results_path} is not an evaluation of {out}.safetensors with policy=gcbc: "
            "pass the results.json of that run"
        )
    seeds = [e["seed"] for e in r["per_episode"]]
    handoff = r["config"].get("handoff_steps", 0)
    meta[evaluation_key(r["config"])] = {
        "success_rate": r["success_rate"],
        "success_ci95": r["success_ci95"],
        "episodes": r["episodes"],
        "seeds": [min(seeds), max(seeds)],
        "act_ms_p50": r["plan_ms_p50"],
        **({"act_ms_p95": r["plan_ms_p95"], "handoff_steps": handoff} if handoff else {}),
        "command": command,
    }
    atomic_write_json(meta_path, meta)
    return meta


def train(
    world_model: str,
    data: str | list[str],
    out: str,
    cfg: GCBCConfig,
    command: str | None = None,
) -> dict[str, Any]:
    """Train and write ``<out>.safetensors`` + ``<out>.json``; returns the JSON's content.

    ``data``: one dataset folder, or several of the same task whose episodes are joined in
    order (the validation episodes are the last ones of the last folder)."""
    t0 = time.perf_counter()
    model, manifest = checkpoint.load(world_model)
    model.eval()
    folders = [data] if isinstance(data, str) else list(data)
    parts = []
    for folder in folders:
        ds = Dataset(folder)
        if ds.task != manifest.get("task"):
            raise ValueError(
                f"dataset {folder} is of task {ds.task!r}, the world model {world_model} of "
                f"{manifest.get('task')!r}: use data of the world model's task"
            )
        if ds.expert_labels and not cfg.goal_share:
            raise ValueError(
                f"dataset {folder} holds expert labels toward each episode's goal "
                "(expert_labels, DAgger data): train with --goal-share > 0"
            )
        parts.append(_encode_dataset(model, ds, cfg))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    z, targets = torch.cat([q[0] for q in parts]), torch.cat([q[1] for q in parts])
    lengths = np.concatenate([q[2] for q in parts])
    goals = torch.cat([q[3] for q in parts]) if cfg.goal_share else None
    reached = np.concatenate([q[4] for q in parts]) if cfg.goal_share else None
    expert = np.concatenate([q[5] for q in parts])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    data = folders[0] if len(folders) == 1 else folders
    n_val = max(1, int(round(cfg.val_share * len(lengths))))
    if len(lengths) - n_val < 1:
        raise ValueError(f"dataset {data} has {len(lengths)} episode(s): gcbc needs at least 2")
    k = model.cfg.frameskip
    args = (z, model.image_part(z), targets, starts, lengths)
    train_eps, val_eps = (
        np.arange(len(lengths) - n_val),
        np.arange(len(lengths) - n_val, len(lengths)),
    )
    far = max(cfg.max_goal_steps or cfg.horizon * k, k)  # farthest hindsight goal (env steps)
    threshold = None
    if cfg.min_change_quantile > 0:
        probe = _Pairs(*args, train_eps, k, far, None, expert=expert)
        change = probe.change(*probe.draw(20_000, rng))
        threshold = float(np.quantile(change, cfg.min_change_quantile))
        if (change > threshold).mean() < 0.01:  # a still scene: nothing to keep
            raise ValueError(
                f"the image latent of {data} barely changes between frames, so "
                f"--min-change-quantile {cfg.min_change_quantile} keeps no pairs: use 0"
            )
    goal_args = (goals, reached, cfg.goal_share, expert)
    pairs = _Pairs(*args, train_eps, k, far, threshold, *goal_args)
    val = _Pairs(*args, val_eps, k, far, threshold, *goal_args)
    if cfg.goal_share and not len(pairs.with_goal):
        raise ValueError(
            f"no training episode of {data} reaches its goal, so --goal-share has no pairs: use 0"
        )
    centres = None
    if cfg.codebook:  # k-means over training plans, from an RNG of its own
        from scipy.cluster.vq import kmeans2

        sample = pairs.batch(KMEANS_SAMPLE, np.random.default_rng(cfg.seed + 20_000))[1].numpy()
        c, _ = kmeans2(sample.astype(np.float64), cfg.codebook, seed=cfg.seed, minit="++")
        centres = torch.as_tensor(c, dtype=torch.float32)
    heads = []
    for i in range(cfg.ensemble):  # head 0 draws from the same RNGs as a single head does
        if i:
            torch.manual_seed(cfg.seed + i)
        head_rng = rng if i == 0 else np.random.default_rng(cfg.seed + i)
        head = make_head(z.shape[1], model.cfg.action_dim, cfg)
        opt = torch.optim.Adam(head.parameters(), cfg.lr)
        for _ in range(cfg.steps):
            x, y = pairs.batch(cfg.batch_size, head_rng)
            if centres is None:
                loss = (head(x) - y).pow(2).mean()
            else:
                loss = codebook_loss(head(x), y, centres)
            opt.zero_grad()
            loss.backward()
            opt.step()
        heads.append(head)
    if cfg.half:  # round once, so the figures below and the acting policy match the file
        with torch.no_grad():
            for p in (q for h in heads for q in h.parameters()):
                p.copy_(p.half().float())
        centres = None if centres is None else centres.half().float()
    with torch.no_grad():
        xv, yv = val.batch(4096, rng)
        val_mse = float((plan_actions(heads, xv, centres) - yv).pow(2).mean())
        mean_mse = float((yv - yv.mean(0)).pow(2).mean())
    weights, meta_path = Path(f"{out}.safetensors"), Path(f"{out}.json")
    weights.parent.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # an old JSON must not vouch for the new weights
    tmp = weights.with_suffix(".safetensors.tmp")
    tensors = state_dict(heads, centres)
    if cfg.half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(tensors, str(tmp))
    tmp.replace(weights)
    meta = {
        "format": FORMAT,
        "task": ds.task,
        "config": asdict(cfg),
        "world_model": world_model,
        "world_model_sha256": checkpoint.loaded_sha(world_model, manifest),
        "dataset": data,  # a folder, or the list of folders joined
        "dataset_episodes": int(len(lengths)),
        "change_threshold": threshold,
        "val_mse": val_mse,
        "val_mse_mean_action": mean_mse,
        "train_wall_s": round(time.perf_counter() - t0, 1),
        "command": command,
        "weights_sha256": checkpoint.digest(weights),
    }
    atomic_write_json(meta_path, meta)  # last: the pair is complete iff the JSON exists
    return meta


class GCBCPolicy:
    """``reset(goal)`` then ``act(obs)``; the world model encodes, the MLP picks the action."""

    def __init__(self, path: str, expect_task: str | None = None) -> None:
        meta_path = Path(path).with_suffix(".json")
        meta = read_manifest(path)
        if expect_task is not None and meta["task"] != expect_task:
            raise ValueError(
                f"{path} was trained on {meta['task']!r}, not {expect_task!r}: pass a gcbc "
                f"policy trained on {expect_task}"
            )
        saved = checkpoint.load_tensors(path)  # refused unless its sha256 is the manifest's
        wm = meta["world_model"]
        self.model, wm_manifest = checkpoint.load(wm)
        if checkpoint.loaded_sha(wm, wm_manifest) != meta["world_model_sha256"]:
            raise checkpoint.CheckpointError(
                f"the world model {wm} changed since {path} was trained on it: retrain the policy"
            )
        self.model.eval()
        unknown = set(meta["config"]) - set(GCBCConfig.__dataclass_fields__)
        if unknown:
            raise checkpoint.CheckpointError(
                f"{meta_path} has settings this version does not know ({sorted(unknown)}): "
                "retrain the policy with this version's agent.gcbc"
            )
        self.cfg = GCBCConfig(**meta["config"])
        self.centres = saved.pop("codebook", None)
        if self.centres is not None:
            self.centres = self.centres.float()
        self.heads = []
        for i in range(self.cfg.ensemble):
            prefix = f"head{i}." if self.cfg.ensemble > 1 else ""  # see state_dict()
            head = make_head(self.model.cfg.state_dim, self.model.cfg.action_dim, self.cfg)
            head.load_state_dict(
                {k[len(prefix) :]: v for k, v in saved.items() if k.startswith(prefix)}
            )
            self.heads.append(head.eval())
        self.meta = meta
        self.planned = False
        self.queue: list[np.ndarray] = []

    def _encode(self, obs: dict[str, np.ndarray]) -> torch.Tensor:
        return self.model.encode_observation(obs).flatten(1)

    @torch.no_grad()
    def reset(self, goal: dict[str, np.ndarray], seed: int | None = None) -> None:
        self.z_goal = self._encode(goal)
        self.queue = []

    @torch.no_grad()
    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.planned = not self.queue
        if self.planned:
            plan = plan_actions(self.heads, _inputs(self._encode(obs), self.z_goal), self.centres)
            first = plan.reshape(self.cfg.horizon, -1)[0].numpy().astype(np.float32)
            self.queue = [first] * self.model.cfg.frameskip
        return self.queue.pop(0)


@friendly_errors
def main(argv: list[str] | None = None) -> None:
    p = head_parser(__doc__.split("\n\n")[0], GCBCConfig)
    a = vars(p.parse_args(argv))
    if a["record_eval"]:
        meta = record_evaluation(a["out"], a["record_eval"], a["eval_command"])
        key = evaluation_key(json.loads(Path(a["record_eval"]).read_text())["config"])
        print(
            f"recorded {a['record_eval']} in {a['out']}.json as {key}: {meta[key]['success_rate']}"
        )
        return
    if not (a["checkpoint"] and a["data"]):
        raise ValueError("agent.gcbc needs --checkpoint and --data to train (or --record-eval)")
    cfg = config_of(GCBCConfig, a)
    command = " ".join(["python -m agent.gcbc", *(argv if argv is not None else sys.argv[1:])])
    meta = train(a["checkpoint"], a["data"], a["out"], cfg, command)
    print(json.dumps({k: meta[k] for k in ("val_mse", "val_mse_mean_action", "train_wall_s")}))
    print(f"wrote {a['out']}.safetensors and {a['out']}.json")


if __name__ == "__main__":
    main()
