"""Training runner for both stages: resumable, logged, optionally distributed."""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

import envs
from agent import checkpoint
from agent.batches import ConcatWindows, Windows, split_dataset
from agent.config import check_device
from agent.dataset import Dataset, DatasetError, atomic_write_json, kind_mismatch
from agent.metrics import encode_all, plannability_report
from agent.model import ModelConfig, WorldModel
from agent.objectives import FinetuneObjective, LossWeights, PretrainObjective, ema_update
from agent.slow_features import fit_cost_basis
from agent.train_state import latest_snapshot, load_state, save_state

LR_SCHEDULES = ("constant", "cosine")  #: values of TrainConfig.lr_schedule


@dataclass(frozen=True)
class TrainConfig:
    """Settings of ``python -m agent.train``."""

    stage: str = "pretrain"  #: pretrain (action-free video) | finetune (action-conditioned)
    data: str = "data/point_mass"  #: dataset folder from agent.collect
    out: str = "runs/point_mass"  #: run folder (state snapshots, logs, final model)
    init: str | None = None  #: finetune: pretrained checkpoint to start from
    #: finetune: also carry over ``init``'s action-conditioned parts (predictor, proprio head,
    #: normalization) to continue a finetuned model on new data, e.g. a sim model on robot run
    #: logs; needs ``init``'s model config. Off: only the encoder carries over.
    init_predictor: bool = False
    extra_video: list[str] = field(default_factory=list)  #: pretrain: more datasets (other
    #: tasks, or video imported with agent.import_video) whose frames join pretraining
    #: finetune: more datasets of the same task (e.g. another exploration policy) whose
    #: episodes all join the training windows; the held-out metrics stay on ``data``'s
    extra_data: list[str] = field(default_factory=list)
    #: finetune: a state probe (``agent.state_probe``) made on ``init``'s frozen encoder, for
    #: the ``weights.probe`` loss term (its reading of imagined against true latents)
    probe: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)  #: architecture
    weights: LossWeights = field(default_factory=LossWeights)  #: loss weights
    steps: int = 2000  #: optimizer steps
    batch_size: int = 64  #: windows per step (per process)
    window: int = 6  #: frames per window (finetune: history + rollout horizon)
    lr: float = 1e-3  #: AdamW learning rate
    #: constant | cosine (lr * (1 + cos(pi * step / steps)) / 2, down to 0 at the last step;
    #: a function of the step alone, so resume=true continues it exactly)
    lr_schedule: str = "constant"
    weight_decay: float = 1e-4  #: AdamW weight decay
    ema: float = 0.99  #: target-encoder EMA decay (pretrain)
    train_encoder: bool = False  #: finetune: also update the encoder
    checkpoint_every: int = 200  #: snapshot period K (a kill loses < K steps)
    log_every: int = 50  #: CSV / TensorBoard period
    heldout_fraction: float = 0.1  #: last episodes held out for metrics
    seed: int = 0  #: seeds model init and batch sampling
    resume: bool = False  #: continue from ``out``'s latest snapshot
    device: str = "cpu"  #: cpu | cuda | auto
    threads: int = 0  #: torch threads (0 = leave default)

    def __post_init__(self) -> None:
        if self.stage not in ("pretrain", "finetune"):
            raise ValueError(f"stage={self.stage!r} is unknown: use pretrain or finetune")
        for name, least in (("steps", 1), ("batch_size", 2), ("checkpoint_every", 1),
                            ("log_every", 1)):  # fmt: skip
            if getattr(self, name) < least:
                raise ValueError(f"{name}={getattr(self, name)}: use an integer >= {least}")
        if not 0 < self.heldout_fraction < 1:
            raise ValueError(
                f"heldout_fraction={self.heldout_fraction}: use a fraction in (0, 1), e.g. 0.1"
            )
        if not 0 <= self.ema < 1:
            raise ValueError(f"ema={self.ema}: use a decay in [0, 1), e.g. 0.99")
        if self.extra_video and self.stage != "pretrain":
            raise ValueError("extra_video is for stage=pretrain (finetuning needs actions)")
        if self.extra_data and self.stage != "finetune":
            raise ValueError(
                "extra_data is for stage=finetune: pool pretraining video with extra_video"
            )
        if self.weights.proprio_r2 and (self.stage != "pretrain" or self.extra_video):
            raise ValueError(
                f"weights.proprio_r2={self.weights.proprio_r2} is for stage=pretrain on one "
                "dataset with proprio (extra_video pools frames only): drop one of them"
            )
        if self.model.decoder_proprio and (
            self.stage != "pretrain" or not self.weights.reconstruct or self.extra_video
        ):
            raise ValueError(
                "model.decoder_proprio=true lets the pixel reconstruction read the proprio: use "
                "it at stage=pretrain with weights.reconstruct > 0 on data with proprio (not "
                "extra_video)"
            )
        if self.model.cost_predictable and self.stage != "finetune":
            raise ValueError(
                "model.cost_predictable=true weighs the slow features by the predictor's error, "
                "which a pretrain does not train: use it at stage=finetune"
            )
        if (self.probe is not None) != (self.weights.probe > 0):
            raise ValueError(
                f"probe={self.probe!r} with weights.probe={self.weights.probe}: a probe loss needs "
                "both, probe=<probe of init> and weights.probe > 0"
            )
        if self.probe is not None and (self.stage != "finetune" or not self.init):
            raise ValueError(
                "probe= is for stage=finetune with init=: the probe must read the init model's "
                "frozen encoder (train it with python -m agent.state_probe --checkpoint <init>)"
            )
        if self.init_predictor and (self.stage != "finetune" or not self.init):
            raise ValueError(
                "init_predictor=true is for stage=finetune with init=<a finetuned checkpoint>"
            )
        if self.probe is not None and self.train_encoder:
            raise ValueError("probe= needs a frozen encoder: drop train_encoder=true")
        if self.stage == "finetune" and not self.init and not self.train_encoder:
            raise ValueError(
                "stage=finetune without init= would train the predictor on a random, frozen "
                "encoder: pass init=<pretrain run>/model.safetensors (or train_encoder=true)"
            )
        if self.window < self.model.history + 1:
            raise ValueError(f"window={self.window} must exceed model.history={self.model.history}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule={self.lr_schedule!r} is unknown: use one of {list(LR_SCHEDULES)}"
            )
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device={self.device!r} is unknown: use cpu, cuda or auto")
        check_device("device", self.device)


