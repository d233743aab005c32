"""Slow features as the planning cost's metric: the fit, the model's cost view, the trainer's
fit at the end of a run, and the command that adds them to a checkpoint."""

import json
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from agent import checkpoint, slow_features
from agent.metrics import random_pairs
from agent.model import ModelConfig, WorldModel
from agent.slow_features import (
    proprio_explained_cov,
    scene_point_basis,
    slow_basis,
    spread_episodes,
    with_cost_features,
)
from agent.trainer import TrainConfig, Trainer

TINY = ModelConfig(width=8, latent_dim=16, predictor_hidden=32, predictor_layers=1)


def _mixed_video(episodes=20, steps=100, seed=0):
    """Latents (N, 5) that linearly mix 2 slow coordinates (an object drifting) with 3 fast,
    larger ones (a pusher darting about); returns (z, episode, slow)."""
    rng = np.random.default_rng(seed)
    slow, ep = [], []
    for e in range(episodes):
        start = rng.uniform(-1, 1, 2)
        slow.append(start + np.cumsum(rng.normal(0, 0.02, (steps, 2)), axis=0))
        ep.append(np.full(steps, e))
    slow = np.concatenate(slow)
    fast = rng.normal(0, 3.0, (len(slow), 3))
    mix = rng.normal(size=(5, 5))
    z = torch.as_tensor(np.concatenate([slow, fast], axis=1) @ mix)
    return z, np.concatenate(ep), slow


def _rank(z, truth):
    i, j = random_pairs(len(z), 3000)
    lat = (z[i] - z[j]).pow(2).sum(-1).numpy()
    true = np.linalg.norm(truth[i] - truth[j], axis=1)
    return spearmanr(lat, true).statistic


def test_slow_features_find_the_slow_coordinates_under_a_fast_mixture():
    z, ep, slow = _mixed_video()
    basis = slow_basis(z, ep, 2)
    assert basis.shape == (5, 5) and torch.all(basis[:, 2:] == 0)
    u = z.float() @ basis
    assert _rank(u, slow) > 0.95  # the slow coordinates' distance (up to a linear map)
    assert _rank(z.float(), slow) < 0.5  # the whole latent follows the fast part
    # each feature has unit spread over the frames, times sqrt(D / k)
    np.testing.assert_allclose(u[:, :2].std(0).numpy(), (5 / 2) ** 0.5, rtol=1e-3)
    assert torch.equal(basis, slow_basis(z, ep, 2))  # deterministic


def test_step_scaled_features_weigh_each_by_its_slowness():
    """``scale="steps"``: a fast feature taken in (k beyond the slow ones, up to all of D)
    weighs as little as it is slow, where ``frames`` counts it like the slow ones."""
    z, ep, slow = _mixed_video()
    frames3 = z.float() @ slow_basis(z, ep, 3)
    assert _rank(frames3, slow) < 0.9  # the third (fast) feature counts in full
    for k in (3, 5):
        basis = slow_basis(z, ep, k, "steps")
        assert torch.all(basis[:, k:] == 0)
        u = (z.float() @ basis)[:, :k]
        assert _rank(u, slow) > 0.95
        # each feature's one-step change has the same spread; their mean frame variance is 1,
        # times D / k
        same = torch.as_tensor(ep[1:] == ep[:-1])
        step_sd = (u[1:] - u[:-1])[same].std(0)
        np.testing.assert_allclose(step_sd.numpy(), step_sd[0].item(), rtol=1e-3)
        np.testing.assert_allclose(u.var(0).mean().item(), 5 / k, rtol=1e-3)
    assert torch.equal(slow_basis(z, ep, 2, "steps"), slow_basis(z, ep, 2, "steps"))


