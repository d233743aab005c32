"""Training runs: both stages, exact resume, clear refusals."""

import itertools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from agent import checkpoint
from agent.dataset import DatasetError
from agent.model import ModelConfig, WorldModel
from agent.train import check_data_task
from agent.trainer import TrainConfig, Trainer, learning_rate

TINY = ModelConfig(width=8, latent_dim=16, predictor_hidden=32, predictor_layers=1)


def _cfg(data, out, **kw):
    base = dict(
        data=str(data),
        out=str(out),
        model=TINY,
        steps=6,
        batch_size=8,
        window=3,
        checkpoint_every=3,
        log_every=2,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_pretrain_then_finetune_writes_checkpoints_and_metrics(tiny_dataset, tmp_path):
    pre = Trainer(_cfg(tiny_dataset, tmp_path / "pre")).fit()
    manifest = checkpoint.read_manifest(pre)
    assert manifest["stage"] == "pretrain" and manifest["step"] == 6
    assert manifest["dataset_sha256"] and manifest["task"] == "point_mass"
    m = manifest["metrics"]
    assert len(m["prediction_error"]["model"]) == 2 and -1 <= m["spearman"]["near"] <= 1
    assert -1 <= m["spearman"]["within"] <= 1
    assert (tmp_path / "pre" / "log.csv").read_text().startswith("step,")
    ft = Trainer(_cfg(tiny_dataset, tmp_path / "ft", stage="finetune", init=str(pre))).fit()
    pre_w, ft_w = load_file(str(pre)), load_file(str(ft))
    enc = [k for k in pre_w if k.startswith("encoder.")]
    assert all(torch.equal(pre_w[k], ft_w[k]) for k in enc), "frozen encoder changed"
    assert any(not torch.equal(pre_w[k], ft_w[k]) for k in pre_w if k.startswith("predictor."))


@pytest.mark.parametrize(
    "stage,schedule",
    [
        ("pretrain", "constant"),
        ("finetune", "constant"),
        ("pretrain", "cosine"),
        ("pretrain+proprio_r2", "constant"),  # draws more rows per step for its readout
    ],
)
def test_resume_continues_exactly(tiny_dataset, tmp_path, stage, schedule):
    from agent.objectives import LossWeights

    kw = {"stage": stage.split("+")[0], "lr_schedule": schedule}
    if stage.endswith("+proprio_r2"):
        kw["weights"] = LossWeights(proprio_r2=1.0)
    if kw["stage"] == "finetune":
        kw["init"] = str(Trainer(_cfg(tiny_dataset, tmp_path / "init", steps=2)).fit())
    straight = Trainer(_cfg(tiny_dataset, tmp_path / "a", **kw)).fit()
    # "killed" after the step-3 snapshot: drop everything written later, then resume
    Trainer(_cfg(tiny_dataset, tmp_path / "b", **kw)).fit()
    run = tmp_path / "b"
    for p in list(run.glob("state_00000006.*")) + list(run.glob("model.*")):
        p.unlink()
    (run / "latest.json").write_text(json.dumps({"step": 3, "name": "state_00000003"}))
    resumed = Trainer(_cfg(tiny_dataset, run, resume=True, **kw)).fit()
    a, b = load_file(str(straight)), load_file(str(resumed))
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k, rtol=0, atol=0)


def test_resume_refuses_other_settings_and_counts_every_segments_time(tiny_dataset, tmp_path):
    run = tmp_path / "r"
    Trainer(_cfg(tiny_dataset, run, steps=3)).fit()
    first = checkpoint.read_manifest(run / "model.safetensors")["train_wall_s"]
    for change, said in (
        ({"batch_size": 4}, "started with batch_size=8, not 4"),
        ({"lr": 3e-3}, "started with lr=0.001, not 0.003"),
        ({"model": ModelConfig(width=16, latent_dim=16)}, "started with model.width=8, not 16"),
        ({"stage": "finetune", "train_encoder": True}, "started with stage='pretrain', not 'fin"),
    ):
        with pytest.raises(ValueError, match=said):
            Trainer(_cfg(tiny_dataset, run, steps=6, resume=True, **change)).fit()
    # more steps, other threads / logging: a resume
    Trainer(_cfg(tiny_dataset, run, steps=6, resume=True, log_every=1)).fit()
    manifest = checkpoint.read_manifest(run / "model.safetensors")
    before = json.loads((run / "state_00000003.json").read_text())["train_wall_s"]
    # the first segment's time, kept (the manifest's, rounded to 0.1 s, was taken after it) ...
    assert 0 < before <= first + 0.05
    assert manifest["step"] == 6 and manifest["train_wall_s"] > before  # ... and added to


