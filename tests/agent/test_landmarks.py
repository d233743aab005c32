"""The landmark graph: shortest paths around walls, subgoals, files and the agent hook."""

import json

import numpy as np
import pytest
import torch

from agent import checkpoint
from agent.build_landmarks import main
from agent.landmarks import LandmarkConfig, LandmarkGraph, for_checkpoint, scene_thumbnail
from agent.model import ModelConfig, WorldModel
from agent.mpc import AgentConfig


def _u_corridor(step=0.1):
    """Latents = true 2-D positions along a U: up x=0, across y=1, down x=1 (no link across
    the bottom, 10 steps apart). Two episodes walk it, one each way."""
    up = [(0.0, y) for y in np.arange(0, 1 + 1e-9, step)]
    across = [(x, 1.0) for x in np.arange(step, 1 + 1e-9, step)]
    down = [(1.0, y) for y in np.arange(1 - step, -1e-9, -step)]
    pts = np.array(up + across + down, dtype=np.float32)
    z = torch.from_numpy(np.concatenate([pts, pts[::-1]]))
    episode = np.repeat([0, 1], len(pts))
    steps = np.concatenate([np.arange(len(pts))] * 2)
    return z, episode, steps


def _graph(**kw):
    z, episode, steps = _u_corridor()
    return LandmarkGraph.from_frames(z, episode, steps, LandmarkConfig(**kw))


def test_path_goes_around_the_wall_not_through_it():
    g = _graph(neighbours=4, radius=2.0)
    g.reset(torch.tensor([1.0, 0.0]))
    # straight-line the goal is 10 steps away; along the U it is 30
    path = g.path_from(torch.tensor([0.0, 0.0]))
    xs = g.z[path, 0].numpy()
    assert g.to_goal[path[0]] == pytest.approx(30, abs=1)
    assert g.z[path, 1].max() == pytest.approx(1.0)  # the path climbs to the top
    assert np.all(np.diff(xs) >= -1e-6)  # and never steps back
    sub, left = g.subgoal(torch.tensor([0.0, 0.0]), lookahead=4.5)
    assert sub is not None and sub[0].item() == pytest.approx(0.0)  # up the left arm first
    assert sub[1].item() == pytest.approx(0.5, abs=1e-5)  # the first node >= 4.5 steps away
    assert left == pytest.approx(30, abs=1)


def test_near_the_goal_the_agent_aims_at_the_goal_itself():
    g = _graph()
    g.reset(torch.tensor([1.0, 0.0]))
    sub, left = g.subgoal(torch.tensor([1.0, 0.3]), lookahead=5)
    assert sub is None and left <= 5


def test_unreachable_goal_gives_no_subgoal():
    z, episode, steps = _u_corridor()
    far = torch.tensor([[50.0, 50.0], [50.0, 50.1]])  # an island two nodes wide
    g = LandmarkGraph.from_frames(
        torch.cat([z, far]),
        np.concatenate([episode, [7, 7]]),
        np.concatenate([steps, [0, 1]]),
        LandmarkConfig(radius=2.0),
    )
    g.reset(torch.tensor([50.0, 50.0]))
    assert g.subgoal(torch.tensor([0.0, 0.0]), lookahead=5) == (None, float("inf"))