def test_an_error_covariance_keeps_the_slow_direction_the_predictor_misses_out():
    """``error``: the predictor's rollout error joins the one-step change in the slowness, so
    of two equally slow coordinates the one it gets wrong is dropped."""
    z, ep, slow = _mixed_video()
    x, zc = slow - slow.mean(0), z.numpy() - z.numpy().mean(0)
    rows = np.linalg.lstsq(x, zc, rcond=None)[0]  # (2, 5): how each slow coordinate moves z
    error = torch.as_tensor(np.outer(rows[0], rows[0]))  # unit error along slow coordinate 0

    def corr(u):  # |correlation| of feature u with slow coordinates 0 and 1
        return [abs(np.corrcoef(u[:, 0].numpy(), slow[:, i])[0, 1]) for i in range(2)]

    mixed = corr(z.float() @ slow_basis(z, ep, 1, "steps"))
    assert max(mixed) < 0.9  # without it: a mixture of the two
    assert corr(z.float() @ slow_basis(z, ep, 1, "steps", error))[1] > 0.999
    with pytest.raises(ValueError, match=r"error covariance \(4, 4\) does not fit the 5-d latent"):
        slow_basis(z, ep, 1, "steps", torch.eye(4))


def test_the_proprio_explained_part_keeps_the_robot_out_of_the_slow_features():
    """``proprio_explained_cov`` in the slowness: of two equally slow coordinates, the one the
    robot's proprio explains (an arm in view, seen through a nonlinear camera) is dropped and
    the scene's (the cube) is kept."""
    z, ep, slow = _mixed_video()
    rng = np.random.default_rng(1)
    # proprio: the robot's coordinate (slow coordinate 0) through a squashing sensor, with noise
    proprio = np.stack([np.tanh(slow[:, 0]), slow[:, 0] ** 2, rng.normal(size=len(slow))], 1)
    proprio = torch.as_tensor(proprio + rng.normal(0, 0.01, proprio.shape))
    explained, r2 = proprio_explained_cov(z, proprio)
    assert explained.shape == (5, 5) and 0.0 < r2 < 0.5  # the fast part dominates z

    def corr(u):  # |correlation| of feature u with slow coordinates 0 and 1
        return [abs(np.corrcoef(u[:, 0].numpy(), slow[:, i])[0, 1]) for i in range(2)]

    assert max(corr(z.float() @ slow_basis(z, ep, 1, "steps"))) < 0.9  # a mixture
    u = z.float() @ slow_basis(z, ep, 1, "steps", explained)
    kept = corr(u)  # the slow walks correlate (-0.33 here): the part of 1 uncorrelated with 0
    assert kept[0] < 0.05 and kept[1] > 0.9
    x = np.c_[slow, np.ones(len(slow))]
    resid = u[:, 0].numpy() - x @ np.linalg.lstsq(x, u[:, 0].numpy(), rcond=None)[0]
    assert resid.var() < 1e-4 * u[:, 0].var().item()  # slow coordinates only, no fast part
    assert torch.equal(explained, proprio_explained_cov(z, proprio)[0])  # deterministic
    with pytest.raises(ValueError, match=r"proprio \(3, 3\) does not pair with 2000 latents"):
        proprio_explained_cov(z, proprio[:3])
    with pytest.raises(ValueError, match="set model.cost_features > 0"):
        replace(TINY, cost_exclude_proprio=True)


def test_slow_basis_refusals():
    z, ep, _ = _mixed_video(episodes=2, steps=3)
    with pytest.raises(ValueError, match="between 1 and the latent size 5"):
        slow_basis(z, ep, 6)
    with pytest.raises(ValueError, match="use more episodes"):
        slow_basis(z, ep, 2)
    with pytest.raises(ValueError, match="scale='metres' is unknown: use one of frames, steps"):
        slow_basis(z, ep, 2, "metres")
    with pytest.raises(ValueError, match="model.cost_scale='metres' is unknown"):
        replace(TINY, cost_scale="metres")


def test_spread_episodes_keeps_whole_episodes_within_the_frame_budget():
    lengths = np.full(100, 99)  # 100 frames each
    assert len(spread_episodes(lengths, 20000)) == 100
    kept = spread_episodes(lengths, 2500)
    assert len(kept) == 25 and kept[0] == 0 and kept[-1] == 99
    assert len(spread_episodes(np.array([5000]), 10)) == 1