def test_cosine_schedule_decays_to_zero(tiny_dataset, tmp_path):
    cfg = _cfg(tiny_dataset, tmp_path / "c", lr=1e-3, steps=10, lr_schedule="cosine")
    rates = [learning_rate(cfg, s) for s in range(cfg.steps + 1)]
    assert rates[0] == 1e-3 and rates[5] == pytest.approx(5e-4) and rates[10] == pytest.approx(0)
    assert all(a > b for a, b in itertools.pairwise(rates))
    assert learning_rate(_cfg(tiny_dataset, tmp_path / "k", steps=10), 7) == 1e-3
    a = load_file(str(Trainer(_cfg(tiny_dataset, tmp_path / "a", steps=3)).fit()))
    b = Trainer(_cfg(tiny_dataset, tmp_path / "b", steps=3, lr_schedule="cosine")).fit()
    assert not all(torch.equal(a[k], v) for k, v in load_file(str(b)).items())
    with pytest.raises(ValueError, match="lr_schedule='linear' is unknown"):
        _cfg(tiny_dataset, tmp_path / "x", lr_schedule="linear")


def test_same_seed_same_model(tiny_dataset, tmp_path):
    a = load_file(str(Trainer(_cfg(tiny_dataset, tmp_path / "a", steps=3)).fit()))
    b = load_file(str(Trainer(_cfg(tiny_dataset, tmp_path / "b", steps=3)).fit()))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_refusals(tiny_dataset, tmp_path):
    Trainer(_cfg(tiny_dataset, tmp_path / "run", steps=3)).fit()
    with pytest.raises(FileExistsError, match="resume=true"):
        Trainer(_cfg(tiny_dataset, tmp_path / "run", steps=3)).fit()
    with pytest.raises(DatasetError, match="agent.collect"):
        Trainer(_cfg(tmp_path / "nowhere", tmp_path / "x"))
    bad = tmp_path / "nan"
    shutil.copytree(tiny_dataset, bad)
    acts = np.load(bad / "chunk_00000" / "actions.npy")
    acts[3, 0] = np.nan
    np.save(bad / "chunk_00000" / "actions.npy", acts)
    with pytest.raises(DatasetError, match="NaN"):
        Trainer(_cfg(bad, tmp_path / "y"))
    other = ModelConfig(width=16, latent_dim=16, predictor_hidden=32, predictor_layers=1)
    init = tmp_path / "run" / "model.safetensors"
    with pytest.raises(checkpoint.CheckpointError, match="model.width"):
        Trainer(_cfg(tiny_dataset, tmp_path / "z", stage="finetune", init=str(init), model=other))


def test_finetune_refuses_an_init_of_other_keypoint_views(tiny_dataset, tmp_path):
    """model.views changes which view each point looks at: an init pretrained with other views
    (or before the key existed: views=1) is refused with the key named."""
    kp = replace(TINY, encoder="keypoints", latent_dim=8)
    pre = Trainer(_cfg(tiny_dataset, tmp_path / "pre", steps=2, model=kp)).fit()
    manifest = json.loads(pre.with_suffix(".json").read_text())
    del manifest["model"]["views"]  # as written by older code
    pre.with_suffix(".json").write_text(json.dumps(manifest))
    two = replace(kp, views=2)
    with pytest.raises(checkpoint.CheckpointError, match="model.views=1 but this run uses 2"):
        Trainer(_cfg(tiny_dataset, tmp_path / "ft", stage="finetune", init=str(pre), model=two))


def test_reconstruct_trains_the_decoder_through_the_encoder_and_is_off_by_default():
    from agent.model import WorldModel
    from agent.objectives import LossWeights, PretrainObjective

    torch.manual_seed(0)
    m = WorldModel(TINY)
    pixels = torch.randint(0, 256, (4, 2, 64, 64, 3), dtype=torch.uint8)
    assert "reconstruct" not in PretrainObjective(m, LossWeights())({"pixels": pixels})
    only = LossWeights(jepa=0, slowness=0, spread=0, reconstruct=1.0)
    out = PretrainObjective(m, only)({"pixels": pixels})
    out["loss"].backward()
    assert out["reconstruct"] > 0 and out["loss"] == out["reconstruct"]
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.decoder.parameters())


def test_pretrain_leaves_the_decoder_frozen_unless_reconstructing(tiny_dataset, tmp_path):
    from agent.objectives import LossWeights

    for w, trainable in ((LossWeights(), False), (LossWeights(reconstruct=0.5), True)):
        t = Trainer(_cfg(tiny_dataset, tmp_path / str(trainable), weights=w))
        assert all(p.requires_grad == trainable for p in t.model.decoder.parameters())


