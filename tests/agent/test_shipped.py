"""Shipped checkpoints: they load, match their manifests, and still plan to success.

A regression in the model code, the planner or a task breaks these (CI runs them).
"""

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
from scipy.stats import binom

from agent import checkpoint
from agent.evaluation import EvalConfig, EvalSettings, evaluate
from agent.mpc import AgentConfig
from agent.trainer import ENCODER_PARTS
from envs.config import EnvConfig

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "checkpoints").glob("*.safetensors"))
#: other ways to plan the same task (checkpoints/variants/<task>_<variant>.*)
VARIANTS = sorted((ROOT / "checkpoints" / "variants").glob("*.safetensors"))


def _task(path: Path) -> str:
    return json.loads(path.with_suffix(".json").read_text())["task"]


def test_there_is_a_shipped_checkpoint_for_the_default_task():
    assert (ROOT / "checkpoints" / "point_mass.safetensors").exists()


@pytest.mark.parametrize("path", SHIPPED + VARIANTS, ids=lambda p: p.stem)
def test_manifest_describes_the_weights(path):
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    if path in SHIPPED:
        assert manifest["task"] == path.stem
    else:
        assert path.stem.startswith(manifest["task"] + "_") and manifest["variant"]
    assert manifest["commands"] and manifest["evaluation"]["episodes"] >= 100
    assert manifest["evaluation"]["seeds"][0] >= 100_000  # held out from the training seeds
    model, _ = checkpoint.load(path, expect={"task": manifest["task"]})
    assert path.stat().st_size < 10 * 2**20


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED + VARIANTS, ids=lambda p: p.stem)
def test_shipped_checkpoint_keeps_its_success_floor(path, tmp_path):
    """A few fixed held-out seeds with the shipped evaluation's planner and agent settings;
    the floor sits well below the shipped success rate."""
    manifest = json.loads(path.with_suffix(".json").read_text())
    shipped_rate = manifest["evaluation"]["success_rate"]
    if shipped_rate < 0.5:
        pytest.skip(f"{path.stem} ships at {shipped_rate:.2f}: no success floor to keep")
    shipped_cfg = manifest["evaluation"]["config"]
    if shipped_cfg.get("policy", "mpc") != "mpc":  # push_primitives: the probe test below
        policy = shipped_cfg["policy"]
        pytest.skip(f"{path.stem} is evaluated with policy={policy}: its probe's test keeps it")
    cfg = EvalConfig(
        env=EnvConfig(_task(path)),
        checkpoint=str(path),
        output_dir=str(tmp_path),
        planner=shipped_cfg["planner"],
        agent=AgentConfig(**shipped_cfg["agent"]),
        eval=EvalSettings(episodes=6, seed=300_000, workers=2, videos=0),
    )
    r = evaluate(cfg)
    assert r["success_rate"] >= min(0.65, shipped_rate - 0.3), r["per_episode"]


@pytest.mark.slow
def test_readme_python_api_runs():
    """The README's Python snippet, executed as written."""
    text = (ROOT / "README.md").read_text()
    snippet = re.search(r"## Python API\n\n```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    assert namespace["info"]["success"]


GRAPHS = sorted((ROOT / "checkpoints" / "landmarks").glob("*.safetensors"))


@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: p.stem)
def test_shipped_landmark_graph_belongs_to_its_model(path):
    """Each graph pins the shipped world model it was encoded with, and loads against it."""
    from agent import landmarks

    manifest = json.loads(path.with_suffix(".json").read_text())
    model = ROOT / "checkpoints" / f"{path.stem}.safetensors"  # a main checkpoint or a variant
    model = model if model.exists() else ROOT / "checkpoints" / "variants" / model.name
    assert manifest["model_sha256"] == checkpoint.digest(model)
    assert manifest["evaluation"]["episodes"] >= 100
    assert manifest["evaluation"]["seeds"][0] >= 100_000
    graph = landmarks.for_checkpoint(str(path), model)
    assert graph.nodes == manifest["nodes"] and path.stat().st_size < 12 * 2**20


