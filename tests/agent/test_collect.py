"""Dataset collection: round trip, resume after interruption, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import envs
from agent import dataset as ds
from agent.collector import CollectConfig, collect, run_episode
from agent.config import to_dataclass
from envs.config import EnvConfig


def _cfg(tmp_path, **kw):
    base = dict(
        env=EnvConfig("point_mass"),
        episodes=3,
        out=str(tmp_path / "d"),
        workers=1,
        chunk_size=2,
        video=False,
        policy="repeat",
    )
    base.update(kw)
    return CollectConfig(**base)


def test_round_trip_matches_a_replay(tmp_path):
    root = collect(_cfg(tmp_path))
    data = ds.Dataset(root)
    meta = json.loads((root / "meta.json").read_text())
    assert data.episodes == 3 and meta["episodes"] == 3
    assert meta["transitions"] == 3 * 100 == data.transitions
    assert meta["action_space"]["shape"] == [2]
    ep = next(data.iter_episodes())
    assert ep["pixels"].shape == (101, 64, 64, 3) and ep["actions"].shape == (100, 2)
    # replaying the stored actions from the stored seed reproduces the stored frames
    env = envs.make("point_mass")
    obs, _ = env.reset(seed=int(ep["seeds"]))
    np.testing.assert_array_equal(obs["pixels"], ep["pixels"][0])
    np.testing.assert_array_equal(env.unwrapped.goal_observation()["pixels"], ep["goal_pixels"])
    for t in range(5):
        obs, *_ = env.step(ep["actions"][t])
        np.testing.assert_array_equal(obs["pixels"], ep["pixels"][t + 1])
    env.close()


def test_resume_finishes_without_duplicates(tmp_path):
    cfg = _cfg(tmp_path, episodes=5)
    reference = collect(_cfg(tmp_path / "ref", episodes=5))
    root = Path(cfg.out)
    collect(cfg)
    # simulate a kill: one chunk half-written, another missing, meta not yet written
    (root / "meta.json").unlink()
    import shutil

    shutil.rmtree(root / "chunk_00001")
    (root / ".chunk_00001.abc.tmp").mkdir()
    (root / ".chunk_00001.abc.tmp" / "pixels.npy").write_bytes(b"torn")
    with pytest.raises(ds.DatasetError, match="did not finish"):
        ds.Dataset(root)
    collect(cfg)
    assert not list(root.glob(".chunk_*"))
    a, b = ds.Dataset(root), ds.Dataset(reference)
    assert a.episodes == 5
    assert [int(e["seeds"]) for e in a.iter_episodes()] == [0, 1, 2, 3, 4]
    for ea, eb in zip(a.iter_episodes(), b.iter_episodes(), strict=True):
        np.testing.assert_array_equal(ea["pixels"], eb["pixels"])
        np.testing.assert_array_equal(ea["actions"], eb["actions"])
    assert a.meta["sha256"] == b.meta["sha256"]


def test_rerun_with_other_settings_is_refused(tmp_path):
    collect(_cfg(tmp_path))
    with pytest.raises(FileExistsError, match="different settings.*policy"):
        collect(_cfg(tmp_path, policy="random"))


def test_parallel_workers_give_the_same_data(tmp_path):
    one = ds.Dataset(collect(_cfg(tmp_path / "a", episodes=4, workers=1)))
    two = ds.Dataset(collect(_cfg(tmp_path / "b", episodes=4, workers=2)))
    assert one.meta["sha256"] == two.meta["sha256"]


def test_policies_cover_distance():
    env = envs.make("point_mass")
    env.unwrapped.render_observations = False  # states only: no frames needed
    spread, final = {}, {}
    for policy in ("random", "repeat", "ou", "noisy_oracle", "oracle_segments"):
        span = []
        for seed in range(4):
            ep = run_episode(env, seed=seed, policy_name=policy)
            xy = np.stack(ep.obs["state"])
            span.append(np.ptp(xy, axis=0).max())
        spread[policy] = float(np.mean(span))
        final[policy] = float(ep.obs["distance"][-1])
    env.close()
    assert final["noisy_oracle"] < 0.05  # it heads for the goal and stays near it
    assert spread["oracle_segments"] > spread["random"]
    assert spread["repeat"] > spread["random"]  # correlated actions travel further
    assert spread["ou"] > spread["random"]


def test_unknown_config_key_is_named():
    with pytest.raises(ValueError, match="unknown config key episods"):
        to_dataclass(CollectConfig, {"episods": 3})


def _cli(*args, cwd):
    env = dict(os.environ, MUJOCO_GL="egl")
    return subprocess.run(
        [sys.executable, "-m", "agent.collect", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_bad_input_one_line_nonzero_exit(tmp_path):
    repo = Path(__file__).resolve().parents[2]
    r = _cli("env=nope", f"out={tmp_path}/x", cwd=repo)
    assert r.returncode != 0 and "nope" in r.stderr
    r = _cli("episods=3", cwd=repo)
    assert r.returncode != 0 and "episods" in r.stderr
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() != 0:  # root ignores permissions; use a path under a file instead
        target = locked / "d"
    else:
        (tmp_path / "file").write_text("x")
        target = tmp_path / "file" / "d"
    r = _cli("episodes=1", f"out={target}", cwd=repo)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("error: cannot write to out=")
    r = _cli("episodes=-1", f"out={tmp_path}/y", cwd=repo)
    assert r.returncode == 2 and "episodes=-1" in r.stderr
    assert not (tmp_path / "y" / "meta.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(envs.TASKS))
def test_every_task_round_trips_and_resumes(task, tmp_path):
    cfg = CollectConfig(
        env=EnvConfig(task),
        episodes=2,
        out=str(tmp_path / "d"),
        workers=1,
        chunk_size=1,
        video=False,
        policy="mixed",
    )
    root = collect(cfg)
    first = ds.Dataset(root).meta["sha256"]
    import shutil

    shutil.rmtree(root / "chunk_00001")  # interrupted before the second chunk landed
    (root / "meta.json").unlink()
    collect(cfg)
    data = ds.Dataset(root)
    assert data.meta["sha256"] == first and data.episodes == 2
    ep = next(data.iter_episodes())
    env = envs.make(task)
    obs, _ = env.reset(seed=int(ep["seeds"]))
    np.testing.assert_array_equal(obs["pixels"], ep["pixels"][0])
    for t in range(3):
        obs, *_ = env.step(ep["actions"][t])
        np.testing.assert_array_equal(obs["pixels"], ep["pixels"][t + 1])
        np.testing.assert_allclose(obs["proprio"], ep["proprio"][t + 1])
    env.close()


def test_noise_settings_reach_the_noisy_oracle_and_only_set_ones_enter_the_identity():
    from agent.collector import CollectConfig, noise_of
    from agent.policies import make_policy

    plain = CollectConfig(env=EnvConfig("point_mass"), policy="noisy_oracle")
    assert "policy_sigma" not in plain.identity() and noise_of(plain.identity()) == {}
    quiet = CollectConfig(env=EnvConfig("point_mass"), policy="noisy_oracle", policy_sigma=0.05)
    assert noise_of(quiet.identity()) == {"sigma": 0.05}

    class Task:  # an oracle that always says 0.5
        def oracle_action(self):
            return np.full(2, 0.5)

    def spread(noise):
        act = make_policy("noisy_oracle", np.random.default_rng(0), 2, noise=noise)
        return np.std([act(Task()) for _ in range(200)])

    assert spread({"sigma": 0.0, "eps": 0.0}) == 0.0 and spread({}) > 0.1
    # beside a trained policy the noise is that policy's: the oracle keeps its own
    quiet_noise = {"sigma": 0.0, "eps": 0.0}
    beside = make_policy("noisy_oracle", np.random.default_rng(0), 2, object(), quiet_noise)
    assert np.std([beside(Task()) for _ in range(200)]) > 0.1
    with pytest.raises(ValueError, match="apply to gcbc or noisy_oracle or push_explore only"):
        CollectConfig(env=EnvConfig("point_mass"), policy="repeat", policy_eps=0.1)


def test_a_plus_joined_policy_draws_one_of_its_parts_per_episode():
    from agent.policies import MIXED, make_policy, policy_choices

    assert policy_choices("mixed") == list(MIXED) and policy_choices("ou") == ["ou"]
    assert policy_choices("repeat+oracle_segments") == ["repeat", "oracle_segments"]
    drawn = {
        make_policy("repeat+oracle_segments", np.random.default_rng([s, 1]), 2).__qualname__
        for s in range(20)
    }
    assert drawn == {"repeated_random.<locals>.act", "oracle_segments.<locals>.act"}
    # "mixed" still draws exactly as before (existing datasets stay reproducible)
    fn = {"repeat": "repeated_random", "ou": "ornstein_uhlenbeck", "noisy_oracle": "noisy_oracle"}
    for s in range(10):
        before = MIXED[int(np.random.default_rng(s).integers(len(MIXED)))]
        now = make_policy("mixed", np.random.default_rng(s), 2).__qualname__
        assert now == f"{fn[before]}.<locals>.act"
    for bad in ("repeat+nope", "", "repeat+"):
        with pytest.raises(ValueError, match="join several with"):
            policy_choices(bad)


def test_a_plus_joined_policy_is_recorded_in_the_meta(tmp_path):
    root = collect(_cfg(tmp_path, policy="repeat+ou", episodes=2, chunk_size=1))
    meta = json.loads((root / "meta.json").read_text())
    assert meta["policy"] == "repeat+ou" and meta["policy_choices"] == ["repeat", "ou"]


def test_wide_starts_enter_the_identity_only_when_set_and_only_for_push_t(tmp_path):
    push = dict(env=EnvConfig("push_t"), policy="noisy_oracle")
    assert "start_range" not in CollectConfig(**push).identity()
    assert CollectConfig(**push, start_range=0.15).identity()["start_range"] == 0.15
    with pytest.raises(ValueError, match="only push_t and push_t_masked have wide starts"):
        CollectConfig(env=EnvConfig("point_mass"), start_range=0.1)
    with pytest.raises(ValueError, match="start_range=0.3 is out of range"):
        CollectConfig(**push, start_range=0.3)
    env = envs.make("push_t", image_size=16)
    ep = run_episode(env, 5, "random", start_range=0.2)
    env.reset(seed=5, options={"start_range": 0.2})
    np.testing.assert_array_equal(ep.obs["state"][0], env.unwrapped.state())  # the wide start
    env.close()


@pytest.mark.parametrize(
    ("manifest", "error"),
    [
        ({"format": "jepa-mpc-world-model"}, "is not a gcbc policy"),  # e.g. a world model
        ({"format": "jepa-mpc-gcbc-1", "task": "push_t"}, "was trained on"),
    ],
)
def test_a_wrong_policy_checkpoint_fails_before_the_folder_is_claimed(tmp_path, manifest, error):
    wrong = tmp_path / "wrong.safetensors"
    wrong.write_bytes(b"weights")
    wrong.with_suffix(".json").write_text(json.dumps(manifest))
    cfg = _cfg(tmp_path, policy="gcbc", policy_checkpoint=str(wrong), episodes=1)
    with pytest.raises(ValueError, match=error):
        collect(cfg)
    assert not (tmp_path / "d" / "collect.json").exists()
    # the corrected command (here: another policy) is not refused as "different settings"
    root = collect(_cfg(tmp_path, episodes=1))
    assert ds.Dataset(root).episodes == 1


def test_the_cli_names_preview_mp4_only_when_it_wrote_one(tmp_path, capsys):
    from hydra import compose, initialize_config_dir

    from agent.collect import main

    configs = str(Path(__file__).resolve().parents[2] / "configs")
    for video in ("false", "true"):
        out = tmp_path / video
        args = ["episodes=1", "workers=1", "policy=repeat", f"out={out}", f"video={video}"]
        with initialize_config_dir(configs, version_base="1.3"):
            main(compose("collect", args))  # hydra.main passes a given config through
        files = "meta.json, preview.mp4" if video == "true" else "meta.json"
        assert capsys.readouterr().out.strip().endswith(f"dataset written to {out} ({files})")
        assert (out / "preview.mp4").exists() == (video == "true")


@pytest.mark.slow
def test_ctrl_c_stops_a_pooled_collection_with_one_line_and_the_rerun_finishes_it(tmp_path):
    """Ctrl-C reaches the whole process group: the workers ignore it (each used to print a
    traceback), the parent prints one line, and the same command resumes."""
    import signal
    import time

    out = tmp_path / "d"
    cmd = [sys.executable, "-m", "agent.collect", "env=point_mass", "episodes=16", "workers=2",
           "chunk_size=2", "policy=random", "video=false", f"out={out}"]  # fmt: skip
    env = {**os.environ, "MUJOCO_GL": "egl"}
    # SIGINT as in a terminal: a test run in the background (nohup, `&`) starts with it ignored
    default = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
                         preexec_fn=default)  # fmt: skip
    deadline = time.time() + 120
    while not list(out.glob("chunk_*")) and time.time() < deadline:  # a chunk is done
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGINT)
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 130, err
    assert "interrupted: what was written is complete" in err and "Traceback" not in err, err
    assert not (out / "meta.json").exists()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert ds.Dataset(out).episodes == 16
