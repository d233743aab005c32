"""A state probe: an MLP that reads true-state entries off a world model's image latent.

``python -m agent.state_probe --checkpoint <world model> --data <folders> --dims 2:6 --out <path>``
encodes every frame of the datasets with the frozen encoder and fits an MLP from the image
part of the latent to ``state()[dims]``; the last ``--holdout`` share of the episodes is held
out and scored (RMSE and R^2 per entry). Saved as ``<out>.safetensors`` + ``<out>.json``
(format ``jepa-mpc-state-probe-1``, the world model's path and sha256, the dims, the held-out
scores and the command). A primitive planner uses it to read an object's pose from the
camera (``agent.push_primitives``); the probe never sees the true state at run time.
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
from torch import nn

from agent import checkpoint
from agent.cli import config_of, head_parser
from agent.dataset import Dataset, DatasetError, atomic_write_json
from agent.errors import friendly_errors
from agent.metrics import encode_episode
from agent.model import WorldModel

FORMAT = "jepa-mpc-state-probe-1"
HELDOUT_SEED = 100_000  #: the held-out set's first seed (``agent.evaluate``'s default)


@dataclass(frozen=True)
class ProbeConfig:
    """Settings of ``agent.state_probe``."""

    dims: str = "0:2"  #: state entries to read, ``a:b`` (Python slice) or ``i,j,k``
    hidden: int = 256  #: MLP width
    layers: int = 2  #: hidden layers
    steps: int = 4000  #: Adam steps
    batch_size: int = 512
    lr: float = 1e-3
    holdout: float = 0.1  #: share of the episodes (the last ones) held out for the scores
    seed: int = 0
    #: also train on latents the world model imagines over 1..imagined predictor steps of the
    #: recorded actions (what a planner reads the probe on); 0 = encoded frames only
    imagined: int = 0
    stride: int = 4  #: imagined rollouts start at every stride-th frame

    def __post_init__(self) -> None:
        parse_dims(self.dims)
        if self.hidden < 1 or self.layers < 1 or self.steps < 1 or self.batch_size < 1:
            raise ValueError("hidden, layers, steps and batch_size must be >= 1")
        if self.imagined < 0 or self.stride < 1:
            raise ValueError("imagined must be >= 0 and stride >= 1")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout={self.holdout} is invalid: use a share in (0, 1)")


def parse_dims(spec: str) -> list[int]:
    """``"2:6"`` -> [2, 3, 4, 5]; ``"0,1"`` -> [0, 1]; one error line otherwise."""
    try:
        if ":" in spec:
            lo, hi = (int(x) for x in spec.split(":"))
            dims = list(range(lo, hi))
        else:
            dims = [int(x) for x in spec.split(",")]
    except ValueError:
        dims = []
    if not dims or min(dims) < 0:
        raise ValueError(f"dims={spec!r} is invalid: use 'a:b' (e.g. 2:6) or 'i,j' (e.g. 0,1)")
    return dims


def make_mlp(din: int, dout: int, cfg: ProbeConfig) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = din
    for _ in range(cfg.layers):
        layers += [nn.Linear(width, cfg.hidden), nn.GELU()]
        width = cfg.hidden
    return nn.Sequential(*layers, nn.Linear(width, dout))


class StateProbe(nn.Module):
    """Image latent (..., *latent) -> the probed state entries (..., len(dims))."""

    def __init__(self, latent_size: int, dims: list[int], cfg: ProbeConfig) -> None:
        super().__init__()
        self.dims = dims
        self.register_buffer("z_mean", torch.zeros(latent_size))
        self.register_buffer("z_std", torch.ones(latent_size))
        self.register_buffer("y_mean", torch.zeros(len(dims)))
        self.register_buffer("y_std", torch.ones(len(dims)))
        self.net = make_mlp(latent_size, len(dims), cfg)

    def forward(self, z_image: torch.Tensor) -> torch.Tensor:
        x = (z_image.flatten(-1 if z_image.dim() == 1 else 1) - self.z_mean) / self.z_std
        return self.net(x) * self.y_std + self.y_mean


def _latents_and_states(model: WorldModel, folders: list[str], dims: list[int], cfg: ProbeConfig):
    """Image latents, states and episode indices of every frame; with ``cfg.imagined`` H,
    also the image latents the model imagines from every ``cfg.stride``-th frame over 1..H
    predictor steps of the recorded actions, with the states they should show."""
    zs, ys, episode, zi, yi, episode_i = [], [], [], [], [], []
    task = None
    for folder in folders:
        ds = Dataset(folder)
        if task is not None and ds.task != task:
            raise DatasetError(f"{folder} holds task {ds.task!r}, the others {task!r}: one task")
        task = ds.task
        for ep in ds.iter_episodes():
            state = np.asarray(ep["state"], np.float32)
            if max(dims) >= state.shape[1]:
                raise ValueError(
                    f"dims {dims} reach past the {state.shape[1]} state entries of {ds.task}: "
                    "pick entries of its state()"
                )
            full = encode_episode(model, ep)
            zs.append(model.image_part(full).flatten(1))
            ys.append(torch.as_tensor(state[:, dims]))
            episode.append(np.full(len(state), len(episode)))
            if cfg.imagined:
                z, y = _imagined(model, full, np.asarray(ep["actions"], np.float32), state, cfg)
                zi.append(z)
                yi.append(torch.as_tensor(y[:, dims]))
                episode_i.append(np.full(len(z), len(episode) - 1))
    imagined = (torch.cat(zi), torch.cat(yi), np.concatenate(episode_i)) if cfg.imagined else None
    return task, torch.cat(zs), torch.cat(ys), np.concatenate(episode), imagined


def _imagined(
    model: WorldModel, full: torch.Tensor, actions: np.ndarray, state: np.ndarray, cfg: ProbeConfig
) -> tuple[torch.Tensor, np.ndarray]:
    """Imagined image latents (M, D) from every ``stride``-th frame over 1..``imagined``
    predictor steps of the recorded actions, and the true states at those times (M, S)."""
    k, h = model.cfg.frameskip, cfg.imagined
    t = len(actions)
    starts = np.arange(0, t - k + 1, cfg.stride)
    if len(starts) == 0:
        return torch.zeros(0, model.cfg.latent_dim), np.zeros((0, state.shape[1]), np.float32)
    padded = np.concatenate([actions, np.zeros((h * k, actions.shape[1]), np.float32)])
    acts = np.stack([padded[s : s + h * k] for s in starts])  # (B, H * k, A)
    hist = full[starts][:, None]  # (B, 1, *latent)
    zs = model.image_part(model.rollout(hist, torch.as_tensor(acts))).flatten(2)  # (B, H, D)
    when = starts[:, None] + k * np.arange(1, h + 1)[None]  # (B, H): frame each latent shows
    keep = when <= t
    return zs[torch.as_tensor(keep)], state[when[keep]]


def fit(z: torch.Tensor, y: torch.Tensor, dims: list[int], cfg: ProbeConfig) -> StateProbe:
    """An MLP probe from latents (N, D) to states (N, len(dims)), inputs and targets
    standardized on these rows; seeded by ``cfg.seed``."""
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    probe = StateProbe(z.shape[1], dims, cfg)
    probe.z_mean.copy_(z.mean(0))
    probe.z_std.copy_(z.std(0).clamp_min(1e-6))
    probe.y_mean.copy_(y.mean(0))
    probe.y_std.copy_(y.std(0).clamp_min(1e-6))
    opt = torch.optim.Adam(probe.net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    xn, yn = (z - probe.z_mean) / probe.z_std, (y - probe.y_mean) / probe.y_std
    for _ in range(cfg.steps):
        idx = torch.randint(len(xn), (cfg.batch_size,), generator=gen)
        loss = (probe.net(xn[idx]) - yn[idx]).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return probe.eval()


def train(
    world_model: str, folders: list[str], out: str, cfg: ProbeConfig, command: str
) -> dict[str, Any]:
    """Fit the probe, write ``<out>.safetensors`` + ``<out>.json``; returns the manifest."""
    t0 = time.perf_counter()
    model, manifest = checkpoint.load(world_model)
    model.eval()
    dims = parse_dims(cfg.dims)
    with torch.no_grad():
        task, z, y, episode, imagined = _latents_and_states(model, folders, dims, cfg)
    if task != manifest.get("task"):
        raise ValueError(
            f"the data are {task!r} but {world_model} was trained on {manifest.get('task')!r}: "
            "probe a world model of the same task"
        )
    n_eps = int(episode.max()) + 1
    cut = max(1, int(round(n_eps * (1 - cfg.holdout))))
    if cut >= n_eps:
        raise ValueError(f"{n_eps} episode(s) leave none held out: give more data")
    train_rows = torch.as_tensor(episode < cut)
    z_fit, y_fit = z[train_rows], y[train_rows]
    if imagined is not None:
        zi, yi, ep_i = imagined
        im_rows = torch.as_tensor(ep_i < cut)
        z_fit, y_fit = torch.cat([z_fit, zi[im_rows]]), torch.cat([y_fit, yi[im_rows]])
    probe = fit(z_fit, y_fit, dims, cfg)
    rmse, r2 = _scores(probe, z[~train_rows], y[~train_rows])
    scores = {"heldout_rmse": rmse, "heldout_r2": r2}
    if imagined is not None:
        rmse_i, r2_i = _scores(probe, zi[~im_rows], yi[~im_rows])
        scores.update(heldout_imagined_rmse=rmse_i, heldout_imagined_r2=r2_i)
    meta = {
        "task": task,
        "world_model": world_model,
        "world_model_sha256": checkpoint.loaded_sha(world_model, manifest),
        "latent_size": int(z.shape[1]),
        "config": asdict(cfg),
        "dims": dims,
        "data": folders,
        "frames": int(len(z)),
        "episodes": n_eps,
        "heldout_episodes": n_eps - cut,
        **scores,
        "train_wall_s": round(time.perf_counter() - t0, 1),
        "command": command,
    }
    checkpoint.write(out, probe.state_dict(), meta, FORMAT)
    return meta


def _scores(probe: StateProbe, z: torch.Tensor, y: torch.Tensor) -> tuple[list, list]:
    """Held-out RMSE and R^2 per probed entry."""
    with torch.no_grad():
        err = (probe(z) - y).pow(2).mean(0)
    r2 = 1 - err / y.var(0, unbiased=False).clamp_min(1e-12)
    return [float(v) for v in err.sqrt()], [float(v) for v in r2]


def load(path: str, model_path: str | None = None) -> tuple[StateProbe, dict[str, Any]]:
    """The probe and its manifest; refuses one made for another world model file."""
    hint = "train one with python -m agent.state_probe"
    meta = checkpoint.read_manifest(path, FORMAT, hint)
    weights, _ = checkpoint.paths(path)  # its sha256 is checked by load_tensors, below
    if model_path is not None:  # the caller loads it with checkpoint.load, which checks
        # its weights against this manifest's sha256: the manifest says which weights they are
        sha = checkpoint.loaded_sha(model_path, checkpoint.read_manifest(model_path))
        if sha != meta["world_model_sha256"]:
            raise checkpoint.CheckpointError(
                f"probe {weights.name} reads the latents of {meta['world_model']}, not of "
                f"{model_path}: train a probe on this world model (python -m agent.state_probe)"
            )
    unknown = set(meta["config"]) - set(ProbeConfig.__dataclass_fields__)
    if unknown:
        raise checkpoint.CheckpointError(
            f"{path} has settings this version does not know ({sorted(unknown)}): retrain it"
        )
    cfg = ProbeConfig(**meta["config"])
    probe = StateProbe(meta["latent_size"], meta["dims"], cfg)
    probe.load_state_dict(checkpoint.load_tensors(path))
    return probe.eval(), meta


def record_evaluation(out: str, results_path: str, command: str | None = None) -> dict[str, Any]:
    """Add an ``agent.evaluate policy=push_primitives probe=<out>`` run to ``<out>.json``: as
    ``evaluation``, or with near goals (``eval.goal_steps=K``) as ``evaluation_goal_steps_K``;
    a run on other seeds than the held-out set's (first seed not ``HELDOUT_SEED``) goes under
    ``evaluation_seed_<first seed>`` (+ ``_goal_steps_K``), beside the held-out ones."""
    meta_path = Path(f"{out}.json")
    meta = checkpoint.read_manifest(out, FORMAT, "train one with python -m agent.state_probe")
    r = json.loads(Path(results_path).read_text())
    cfg = r.get("config", {})
    probe = cfg.get("probe")
    same = probe is not None and checkpoint.paths(probe)[0] == checkpoint.paths(out)[0]
    if cfg.get("policy") != "push_primitives" or not same:
        raise ValueError(
            f"{results_path} is not an evaluation with policy=push_primitives probe={out}: "
            "pass the results.json of that run"
        )
    steps = cfg.get("eval", {}).get("goal_steps", 0)
    seeds = [e["seed"] for e in r["per_episode"]]
    key = "evaluation" if min(seeds) == HELDOUT_SEED else f"evaluation_seed_{min(seeds)}"
    meta[key if not steps else f"{key}_goal_steps_{steps}"] = {
        "checkpoint": cfg["checkpoint"],
        "success_rate": r["success_rate"],
        "success_ci95": r["success_ci95"],
        "episodes": r["episodes"],
        "seeds": [min(seeds), max(seeds)],
        "act_ms_p50": r["plan_ms_p50"],
        "act_ms_p95": r["plan_ms_p95"],
        "mean_steps": r["mean_steps"],
        "primitive_cost": cfg.get("primitive_cost", "pose"),
        "command": command,
    }
    atomic_write_json(meta_path, meta)
    return meta


@friendly_errors
def main(argv: list[str] | None = None) -> None:
    p = head_parser(__doc__.split("\n\n")[0], ProbeConfig)
    a = vars(p.parse_args(argv))
    if a["record_eval"]:
        record_evaluation(a["out"], a["record_eval"], a["eval_command"])
        print(f"recorded {a['record_eval']} in {a['out']}.json")
        return
    if not (a["checkpoint"] and a["data"]):
        raise ValueError("agent.state_probe needs --checkpoint and --data to train")
    cfg = config_of(ProbeConfig, a)
    command = " ".join(
        ["python -m agent.state_probe", *(argv if argv is not None else sys.argv[1:])]
    )
    meta = train(a["checkpoint"], a["data"], a["out"], cfg, command)
    print(
        json.dumps(
            {k: v for k, v in meta.items() if k.startswith("heldout_") or k == "train_wall_s"}
        )
    )
    print(f"wrote {Path(a['out']).with_suffix('.safetensors')} and its .json")


if __name__ == "__main__":
    main()