@pytest.mark.slow
@pytest.mark.parametrize("path", GRAPHS, ids=lambda p: p.stem)
def test_shipped_landmark_graph_keeps_its_success_floor(path, tmp_path):
    """The graph's own held-out settings (model, planner, agent, the graph itself) on a few
    fixed seeds; the floor sits well below the shipped success rate."""
    manifest = json.loads(path.with_suffix(".json").read_text())
    shipped = manifest["evaluation"]
    if shipped["success_rate"] < 0.5:
        pytest.skip(f"{path.stem} ships at {shipped['success_rate']:.2f}: no floor to keep")
    agent = {**shipped["config"]["agent"], "landmarks": str(path)}
    cfg = EvalConfig(
        env=EnvConfig(manifest["task"]),
        checkpoint=str(ROOT / shipped["config"]["checkpoint"]),
        output_dir=str(tmp_path),
        planner=shipped["config"]["planner"],
        agent=AgentConfig(**agent),
        eval=EvalSettings(episodes=6, seed=300_000, workers=2, videos=0),
    )
    r = evaluate(cfg)
    assert r["success_rate"] >= min(0.65, shipped["success_rate"] - 0.3), r["per_episode"]


SHARED = [p for p in VARIANTS if p.stem.endswith("_shared")]


def test_the_shared_variants_carry_one_encoder():
    """checkpoints/variants/<task>_shared: one pretrained encoder serves every such task (the
    finetunes keep it frozen), and each manifest names the pooled video it saw."""
    assert len({_task(p) for p in SHARED}) >= 2
    encoders = []
    for p in SHARED:
        tensors = checkpoint.load_tensors(p)
        encoders.append({k: v for k, v in tensors.items() if k.split(".")[0] in ENCODER_PARTS})
        data = json.loads(p.with_suffix(".json").read_text())["pretrain"]["data"]
        assert f"data/{_task(p)}" in data and all(data.values())
    assert encoders[0]
    for enc in encoders[1:]:
        assert enc.keys() == encoders[0].keys()
        assert all(torch.equal(enc[k], encoders[0][k]) for k in enc)


POLICIES = sorted((ROOT / "checkpoints" / "gcbc").glob("*.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "path, handoff",
    [(p, h) for p in POLICIES for h in (False, True)],
    ids=lambda x: x.stem if isinstance(x, Path) else ("handoff" if x else "alone"),
)
def test_shipped_policy_keeps_its_success_floor(path, handoff, tmp_path, monkeypatch):
    """The goal-conditioned BC policies (alone, and with the planner after the hand-off they
    were evaluated with) on a few fixed held-out seeds."""
    monkeypatch.chdir(ROOT)  # the policy names its world model relative to the repository
    manifest = json.loads(path.with_suffix(".json").read_text())
    key = "evaluation_handoff" if handoff else "evaluation"
    if key not in manifest or manifest[key]["success_rate"] < 0.5:
        pytest.skip(f"{path.stem}: no {key} at 0.5 or more, no success floor to keep")
    shipped_rate = manifest[key]["success_rate"]
    world_model = checkpoint.paths(manifest["world_model"])[0]
    agent = json.loads(world_model.with_suffix(".json").read_text())["evaluation"]["config"]
    cfg = EvalConfig(
        env=EnvConfig(manifest["task"]),
        policy="gcbc",
        checkpoint=str(path),
        output_dir=str(tmp_path),
        planner=agent["planner"],
        agent=AgentConfig(**agent["agent"]),
        handoff_steps=manifest[key].get("handoff_steps", 0),
        eval=EvalSettings(episodes=6, seed=300_000, workers=2, videos=0),
    )
    r = evaluate(cfg)
    assert r["success_rate"] >= min(0.65, shipped_rate - 0.3), r["per_episode"]


PROBES = sorted((ROOT / "checkpoints" / "probes").glob("*.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("path", PROBES, ids=lambda p: p.stem)
def test_shipped_probe_reads_its_world_model_and_its_primitives_keep_their_floor(
    path, tmp_path, monkeypatch
):
    """A state probe loads against the world model it names (same sha256), and the Push-T
    primitive agent built on both keeps a success floor on a few fixed seeds."""
    from agent import state_probe

    monkeypatch.chdir(ROOT)  # the probe names its world model relative to the repository
    manifest = json.loads(path.with_suffix(".json").read_text())
    state_probe.load(str(path), manifest["world_model"])
    record = manifest["evaluation"]
    assert record["episodes"] >= 100 and record["seeds"][0] >= 100_000
    cfg = EvalConfig(
        env=EnvConfig(manifest["task"]),
        policy="push_primitives",
        checkpoint=record["checkpoint"],
        probe=str(path),
        output_dir=str(tmp_path),
        eval=EvalSettings(episodes=10, seed=300_000, workers=2, videos=0),
    )
    r = evaluate(cfg)
    # the floor: fewer successes than this happen in under 1% of 10-episode runs at the
    # recorded rate (binomial), so falling below it means the agent got worse
    floor = int(binom.ppf(0.01, 10, record["success_rate"]))
    assert round(r["success_rate"] * 10) >= floor, (floor, r["per_episode"])