def _init_model(cfg: TrainConfig) -> dict[str, Any]:
    """With ``init_predictor``: the model config of ``init`` (the run continues that model);
    a ``model.*`` value given that differs from both the default and init's is refused."""
    init = checkpoint.read_manifest(cfg.init)
    checkpoint.require_finetuned(init, cfg.init, "init_predictor=true (it continues a predictor)")
    have = init["model"]
    given, default = asdict(cfg.model), asdict(ModelConfig())
    for k, v in given.items():
        if k in have and v != default[k] and v != have[k]:
            raise checkpoint.CheckpointError(
                f"model.{k}={v!r} was given but init has {have[k]!r}: drop it "
                "(init_predictor=true continues init's model, its config included)"
            )
    return {**given, **{k: have[k] for k in given if k in have}}


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) under ``cfg.lr_schedule``."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / cfg.steps))
    return cfg.lr


#: settings a resumed run may change: how long it runs and how it reports, not what it learns
#: (``data``: its sha256 is checked instead, so a moved dataset still resumes)
RESUME_MAY_CHANGE = (
    "resume", "steps", "threads", "log_every", "checkpoint_every", "device", "out", "data",
)  # fmt: skip


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"width": 8}}`` -> ``{"model.width": 8}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def _dist_info() -> tuple[int, int]:
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    if ws > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank() if ws > 1 else 0), ws


def _leave_together() -> None:
    """Every process waits for rank 0's checkpoint, then tears the group down while Python is
    whole. A rank that just exited (as rank 1 did, while rank 0 wrote) could die with SIGABRT
    at interpreter teardown: gloo's threads still held the last all_gather's tensors
    (pytorch/pytorch#179291). Success path only: after a failure the peers are not all here,
    and torchrun stops them."""
    dist.barrier()
    dist.destroy_process_group()


