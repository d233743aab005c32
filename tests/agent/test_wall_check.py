import pytest
import torch

from agent.model import ModelConfig, WorldModel
from tests.load import load_module

wall_check = load_module("scripts/wall_check.py")

CFG = dict(width=8, latent_dim=16, predictor_hidden=32, predictor_layers=1, proprio_dim=4)


def test_a_model_that_predicts_no_motion_agrees_with_the_wall_only_where_the_ball_stays():
    """An untrained predictor (zero last layer) keeps the ball where it starts: it agrees with
    the simulator on the side of the wall exactly where the simulated ball stayed, and its
    position error is the simulated travel, which the door sequence makes large."""
    torch.manual_seed(0)
    m = WorldModel(ModelConfig(**CFG, proprio_state=True))
    m.set_proprio_stats(torch.randn(100, 4))
    r = wall_check.wall_check(m, starts=4, steps=12)
    assert r["wall_side_agreement"] == r["wall_sim_stays"] > 0.5
    assert r["door_position_error_m"] > 0.3


def test_image_only_models_are_refused():
    with pytest.raises(ValueError, match="proprio_state"):
        wall_check.wall_check(WorldModel(ModelConfig(**CFG)), starts=1, steps=1)


def test_steps_must_be_whole_predictor_steps():
    m = WorldModel(ModelConfig(**CFG, proprio_state=True, frameskip=3))
    with pytest.raises(ValueError, match="--steps 6"):
        wall_check.wall_check(m, starts=1, steps=4)