def test_cost_view_maps_the_image_part_and_keeps_the_proprio():
    plain = WorldModel(TINY)
    z = torch.randn(3, 16)
    assert plain.cost_view(z) is z and not hasattr(plain, "cost_basis")
    cfg = replace(TINY, cost_features=2, proprio_state=True, proprio_dim=3)
    model = WorldModel(cfg)
    model.cost_basis.zero_()
    model.cost_basis[0, 0] = 2.0
    z = torch.randn(4, 5, 19)
    view = model.cost_view(z)
    assert view.shape == z.shape
    assert torch.equal(view[..., 0], 2.0 * z[..., 0]) and torch.all(view[..., 1:16] == 0)
    assert torch.equal(view[..., 16:], z[..., 16:])


def test_scene_points_are_the_keypoints_the_proprio_does_not_explain():
    """``model.cost_points``: of 4 keypoints, the 2 on the arm (a nonlinear function of its
    proprio) are left out and the 2 on the scene kept, their coordinates as they are."""
    rng = np.random.default_rng(0)
    arm = rng.uniform(-1, 1, (3000, 2))  # the robot's state
    cube = rng.uniform(-0.5, 0.5, (3000, 2))  # a scene object's place
    pts = [np.tanh(arm), cube, 0.5 * arm**2 - 0.2, cube[:, ::-1] + 0.1]  # points 0, 2: the arm
    z = torch.as_tensor(np.concatenate(pts, 1) + rng.normal(0, 0.01, (3000, 8)))
    proprio = torch.as_tensor(np.c_[arm, rng.normal(size=3000)])
    basis, chosen = scene_point_basis(z, proprio, 4)
    assert sorted(chosen) == [1, 3] and all(r2 < 0.05 for r2 in chosen.values())
    view = z.float() @ basis / 2**0.5  # sqrt(D / features) = sqrt(2)
    torch.testing.assert_close(view[:, :4], z[:, [2, 3, 6, 7]].float())
    assert view[:, 4:].abs().max() == 0
    with pytest.raises(ValueError, match="model.cost_points=true picks keypoints by the proprio"):
        replace(TINY, cost_features=4, cost_points=True)  # a conv latent
    kp = replace(TINY, encoder="keypoints", cost_features=4, cost_points=True)
    for bad in ({"cost_features": 3}, {"cost_predictable": True}, {"cost_exclude_proprio": True}):
        with pytest.raises(ValueError, match="even model.cost_features > 0"):
            replace(kp, **bad)


def test_config_refuses_cost_features_it_cannot_use():
    with pytest.raises(ValueError, match="between 0 .* and model.latent_dim=16"):
        replace(TINY, cost_features=17)
    with pytest.raises(ValueError, match="needs a global latent"):
        ModelConfig(encoder="vit", cost_features=2)


def test_checkpoint_round_trip_and_old_checkpoints_load(tmp_path):
    model = with_cost_features(WorldModel(TINY), 3)
    model.cost_basis.copy_(torch.randn(16, 16))
    path = checkpoint.save(tmp_path / "m", model, {"task": "point_mass"})
    back, manifest = checkpoint.load(path)
    assert manifest["model"]["cost_features"] == 3
    assert torch.equal(back.cost_basis, model.cost_basis)
    # a manifest written before the field existed loads as a plain-latent model
    plain = checkpoint.save(tmp_path / "old", WorldModel(TINY), {"task": "point_mass"})
    old_meta = checkpoint.paths(plain)[1]
    saved = json.loads(old_meta.read_text())
    del saved["model"]["cost_features"]
    old_meta.write_text(json.dumps(saved))
    loaded, _ = checkpoint.load(plain)
    assert loaded.cfg.cost_features == 0


def test_planning_cost_measures_the_cost_view():
    """The MPC agent scores imagined latents against the goal through ``cost_view``: a basis
    that keeps one latent entry makes the cost that entry's squared gap (mean over D)."""
    from agent.mpc import imagined_cost

    model = WorldModel(replace(TINY, cost_features=1, action_dim=2)).eval()
    model.cost_basis.zero_()
    model.cost_basis[5, 0] = 1.0
    z0 = torch.randn(1, 16)
    steps = torch.randn(7, 3, 2)
    goal = torch.randn(16)
    with torch.no_grad():
        cost = imagined_cost(
            model, z0, steps, model.cost_view(goal), None, None, "l2", False, 0.0, None
        )
        zs = model.rollout(z0, steps)
    np.testing.assert_allclose(cost, (zs[:, -1, 5] - goal[5]).pow(2) / 16, rtol=1e-5)