def test_proprio_must_agree_too():
    z, episode, steps = _u_corridor()
    proprio = torch.zeros(len(z), 1)
    proprio[: len(z) // 2] = 100.0  # episode 0 is far from episode 1 in proprio
    g = LandmarkGraph.from_frames(
        z, episode, steps, LandmarkConfig(use_proprio=True), proprio=proprio
    )
    s, t, _ = g.edges
    assert not np.any(episode[s] != episode[t])  # no link between the two episodes


def test_save_load_roundtrip_and_model_pin(tmp_path):
    g = _graph()
    g.save(tmp_path / "g", {"model_sha256": "a" * 64})
    h = LandmarkGraph.load(tmp_path / "g.safetensors", model_sha256="a" * 64)
    for graph in (g, h):
        graph.reset(torch.tensor([1.0, 0.0]))
    np.testing.assert_allclose(g.to_goal, h.to_goal, rtol=1e-3)
    a = g.subgoal(torch.tensor([0.0, 0.0]), 4.5)[0]
    b = h.subgoal(torch.tensor([0.0, 0.0]), 4.5)[0]
    torch.testing.assert_close(a, b, atol=1e-3, rtol=0)
    with pytest.raises(checkpoint.CheckpointError, match="another world model"):
        LandmarkGraph.load(tmp_path / "g.safetensors", model_sha256="b" * 64)
    with pytest.raises(checkpoint.CheckpointError, match="agent.build_landmarks"):
        LandmarkGraph.load(tmp_path / "missing.safetensors")


def _two_scenes():
    """The U's two episodes in a dark scene (no door at the bottom), plus a third episode in
    a bright scene whose door lets it cross the bottom straight from (0, 0) to (1, 0)."""
    z, episode, steps = _u_corridor()
    short = torch.tensor([(x, 0.0) for x in np.arange(0, 1 + 1e-9, 0.1)], dtype=torch.float32)
    z = torch.cat([z, short])
    episode = np.concatenate([episode, np.full(len(short), 2)])
    steps = np.concatenate([steps, np.arange(len(short))])
    dark, bright = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 200, np.uint8)
    scenes = torch.stack([scene_thumbnail(p, 2) for p in (dark, dark, bright)])
    cfg = LandmarkConfig(neighbours=4, radius=2.0, scene_size=2, scene_episodes=2)
    return LandmarkGraph.from_frames(z, episode, steps, cfg, scenes=scenes), dark, bright


def test_scene_matching_plans_only_through_the_goals_own_layout(tmp_path):
    g, dark, bright = _two_scenes()
    start, goal = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0])
    g.reset(goal)  # no goal image: every episode, so the bright scene's shortcut
    assert g.to_goal[g.path_from(start)[0]] == pytest.approx(10, abs=1)
    g.reset(goal, pixels=dark)  # the dark scenes have no door at the bottom: around the U
    assert set(g.episode[g.allowed]) == {0, 1}
    path = g.path_from(start)
    assert g.to_goal[path[0]] == pytest.approx(30, abs=2.5) and set(g.episode[path]) <= {0, 1}
    g.scene_episodes = 1
    g.reset(goal, pixels=bright + 3)  # near the bright scene: its shortcut
    assert set(g.episode[g.allowed]) == {2}
    assert g.to_goal[g.path_from(start)[0]] == pytest.approx(10, abs=1)
    g.scene_episodes = 2
    g.save(tmp_path / "g", {"model_sha256": "a" * 64})  # thumbnails survive a file
    h = LandmarkGraph.load(tmp_path / "g.safetensors")
    h.reset(goal, pixels=dark)
    np.testing.assert_array_equal(h.allowed, np.isin(g.episode, [0, 1]))
    assert h.to_goal[h.path_from(start)[0]] == pytest.approx(30, abs=2.5)


def test_proprio_only_plans_on_the_proprio_whatever_the_latent(tmp_path):
    z, episode, steps = _u_corridor()
    noise = torch.randn(len(z), 6, generator=torch.Generator().manual_seed(0)) * 100
    cfg = LandmarkConfig(neighbours=4, radius=2.0, use_proprio=True, proprio_only=True)
    LandmarkGraph.from_frames(noise, episode, steps, cfg, proprio=z).save(tmp_path / "g", {})
    g = LandmarkGraph.load(tmp_path / "g.safetensors")  # latent: noise; proprio: positions
    assert g.proprio_only
    g.reset(noise[0] * 0, proprio=np.array([1.0, 0.0]))
    path = g.path_from(torch.zeros(6), proprio=np.array([0.0, 0.0]))
    assert g.to_goal[path[0]] == pytest.approx(30, abs=2.5)  # around the U, as with a good latent
    sub, _ = g.subgoal(torch.zeros(6), 4.5, proprio=np.array([0.0, 0.0]))
    assert torch.equal(sub, noise[5].half().float())  # still the node's latent (float16 file)
    with pytest.raises(ValueError, match="proprio alone"):
        g.subgoal(torch.zeros(6), 4.5)
    with pytest.raises(ValueError, match="use_proprio"):
        LandmarkConfig(proprio_only=True)