def test_decoder_proprio_draws_the_robot_from_its_state_at_pretrain(tiny_dataset, tmp_path):
    """``model.decoder_proprio``: the reconstruction reads the normalized proprio (stats from
    the data, kept in the checkpoint), so the robot need not be in the latent; refused where
    nothing reconstructs with it."""
    from agent.model.encoders import ConvDecoder
    from agent.objectives import LossWeights

    plain = ConvDecoder(TINY)
    assert plain.proprio_fc is None
    dec = ConvDecoder(replace(TINY, decoder_proprio=True))
    z, p = torch.randn(2, 16), torch.randn(2, 4)
    assert dec(z).shape == (2, 64, 64, 3)
    assert not torch.allclose(dec(z, p), dec(z, torch.zeros_like(p)))  # it reads the proprio
    dp = replace(TINY, decoder_proprio=True)
    w = LossWeights(reconstruct=100.0)
    trainer = Trainer(_cfg(tiny_dataset, tmp_path / "dp", model=dp, weights=w))
    path = trainer.fit()
    model, manifest = checkpoint.load(path)
    assert manifest["model"]["decoder_proprio"] and model.decoder.proprio_fc is not None
    rows = trainer.train.proprio.float()  # the training split's proprio
    assert torch.allclose(model.proprio_mean, rows.mean(0), atol=1e-5)
    # the finetune takes the encoder only, with the plain decoder of its own config
    fine = Trainer(_cfg(tiny_dataset, tmp_path / "ft", stage="finetune", init=str(path), steps=2))
    assert fine.model.decoder.proprio_fc is None
    for kw in ({"weights": LossWeights()}, {"stage": "finetune", "init": str(path)}):
        with pytest.raises(ValueError, match="model.decoder_proprio=true lets the pixel"):
            _cfg(tiny_dataset, tmp_path / "no", model=dp, **{"weights": w, **kw})


def test_finetune_pools_extra_data_of_the_same_task(tiny_dataset, tmp_path):
    init = str(Trainer(_cfg(tiny_dataset, tmp_path / "init", steps=2)).fit())
    kw = {"stage": "finetune", "init": init, "steps": 3}
    more = tmp_path / "more"  # another collection of the task (here: a copy, re-hashed)
    shutil.copytree(tiny_dataset, more)
    meta = json.loads((more / "meta.json").read_text())
    (more / "meta.json").write_text(json.dumps({**meta, "sha256": "0" * 64}))
    alone = Trainer(_cfg(tiny_dataset, tmp_path / "a", **kw))
    pooled = Trainer(_cfg(tiny_dataset, tmp_path / "b", extra_data=[str(more)], **kw))
    # all 4 extra episodes join the 3 training ones; the held-out episode stays alone
    assert len(pooled.train) == len(alone.train) * 7 // 3
    assert len(pooled.held) == len(alone.held)
    manifest = checkpoint.read_manifest(pooled.fit())
    assert manifest["extra_data_sha256"] == {str(more): "0" * 64}
    assert manifest["extra_data_episodes"] == 4
    other = tmp_path / "other"
    shutil.copytree(tiny_dataset, other)
    meta = json.loads((other / "meta.json").read_text())
    (other / "meta.json").write_text(json.dumps({**meta, "task": "reacher_easy"}))
    with pytest.raises(DatasetError, match="task='reacher_easy'.*one task"):
        Trainer(_cfg(tiny_dataset, tmp_path / "c", extra_data=[str(other)], **kw))
    with pytest.raises(ValueError, match="started with extra_data="):  # resume without them
        Trainer(_cfg(tiny_dataset, tmp_path / "b", resume=True, **kw)).fit()
    for same in ([str(tiny_dataset)], [str(more), str(more)]):  # held-out or twice: refused
        with pytest.raises(DatasetError, match="is the same dataset as data= or another"):
            Trainer(_cfg(tiny_dataset, tmp_path / "e", extra_data=same, **kw))
    for bad, said in (
        ({"log_every": 0}, "log_every=0: use an integer >= 1"),
        ({"heldout_fraction": 1.5}, r"heldout_fraction=1.5: use a fraction in \(0, 1\)"),
        ({"ema": 2.0}, r"ema=2.0: use a decay in \[0, 1\)"),
        ({"stage": "finetune"}, "without init= would train the predictor on a random"),
    ):
        with pytest.raises(ValueError, match=said):
            _cfg(tiny_dataset, tmp_path / "x", **bad)
    small = tmp_path / "small" / "model"  # a pretrain at another image size
    checkpoint.save(small, WorldModel(replace(TINY, image_size=32)), {"task": "point_mass"})
    with pytest.raises(checkpoint.CheckpointError, match="init reads 32 px images, data=.* has"):
        Trainer(_cfg(tiny_dataset, tmp_path / "s", stage="finetune", init=str(small)))
    with pytest.raises(checkpoint.CheckpointError, match="is a run folder: pass .*model.safe"):
        Trainer(_cfg(tiny_dataset, tmp_path / "z", stage="finetune", init=str(tmp_path / "init")))
    with pytest.raises(checkpoint.CheckpointError, match="stage=pretrain model .* not one for"):
        Trainer(_cfg(tiny_dataset, tmp_path / "y", **kw, init_predictor=True))  # init: a pretrain
    with pytest.raises(ValueError, match="extra_data is for stage=finetune"):
        _cfg(tiny_dataset, tmp_path / "d", extra_data=[str(tiny_dataset)])