def test_training_with_cost_features_fits_them_and_reports_both(tiny_dataset, tmp_path):
    cfg = TrainConfig(
        data=str(tiny_dataset),
        out=str(tmp_path / "pre"),
        model=replace(TINY, cost_features=2),
        steps=4,
        batch_size=8,
        window=3,
        checkpoint_every=2,
        threads=1,
    )
    path = Trainer(cfg).fit()
    model, manifest = checkpoint.load(path)
    assert manifest["cost_features_fit"]["features"] == 2
    assert manifest["cost_features_fit"]["frames"] > 0
    assert torch.all(model.cost_basis[:, 2:] == 0) and model.cost_basis[:, :2].abs().sum() > 0
    m = manifest["metrics"]
    assert set(m["spearman_latent"]) == set(m["spearman"]) == {"all", "near", "within"}
    assert set(m["prediction_error_cost"]) == {"model", "copy", "ratio"}  # in the cost's view
    assert (
        "prediction_error_cost"
        not in checkpoint.read_manifest(
            Trainer(replace(cfg, model=TINY, out=str(tmp_path / "plain"))).fit()
        )["metrics"]
    )
    again = Trainer(replace(cfg, out=str(tmp_path / "again"))).fit()
    assert torch.equal(checkpoint.load(again)[0].cost_basis, model.cost_basis)  # same seed


def test_a_finetune_that_drops_init_cost_features_says_so(tiny_dataset, tmp_path, capsys):
    pre = TrainConfig(
        data=str(tiny_dataset), out=str(tmp_path / "pre"), model=replace(TINY, cost_features=2),
        steps=2, batch_size=8, window=3, checkpoint_every=2, threads=1,
    )  # fmt: skip
    path = Trainer(pre).fit()
    capsys.readouterr()
    fine = replace(pre, stage="finetune", init=str(path), out=str(tmp_path / "fine"))
    Trainer(replace(fine, model=TINY))  # the finetune checks init when it is set up
    assert "init has model.cost_features=2" in capsys.readouterr().err
    Trainer(fine)  # the same cost_features: nothing to say
    assert "cost_features" not in capsys.readouterr().err