def test_scene_thumbnail_is_the_static_scene():
    frames = np.zeros((5, 8, 8, 3), np.uint8)
    for t in range(5):  # a bright dot moving across a dark, still scene
        frames[t, t, t] = 255
    np.testing.assert_array_equal(scene_thumbnail(frames, 4).numpy(), np.zeros(16))
    assert scene_thumbnail(frames[0], 8).max() == 1.0  # one frame: that frame
    with pytest.raises(ValueError, match="scene-size"):
        LandmarkConfig(scene_size=16)


def test_reset_is_required():
    with pytest.raises(RuntimeError, match="reset"):
        _graph().subgoal(torch.zeros(2), 5)


def test_cli_builds_a_graph_for_its_model_and_refuses_bad_input(tiny_dataset, tmp_path, capsys):
    torch.manual_seed(0)
    model = WorldModel(ModelConfig(width=8, latent_dim=8, predictor_hidden=16))
    ckpt = checkpoint.save(tmp_path / "model", model, {"task": "point_mass", "step": 1})
    out = tmp_path / "pm-landmarks"
    main(["--checkpoint", str(ckpt), "--data", str(tiny_dataset), "--out", str(out)])
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["model_sha256"] == checkpoint.digest(ckpt)
    assert manifest["nodes"] == 4 * 51 and manifest["edges"] > 4 * 50
    graph = for_checkpoint(str(out.with_suffix(".safetensors")), ckpt)
    assert graph.nodes == 4 * 51
    assert for_checkpoint(None, ckpt) is None
    # a graph never overwrites the world model, and a dataset of another task is refused
    before = ckpt.read_bytes()
    for argv, msg in (
        (["--out", str(tmp_path / "model")], "would overwrite the world model"),
        (["--out", str(out)], "holds task"),
    ):
        if msg == "holds task":
            meta = tiny_dataset / "meta.json"
            other = tmp_path / "other"
            other.mkdir()
            for p in tiny_dataset.iterdir():
                (other / p.name).symlink_to(p)
            (other / "meta.json").unlink()
            (other / "meta.json").write_text(
                json.dumps({**json.loads(meta.read_text()), "task": "umaze"})
            )
            data = str(other)
        else:
            data = str(tiny_dataset)
        with pytest.raises(SystemExit) as e:
            main(["--checkpoint", str(ckpt), "--data", data, *argv])
        assert e.value.code == 2 and msg in capsys.readouterr().err
    assert ckpt.read_bytes() == before


def test_agent_plans_toward_the_subgoal_while_far():
    import envs
    from tests.agent.test_mpc import _agent

    agent = _agent(lookahead=4.5)  # not 5: nodes sit exactly 5 steps away, up to rounding
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=5)
    goal = env.unwrapped.goal_observation()
    with torch.no_grad():
        z0, zg = agent.model.encode(torch.from_numpy(np.stack([obs["pixels"], goal["pixels"]])))
    # a 40-node chain of latents from the start to the goal: far, so subgoals come from it
    nodes = torch.stack([z0 + (zg - z0) * t for t in torch.linspace(0, 1, 40)])
    agent.landmarks = LandmarkGraph.from_frames(
        nodes, np.zeros(40), np.arange(40), LandmarkConfig(neighbours=1, radius=1.5)
    )
    agent.reset(goal, seed=5)
    agent.act(obs)
    env.close()
    assert agent.subgoal is not None
    assert torch.allclose(agent.subgoal, nodes[5], atol=1e-5)  # the first node >= 4.5 steps on


def test_lookahead_must_be_positive():
    with pytest.raises(ValueError, match="lookahead"):
        AgentConfig(lookahead=0)


