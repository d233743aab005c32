"""The control entry point: goal capture, an MPC run with a tiny random world model, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from agent import checkpoint
from agent.control import ControlConfig, RobotConfig, control
from agent.control_loop import LoopConfig
from agent.dataset import Dataset
from agent.model import ModelConfig, WorldModel
from envs import robots
from envs.robots import RobotConnectionError
from tests.robots.test_control_loop import SAFETY

PLANNER = {"name": "cem", "num_samples": 16, "iterations": 2, "num_elites": 4}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These runs plan inside a 100 ms tick. With two torch threads on a machine whose cores
    are busy with other work, a tiny model's plan took 740 ms (threads waiting for each other),
    and the tick, not the code under test, failed; one thread keeps it near 10 ms."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    cfg = ModelConfig(width=8, latent_dim=16, predictor_hidden=32, action_dim=4, proprio_dim=7)
    path = tmp_path_factory.mktemp("ckpt") / "arm.safetensors"
    checkpoint.save(path, WorldModel(cfg), {"task": "arm_reach"})
    return str(path)


def config(tmp_path, ckpt, robot: str | RobotConfig = "sim_arm", rate_hz=10.0, **kw):
    loop = LoopConfig(rate_hz=rate_hz, max_steps=3, output_dir=str(tmp_path / "run"))
    if isinstance(robot, str):
        robot = RobotConfig(robot, {"image_size": 64}, SAFETY)
    return ControlConfig(
        goal=str(tmp_path / "goal.png"),
        checkpoint=ckpt,
        robot=robot,
        planner=PLANNER,
        loop=loop,
        **kw,
    )


def test_capture_goal_then_run_mpc(tmp_path, tiny_ckpt):
    assert control(config(tmp_path, tiny_ckpt, mode="capture_goal")) is None
    assert (tmp_path / "goal.png").is_file()
    result = control(config(tmp_path, tiny_ckpt))
    assert result.ok and result.steps == 3, result.message
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["checkpoint"] == tiny_ckpt and meta["transitions"] == 3
    assert Dataset(tmp_path / "run").transitions == 3


def test_a_dry_run_moves_nothing_and_logs_what_it_would_send(tmp_path, tiny_ckpt):
    assert control(config(tmp_path, tiny_ckpt, mode="capture_goal")) is None
    torch.set_num_threads(2)  # one thread plans in time on a busy machine (two took 500 ms)
    result = control(config(tmp_path, tiny_ckpt, mode="dry_run", threads=1))
    assert result.ok and result.steps == 3 and result.message.startswith("dry run"), result.message
    assert torch.get_num_threads() == 1  # threads= sets the planning threads
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["dry_run"] is True and meta["transitions"] == 0 and meta["ticks"] == 3
    with pytest.raises(ValueError, match="mode='drive': use run, dry_run or capture_goal"):
        config(tmp_path, tiny_ckpt, mode="drive")
    with pytest.raises(ValueError, match="threads=-1: use 0"):
        config(tmp_path, tiny_ckpt, threads=-1)


def test_a_second_run_into_the_same_folder_is_refused_before_motion(tmp_path, tiny_ckpt):
    assert control(config(tmp_path, tiny_ckpt, mode="capture_goal")) is None
    assert control(config(tmp_path, tiny_ckpt)).ok
    before = (tmp_path / "run" / "meta.json").read_bytes()
    with pytest.raises(FileExistsError, match="already holds a run log .* another loop.output_dir"):
        control(config(tmp_path, tiny_ckpt, mode="dry_run"))
    assert (tmp_path / "run" / "meta.json").read_bytes() == before  # the first run's log stands
    assert Dataset(tmp_path / "run").transitions == 3


def test_missing_goal_is_one_clear_error(tmp_path, tiny_ckpt):
    with pytest.raises(FileNotFoundError, match="mode=capture_goal"):
        control(config(tmp_path, tiny_ckpt))


def test_ur_rtde_without_the_package_says_how_to_install():
    try:
        import rtde_control  # noqa: F401

        pytest.skip("ur-rtde is installed")
    except ImportError:
        pass
    with pytest.raises(RobotConnectionError, match="pip install"):
        robots.make("ur_rtde", host="127.0.0.1").connect()


@pytest.mark.slow
def test_cli_capture_and_run(tmp_path, tiny_ckpt):
    goal, out = tmp_path / "g.png", tmp_path / "run"
    base = [sys.executable, "-m", "agent.control", f"goal={goal}", f"checkpoint={tiny_ckpt}"]
    base += [f"loop.output_dir={out}", "loop.max_steps=2"]
    subprocess.run([*base, "mode=capture_goal"], check=True, capture_output=True)
    r = subprocess.run(base, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "meta.json").read_text())["reason"] == "max_steps"
    bad = subprocess.run([*base, "robot.safety.max_velocity=0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "error: safety.max_velocity=0" in bad.stderr


def test_proprio_state_model_without_goal_proprio_is_one_clear_error(tmp_path):
    """A model that plans on proprio plans toward the goal proprio captured beside the goal
    image; a goal without one (captured by an older version) is refused before connecting
    instead of planning toward NaN."""
    cfg = ModelConfig(
        width=8, latent_dim=16, predictor_hidden=32, action_dim=4, proprio_dim=7,
        proprio_state=True,
    )  # fmt: skip
    ckpt = str(tmp_path / "arm_ps.safetensors")
    checkpoint.save(ckpt, WorldModel(cfg), {"task": "arm_reach"})
    assert control(config(tmp_path, ckpt, mode="capture_goal")) is None
    (tmp_path / "goal.png.proprio.json").unlink()  # a goal image alone
    with pytest.raises(ValueError, match="no saved proprio .* capture the goal again"):
        control(config(tmp_path, ckpt))
    assert not (tmp_path / "run").exists()  # refused before connecting: no run, no motion


@pytest.mark.parametrize(
    ("model_kw", "robot_kw", "match"),
    [
        ({"action_dim": 3}, {}, "plans 3-D actions, robot=sim_arm takes 4-D"),
        ({"image_size": 32}, {}, "reads 32x32 images"),
        ({"proprio_state": True, "proprio_dim": 12}, {}, "carries 12 proprio values"),
    ],
)
def test_a_checkpoint_that_does_not_fit_the_robot_is_refused_before_motion(
    tmp_path, model_kw, robot_kw, match
):
    cfg = ModelConfig(**{
        "width": 8, "latent_dim": 16, "predictor_hidden": 32, "action_dim": 4, "proprio_dim": 7,
        **model_kw,
    })  # fmt: skip
    ckpt = str(tmp_path / "other.safetensors")
    checkpoint.save(ckpt, WorldModel(cfg), {"task": "arm_reach"})
    assert control(config(tmp_path, ckpt, mode="capture_goal")) is None
    with pytest.raises(ValueError, match=match):
        control(config(tmp_path, ckpt))
    assert not (tmp_path / "run").exists()  # refused before the loop began: nothing moved


def _gcbc_policy(tmp_path, world_model: str) -> str:
    """An untrained agent.gcbc policy file on ``world_model`` (its format, without training)."""
    from safetensors.torch import save_file

    from agent.gcbc import FORMAT, GCBCConfig, make_head

    model, manifest = checkpoint.load(world_model)
    cfg = GCBCConfig(horizon=2, hidden=16, layers=1)
    head = make_head(model.cfg.state_dim, model.cfg.action_dim, cfg)
    weights = tmp_path / "bc.safetensors"
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(weights))
    meta = {
        "format": FORMAT,
        "task": manifest["task"],
        "config": cfg.__dict__,
        "world_model": world_model,
        "world_model_sha256": checkpoint.digest(checkpoint.paths(world_model)[0]),
        "weights_sha256": checkpoint.digest(weights),
    }
    (tmp_path / "bc.json").write_text(json.dumps(meta))
    return str(weights)


def test_a_gcbc_policy_drives_the_robot_through_the_same_loop(tmp_path, tiny_ckpt):
    policy = _gcbc_policy(tmp_path, tiny_ckpt)
    assert control(config(tmp_path, tiny_ckpt, mode="capture_goal")) is None
    result = control(config(tmp_path, policy, policy="gcbc"))
    assert result.ok and result.steps == 3, result.message
    assert result.sources.get("plan") == 3  # every tick acted on the policy's fresh action
    assert Dataset(tmp_path / "run").transitions == 3


def test_a_gcbc_policy_hands_the_robot_to_the_planner(tmp_path, tiny_ckpt, monkeypatch):
    from agent.mpc import MPCAgent

    calls = []
    act = MPCAgent.act
    monkeypatch.setattr(MPCAgent, "act", lambda self, obs: calls.append(1) or act(self, obs))
    policy = _gcbc_policy(tmp_path, tiny_ckpt)
    assert control(config(tmp_path, tiny_ckpt, mode="capture_goal")) is None
    result = control(config(tmp_path, policy, policy="gcbc", handoff_steps=1))
    assert result.ok and result.steps == 3, result.message
    assert len(calls) == 2  # tick 1 the policy, ticks 2-3 the planner, through the same loop
    with pytest.raises(ValueError, match="a hand-off is from policy=gcbc"):
        config(tmp_path, tiny_ckpt, policy="mpc", handoff_steps=1)


def test_a_gcbc_policy_on_a_world_model_that_does_not_fit_is_refused(tmp_path):
    cfg = ModelConfig(width=8, latent_dim=16, predictor_hidden=32, action_dim=2, proprio_dim=7)
    ckpt = str(tmp_path / "pm.safetensors")
    checkpoint.save(ckpt, WorldModel(cfg), {"task": "point_mass"})
    policy = _gcbc_policy(tmp_path, ckpt)
    assert control(config(tmp_path, ckpt, mode="capture_goal")) is None
    with pytest.raises(ValueError, match="plans 2-D actions, robot=sim_arm takes 4-D"):
        control(config(tmp_path, policy, policy="gcbc"))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="policy='sac': use mpc or gcbc"):
        config(tmp_path, policy, policy="sac")


def test_the_default_run_folder_of_a_module_class_robot_is_one_portable_name():
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from agent.control import path_part  # importing agent.control registers the resolver

    configs = Path(__file__).resolve().parents[2] / "configs"
    with initialize_config_dir(str(configs), version_base="1.3"):
        cfg = compose("control", ["robot.name=my_arms.ur:MyArm"], return_hydra_config=True)
        out = Path(cfg.loop.output_dir)
    assert out.parts[:3] == ("outputs", "control", "my_arms.ur_MyArm") and len(out.parts) == 4
    assert path_part("sim_arm") == "sim_arm"