def test_command_adds_cost_features_to_a_checkpoint(tiny_dataset, tmp_path, monkeypatch, capsys):
    cfg = TrainConfig(
        data=str(tiny_dataset), out=str(tmp_path / "pre"), model=TINY, steps=2,
        batch_size=8, window=3, checkpoint_every=2, threads=1,
    )  # fmt: skip
    src = Trainer(cfg).fit()
    before = src.read_bytes()
    capsys.readouterr()  # the training run's own report
    argv = ["slow_features", "--checkpoint", str(src), "--data", str(tiny_dataset)]
    out = tmp_path / "sfa" / "model"
    monkeypatch.setattr(sys, "argv", [*argv, "--features", "2", "--out", str(out)])
    slow_features.main()
    printed = json.loads(capsys.readouterr().out)
    model, manifest = checkpoint.load(printed["checkpoint"])
    assert model.cfg.cost_features == 2 and manifest["cost_features_fit"]["features"] == 2
    assert manifest["cost_features_fit"]["command"].startswith("python -m agent.slow_features")
    assert manifest["metrics_plain_latent"] == checkpoint.read_manifest(src)["metrics"]
    assert manifest["metrics"]["spearman"] == printed["spearman"]
    plain, _ = checkpoint.load(src)
    for k, v in plain.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k  # the weights themselves unchanged
    assert src.read_bytes() == before
    # --scale steps: the same directions, weighted by their slowness
    out_s = tmp_path / "sfa" / "steps"
    monkeypatch.setattr(
        sys, "argv", [*argv, "--features", "2", "--scale", "steps", "--out", str(out_s)]
    )
    slow_features.main()
    steps, manifest = checkpoint.load(json.loads(capsys.readouterr().out)["checkpoint"])
    assert steps.cfg.cost_scale == "steps" and manifest["cost_features_fit"]["scale"] == "steps"
    assert model.cfg.cost_scale == "frames" and not torch.equal(steps.cost_basis, model.cost_basis)
    cos = torch.nn.functional.cosine_similarity(steps.cost_basis[:, :2], model.cost_basis[:, :2], 0)
    np.testing.assert_allclose(cos.abs().numpy(), 1.0, rtol=1e-4)
    # bad input: one line, nothing written
    monkeypatch.setattr(sys, "argv", [*argv, "--features", "99", "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit) as e:
        slow_features.main()
    err = capsys.readouterr().err
    assert e.value.code != 0 and "--features=99 must be between 1 and the latent size 16" in err
    assert not (tmp_path / "x.safetensors").exists()
    monkeypatch.setattr(sys, "argv", [*argv, "--features", "2", "--out", str(src)])
    with pytest.raises(SystemExit):
        slow_features.main()
    assert "is the input checkpoint" in capsys.readouterr().err
    vit = WorldModel(ModelConfig(encoder="vit", width=16, latent_dim=8, predictor_hidden=16))
    vit_path = checkpoint.save(tmp_path / "vit", vit, {"task": "point_mass"})
    argv = ["slow_features", "--checkpoint", str(vit_path), "--data", str(tiny_dataset)]
    monkeypatch.setattr(sys, "argv", [*argv, "--features", "2", "--out", str(tmp_path / "y")])
    with pytest.raises(SystemExit):
        slow_features.main()
    assert "slow features need a global latent" in capsys.readouterr().err


def test_predictable_features_count_the_finetuned_predictor_error(
    tiny_dataset, tmp_path, monkeypatch, capsys
):
    """``model.cost_predictable`` at the end of a finetune and ``--predictable`` on a finetuned
    checkpoint: the same fit (the predictor's rollout error in the slowness); refused where
    there is no trained predictor."""
    pre = TrainConfig(
        data=str(tiny_dataset), out=str(tmp_path / "pre"), model=TINY, steps=2,
        batch_size=8, window=3, checkpoint_every=2, threads=1,
    )  # fmt: skip
    init = Trainer(pre).fit()
    with pytest.raises(ValueError, match="cost_predictable=true .* use it at stage=finetune"):
        replace(pre, model=replace(TINY, cost_features=2, cost_predictable=True))
    with pytest.raises(ValueError, match="set model.cost_features > 0"):
        replace(TINY, cost_predictable=True)
    fine = replace(pre, stage="finetune", init=str(init), out=str(tmp_path / "fine"))
    plain = Trainer(fine).fit()
    cfg = replace(TINY, cost_features=2, cost_scale="steps", cost_predictable=True)
    fitted = Trainer(replace(fine, model=cfg, out=str(tmp_path / "fine_p"))).fit()
    model, manifest = checkpoint.load(fitted)
    fit = manifest["cost_features_fit"]
    assert fit["predictable"] and fit["error_windows"] > 0 and fit["error_window"] == 3
    assert model.cfg.cost_predictable and model.cfg.cost_scale == "steps"
    capsys.readouterr()
    argv = ["slow_features", "--checkpoint", str(plain), "--data", str(tiny_dataset)]
    argv += ["--features", "2", "--scale", "steps"]
    out = tmp_path / "cli_p"
    monkeypatch.setattr(sys, "argv", [*argv, "--predictable", "--out", str(out)])
    slow_features.main()
    cli, cli_manifest = checkpoint.load(json.loads(capsys.readouterr().out)["checkpoint"])
    assert cli_manifest["cost_features_fit"]["predictable"] and cli.cfg.cost_predictable
    # the same weights (one seed) and the same fit: the same basis as the training run's
    assert torch.allclose(cli.cost_basis, model.cost_basis, atol=1e-5)
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "cli_s")])
    slow_features.main()
    steps_only = checkpoint.load(json.loads(capsys.readouterr().out)["checkpoint"])[0]
    assert not torch.allclose(steps_only.cost_basis, model.cost_basis, atol=1e-3)
    argv[2] = str(init)  # a pretrain: no trained predictor
    monkeypatch.setattr(sys, "argv", [*argv, "--predictable", "--out", str(tmp_path / "z")])
    with pytest.raises(SystemExit) as e:
        slow_features.main()
    assert (
        e.value.code != 0
        and "--predictable needs a finetuned checkpoint" in capsys.readouterr().err
    )
    assert not (tmp_path / "z.safetensors").exists()