def test_probe_term_trains_the_predictor_toward_the_probes_reading(tiny_dataset, tmp_path):
    from agent import state_probe
    from agent.state_probe import ProbeConfig

    init = str(Trainer(_cfg(tiny_dataset, tmp_path / "init", steps=2)).fit())
    fast = ProbeConfig(dims="0:2", hidden=32, layers=1, steps=200, batch_size=64, holdout=0.25)
    probe = str(tmp_path / "probe")
    state_probe.train(init, [str(tiny_dataset)], probe, fast, "cmd")
    # the probe term alone: the rollout's probed position must come toward the true one
    from agent.objectives import LossWeights

    only = LossWeights(one_step=0.0, rollout=0.0, proprio=0.0, decoder=0.0, probe=1.0)
    kw = {"stage": "finetune", "init": init, "probe": probe, "weights": only, "lr": 3e-3}
    trainer = Trainer(_cfg(tiny_dataset, tmp_path / "ft", steps=200, batch_size=32, **kw))
    batch = trainer.train.gather(torch.arange(0, len(trainer.train), 7))  # fixed windows

    def probe_error() -> float:
        with torch.no_grad():
            return float(trainer.objective.eval()(batch)["probe"])

    before = probe_error()
    path = trainer.fit()
    assert probe_error() < 0.7 * before  # 0.042 -> 0.024 when written
    manifest = checkpoint.read_manifest(path)
    assert manifest["probe_sha256"] == checkpoint.digest(tmp_path / "probe.safetensors")
    with pytest.raises(ValueError, match="needs both"):
        _cfg(tiny_dataset, tmp_path / "x", stage="finetune", init=init, probe=probe)
    with pytest.raises(ValueError, match="needs both"):
        _cfg(tiny_dataset, tmp_path / "x", stage="finetune", init=init, weights=only)
    with pytest.raises(ValueError, match="stage=finetune with init"):
        _cfg(tiny_dataset, tmp_path / "x", probe=probe, weights=only)
    with pytest.raises(checkpoint.CheckpointError, match="train a probe on this world model"):
        Trainer(_cfg(tiny_dataset, tmp_path / "y", **{**kw, "init": path}))


def test_env_of_another_task_than_the_data_is_refused(tiny_dataset, tmp_path):
    check_data_task("point_mass", str(tiny_dataset))  # the data's own task
    check_data_task("umaze", str(tmp_path / "nowhere"))  # missing data: the trainer's message
    with pytest.raises(ValueError, match="env=umaze but data=.* holds point_mass episodes"):
        check_data_task("umaze", str(tiny_dataset))


@pytest.mark.slow
def test_train_cli_refuses_env_of_another_task_before_writing(tiny_dataset, tmp_path):
    repo = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        [sys.executable, "-m", "agent.train", "env=umaze", "stage=pretrain",
         f"data={tiny_dataset}", f"out={tmp_path}/run", "steps=1"],
        capture_output=True, text=True, cwd=repo, env=dict(os.environ, MUJOCO_GL="egl"),
        timeout=120,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("error: env=umaze but data=")
    assert not (tmp_path / "run").exists()


def test_imported_video_as_data_says_to_pool_it_with_extra_video(tiny_dataset, tmp_path):
    video = tmp_path / "video"  # what agent.import_video writes: task "video", no actions
    shutil.copytree(tiny_dataset, video)
    meta = json.loads((video / "meta.json").read_text())
    (video / "meta.json").write_text(json.dumps({**meta, "task": "video"}))
    with pytest.raises(DatasetError, match=r"is imported video .* extra_video=\["):
        Trainer(_cfg(video, tmp_path / "r"))


def test_proprio_r2_term_pretrains_and_is_refused_where_no_proprio_reaches_it(
    tiny_dataset, tmp_path
):
    from agent.objectives import LossWeights

    w = LossWeights(proprio_r2=1.0)
    Trainer(_cfg(tiny_dataset, tmp_path / "ok", weights=w)).fit()
    rows = (tmp_path / "ok" / "log.csv").read_text().splitlines()
    assert "proprio_r2" in rows[0].split(",")
    for bad in ({"extra_video": [str(tiny_dataset)]}, {"stage": "finetune", "init": "x"}):
        with pytest.raises(ValueError, match="weights.proprio_r2=1.0 is for stage=pretrain"):
            _cfg(tiny_dataset, tmp_path / "x", weights=w, **bad)
