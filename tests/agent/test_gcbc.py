"""The goal-conditioned BC baseline: training, its files, loading checks, acting, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import envs
from agent import checkpoint
from agent.evaluation import EvalConfig, EvalSettings, evaluate
from agent.gcbc import GCBCConfig, GCBCPolicy, main, record_evaluation, train
from agent.model import ModelConfig, WorldModel
from envs.config import EnvConfig

FAST = GCBCConfig(horizon=2, hidden=32, layers=1, steps=30, batch_size=32)


def _tiny_world_model() -> WorldModel:
    """An untrained point_mass-shaped world model (2-D actions, 4 proprio)."""
    cfg = ModelConfig(width=8, latent_dim=16, predictor_hidden=32, action_dim=2, proprio_dim=4)
    return WorldModel(cfg)


@pytest.fixture(scope="module")
def world_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("wm") / "pm.safetensors"
    checkpoint.save(path, _tiny_world_model(), {"task": "point_mass"})
    return str(path)


def test_training_writes_a_policy_that_acts_in_bounds(tmp_path, tiny_dataset, world_model):
    meta = train(world_model, str(tiny_dataset), str(tmp_path / "bc"), FAST)
    assert (tmp_path / "bc.safetensors").exists() and (tmp_path / "bc.json").exists()
    assert meta["task"] == "point_mass" and meta["dataset_episodes"] == 4
    assert np.isfinite(meta["val_mse"]) and meta["val_mse_mean_action"] > 0
    policy = GCBCPolicy(str(tmp_path / "bc.safetensors"), expect_task="point_mass")
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=100_000)
    policy.reset(env.unwrapped.goal_observation())
    a = policy.act(obs)
    assert a.shape == (2,) and np.all(np.abs(a) <= 1) and policy.planned
    env.close()


def test_same_seed_same_policy(tmp_path, tiny_dataset, world_model):
    for name in ("a", "b"):
        train(world_model, str(tiny_dataset), str(tmp_path / name), FAST)
    sha = [json.loads((tmp_path / f"{n}.json").read_text())["weights_sha256"] for n in "ab"]
    assert sha[0] == sha[1]


def test_the_change_filter_keeps_the_moving_pairs(tmp_path, tiny_dataset, world_model):
    cfg = GCBCConfig(**{**FAST.__dict__, "min_change_quantile": 0.5})
    meta = train(world_model, str(tiny_dataset), str(tmp_path / "bc"), cfg)
    assert meta["change_threshold"] is not None and meta["change_threshold"] >= 0


def test_a_changed_world_model_or_wrong_task_is_refused(tmp_path, tiny_dataset, world_model):
    train(world_model, str(tiny_dataset), str(tmp_path / "bc"), FAST)
    with pytest.raises(ValueError, match="trained on 'point_mass', not 'umaze'"):
        GCBCPolicy(str(tmp_path / "bc.safetensors"), expect_task="umaze")
    meta = json.loads((tmp_path / "bc.json").read_text())
    (tmp_path / "bc.json").write_text(json.dumps({**meta, "weights_sha256": "0" * 64}))
    with pytest.raises(checkpoint.CheckpointError, match="do not match their manifest bc.json"):
        GCBCPolicy(str(tmp_path / "bc.safetensors"))
    meta["world_model_sha256"] = "0" * 64
    (tmp_path / "bc.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="changed since"):
        GCBCPolicy(str(tmp_path / "bc.safetensors"))


def test_bad_input_is_one_line_and_writes_nothing(tmp_path, tiny_dataset, world_model, capsys):
    other = tmp_path / "um.safetensors"
    checkpoint.save(other, _tiny_world_model(), {"task": "umaze"})
    with pytest.raises(SystemExit) as e:
        main(["--checkpoint", str(other), "--data", str(tiny_dataset), "--out", f"{tmp_path}/x"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: dataset") and "\n" not in err
    assert not list(tmp_path.glob("x.*"))


def test_the_harness_runs_it_on_rendered_frames(tmp_path, tiny_dataset, world_model, monkeypatch):
    train(world_model, str(tiny_dataset), str(tmp_path / "bc"), FAST)
    seen = []
    act = GCBCPolicy.act
    monkeypatch.setattr(
        GCBCPolicy, "act", lambda self, obs: seen.append(obs["pixels"].max()) or act(self, obs)
    )
    cfg = EvalConfig(
        env=EnvConfig("point_mass"),
        policy="gcbc",
        checkpoint=str(tmp_path / "bc.safetensors"),
        eval=EvalSettings(episodes=2, workers=1, videos=0),
        output_dir=str(tmp_path / "eval"),
    )
    results = evaluate(cfg)
    assert results["episodes"] == 2 and 0.0 <= results["success_rate"] <= 1.0
    assert seen and min(seen) > 0  # the policy sees the camera, not black frames
    meta = record_evaluation(str(tmp_path / "bc"), str(tmp_path / "eval" / "results.json"), "cmd")
    assert meta["evaluation"]["episodes"] == 2 and meta["evaluation"]["seeds"] == [100_000, 100_001]
    (tmp_path / "other.json").write_text((tmp_path / "bc.json").read_text())
    with pytest.raises(ValueError, match="not an evaluation of"):
        record_evaluation(str(tmp_path / "other"), str(tmp_path / "eval" / "results.json"))


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).resolve().parents[2] / "checkpoints" / "gcbc").glob("*.safetensors")),
    ids=lambda p: p.stem,
)
def test_shipped_policies_load_and_carry_their_evaluation(path, monkeypatch):
    monkeypatch.chdir(path.parents[2])  # the world model path is relative to the repository
    policy = GCBCPolicy(str(path))
    meta = policy.meta
    assert meta["weights_sha256"] == checkpoint.digest(path)
    assert meta["command"].startswith("python -m agent.gcbc")
    assert meta["evaluation"]["episodes"] >= 100 and meta["evaluation"]["seeds"][0] >= 100_000


def test_a_still_scene_with_the_change_filter_is_one_clear_error(tmp_path, tiny_dataset):
    model = _tiny_world_model()
    for p in model.parameters():
        p.data.zero_()  # every frame encodes to the same latent
    checkpoint.save(tmp_path / "flat.safetensors", model, {"task": "point_mass"})
    filtered = GCBCConfig(**{**FAST.__dict__, "min_change_quantile": 0.5})
    with pytest.raises(ValueError, match="barely changes"):
        train(str(tmp_path / "flat.safetensors"), str(tiny_dataset), str(tmp_path / "bc"), filtered)
    assert not list(tmp_path.glob("bc.*"))


@pytest.mark.parametrize("far", [10, 100])
def test_hindsight_goals_lie_between_one_step_and_the_farthest(far):
    from agent.gcbc import _Pairs

    lengths = np.array([120, 120])
    starts = np.array([0, 120])
    pairs = _Pairs(None, None, None, starts, lengths, np.arange(2), 5, far, None)
    i, j = pairs.draw(5000, np.random.default_rng(0))
    gap, last = j - i, starts[(i >= 120).astype(int)] + lengths[0] - 1
    assert np.all((j == last) | ((gap >= 5) & (gap <= far)))  # clipped at the episode's end
    assert gap.max() == far and np.all(j <= last) and np.all((i < 120) == (j < 120))


def test_a_negative_goal_range_is_refused():
    with pytest.raises(ValueError, match="max_goal_steps=-1"):
        GCBCConfig(max_goal_steps=-1)


def test_a_policy_with_unknown_settings_is_one_clear_error(tmp_path, tiny_dataset, world_model):
    train(world_model, str(tiny_dataset), str(tmp_path / "bc"), FAST)
    meta = json.loads((tmp_path / "bc.json").read_text())
    meta["config"]["bins"] = 0  # a setting from another version
    (tmp_path / "bc.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"does not know \(\['bins'\]\): retrain"):
        GCBCPolicy(str(tmp_path / "bc.safetensors"))


def test_an_ensemble_averages_its_heads_and_one_head_keeps_the_old_format(
    tmp_path, tiny_dataset, world_model
):
    import torch
    from safetensors.torch import load_file

    one = train(world_model, str(tiny_dataset), str(tmp_path / "one"), FAST)
    cfg = GCBCConfig(**{**FAST.__dict__, "ensemble": 3})
    train(world_model, str(tiny_dataset), str(tmp_path / "three"), cfg)
    keys = set(load_file(str(tmp_path / "three.safetensors")))
    assert {k.split(".")[0] for k in keys} == {"head0", "head1", "head2"}
    assert not any(k.startswith("head") for k in load_file(str(tmp_path / "one.safetensors")))
    policy = GCBCPolicy(str(tmp_path / "three.safetensors"))
    assert len(policy.heads) == 3
    x = torch.randn(4, 3 * policy.model.cfg.state_dim)
    expect = sum(h(x) for h in policy.heads) / 3
    from agent.gcbc import mean_action

    torch.testing.assert_close(mean_action(policy.heads, x), expect)
    assert not torch.allclose(policy.heads[0](x), policy.heads[1](x))  # seeded apart
    # head 0 of the ensemble is the single head trained with the same seed
    torch.testing.assert_close(
        policy.heads[0](x), GCBCPolicy(str(tmp_path / "one.safetensors")).heads[0](x)
    )
    assert (
        one["weights_sha256"] != json.loads((tmp_path / "three.json").read_text())["weights_sha256"]
    )
    with pytest.raises(ValueError, match="ensemble=0"):
        GCBCConfig(ensemble=0)


def test_several_datasets_are_joined_in_order(tmp_path, tiny_dataset, world_model):
    quick = ["--steps", "5", "--hidden", "16", "--layers", "1", "--checkpoint", world_model]
    for name, folders in (("two", [str(tiny_dataset)] * 2), ("one", [str(tiny_dataset)])):
        main([*quick, "--data", *folders, "--out", f"{tmp_path}/{name}"])
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["dataset_episodes"] == 8 and two["dataset"] == [str(tiny_dataset)] * 2
    one = json.loads((tmp_path / "one.json").read_text())
    assert one["dataset_episodes"] == 4 and one["dataset"] == str(tiny_dataset)


def test_a_trained_policy_collects_on_policy_data_reproducibly(tmp_path, tiny_dataset, world_model):
    from agent.collector import CollectConfig, collect
    from agent.dataset import Dataset

    train(world_model, str(tiny_dataset), str(tmp_path / "bc"), FAST)
    policy = str(tmp_path / "bc.safetensors")
    runs = []
    for name in ("a", "b"):
        cfg = CollectConfig(
            env=EnvConfig("point_mass"),
            episodes=2,
            out=str(tmp_path / name),
            workers=1,
            video=False,
            policy="gcbc",
            policy_checkpoint=policy,
            seed=7,
        )
        runs.append(Dataset(collect(cfg)))
    assert runs[0].meta["sha256"] == runs[1].meta["sha256"]  # same seed, same data
    assert runs[0].meta["policy_checkpoint"] == policy and runs[0].meta["episodes"] == 2
    assert (runs[0].meta["policy_sigma"], runs[0].meta["policy_eps"]) == (0.2, 0.1)
    ident = json.loads((tmp_path / "a" / "collect.json").read_text())
    assert (
        ident["policy_checkpoint_sha256"]
        == json.loads((tmp_path / "bc.json").read_text())["weights_sha256"]
    )
    acts = np.concatenate([np.array(e["actions"]) for e in runs[0].iter_episodes()])
    assert np.all(np.abs(acts) <= 1) and acts.std() > 0


def test_collecting_with_a_policy_needs_its_checkpoint_and_only_then(tmp_path):
    from agent.collector import CollectConfig

    with pytest.raises(ValueError, match="policy=gcbc and policy_checkpoint"):
        CollectConfig(env=EnvConfig("point_mass"), policy="gcbc")
    with pytest.raises(ValueError, match="policy=gcbc and policy_checkpoint"):
        CollectConfig(env=EnvConfig("point_mass"), policy="repeat", policy_checkpoint="x")
    with pytest.raises(ValueError, match="policy_sigma=-1.0, policy_eps=None: use a sigma"):
        CollectConfig(env=EnvConfig("point_mass"), policy_sigma=-1.0)
    with pytest.raises(FileNotFoundError, match="does not exist: train one"):
        CollectConfig(
            env=EnvConfig("point_mass"),
            policy="gcbc",
            policy_checkpoint=str(tmp_path / "missing.safetensors"),
        )


def test_without_noise_the_collected_actions_are_the_policys(tmp_path, tiny_dataset, world_model):
    from agent.collector import CollectConfig, collect
    from agent.dataset import Dataset

    train(world_model, str(tiny_dataset), str(tmp_path / "bc"), FAST)
    path = str(tmp_path / "bc.safetensors")
    cfg = CollectConfig(
        env=EnvConfig("point_mass"),
        episodes=1,
        out=str(tmp_path / "d"),
        workers=1,
        video=False,
        policy="gcbc",
        policy_checkpoint=path,
        policy_sigma=0.0,
        policy_eps=0.0,
    )
    ep = next(Dataset(collect(cfg)).iter_episodes())
    policy = GCBCPolicy(path)
    policy.reset({"pixels": ep["goal_pixels"], "proprio": ep["goal_proprio"]})
    replayed = [
        policy.act({"pixels": ep["pixels"][t], "proprio": ep["proprio"][t]})
        for t in range(len(ep["actions"]))
    ]
    np.testing.assert_allclose(np.array(ep["actions"]), np.array(replayed), atol=1e-6)


def test_a_handoff_gives_the_episode_to_the_planner_after_k_steps(
    tmp_path, tiny_dataset, world_model, monkeypatch
):
    from agent.mpc import MPCAgent

    train(world_model, str(tiny_dataset), str(tmp_path / "bc"), FAST)
    who = []
    bc_act, mpc_act = GCBCPolicy.act, MPCAgent.act
    monkeypatch.setattr(GCBCPolicy, "act", lambda s, o: who.append("bc") or bc_act(s, o))
    monkeypatch.setattr(MPCAgent, "act", lambda s, o: who.append("mpc") or mpc_act(s, o))
    cfg = EvalConfig(
        env=EnvConfig("point_mass"),
        policy="gcbc",
        checkpoint=str(tmp_path / "bc.safetensors"),
        planner={"name": "cem", "num_samples": 16, "iterations": 1, "num_elites": 4},
        handoff_steps=3,
        eval=EvalSettings(episodes=1, workers=1, videos=0),
        output_dir=str(tmp_path / "eval"),
    )
    results = evaluate(cfg)
    steps = results["per_episode"][0]["steps"]
    assert steps > 3 and who == ["bc"] * 3 + ["mpc"] * (steps - 3)
    assert results["planner"] == "cem"
    meta = record_evaluation(str(tmp_path / "bc"), str(tmp_path / "eval" / "results.json"))
    assert meta["evaluation_handoff"]["handoff_steps"] == 3 and "evaluation" not in meta
    with pytest.raises(ValueError, match="a hand-off is from policy=gcbc to the planner"):
        EvalConfig(env=EnvConfig("point_mass"), policy="mpc", handoff_steps=3)


def test_a_codebook_head_keeps_two_modes_apart_where_the_mean_averages_them():
    """Half the targets are +0.8, half -0.8 for the same input: an MSE head learns ~0, a
    codebook head one of the two modes (as BeT does)."""
    import torch

    from agent.gcbc import codebook_loss, make_head, plan_actions

    torch.manual_seed(0)
    cfg = GCBCConfig(horizon=1, hidden=32, layers=1, codebook=2)
    centres = torch.tensor([[0.8, 0.8], [-0.8, -0.8]])
    heads = {"mse": make_head(4, 2, GCBCConfig(horizon=1, hidden=32, layers=1))}
    heads["codebook"] = make_head(4, 2, cfg)
    x = torch.ones(64, 12)
    y = torch.cat([centres[0].expand(32, 2), centres[1].expand(32, 2)])
    for name, head in heads.items():
        opt = torch.optim.Adam(head.parameters(), 1e-2)
        for _ in range(200):
            out = head(x)
            loss = codebook_loss(out, y, centres) if name == "codebook" else (out - y).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        mse = plan_actions([heads["mse"]], x[:1])
        mode = plan_actions([heads["codebook"]], x[:1], centres)
    assert mse.abs().max() < 0.2
    assert torch.allclose(mode.abs(), torch.full_like(mode, 0.8), atol=0.1)
    assert torch.all(mode.sign() == mode[0, 0].sign())  # one mode, both entries


def test_a_codebook_policy_is_written_loaded_and_acts_in_bounds(
    tmp_path, tiny_dataset, world_model
):
    from safetensors.torch import load_file

    cfg = GCBCConfig(**{**FAST.__dict__, "codebook": 4, "ensemble": 2})
    train(world_model, str(tiny_dataset), str(tmp_path / "cb"), cfg)
    assert load_file(str(tmp_path / "cb.safetensors"))["codebook"].shape == (4, 2 * 2)
    policy = GCBCPolicy(str(tmp_path / "cb.safetensors"))
    assert policy.centres is not None and len(policy.heads) == 2
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=100_000)
    policy.reset(env.unwrapped.goal_observation())
    a = policy.act(obs)
    assert a.shape == (2,) and np.all(np.abs(a) <= 1)
    env.close()
    with pytest.raises(ValueError, match="codebook=1"):
        GCBCConfig(codebook=1)
    with pytest.raises(ValueError, match="codebook=100000: use at most 1024 centres"):
        GCBCConfig(codebook=100_000)


def test_goal_pairs_use_the_episode_goal_before_its_first_success():
    import torch

    from agent.gcbc import _Pairs

    lengths, starts = np.array([50, 50, 50]), np.array([0, 50, 100])
    z = torch.arange(150, dtype=torch.float32)[:, None]  # a frame's latent is its index
    targets = torch.zeros(150, 1, 1)
    goals = torch.tensor([[-1.0], [-2.0], [-3.0]])
    reached = np.array([20, -1, 0])  # episode 1 never succeeds, episode 2 starts at its goal
    pairs = _Pairs(z, z, targets, starts, lengths, np.arange(3), 1, 5, None, goals, reached, 0.5)
    x, _ = pairs.batch(1000, np.random.default_rng(0))
    z_in, g_in = x[:, 0], x[:, 1]
    goal_rows = g_in < 0
    assert goal_rows.sum() == 500 and torch.all(g_in[goal_rows] == -1.0)  # episode 0 only
    assert z_in[goal_rows].max() <= 19 and z_in[goal_rows].min() >= 0  # before step 20
    with pytest.raises(ValueError, match="goal_share=1.0"):
        GCBCConfig(goal_share=1.0)


def test_half_storage_halves_the_file_and_acts_like_the_rounded_policy(
    tmp_path, tiny_dataset, world_model
):
    import torch
    from safetensors.torch import load_file

    full = GCBCConfig(**{**FAST.__dict__, "codebook": 4})
    train(world_model, str(tiny_dataset), str(tmp_path / "full"), full)
    train(
        world_model,
        str(tiny_dataset),
        str(tmp_path / "half"),
        GCBCConfig(**{**full.__dict__, "half": True}),
    )
    saved = load_file(str(tmp_path / "half.safetensors"))
    assert all(v.dtype == torch.float16 for v in saved.values())
    size = {n: (tmp_path / f"{n}.safetensors").stat().st_size for n in ("full", "half")}
    assert size["half"] < 0.6 * size["full"]
    a, b = (GCBCPolicy(str(tmp_path / f"{n}.safetensors")) for n in ("full", "half"))
    x = torch.randn(8, 3 * a.model.cfg.state_dim)
    with torch.no_grad():  # the same training run, rounded: the outputs agree closely
        torch.testing.assert_close(a.heads[0](x), b.heads[0](x), atol=2e-2, rtol=2e-2)
    assert b.centres.dtype == torch.float32


def test_the_command_line_takes_half_as_a_switch(tmp_path, tiny_dataset, world_model):
    quick = ["--steps", "5", "--hidden", "16", "--layers", "1", "--checkpoint", world_model]
    main([*quick, "--data", str(tiny_dataset), "--out", f"{tmp_path}/h", "--half"])
    main([*quick, "--data", str(tiny_dataset), "--out", f"{tmp_path}/f"])
    half = json.loads((tmp_path / "h.json").read_text())["config"]["half"]
    assert half is True and json.loads((tmp_path / "f.json").read_text())["config"]["half"] is False