def test_exclude_proprio_fits_alike_in_training_and_by_the_command(
    tiny_dataset, tmp_path, monkeypatch, capsys
):
    """``model.cost_exclude_proprio`` at the end of a run and ``--exclude-proprio`` on its
    plain twin: the same basis, the fit's ``proprio_r2`` recorded, unlike the fit without it."""
    base = TrainConfig(
        data=str(tiny_dataset), out=str(tmp_path / "plain"), model=TINY, steps=2,
        batch_size=8, window=3, checkpoint_every=2, threads=1,
    )  # fmt: skip
    plain = Trainer(base).fit()
    cfg = replace(TINY, cost_features=2, cost_scale="steps", cost_exclude_proprio=True)
    fitted = Trainer(replace(base, model=cfg, out=str(tmp_path / "ex"))).fit()
    model, manifest = checkpoint.load(fitted)
    fit = manifest["cost_features_fit"]
    assert fit["exclude_proprio"] and 0.0 <= fit["proprio_r2"] <= 1.0
    assert model.cfg.cost_exclude_proprio
    capsys.readouterr()
    argv = ["slow_features", "--checkpoint", str(plain), "--data", str(tiny_dataset)]
    argv += ["--features", "2", "--scale", "steps"]
    monkeypatch.setattr(sys, "argv", [*argv, "--exclude-proprio", "--out", str(tmp_path / "c")])
    slow_features.main()
    cli, cli_manifest = checkpoint.load(json.loads(capsys.readouterr().out)["checkpoint"])
    assert cli.cfg.cost_exclude_proprio
    assert cli_manifest["cost_features_fit"]["proprio_r2"] == fit["proprio_r2"]
    assert torch.allclose(cli.cost_basis, model.cost_basis, atol=1e-5)
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "s")])
    slow_features.main()
    steps_only, m = checkpoint.load(json.loads(capsys.readouterr().out)["checkpoint"])
    assert "proprio_r2" not in m["cost_features_fit"] and not steps_only.cfg.cost_exclude_proprio
    assert not torch.allclose(steps_only.cost_basis, model.cost_basis, atol=1e-3)


def test_cost_points_fit_alike_in_training_and_by_the_command(
    tiny_dataset, tmp_path, monkeypatch, capsys
):
    """``model.cost_points`` at the end of a keypoint run and ``--points`` on its plain twin:
    the same points, the basis one scaled unit per kept coordinate."""
    kp = replace(TINY, encoder="keypoints")
    base = TrainConfig(
        data=str(tiny_dataset), out=str(tmp_path / "plain"), model=kp, steps=2,
        batch_size=8, window=3, checkpoint_every=2, threads=1,
    )  # fmt: skip
    plain = Trainer(base).fit()
    cfg = replace(kp, cost_features=4, cost_points=True)
    model, manifest = checkpoint.load(
        Trainer(replace(base, model=cfg, out=str(tmp_path / "p"))).fit()
    )
    fit = manifest["cost_features_fit"]
    assert fit["scale"] == "points" and len(fit["points_proprio_r2"]) == 2
    assert (model.cost_basis != 0).sum() == 4 and model.cost_basis.max() == 2.0  # sqrt(16 / 4)
    argv = ["slow_features", "--checkpoint", str(plain), "--data", str(tiny_dataset)]
    monkeypatch.setattr(
        sys, "argv", [*argv, "--features", "4", "--points", "--out", str(tmp_path / "c")]
    )
    capsys.readouterr()
    slow_features.main()
    cli, cli_manifest = checkpoint.load(json.loads(capsys.readouterr().out)["checkpoint"])
    assert (
        cli.cfg.cost_points
        and cli_manifest["cost_features_fit"]["points_proprio_r2"] == fit["points_proprio_r2"]
    )
    assert torch.equal(cli.cost_basis, model.cost_basis)