ENCODER_PARTS = ("encoder", "target_encoder")


class Trainer:
    DECODER_BATCH = 16  # frames per step for the picture decoder (videos only)
    #: pretrain with weights.proprio_r2: frames per step, beyond the batch, that the linear
    #: readout of the proprio is fit on (a 64-entry latent needs many more rows than a batch)
    PROBE_ROWS = 384

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.rank, self.world = _dist_info()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        dev = (
            cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        if dev == "cuda" and self.world > 1:
            dev = f"cuda:{self.rank % torch.cuda.device_count()}"
        self.device = torch.device(dev)
        self.out = Path(cfg.out)
        self.data = Dataset(cfg.data)
        if self.data.task == "video":  # agent.import_video: frames without actions
            raise DatasetError(
                f"data={cfg.data} is imported video (no actions, no task): train on a task's "
                f"data= and pool the video into pretraining with extra_video=[{cfg.data}]"
            )
        meta = self.data.meta
        model_cfg = ModelConfig(
            **{
                **(_init_model(cfg) if cfg.init_predictor else asdict(cfg.model)),
                "action_dim": meta["action_space"]["shape"][0],
                "proprio_dim": meta["proprio_dim"],
                "image_size": meta["image_size"],
            }
        )
        # a frameskip model learns from frames k steps apart; pretraining sees every frame
        stride = model_cfg.frameskip if cfg.stage == "finetune" else 1
        train_eps, held_eps = split_dataset(self.data, cfg.heldout_fraction, cfg.window, stride)
        self.extra_data: list[Dataset] = []
        for path in cfg.extra_data:
            self.extra_data.append(self._same_task(Dataset(path), path))
        self.extra_data_sha = {
            p: d.meta["sha256"] for p, d in zip(cfg.extra_data, self.extra_data, strict=True)
        }
        self.train_eps = train_eps  # model.cost_features: the slow features are fitted on them
        self.train = Windows(self.data, train_eps, cfg.window, stride, extra=self.extra_data)
        self.held = Windows(self.data, held_eps, cfg.window, stride)
        self.pool = self.train
        self.extra_sha: dict[str, str] = {}  # pooled pretraining video: path -> dataset sha256
        if cfg.extra_video:
            parts = [self.train]
            for path in cfg.extra_video:
                extra = Dataset(path)
                if extra.meta["image_size"] != meta["image_size"]:
                    raise DatasetError(
                        f"extra_video {path} has {extra.meta['image_size']}px images, {cfg.data} "
                        f"has {meta['image_size']}px: collect or import at the same image_size"
                    )
                parts.append(Windows(extra, np.arange(extra.episodes), cfg.window, stride))
                self.extra_sha[path] = extra.meta["sha256"]
            self.pool = ConcatWindows(parts)
        torch.manual_seed(cfg.seed)
        self.model = WorldModel(model_cfg)
        if cfg.stage == "finetune" and cfg.init:
            pre, pre_manifest = checkpoint.load(cfg.init)
            self._check_init(pre_manifest, model_cfg)
            if cfg.init_predictor:  # continue init's whole model
                self._check_whole_init(pre_manifest, model_cfg)
                self.model.load_state_dict(pre.state_dict())
            else:  # the pretrained encoders carry over; the action-conditioned parts start fresh
                enc = {
                    k: v for k, v in pre.state_dict().items() if k.split(".")[0] in ENCODER_PARTS
                }
                self.model.load_state_dict(enc, strict=False)
        self.model.to(self.device)
        self.objective = self._make_objective()
        params = [p for p in self.objective.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + self.rank)
        self.step = 0
        self.wall_before = 0.0  # training seconds of the segments before a resume
        self.latents: torch.Tensor | None = None
        self.anon_peak_mb: float | None = None  # largest _anon_memory_mb() seen
        # a robot's run logs (agent.control) have no simulated task: no true state to score
        # the latent against, so their report is the prediction error alone
        self.task = envs.make(meta["task"]).unwrapped if meta["task"] in envs.TASKS else None

    def _same_task(self, extra: Dataset, path: str) -> Dataset:
        """``extra`` if its episodes can join ``data``'s (same task, spaces and image size)."""
        key = kind_mismatch(extra, self.data)
        if key is not None:
            raise DatasetError(
                f"extra_data {path} has {key}={extra.meta.get(key)!r} but {self.cfg.data} "
                f"has {self.data.meta.get(key)!r}: pool only datasets collected on one task"
            )
        earlier = [self.data, *self.extra_data]
        if any(extra.meta["sha256"] == d.meta["sha256"] for d in earlier):
            raise DatasetError(
                f"extra_data {path} is the same dataset as data= or another extra_data (same "
                "sha256): its episodes would train twice, and data's held-out ones would train; "
                "pass other datasets"
            )
        return extra

    def _check_init(self, manifest: dict[str, Any], model_cfg: ModelConfig) -> None:
        k_init = manifest["model"].get("cost_features", 0)
        if k_init and not model_cfg.cost_features and self.rank == 0:
            print(
                f"note: init has model.cost_features={k_init} (slow features as the planning "
                "cost); this run fits none, so its checkpoint plans on the whole latent: pass "
                f"model.cost_features={k_init} to fit them again at the end of the run",
                file=sys.stderr,
            )
        enc_keys = (
            "encoder",
            "latent_dim",
            "width",
            "image_size",
            "patch_size",
            "vit_depth",
            "views",
        )
        init_cfg = {**asdict(ModelConfig()), **manifest["model"]}  # older inits lack newer keys
        for k in enc_keys:
            if k == "image_size" and init_cfg[k] != model_cfg.image_size:
                raise checkpoint.CheckpointError(
                    f"init reads {init_cfg[k]} px images, data={self.cfg.data} has "
                    f"{model_cfg.image_size} px: finetune on data of the init's image size, or "
                    "pretrain at this one"
                )
            if init_cfg[k] != getattr(model_cfg, k):
                raise checkpoint.CheckpointError(
                    f"init checkpoint has model.{k}={init_cfg[k]!r} but this run "
                    f"uses {getattr(model_cfg, k)!r}: pass the same model config as pretraining"
                )

    def _check_whole_init(self, manifest: dict[str, Any], model_cfg: ModelConfig) -> None:
        have = manifest["model"]
        for k, want in asdict(model_cfg).items():  # the data's sizes (the rest is init's)
            if k in have and have[k] != want:
                raise checkpoint.CheckpointError(
                    f"init checkpoint has model.{k}={have[k]!r} but the data gives {want!r}: "
                    "init_predictor=true needs data of init's action space, proprio and images"
                )

    def _make_objective(self) -> torch.nn.Module:
        cfg, m = self.cfg, self.model
        if cfg.stage == "pretrain":
            for p in (
                *m.predictor.parameters(),
                *m.proprio_head.parameters(),
                *(() if cfg.weights.reconstruct else m.decoder.parameters()),
            ):
                p.requires_grad_(False)
            obj = PretrainObjective(m, cfg.weights)
        else:
            for p in (*m.frame_predictor.parameters(), *m.target_encoder.parameters()):
                p.requires_grad_(False)
            if not cfg.train_encoder:
                m.encoder.requires_grad_(False)
            probe = None
            if cfg.probe is not None:
                from agent import state_probe

                probe = state_probe.load(cfg.probe, cfg.init)[0].to(self.device)
            obj = FinetuneObjective(m, cfg.weights, cfg.train_encoder, probe)
        if self.world > 1:
            obj = torch.nn.parallel.DistributedDataParallel(obj)
        return obj

    # ---- loop ---------------------------------------------------------------------------
    def fit(self) -> Path:
        cfg = self.cfg
        self._prepare_out()  # every process: all refuse a folder that holds a run, alike
        if cfg.resume:
            self._check_resume(latest_snapshot(self.out)[1])
            extra = load_state(self.out, self.model, self.opt, self.gen, self.rank)
            self.step = extra["step"]
            self.wall_before = extra.get("train_wall_s", 0.0)
            if extra.get("dataset_sha256") != self.data.meta["sha256"]:
                raise DatasetError(f"resume: {cfg.data} is not the dataset this run started on")
            if extra.get("extra_data_sha256", {}) != self.extra_data_sha:
                raise DatasetError(
                    f"resume: extra_data={list(cfg.extra_data)} are not the datasets this run "
                    "started on: pass the same extra_data or start a new run"
                )
        if self.model.cfg.proprio_stats and not cfg.resume and not cfg.init_predictor:
            self.model.set_proprio_stats(self.train.proprio)  # resume / init_predictor keep them
        if cfg.stage == "finetune" and not cfg.train_encoder:
            self.latents = encode_all(self.model, self.train.pixels, self.train.proprio)
        self._note_memory()
        log = _Logger(self.out, enabled=self.rank == 0)
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            desc=f"{cfg.stage}",
            disable=self.rank != 0,
            dynamic_ncols=True,
        )
        t0, seen = time.perf_counter(), 0
        try:  # the bar ends its line and the logs flush even when a step fails (e.g. OOM)
            while self.step < cfg.steps:
                stats = self._train_step()
                self.step += 1
                seen += cfg.batch_size * self.world
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    rate = seen / (time.perf_counter() - t0)
                    log.write(self.step, {**stats, "samples_per_s": rate})
                    self._note_memory()
                    bar.set_postfix(loss=f"{stats['loss']:.4f}", sps=f"{rate:.0f}")
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.steps:
                    rngs = self._gather_rngs()  # every process takes part; rank 0 writes
                    if self.rank == 0:
                        extra = self._extra(self.wall_before + time.perf_counter() - t0)
                        save_state(self.out, self.step, self.model, self.opt, self.gen, extra, rngs)
        finally:
            bar.close()
            log.close()
        if self.rank == 0:
            path = self._finish(self.wall_before + time.perf_counter() - t0)
        else:
            path = self.out / "model.safetensors"
        if self.world > 1:
            _leave_together()
        return path

    def _train_step(self) -> dict[str, float]:
        idx = torch.randint(len(self.pool), (self.cfg.batch_size,), generator=self.gen)
        if self.latents is not None:  # frozen encoder: cached latents, a few frames to decode
            o = self.train.frames(idx)
            batch = {
                "latents": self.latents[o],
                **self.train.gather(idx, pixels=False),
                "frame": self.train.pixels[o[: self.DECODER_BATCH, 0]],
            }
        else:
            if hasattr(self.pool, "group"):  # pooled datasets: spread pairs within a task
                idx = self.pool.group(idx)
            batch = self.pool.gather(idx)
            if self.cfg.weights.proprio_r2:  # rows for the proprio readout's fit
                more = torch.randint(len(self.train), (self.PROBE_ROWS,), generator=self.gen)
                o = self.train.frames(more)[:, 0]
                batch["probe_pixels"] = self.train.pixels[o]
                batch["probe_proprio"] = self.train.proprio[o]
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        self.objective.train()
        out = self.objective(batch)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at step {self.step}: lower lr or check the data for NaN"
            )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(self.cfg, self.step)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        if self.cfg.stage == "pretrain":
            ema_update(self.model.target_encoder, self.model.encoder, self.cfg.ema)
        return {k: float(v.detach()) for k, v in out.items()}

    def _note_memory(self) -> None:
        now = _anon_memory_mb()
        if now is not None:
            self.anon_peak_mb = max(now, self.anon_peak_mb or 0.0)

    def _extra(self, wall_s: float) -> dict[str, Any]:
        return {
            "dataset_sha256": self.data.meta["sha256"],
            **({"extra_data_sha256": self.extra_data_sha} if self.extra_data_sha else {}),
            "task": self.data.task,
            "config": _jsonable(self.cfg),
            "world_size": self.world,
            "train_wall_s": round(wall_s, 3),  # all segments so far (a resume adds its own)
        }

    def _gather_rngs(self) -> dict[str, torch.Tensor]:
        """Every process's global torch and batch-sampler RNG states (torchrun), for rank 0's
        snapshot: each rank resumes its own streams, not rank 0's (which would have every
        process draw the same batches after a resume). One process: none (saved as usual)."""
        if self.world == 1:
            return {}
        out = {}
        for kind, state in (("torch", torch.get_rng_state()), ("sampler", self.gen.get_state())):
            mine = state.to(self.device)
            parts = [torch.empty_like(mine) for _ in range(self.world)]
            dist.all_gather(parts, mine)
            out |= {f"rng.{kind}.rank{r}": p.cpu() for r, p in enumerate(parts)}
        return out

    def _check_resume(self, meta: dict[str, Any]) -> None:
        """Refuse to continue a run with other settings than it started with (only the keys
        of ``RESUME_MAY_CHANGE`` may differ) or another number of processes."""
        was = _flat(meta.get("config", {}))
        fix = "pass the run's own settings, or start a new run (another out=)"
        for key, value in _flat(_jsonable(self.cfg)).items():
            if key.split(".")[0] in RESUME_MAY_CHANGE:
                continue
            old = was.get(key, value)  # snapshots of older code lack newer keys
            if old != value:
                raise ValueError(
                    f"resume: {self.out} started with {key}={old!r}, not {value!r}: {fix}"
                )
        if meta.get("world_size", 1) != self.world:
            raise ValueError(
                f"resume: {self.out} ran with {meta.get('world_size', 1)} process(es), not "
                f"{self.world}: resume under the same torchrun --nproc_per_node"
            )

    def _prepare_out(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        if not self.cfg.resume and (self.out / "latest.json").exists():
            raise FileExistsError(
                f"{self.out} already holds a run: pass resume=true to continue it or choose "
                "another out="
            )

    def _finish(self, wall_s: float) -> Path:
        distance = None if self.task is None else self.task.state_distance
        fit = None
        if self.model.cfg.cost_features:
            fit = fit_cost_basis(self.model, self.data, self.train_eps, self.cfg.window)
        report = plannability_report(self.model, self.train, self.held, distance)
        peak_mb = _peak_memory_mb()
        self._note_memory()
        manifest = {
            "task": self.data.task,
            "stage": self.cfg.stage,
            "step": self.step,
            "dataset_sha256": self.data.meta["sha256"],
            "dataset_episodes": self.data.episodes,
            "dataset_transitions": self.data.transitions,
            "train_wall_s": round(wall_s, 1),
            "peak_memory_mb": peak_mb,
            "peak_anon_memory_mb": self.anon_peak_mb,
            "metrics": report,
            "config": _jsonable(self.cfg),
            "action_space": self.data.meta["action_space"],
        }
        if fit is not None:
            manifest["cost_features_fit"] = fit
        if self.extra_sha:
            manifest["extra_video_sha256"] = self.extra_sha
        if self.cfg.probe is not None:
            manifest["probe_sha256"] = checkpoint.digest(checkpoint.paths(self.cfg.probe)[0])
        if self.extra_data_sha:
            manifest["extra_data_sha256"] = self.extra_data_sha
            manifest["extra_data_episodes"] = sum(d.episodes for d in self.extra_data)
            manifest["extra_data_transitions"] = sum(d.transitions for d in self.extra_data)
        path = checkpoint.save(self.out / "model", self.model, manifest)
        atomic_write_json(self.out / "metrics.json", report)
        print(json.dumps({"checkpoint": str(path), **report}, indent=1))
        return path


class _Logger:
    """CSV always; TensorBoard when installed. Rank 0 only."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.enabled, self.rows, self.tb = enabled, None, None
        if not enabled:
            return
        self.path = out / "log.csv"
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out / "tb"))
        except ImportError:
            self.tb = None

    def write(self, step: int, stats: dict[str, float]) -> None:
        if not self.enabled:
            return
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["step", *stats])
            if new:
                w.writeheader()
            w.writerow({"step": step, **{k: f"{v:.6g}" for k, v in stats.items()}})
        if self.tb is not None:
            for k, v in stats.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def _jsonable(cfg: Any) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg)))


def _peak_memory_mb() -> float:
    """Peak resident memory: with the frames memory-mapped it includes the dataset pages read,
    which the OS can drop at any time (``_anon_memory_mb`` is what the process itself holds)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _anon_memory_mb() -> float | None:
    """Resident memory not backed by a file (tensors, arrays) now; None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None
