"""Robot run logs are training data: ``agent.merge`` pools runs into one dataset and
``agent.train`` trains on it (no task state: the report is the prediction error alone)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from agent.checkpoint import CheckpointError
from agent.control_loop import ControlLoop, LoopConfig
from agent.dataset import Dataset, DatasetError
from agent.merge import main, merge
from agent.model import ModelConfig
from agent.trainer import TrainConfig, Trainer
from envs.robots import SafeRobot
from envs.robots.sim_arm import SimArmAdapter
from tests.robots.test_control_loop import SAFETY, StubPolicy


def _run(out, seed, image_size=16, dry_run=False, steps=8):
    arm = SimArmAdapter(image_size=image_size, seed=seed)
    rate = arm.action_spec.rate_hz  # the loop may not outpace the robot (12.5 Hz)
    cfg = LoopConfig(rate_hz=rate, max_steps=steps, output_dir=str(out))
    action = (0.3 * (-1) ** seed, 0.2, -0.1, 0.0)
    with SafeRobot(arm, SAFETY) as safe:
        goal = {"pixels": safe.get_observation()["pixels"]}
        loop = ControlLoop(
            safe, StubPolicy(action=action), cfg, {"task": "sim_arm"}, dry_run=dry_run
        )
        assert loop.run(goal).ok
    return str(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return [_run(root / f"run{i}", seed=i) for i in range(4)]


def test_a_run_log_says_what_training_needs(runs):
    meta = json.loads((Path(runs[0]) / "meta.json").read_text())
    assert meta["action_space"]["shape"] == [4] and meta["proprio_dim"] == 7
    assert meta["image_size"] == 16 and meta["state_dim"] == 0 and len(meta["sha256"]) == 64


def test_merge_keeps_every_episode_in_order_and_resumes(runs, tmp_path):
    out = merge(runs, tmp_path / "m")
    d = Dataset(out)
    sources = [Dataset(r) for r in runs]
    assert d.episodes == 4 and d.transitions == sum(s.transitions for s in sources) == 32
    for ep, src in zip(d.iter_episodes(), sources, strict=True):
        np.testing.assert_array_equal(ep["pixels"], next(src.iter_episodes())["pixels"])
        np.testing.assert_array_equal(ep["actions"], next(src.iter_episodes())["actions"])
    meta = json.loads((out / "meta.json").read_text())
    assert [m["path"] for m in meta["merged_from"]] == runs and "reason" not in meta
    # per-run counts and timings stay with their run, not the first one's under the merge
    assert not {"limited", "replaced", "plan_ms_p50", "plan_ms_p95"} & set(meta)
    # interrupted after two chunks: the same command finishes it, to the same bytes
    again = tmp_path / "again"
    shutil.copytree(out, again)
    (again / "meta.json").unlink()
    shutil.rmtree(again / "chunk_00003")
    shutil.rmtree(again / "chunk_00002")
    with pytest.raises(DatasetError, match="unfinished merge of other sources"):
        merge(runs[::-1], again)  # other sources (here: another order) never reuse its chunks
    merge(runs, again)
    assert json.loads((again / "meta.json").read_text())["sha256"] == meta["sha256"]


def test_merge_refuses_what_is_not_one_dataset(runs, tmp_path):
    dry = _run(tmp_path / "dry", seed=0, dry_run=True)
    with pytest.raises(DatasetError, match="no source holds episodes"):
        merge([dry], tmp_path / "a")
    other = _run(tmp_path / "big", seed=0, image_size=32, steps=3)
    with pytest.raises(DatasetError, match="image_size=32 but .* has 16: merge only datasets"):
        merge([runs[0], other], tmp_path / "b")
    with pytest.raises(DatasetError, match="listed twice"):
        merge([runs[0], runs[0]], tmp_path / "c")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="is not empty: choose a new or empty folder"):
        merge(runs[:2], tmp_path / "full")
    merge(runs[:2], tmp_path / "d")
    with pytest.raises(FileExistsError, match="already holds a dataset"):
        merge(runs[:2], tmp_path / "d")
    assert not (tmp_path / "a" / "meta.json").exists()
    assert not (tmp_path / "b" / "meta.json").exists()


def test_merge_cli_leaves_dry_runs_and_short_runs_out_and_says_so(runs, tmp_path, capsys):
    dry = _run(tmp_path / "dry", seed=0, dry_run=True)
    short = _run(tmp_path / "short", seed=0, steps=3)  # e.g. a run that faulted early
    main([*runs, dry, short, "--out", str(tmp_path / "m"), "--min-steps", "6"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"left out {dry}: a dry run (no action was applied: not training data)"
    assert out[1] == f"left out {short}: no episode of 6 or more steps (--min-steps)"
    assert out[2] == f"wrote {tmp_path / 'm'}: 4 episodes, 32 transitions from 4 datasets"
    with pytest.raises(SystemExit) as e:
        main([*runs, "--out", str(tmp_path / "m")])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().startswith("error: ")


def test_merged_runs_train_a_world_model(runs, tmp_path):
    data = merge(runs, tmp_path / "m")
    tiny = ModelConfig(width=8, latent_dim=16, predictor_hidden=32, predictor_layers=1)
    common = dict(data=str(data), model=tiny, batch_size=8, checkpoint_every=4, threads=1)
    pre = Trainer(TrainConfig(**common, out=str(tmp_path / "pre"), steps=4, window=2)).fit()
    ft = Trainer(
        TrainConfig(
            **common, out=str(tmp_path / "ft"), stage="finetune", init=str(pre), steps=4, window=3
        )
    ).fit()
    manifest = json.loads(ft.with_suffix(".json").read_text())
    assert manifest["task"] == "sim_arm" and manifest["dataset_episodes"] == 4
    assert set(manifest["metrics"]) == {"prediction_error"}  # no true state on a robot
    # continuing the finetuned model (e.g. a sim model on robot logs) keeps its predictor:
    # with a zero learning rate it comes out unchanged; without init_predictor it starts fresh
    frozen = dict(
        common, stage="finetune", init=str(ft), steps=1, window=3, lr=0.0, weight_decay=0.0
    )
    cont = Trainer(TrainConfig(**frozen, out=str(tmp_path / "c"), init_predictor=True)).fit()
    fresh = Trainer(TrainConfig(**frozen, out=str(tmp_path / "f"))).fit()
    ref, kept, new = (load_file(str(p)) for p in (ft, cont, fresh))
    for k in ref:
        torch.testing.assert_close(kept[k], ref[k])
    assert not torch.equal(new["predictor.net.0.weight"], ref["predictor.net.0.weight"])
    wider = ModelConfig(width=8, latent_dim=16, predictor_hidden=64, predictor_layers=1)
    with pytest.raises(
        CheckpointError, match="model.predictor_hidden=64 was given but init has 32: drop it"
    ):
        Trainer(
            TrainConfig(**{**frozen, "model": wider}, out=str(tmp_path / "w"), init_predictor=True)
        )
    with pytest.raises(ValueError, match="init_predictor=true is for stage=finetune"):
        TrainConfig(**common, out=str(tmp_path / "p"), init_predictor=True)


def test_a_short_last_run_trains_and_the_held_out_split_takes_a_long_one(runs, tmp_path):
    """A run shorter than the window (say it faulted early) merged last used to be the whole
    held-out split, which has no windows: the trainer refused. It now holds out the last run
    long enough for a window; the short one joins training, where it gives no windows."""
    short = _run(tmp_path / "short", seed=0, steps=3)
    data = merge([*runs, short], tmp_path / "m")
    tiny = ModelConfig(width=8, latent_dim=16, predictor_hidden=32, predictor_layers=1)
    cfg = TrainConfig(
        data=str(data), model=tiny, batch_size=8, checkpoint_every=4, threads=1,
        out=str(tmp_path / "pre"), steps=2, window=6,
    )  # fmt: skip
    trainer = Trainer(cfg)
    assert len(trainer.held) == 8 + 1 - 6 + 1  # run 3's windows (8 steps); run 4 gives none
    trainer.fit()


def _copy(run, to, labels=False, **meta_fields):
    """A copy of run log ``run`` whose meta.json has ``meta_fields`` (its chunk: the same
    bytes); with ``labels``, DAgger labels (``expert_actions``) as agent.collect writes them."""
    shutil.copytree(run, to)
    meta = json.loads((Path(to) / "meta.json").read_text())
    meta.update(meta_fields)
    if labels:
        actions = np.load(Path(to) / "chunk_00000" / "actions.npy")
        np.save(Path(to) / "chunk_00000" / "expert_actions.npy", -actions)
        meta["expert_labels"] = True
    (Path(to) / "meta.json").write_text(json.dumps(meta))
    return str(to)


def test_merge_refuses_two_copies_of_one_dataset(runs, tmp_path):
    copy = _copy(runs[1], tmp_path / "copy")
    with pytest.raises(DatasetError) as e:
        merge([runs[0], runs[1], copy], tmp_path / "m")
    assert str(e.value).startswith(f"{runs[1]} and {copy} hold the same data (sha256 ")
    assert not (tmp_path / "m" / "meta.json").exists()


def test_merged_meta_keeps_each_sources_policy_where_they_differ(runs, tmp_path):
    a = _copy(runs[0], tmp_path / "a", policy="repeat", policy_choices=["repeat"])
    b = _copy(runs[1], tmp_path / "b", policy="repeat", policy_choices=["repeat"])
    c = _copy(
        runs[2], tmp_path / "c", policy="gcbc", policy_choices=["gcbc"],
        policy_checkpoint="bc.safetensors", policy_sigma=0.2,
    )  # fmt: skip
    same = Dataset(merge([a, b], tmp_path / "same")).meta
    assert same["policy"] == "repeat" and "policy_checkpoint" not in same
    mixed = Dataset(merge([a, b, c], tmp_path / "mixed")).meta
    assert mixed["policy"] == ["repeat", "repeat", "gcbc"]  # as merged_from
    assert mixed["policy_choices"] == [["repeat"], ["repeat"], ["gcbc"]]
    assert mixed["policy_checkpoint"] == [None, None, "bc.safetensors"]
    assert mixed["policy_sigma"] == [None, None, 0.2]


def test_merging_labelled_with_unlabelled_data_says_the_labels_are_dropped(runs, tmp_path, capsys):
    a = _copy(runs[0], tmp_path / "a", labels=True)
    b = _copy(runs[1], tmp_path / "b", labels=True)
    both = Dataset(merge([a, b], tmp_path / "both"))
    assert both.expert_labels and "note:" not in capsys.readouterr().out
    ep = next(both.iter_episodes())
    np.testing.assert_array_equal(ep["expert_actions"], -ep["actions"])
    main([a, runs[2], "--out", str(tmp_path / "m")])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        f"note: no expert labels in {runs[2]}, so the merged dataset keeps none "
        "(expert_actions dropped); merge the labelled datasets alone to keep them"
    )
    assert not Dataset(tmp_path / "m").expert_labels