def test_record_eval_copies_a_matching_held_out_run_only(tmp_path, capsys):
    torch.manual_seed(0)
    model = WorldModel(ModelConfig(width=8, latent_dim=8, predictor_hidden=16))
    ckpt = checkpoint.save(tmp_path / "model", model, {"task": "point_mass", "step": 1})
    out = tmp_path / "g"
    _graph().save(out, {"model_sha256": checkpoint.digest(ckpt)})

    def results(seeds, landmarks=str(out) + ".safetensors"):
        r = {
            "checkpoint": str(ckpt),
            "config": {"agent": {"landmarks": landmarks}},
            "success_rate": 0.5,
            "success_ci95": [0.1, 0.9],
            "episodes": len(seeds),
            "seeds": seeds,
            "plan_ms_p50": 1.0,
            "plan_ms_p95": 2.0,
            "planner": "cem",
        }
        path = tmp_path / f"r{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps(r))
        return str(path)

    for bad, msg in (
        (results([1, 2]), "training seeds"),
        (results([100_000], landmarks=None), "evaluate with this graph first"),
    ):
        with pytest.raises(SystemExit):
            main(["--out", str(out), "--record-eval", bad])
        assert msg in capsys.readouterr().err
    assert "evaluation" not in json.loads(out.with_suffix(".json").read_text())
    main(["--out", str(out), "--record-eval", results([100_000, 100_001])])
    assert json.loads(out.with_suffix(".json").read_text())["evaluation"]["episodes"] == 2


def test_proprio_dims_select_what_must_agree_and_survive_a_file(tmp_path):
    from agent.landmarks import build

    torch.manual_seed(0)
    model = WorldModel(ModelConfig(width=8, latent_dim=8, predictor_hidden=16))
    rng = np.random.default_rng(0)
    x = np.arange(11) * 0.1
    frames = (np.arange(11)[:, None, None, None] * 20 * np.ones((1, 64, 64, 3))).astype(np.uint8)
    episodes = [  # the same images in both episodes: only the proprio position tells them apart
        {
            "pixels": frames,
            "proprio": np.stack([x + off, 0 * x, rng.normal(0, 50, 11)], 1).astype(np.float32),
        }
        for off in (0.0, 2.0)
    ]
    cfg = LandmarkConfig(stride=1, use_proprio=True, proprio_dims=(0, 1))
    g = build(model, episodes, cfg)
    g.save(tmp_path / "g", {})
    for graph in (g, LandmarkGraph.load(tmp_path / "g.safetensors")):
        with torch.no_grad():
            z = model.encode(torch.from_numpy(frames[[0, 10]]))
        graph.reset(z[1], np.array([1.0, 0.0, 999.0]))  # the velocity-like entry is ignored
        path = graph.path_from(z[0], np.array([0.0, 0.0, -999.0]))
        xs = graph.p[path, 0].numpy()
        assert xs[0] <= 0.3 and np.all(np.diff(xs) > 0) and xs.max() <= 1.0  # episode 0 only
        assert graph.pdims == [0, 1]
    with pytest.raises(ValueError, match="use_proprio"):
        LandmarkConfig(proprio_dims=(0,))


def test_harness_plans_with_a_graph_and_refuses_one_of_another_model(tiny_dataset, tmp_path):
    from agent.evaluation import EvalConfig, EvalSettings, evaluate
    from envs.config import EnvConfig

    torch.manual_seed(0)
    ckpts = [
        checkpoint.save(
            tmp_path / f"m{i}",
            WorldModel(ModelConfig(width=8, latent_dim=8, predictor_hidden=16)),
            {"task": "point_mass", "step": 1},
        )
        for i in range(2)
    ]
    graph = tmp_path / "g"
    main(["--checkpoint", str(ckpts[0]), "--data", str(tiny_dataset), "--out", str(graph)])

    def cfg(ckpt):
        return EvalConfig(
            env=EnvConfig("point_mass"),
            checkpoint=str(ckpt),
            planner={"name": "cem", "num_samples": 16, "iterations": 1, "num_elites": 2},
            agent=AgentConfig(horizon=2, landmarks=str(graph) + ".safetensors"),
            output_dir=str(tmp_path / "eval"),
            eval=EvalSettings(episodes=1, seed=100_000, workers=1, videos=0),
        )

    r = evaluate(cfg(ckpts[0]))
    assert r["episodes"] == 1
    saved = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert saved["config"]["agent"]["landmarks"].endswith("g.safetensors")
    with pytest.raises(checkpoint.CheckpointError, match="another world model"):
        evaluate(cfg(ckpts[1]))


def test_lookahead_along_the_path_does_not_skip_what_the_metric_calls_near():
    g = _graph(neighbours=4, radius=2.0)
    g.reset(torch.tensor([1.0, 0.0]))
    start = torch.tensor([0.0, 0.0])
    # 12 steps straight from the start is well across the top of the U (0.7, 1.0) ...
    direct, _ = g.subgoal(start, lookahead=12)
    np.testing.assert_allclose(direct.numpy(), [0.7, 1.0], atol=1e-5)
    # ... 12 steps along the path is just past its corner (9 up, 1.4 on the diagonal link
    # that cuts the corner, then 2 across: 12.4)
    along, left = g.subgoal(start, lookahead=12, along_path=True)
    np.testing.assert_allclose(along.numpy(), [0.3, 1.0], atol=1e-5)
    assert left == pytest.approx(30, abs=1)
    with pytest.raises(ValueError, match="lookahead_metric"):
        AgentConfig(lookahead_metric="straight")


def _still_then_moving(offset: float, direction: tuple[float, float], episode: int):
    """An episode whose first 10 frames are identical (a masked robot over a still cube),
    then 10 frames moving 0.1 per step."""
    still = np.tile([[offset, 0.0]], (10, 1))
    move = offset + np.outer(np.arange(1, 11) * 0.1, direction)
    z = torch.from_numpy(np.concatenate([still, move]).astype(np.float32))
    return z, np.full(20, episode), np.arange(20)


def _two_still_episodes():
    a = _still_then_moving(0.0, (1.0, 0.0), 0)
    b = _still_then_moving(0.05, (0.0, 1.0), 1)
    return [torch.cat([a[0], b[0]]), np.concatenate([a[1], b[1]]), np.concatenate([a[2], b[2]])]


def test_still_frames_give_a_unit_from_the_moves_and_links_across_episodes():
    z, episode, steps = _two_still_episodes()
    own = LandmarkGraph.from_frames(z, episode, steps, LandmarkConfig(neighbours=2))
    assert own.unit == pytest.approx(0.1, rel=1e-4)  # not the 0 of the still frames
    s, t, _ = own.edges
    still = s < 10  # episode 0's still frames: their own duplicates fill every slot
    assert not np.any(episode[t[still]] == 1)
    cfg = LandmarkConfig(neighbours=2, across_episodes=True)
    across = LandmarkGraph.from_frames(z, episode, steps, cfg)
    s, t, _ = across.edges
    assert np.any(episode[t[s < 10]] == 1)
    across.reset(z[-1])  # the end of episode 1's move ...
    assert np.isfinite(across.to_goal[0])  # ... is reachable from episode 0's start


def test_image_only_distances_leave_the_latents_proprio_part_out(tmp_path):
    z, episode, steps = _two_still_episodes()
    wild = torch.randn(len(z), 3, generator=torch.Generator().manual_seed(0)) * 100
    zp = torch.cat([z, wild], 1)  # image part (2) + a proprio part that differs everywhere
    cfg = LandmarkConfig(neighbours=2, across_episodes=True, image_only=True)
    LandmarkGraph.from_frames(zp, episode, steps, cfg, image_dims=2).save(tmp_path / "g", {})
    g = LandmarkGraph.load(tmp_path / "g.safetensors")
    assert g.dist_dims == 2 and g.unit == pytest.approx(0.1, rel=1e-3)
    np.testing.assert_allclose(g.steps_to(torch.cat([z[0], wild[5]]))[:10], 0, atol=1e-2)
    g.reset(zp[-1])
    sub, _ = g.subgoal(torch.cat([z[0], wild[0]]), 3.0)
    assert sub is not None and sub.shape == (5,)  # the subgoal keeps the full latent
    with pytest.raises(ValueError, match="image_dims"):
        LandmarkGraph.from_frames(zp, episode, steps, cfg)


def test_image_only_needs_a_proprio_state_model(tiny_dataset, tmp_path, capsys):
    model = WorldModel(ModelConfig(width=8, latent_dim=8, predictor_hidden=16))
    ckpt = checkpoint.save(tmp_path / "model", model, {"task": "point_mass", "step": 1})
    out = tmp_path / "g"
    with pytest.raises(SystemExit) as e:
        main(
            [
                "--checkpoint",
                str(ckpt),
                "--data",
                str(tiny_dataset),
                "--out",
                str(out),
                "--image-only",
            ]
        )
    assert e.value.code == 2 and "needs a model.proprio_state checkpoint" in capsys.readouterr().err
    assert not out.with_suffix(".safetensors").exists()
